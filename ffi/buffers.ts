// The one check every buffer argument passes before any system call.
// Pure: importing this file loads no native code.
//
// Refused, each with a TypeError naming the call:
// - anything but a Uint8Array (a DataView or Int8Array has no byte meaning here);
// - a SharedArrayBuffer-backed view: another thread could change the bytes
//   while the kernel copies them, so what is sent would be undefined;
// - a resizable ArrayBuffer: it can shrink under a pending call, and the
//   kernel would then read or write past its end;
// - a detached ArrayBuffer: its memory is gone (it was transferred).

/**
 * Returns `p` when it is a `Uint8Array` over a fixed-length, non-shared,
 * attached `ArrayBuffer`; throws `TypeError` otherwise.
 *
 * @param what The call and address for the message, e.g. `write "127.0.0.1:80"`.
 */
export function checkBuffer(p: unknown, what: string): Uint8Array {
  if (!(p instanceof Uint8Array)) {
    throw new TypeError(`${what}: buffer must be a Uint8Array, got ${describe(p)}`);
  }
  const buffer = p.buffer;
  if (buffer instanceof ArrayBuffer) {
    if (buffer.detached) {
      throw new TypeError(`${what}: buffer is detached (its ArrayBuffer was transferred)`);
    }
    if (buffer.resizable) {
      throw new TypeError(
        `${what}: buffer is backed by a resizable ArrayBuffer; use a fixed-length one`,
      );
    }
    return p;
  }
  throw new TypeError(`${what}: buffer is backed by a SharedArrayBuffer; use an ArrayBuffer`);
}

function describe(p: unknown): string {
  if (p === null) return "null";
  if (typeof p !== "object") return typeof p;
  return (p as object).constructor?.name ?? "object";
}
