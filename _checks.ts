// The argument checks every module makes before any system call, written
// once. Pure: importing this file loads no native code. Private to the
// package; each error names the call and the argument.

import { checkInteger } from "./ffi/sockaddr.ts";

/** How a bad value reads in a message: a string quoted, a number or boolean as written, else its type. */
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
