// The argument checks every module makes before any system call, written
// once. Pure: importing this file loads no native code. Private to the
// package; each error names the call and the argument.

import { SCM_MAX_FD } from "./ffi/constants.ts";
import { checkInteger } from "./ffi/sockaddr.ts";

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
