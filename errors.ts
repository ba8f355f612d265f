/**
 * The error thrown for a failed system call that has no matching
 * `Deno.errors` class.
 *
 * Failures that do have one (`AddrInUse`, `ConnectionRefused`, `NotFound`, …)
 * throw that class instead, with the same `errno`, `code` and `syscall`
 * properties attached.
 *
 * @module
 */

export { SocketError, type SocketErrorOptions } from "./ffi/errors.ts";
