// What every packet socket does the same way, whatever moves its records:
// argument checks, read() as one record per call, async iteration, dispose.
// Private: socket classes extend it, users never see it by name.

import { checkBuffer } from "./ffi/buffers.ts";
import { checkObject, checkOptionalInteger, checkSignal } from "./_checks.ts";
import { checkInteger } from "./ffi/sockaddr.ts";
import type { Message, PacketSocket, ReceiveOptions } from "./types.ts";

/** The default and the ceiling of `maxSize`. */
export const DEFAULT_MAX_SIZE = 65536;
const MAX_MAX_SIZE = 1 << 30;

/** The ceiling of every `busyPoll` option, in microseconds. */
const MAX_BUSY_POLL = 10_000;

/**
 * Checks a `busyPoll` option before any system call: an integer number of
 * microseconds from 0 to 10,000, or undefined.
 */
export function checkBusyPoll(call: string, value: unknown): number | undefined {
  return checkOptionalInteger(`${call}: busyPoll (microseconds)`, value, 0, MAX_BUSY_POLL);
}

/** Checks a receive's options before any system call. */
function checkReceiveOptions(options: ReceiveOptions): {
  maxSize: number;
  signal?: AbortSignal;
} {
  checkObject("receive options", options);
  const { maxSize = DEFAULT_MAX_SIZE, signal } = options;
  return {
    maxSize: checkInteger("receive: maxSize", maxSize, 0, MAX_MAX_SIZE),
    signal: checkSignal("receive", signal),
  };
}

/**
 * Checks a receive's options, then runs `receive` with them; a bad option
 * becomes a rejected promise, as every receive reports its errors.
 */
export function receiveChecked<T>(
  options: ReceiveOptions | undefined,
  receive: (maxSize: number, signal: AbortSignal | undefined) => Promise<T>,
): Promise<T> {
  if (options === undefined) return receive(DEFAULT_MAX_SIZE, undefined);
  let checked: { maxSize: number; signal?: AbortSignal };
  try {
    checked = checkReceiveOptions(options);
  } catch (err) {
    return Promise.reject(err);
  }
  return receive(checked.maxSize, checked.signal);
}

/**
 * The shared half of every packet socket: datagram, seqpacket, raw and
 * packet sockets extend it. Subclasses provide `receive`, `write`, `close` and
 * `localAddr`; this class derives `read`, async iteration and disposal from
 * them, so those behave the same on every socket type. Users meet it only as
 * the parent of those classes.
 *
 * @example Code written against the base works with every packet socket
 * ```ts
 * import type { PacketSocketBase } from "@bsd/sockets";
 *
 * async function firstRecord<A>(sock: PacketSocketBase<A>): Promise<Uint8Array | null> {
 *   const buf = new Uint8Array(2048);
 *   const n = await sock.read(buf);
 *   return n === null ? null : buf.subarray(0, n);
 * }
 * ```
 */
export abstract class PacketSocketBase<A> implements PacketSocket<A> {
  /** The address this socket is bound to. */
  abstract readonly localAddr: A;

  /** Receives one record; see {@linkcode PacketSocket.receive}. */
  abstract receive(options?: ReceiveOptions): Promise<Message<A> | null>;

  /** Sends `p` as one record to the connected peer. */
  abstract write(p: Uint8Array): Promise<number>;

  /** Closes the socket; calling it again does nothing. */
  abstract close(): void;

  /**
   * Reads exactly one record into `p`, cut to `p.length` if longer (the rest
   * of that record is discarded). Resolves `null` at end of stream or after
   * `close()`.
   */
  async read(p: Uint8Array): Promise<number | null> {
    checkBuffer(p, "read");
    const message = await this.receive({ maxSize: p.length });
    if (message === null) return null;
    p.set(message.data);
    return message.data.length;
  }

  /** Yields each record until end of stream or `close()`. */
  async *[Symbol.asyncIterator](): AsyncIterator<Message<A>> {
    for (;;) {
      const message = await this.receive();
      if (message === null) return;
      yield message;
    }
  }

  /** Closes the socket, so `using sock = ...` releases it. */
  [Symbol.dispose](): void {
    this.close();
  }
}
