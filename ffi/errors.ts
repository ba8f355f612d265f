// errno → error class, and the one message format every failure uses:
//   connect "/run/x.sock": connection refused
// Pure: importing this file loads no native code (libc opens on first call).
// SocketError lives here so that ffi/ imports nothing from above it; errors.ts
// re-exports it.

import { EAGAIN, EINTR, ERRNO, ERRNO_NAME } from "./constants.ts";
import { errno } from "./libc.ts";

/**
 * What a {@linkcode SocketError} carries besides its message.
 *
 * @example Build one as the library does
 * ```ts
 * import { SocketError } from "@bsd/sockets";
 *
 * const err = new SocketError('sendmsg "/run/x.sock": message too long', {
 *   errno: 90,
 *   code: "EMSGSIZE",
 *   syscall: "sendmsg",
 * });
 * console.log(err.code); // "EMSGSIZE"
 * ```
 */
export interface SocketErrorOptions {
  /** The errno number, as Linux reported it. */
  errno: number;
  /** The errno name, such as `"EMSGSIZE"`. */
  code: string;
  /** The system call that failed, such as `"sendmsg"`. */
  syscall: string;
  /** The error this one was raised from, if any. */
  cause?: unknown;
}

/**
 * A system call failed with an errno that has no `Deno.errors` class.
 *
 * The message names the call and the address, then the reason:
 * `sendmsg "/run/x.sock": message too long`.
 *
 * @example Tell a socket error by its code
 * ```ts
 * import { SocketError } from "@bsd/sockets";
 *
 * function isTooLong(err: unknown): boolean {
 *   return err instanceof SocketError && err.code === "EMSGSIZE";
 * }
 * ```
 */
export class SocketError extends Error {
  /** The errno number, as Linux reported it. */
  readonly errno: number;
  /** The errno name, such as `"EMSGSIZE"`. */
  readonly code: string;
  /** The system call that failed, such as `"sendmsg"`. */
  readonly syscall: string;

  /**
   * Builds the error; the library does this, users normally only catch it.
   *
   * @param message The full message, naming the call and the address.
   * @param options The errno number and name, the failed call, and a cause.
   */
  constructor(message: string, options: SocketErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "SocketError";
    this.errno = options.errno;
    this.code = options.code;
    this.syscall = options.syscall;
  }
}

type ErrorClass = new (message: string, options?: ErrorOptions) => Error;

const CLASS_BY_CODE: Readonly<Record<string, ErrorClass>> = {
  ENOENT: Deno.errors.NotFound,
  EACCES: Deno.errors.PermissionDenied,
  EPERM: Deno.errors.PermissionDenied,
  ECONNREFUSED: Deno.errors.ConnectionRefused,
  ECONNRESET: Deno.errors.ConnectionReset,
  ECONNABORTED: Deno.errors.ConnectionAborted,
  ENOTCONN: Deno.errors.NotConnected,
  EADDRINUSE: Deno.errors.AddrInUse,
  EADDRNOTAVAIL: Deno.errors.AddrNotAvailable,
  EPIPE: Deno.errors.BrokenPipe,
  EEXIST: Deno.errors.AlreadyExists,
  ETIMEDOUT: Deno.errors.TimedOut,
  EINTR: Deno.errors.Interrupted,
  EAGAIN: Deno.errors.WouldBlock,
  EBADF: Deno.errors.BadResource,
  EBUSY: Deno.errors.Busy,
  ELOOP: Deno.errors.FilesystemLoop,
  ENOTDIR: Deno.errors.NotADirectory,
  ENETUNREACH: Deno.errors.NetworkUnreachable,
  EAFNOSUPPORT: Deno.errors.NotSupported,
  EPROTONOSUPPORT: Deno.errors.NotSupported,
  ESOCKTNOSUPPORT: Deno.errors.NotSupported,
  EOPNOTSUPP: Deno.errors.NotSupported,
};

/** The properties every system-call error carries, whatever its class. */
export interface ErrnoDetails {
  errno: number;
  code: string;
  syscall: string;
}

/**
 * Quotes an address for an error message: a path or abstract name as a JSON
 * string (so `\0` shows), an IP endpoint as `"host:port"`. A Unix socket
 * without a name (a pair's end, an unbound client) is `(unnamed)`, unquoted,
 * so that it cannot be taken for a path.
 */
export function describeAddress(
  address: { path: string } | { hostname: string; port?: number } | string | undefined,
): string {
  if (address === undefined) return "";
  if (typeof address === "string") return JSON.stringify(address);
  if ("path" in address) return address.path === "" ? "(unnamed)" : JSON.stringify(address.path);
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  return JSON.stringify(address.port === undefined ? address.hostname : `${host}:${address.port}`);
}

function prefix(syscall: string, address: string): string {
  return address === "" ? syscall : `${syscall} ${address}`;
}

/**
 * The error for a system call that failed with `errno`: the matching
 * `Deno.errors` class, or `SocketError`; both carry `errno`, `code`, `syscall`.
 *
 * @param address Already quoted by {@linkcode describeAddress}, or `""`.
 */
export function errnoError(errno: number, syscall: string, address = ""): Error {
  const code = ERRNO_NAME.get(errno) ?? `E${errno}`;
  const reason = ERRNO[code]?.[1] ?? `errno ${errno}`;
  const message = `${prefix(syscall, address)}: ${reason}`;
  const Class = CLASS_BY_CODE[code];
  const err = Class ? new Class(message) : new SocketError(message, { errno, code, syscall });
  if (Class) Object.assign(err, { errno, code, syscall } satisfies ErrnoDetails);
  return err;
}

/**
 * An error from a Deno built-in with the call and the address in its
 * message, keeping its class and the original as `cause`. Argument errors
 * and aborts pass through as they are; a thrown non-Error becomes an `Error`
 * with it as `cause`, so every caller gets an `Error`.
 */
export function withContext(err: unknown, syscall: string, address: string): Error {
  if (!(err instanceof Error)) {
    return new Error(`${prefix(syscall, address)}: ${String(err)}`, { cause: err });
  }
  if (err instanceof TypeError || err instanceof RangeError) return err;
  if (err.name === "AbortError") return err;
  const code = (err as { code?: unknown }).code;
  // Deno raises a plain Error, with only `code`, for an errno it has no class
  // for (EAFNOSUPPORT): classed here as the FFI backend classes it.
  if (err.constructor === Error && typeof code === "string" && ERRNO[code] !== undefined) {
    const classed = errnoError(ERRNO[code][0], syscall, address);
    return Object.assign(classed, { cause: err });
  }
  const Class = err.constructor as ErrorClass;
  const reason = err.message.replace(/ \(os error \d+\)$/, "").replace(
    /^./,
    (c) => c.toLowerCase(),
  );
  const wrapped = new Class(`${prefix(syscall, address)}: ${reason}`, { cause: err });
  if (typeof code === "string") Object.assign(wrapped, { code, syscall });
  return wrapped;
}

/**
 * The error for an operation on a closed socket: `BadResource`, as Deno's own
 * sockets raise.
 */
export function closedError(syscall: string, address = ""): Error {
  return new Deno.errors.BadResource(`${prefix(syscall, address)}: socket is closed`);
}

/**
 * Errors the kernel reports once and clears (`sk_err`: a reset, an ICMP
 * error): calling again would lose them, so they are never confirmed.
 */
export const ONE_SHOT_ERRNOS: ReadonlySet<number> = new Set(
  ["EPIPE", "EPROTO", "ENETUNREACH", "ECONNRESET", "ETIMEDOUT", "ECONNREFUSED", "EHOSTUNREACH"]
    .map((name) => ERRNO[name][0]),
);

/**
 * Runs a data call and returns its result, or -errno. errno is read right
 * after the call, yet the runtime may run code of its own in between (a GC
 * step, an interrupt) that leaves another errno behind: a recvmmsg that had
 * found nothing was once seen "failing" with ENOENT. A failed call has done
 * nothing, so a failure other than EAGAIN/EINTR and the one-shot errors is
 * confirmed by calling again: a real error repeats, a misread one does not.
 */
export function confirmed(call: () => number): number {
  const n = call();
  return n >= 0 ? n : reconfirmed(call);
}

/**
 * The -errno of `call`, which just failed, confirmed as {@linkcode confirmed}
 * does, or its result if the second call succeeds: for a hot path that makes
 * its call directly and builds `call` only when that fails.
 */
export function reconfirmed(call: () => number): number {
  const first = errno();
  if (first === EAGAIN || first === EINTR || ONE_SHOT_ERRNOS.has(first)) return -first;
  const again = call();
  return again >= 0 ? again : -errno();
}
