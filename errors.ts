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
   * @param errno The errno number.
   * @param code The errno name.
   * @param syscall The failed system call.
   */
  constructor(message: string, errno: number, code: string, syscall: string) {
    super(message);
    this.name = "SocketError";
    this.errno = errno;
    this.code = code;
    this.syscall = syscall;
  }
}
