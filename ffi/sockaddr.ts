// Validation of addresses before any system call, and the sockaddr codecs.
// Pure: importing this file loads no native code.

import { UNIX_PATH_MAX } from "./constants.ts";

const encoder = new TextEncoder();

/** Throws `TypeError`/`RangeError` unless `port` is an integer in 0–65535. */
export function checkPort(port: unknown): number {
  if (typeof port !== "number" || !Number.isInteger(port)) {
    throw new TypeError(`port must be an integer, got ${String(port)}`);
  }
  if (port < 0 || port > 65535) {
    throw new RangeError(`port must be between 0 and 65535, got ${port}`);
  }
  return port;
}

/**
 * Checks a Unix socket path and returns its bytes as `sun_path` will hold
 * them. A filesystem path may be at most 107 bytes (room for the NUL) and may
 * not contain NUL; an abstract name (leading `"\0"`) may be 108 bytes and may
 * contain anything. `""` (unnamed) is allowed only when `unnamed` is true.
 */
export function checkUnixPath(path: unknown, unnamed = false): Uint8Array {
  if (typeof path !== "string") {
    throw new TypeError(`path must be a string, got ${typeof path}`);
  }
  if (path === "" && !unnamed) {
    throw new TypeError("path must not be empty here: an unnamed socket cannot be listened on");
  }
  const bytes = encodeUnixName(path);
  const abstract = path.startsWith("\0");
  const limit = abstract ? UNIX_PATH_MAX : UNIX_PATH_MAX - 1;
  if (bytes.length > limit) {
    throw new RangeError(
      `${abstract ? "abstract socket name" : "socket path"} is ${bytes.length} bytes, ` +
        `over the limit of ${limit}: ${JSON.stringify(path)}`,
    );
  }
  if (!abstract && bytes.includes(0)) {
    throw new TypeError(`socket path contains a NUL byte: ${JSON.stringify(path)}`);
  }
  return bytes;
}

/**
 * The bytes of a Unix socket name. A filesystem path is UTF-8. An abstract
 * name is a byte string, as Linux treats it: each character is one byte
 * (U+0000–U+00FF), so `"\0a\0\xff"` round-trips exactly; a character above
 * U+00FF in an abstract name is a `TypeError`.
 */
export function encodeUnixName(path: string): Uint8Array {
  if (!path.startsWith("\0")) return encoder.encode(path);
  const bytes = new Uint8Array(path.length);
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c > 0xff) {
      throw new TypeError(
        `abstract socket name must hold only characters U+0000-U+00FF (one byte each), ` +
          `got U+${c.toString(16).toUpperCase().padStart(4, "0")} in ${JSON.stringify(path)}`,
      );
    }
    bytes[i] = c;
  }
  return bytes;
}
