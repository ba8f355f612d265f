// The argument checks every module makes before any system call, written
// once. Pure: importing this file loads no native code. Private to the
// package; each error names the call and the argument.

import { IFNAMSIZ, SCM_MAX_FD, UNIX_PATH_MAX } from "../ffi/constants.ts";
import { encodeUnixName, PACKET_TYPES } from "../ffi/sockaddr.ts";
import { SOCKADDR_LL } from "../ffi/structs.ts";
import type { LinkAddr } from "../types.ts";

const encoder = new TextEncoder();

/**
 * How a bad value reads in a message: a string quoted, a number or boolean as written, else its
 * type.
 */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return typeof value;
}

/** Throws `TypeError` unless `value` is a non-null object; `what` names it ("openRaw: options"). */
export function checkObject(what: string, value: unknown): asserts value is object {
  if (typeof value !== "object" || value === null) {
    throw new TypeError(`${what} must be an object, got ${describeValue(value)}`);
  }
}

/** `value` when it is a boolean or undefined; `TypeError` naming `what` otherwise. */
export function checkBoolean(what: string, value: unknown): boolean | undefined {
  if (value === undefined || typeof value === "boolean") return value;
  throw new TypeError(`${what} must be a boolean, got ${describeValue(value)}`);
}

/** `signal` when it is an `AbortSignal` or undefined; `TypeError` naming `call` otherwise. */
export function checkSignal(call: string, signal: unknown): AbortSignal | undefined {
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`${call}: signal must be an AbortSignal`);
  }
  return signal;
}

/** Undefined, or `value` checked as {@linkcode checkInteger} checks it. */
export function checkOptionalInteger(
  what: string,
  value: unknown,
  min: number,
  max: number,
): number | undefined {
  return value === undefined ? undefined : checkInteger(what, value, min, max);
}

/**
 * `fds` when it is undefined or an array of at most `max` descriptors (integers
 * 0 to 2^31-1); `TypeError` or `RangeError` naming `what` otherwise.
 */
export function checkFds(what: string, fds: unknown, max = SCM_MAX_FD): number[] | undefined {
  if (fds === undefined) return undefined;
  if (!Array.isArray(fds)) {
    throw new TypeError(`${what}: fds must be an array of descriptors, got ${typeof fds}`);
  }
  if (fds.length > max) {
    throw new RangeError(
      `${what}: ${fds.length} descriptors is over the limit of ${max} per record`,
    );
  }
  for (const fd of fds) {
    if (typeof fd !== "number" || !Number.isInteger(fd)) {
      throw new TypeError(`${what}: a descriptor must be an integer, got ${String(fd)}`);
    }
    if (fd < 0 || fd > 0x7fffffff) {
      throw new RangeError(`${what}: a descriptor must be between 0 and 2147483647, got ${fd}`);
    }
  }
  return fds;
}

/**
 * Returns `value` when it is an integer in `min`–`max`: `TypeError` when it is
 * not an integer, `RangeError` when it is out of range, both naming `what`.
 */
export function checkInteger(what: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    const shown = typeof value === "string" ? JSON.stringify(value) : String(value);
    throw new TypeError(`${what} must be an integer, got ${shown}`);
  }
  if (value < min || value > max) {
    throw new RangeError(`${what} must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

/** `port` when it is an integer in 0–65535; `TypeError`/`RangeError` naming `what` otherwise. */
export function checkPort(what: string, port: unknown): number {
  return checkInteger(what, port, 0, 65535);
}

/**
 * Checks a Unix socket path and returns its bytes as `sun_path` will hold
 * them. A filesystem path may be at most 107 bytes (room for the NUL) and may
 * not contain NUL; an abstract name (leading `"\0"`) may be 108 bytes and may
 * contain anything. `""` (unnamed) is allowed only when `unnamed` is true.
 * `call` starts every message.
 */
export function checkUnixPath(call: string, path: unknown, unnamed = false): Uint8Array {
  const prefix = `${call}: `;
  if (typeof path !== "string") {
    throw new TypeError(`${prefix}path must be a string, got ${typeof path}`);
  }
  if (path === "" && !unnamed) {
    throw new TypeError(
      `${prefix}path must not be empty here: an unnamed socket cannot be listened on`,
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = encodeUnixName(path);
  } catch (err) {
    throw new TypeError(`${prefix}${(err as Error).message}`);
  }
  const abstract = path.startsWith("\0");
  const limit = abstract ? UNIX_PATH_MAX : UNIX_PATH_MAX - 1;
  if (bytes.length > limit) {
    throw new RangeError(
      `${prefix}${abstract ? "abstract socket name" : "socket path"} is ${bytes.length} bytes, ` +
        `over the limit of ${limit}: ${JSON.stringify(path)}`,
    );
  }
  if (!abstract && bytes.includes(0)) {
    throw new TypeError(`${prefix}socket path contains a NUL byte: ${JSON.stringify(path)}`);
  }
  return bytes;
}

/**
 * Returns `p` when it is a `Uint8Array` over a fixed-length, non-shared,
 * attached `ArrayBuffer`; throws `TypeError` otherwise. A DataView or
 * Int8Array has no byte meaning here; another thread could change a shared
 * buffer's bytes while the kernel copies them; a resizable one can shrink
 * under a pending call, and the kernel would then read or write past its end;
 * a detached one's memory is gone.
 *
 * @param what The call and address for the message, e.g. `write "127.0.0.1:80"`.
 */
export function checkBuffer(what: string, p: unknown): Uint8Array {
  if (!(p instanceof Uint8Array)) {
    throw new TypeError(`${what}: buffer must be a Uint8Array, got ${describeBuffer(p)}`);
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

function describeBuffer(p: unknown): string {
  if (p === null) return "null";
  if (typeof p !== "object") return typeof p;
  return (p as object).constructor?.name ?? "object";
}

/**
 * Returns `name` when it can name an interface: a non-empty string of at
 * most 15 bytes (IFNAMSIZ less the NUL) without NUL, `/` or whitespace,
 * which the kernel refuses in interface names.
 *
 * @param what The call and option for the message, e.g. `openPacket: interface`.
 * @throws {TypeError} For a non-string, an empty name or a forbidden character.
 * @throws {RangeError} For a name over 15 bytes.
 */
export function checkInterfaceName(what: string, name: unknown): string {
  if (typeof name !== "string") {
    throw new TypeError(`${what} must be a string, got ${name === null ? "null" : typeof name}`);
  }
  if (name === "" || /[\0/\s]/.test(name) || name === "." || name === "..") {
    throw new TypeError(`${what} ${JSON.stringify(name)} is not a valid interface name`);
  }
  const length = encoder.encode(name).length;
  if (length > IFNAMSIZ - 1) {
    throw new RangeError(
      `${what} ${JSON.stringify(name)} is ${length} bytes, over the limit of ${IFNAMSIZ - 1}`,
    );
  }
  return name;
}

/** The most bytes a `sockaddr_ll` holds as a hardware address: `sll_addr` to its end. */
const SLL_ADDR_MAX = SOCKADDR_LL.size - SOCKADDR_LL.addr;

/**
 * A link-layer destination's fields, checked: an ifindex in 1–2^31-1, a
 * protocol and hatype in 0–0xffff, an address of at most 8 bytes, a known
 * packet type. `what` starts every message.
 */
export function checkLinkAddress(what: string, o: {
  ifindex: unknown;
  protocol: unknown;
  address?: unknown;
  packetType?: unknown;
  hatype?: unknown;
}): {
  ifindex: number;
  protocol: number;
  address: Uint8Array;
  packetType: LinkAddr["packetType"];
  hatype: number;
} {
  checkObject(what, o);
  const ifindex = checkInteger(`${what}: ifindex`, o.ifindex, 1, 0x7fffffff);
  const protocol = checkInteger(`${what}: protocol`, o.protocol, 0, 0xffff);
  const hatype = checkInteger(`${what}: hatype`, o.hatype ?? 0, 0, 0xffff);
  const address = o.address ?? new Uint8Array(0);
  if (!(address instanceof Uint8Array)) {
    throw new TypeError(`${what}: link address must be a Uint8Array, got ${typeof address}`);
  }
  if (address.length > SLL_ADDR_MAX) {
    throw new RangeError(
      `${what}: link address is ${address.length} bytes, over the limit of ${SLL_ADDR_MAX}`,
    );
  }
  const packetType = (o.packetType ?? "host") as LinkAddr["packetType"];
  if (!PACKET_TYPES.includes(packetType)) {
    throw new TypeError(
      `${what}: packetType must be one of ${PACKET_TYPES.map((t) => `"${t}"`).join(", ")}, ` +
        `got ${JSON.stringify(o.packetType)}`,
    );
  }
  return { ifindex, protocol, address, packetType, hatype };
}
