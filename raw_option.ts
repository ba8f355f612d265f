/**
 * The unportable way to reach a socket option this package does not name:
 * `setsockopt`/`getsockopt` by level and option number, bytes in and out.
 *
 * Prefer `setOption`/`getOption` on the socket, which take typed names and
 * check them against the socket. Here nothing is checked but the shapes of
 * the arguments: the numbers and the byte layout are the platform's (Linux
 * here; see its `socket(7)`, `ip(7)`, `tcp(7)` manual pages), a wrong layout
 * is the kernel's to refuse or, worse, accept, and code using this module
 * stops working on another platform. Requires `--allow-ffi`.
 *
 * @example Read TCP_CONGESTION (level 6, option 13) by number
 * ```ts ignore
 * import { connectStream } from "@bsd/sockets/stream";
 * import { getRawOption } from "@bsd/sockets/raw_option";
 *
 * using conn = await connectStream({ hostname: "127.0.0.1", port: 8080, backend: "ffi" });
 * const name = getRawOption(conn, 6, 13, 16);
 * console.log(new TextDecoder().decode(name).replace(/\0.*$/s, "")); // "cubic"
 * ```
 *
 * @module
 */

import { checkBuffer, checkInteger } from "./_internal/checks.ts";
import { getRawOptionOn, setRawOptionOn } from "./ffi/options.ts";
import { isOwnedFd } from "./ffi/socket.ts";
import { needsFfiBackend } from "./_internal/options.ts";

/** Anything of this package with a descriptor: every socket and listener class. */
export interface HasDescriptor {
  /** The descriptor; `null` on the built-in backend and once closed. */
  readonly fd: number | null;
}

function descriptorOf(sock: unknown, call: string): number {
  if (typeof sock !== "object" || sock === null || !("fd" in sock)) {
    throw new TypeError(`${call}: sock must be a socket of this package`);
  }
  const fd = (sock as HasDescriptor).fd;
  if (fd === null) {
    throw needsFfiBackend(call, "(a closed socket or one on the built-in backend)");
  }
  if (typeof fd !== "number" || !isOwnedFd(fd)) {
    throw new TypeError(`${call}: sock must be a live socket of this package`);
  }
  return fd;
}

/**
 * **Unportable.** Sets an option by number: `setsockopt(fd, level, option,
 * value)`, the bytes passed as they are.
 *
 * @param sock An FFI-backed socket or listener of this package.
 * @param level The option level (`SOL_SOCKET` is 1 on Linux, `IPPROTO_TCP` 6).
 * @param option The option number at that level.
 * @param value The option's bytes, in the layout the kernel expects.
 * @throws {TypeError} When `sock` is not a socket of this package or `value` not a
 * fixed-length `Uint8Array`.
 * @throws {RangeError} For a level or option that is not a non-negative 32-bit integer.
 * @throws {Deno.errors.NotSupported} On the built-in backend or once closed.
 * @throws {Deno.errors.InvalidData} Or another `Deno.errors.*` class when the kernel refuses.
 *
 * @example Set TCP_QUICKACK (level 6, option 12) by number
 * ```ts ignore
 * import { connectStream } from "@bsd/sockets/stream";
 * import { setRawOption } from "@bsd/sockets/raw_option";
 *
 * using conn = await connectStream({ hostname: "127.0.0.1", port: 8080, backend: "ffi" });
 * setRawOption(conn, 6, 12, new Uint8Array(new Int32Array([1]).buffer));
 * ```
 */
export function setRawOption(
  sock: HasDescriptor,
  level: number,
  option: number,
  value: Uint8Array,
): void {
  const call = "setRawOption";
  checkInteger(`${call}: level`, level, 0, 0x7fffffff);
  checkInteger(`${call}: option`, option, 0, 0x7fffffff);
  checkBuffer(call, value);
  setRawOptionOn(descriptorOf(sock, call), "", level, option, value);
}

/**
 * **Unportable.** Reads an option by number: `getsockopt(fd, level, option)`
 * into `size` bytes; returns the bytes the kernel wrote (maybe fewer).
 *
 * @param sock An FFI-backed socket or listener of this package.
 * @param level The option level.
 * @param option The option number at that level.
 * @param size The most bytes to read, 1 to 65,536.
 * @returns The option's bytes.
 * @throws {TypeError} When `sock` is not a socket of this package.
 * @throws {RangeError} For a level, option or size out of range.
 * @throws {Deno.errors.NotSupported} On the built-in backend or once closed.
 *
 * @example Read SO_RCVBUF (level 1, option 8) by number
 * ```ts ignore
 * import { listenDatagram } from "@bsd/sockets/datagram";
 * import { getRawOption } from "@bsd/sockets/raw_option";
 *
 * using sock = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
 * const bytes = getRawOption(sock, 1, 8, 4);
 * console.log(new DataView(bytes.buffer).getInt32(0, true));
 * ```
 */
export function getRawOption(
  sock: HasDescriptor,
  level: number,
  option: number,
  size: number,
): Uint8Array {
  const call = "getRawOption";
  checkInteger(`${call}: level`, level, 0, 0x7fffffff);
  checkInteger(`${call}: option`, option, 0, 0x7fffffff);
  checkInteger(`${call}: size`, size, 1, 65536);
  return getRawOptionOn(descriptorOf(sock, call), "", level, option, size);
}
