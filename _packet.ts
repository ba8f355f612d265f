// What every packet socket does the same way, whatever moves its records:
// argument checks, read() as one record per call, async iteration, dispose.
// Private: socket classes extend it, users never see it by name.

import { checkBuffer } from "./ffi/buffers.ts";
import { checkBoolean, checkObject, checkOptionalInteger, checkSignal } from "./_checks.ts";
import { checkInteger } from "./ffi/sockaddr.ts";
import { closeFds, type FdSocket } from "./ffi/socket.ts";
import type { Shape } from "./ffi/options.ts";
import { getSocketOption, setSocketOption } from "./_internal/options.ts";
import type {
  Message,
  PacketSocket,
  ReceiveManyOptions,
  ReceiveOptions,
  SocketOptionName,
  SocketOptions,
} from "./types.ts";

/** The default and the ceiling of `maxSize`. */
export const DEFAULT_MAX_SIZE = 65536;
const MAX_MAX_SIZE = 1 << 30;
/** The default and the ceiling of receiveMany's `max`. */
const DEFAULT_BATCH = 64;
const MAX_BATCH = 1024;

/**
 * What moves a packet socket's records in batches: the FFI engine's
 * `FdSocket`, or a built-in engine that offers the same call.
 */
export interface BatchReceiver<A> {
  /**
   * Waits for one record, then adds every record already queued, up to
   * `max`; `null` where a single receive would give `null`.
   */
  receiveMany(max: number, maxSize: number, signal?: AbortSignal): Promise<Message<A>[] | null>;
}

// Kept outside the class so that its public face names no engine type.
const receivers = new WeakMap<object, BatchReceiver<unknown>>();

/**
 * Gives `socket` the engine its receiveMany runs on. A subclass calls it once,
 * in its constructor.
 */
export function attachReceiver<A>(socket: PacketSocketBase<A>, receiver: BatchReceiver<A>): void {
  receivers.set(socket, receiver as BatchReceiver<unknown>);
}

/** The ceiling of every `busyPoll` option, in microseconds. */
const MAX_BUSY_POLL = 10_000;

/**
 * Checks a `busyPoll` option before any system call: an integer number of
 * microseconds from 0 to 10,000, or undefined.
 */
export function checkBusyPoll(call: string, value: unknown): number | undefined {
  return checkOptionalInteger(`${call}: busyPoll (microseconds)`, value, 0, MAX_BUSY_POLL);
}

/** Where a packet socket's options go: its engine socket (null: the built-in backend), its shape, its label. */
export interface OptionTarget {
  socket: FdSocket<unknown> | null;
  shape: Shape;
  label(): string;
}

const optionTargets = new WeakMap<object, OptionTarget>();

/** Gives `socket` what its setOption/getOption act on. A subclass calls it once, in its constructor. */
export function attachOptions<A>(socket: PacketSocketBase<A>, target: OptionTarget): void {
  optionTargets.set(socket, target);
}

function optionTarget(socket: object, call: string): OptionTarget {
  const target = optionTargets.get(socket);
  if (target === undefined) throw new TypeError(`${call}: this socket has no engine attached`);
  return target;
}

/** Checks a receive's options before any system call. */
function checkReceiveOptions(options: ReceiveOptions): {
  maxSize: number;
  signal?: AbortSignal;
  peek: boolean;
} {
  checkObject("receive options", options);
  const { maxSize = DEFAULT_MAX_SIZE, signal } = options;
  return {
    maxSize: checkInteger("receive: maxSize", maxSize, 0, MAX_MAX_SIZE),
    signal: checkSignal("receive", signal),
    peek: checkBoolean("receive: peek", options.peek) ?? false,
  };
}

/** Checks receiveMany's options before any system call. */
function checkReceiveManyOptions(options: ReceiveManyOptions | undefined): {
  max: number;
  maxSize: number;
  signal?: AbortSignal;
} {
  if (options === undefined) return { max: DEFAULT_BATCH, maxSize: DEFAULT_MAX_SIZE };
  checkObject("receiveMany options", options);
  const { max = DEFAULT_BATCH, maxSize = DEFAULT_MAX_SIZE, signal } = options;
  return {
    max: checkInteger("receiveMany: max", max, 1, MAX_BATCH),
    maxSize: checkInteger("receiveMany: maxSize", maxSize, 0, MAX_MAX_SIZE),
    signal: checkSignal("receiveMany", signal),
  };
}

/**
 * Checks a receive's options, then runs `receive` with them; a bad option
 * becomes a rejected promise, as every receive reports its errors.
 */
export function receiveChecked<T>(
  options: ReceiveOptions | undefined,
  receive: (maxSize: number, signal: AbortSignal | undefined, peek: boolean) => Promise<T>,
): Promise<T> {
  if (options === undefined) return receive(DEFAULT_MAX_SIZE, undefined, false);
  let checked: { maxSize: number; signal?: AbortSignal; peek: boolean };
  try {
    checked = checkReceiveOptions(options);
  } catch (err) {
    return Promise.reject(err);
  }
  return receive(checked.maxSize, checked.signal, checked.peek);
}

/**
 * A receive served by `engine` as it stands (or a peek, if asked): on raw,
 * packet and netlink sockets the engine's records hold exactly a message's
 * fields, so they are handed over without a copy.
 */
export function receiveFrom<A>(
  engine: FdSocket<A>,
  options: ReceiveOptions | undefined,
): Promise<Message<A> | null> {
  return receiveChecked(
    options,
    (maxSize, signal, peek) =>
      peek ? engine.peek(maxSize, signal) : engine.receive(maxSize, signal),
  );
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
   * of that record is discarded). Descriptors that came with it are closed:
   * a `Reader` cannot hand them over. Resolves `null` at end of stream or
   * after `close()`.
   */
  async read(p: Uint8Array): Promise<number | null> {
    checkBuffer(p, "read");
    const message = await this.receive({ maxSize: p.length });
    if (message === null) return null;
    closeFds(message.fds);
    p.set(message.data);
    return message.data.length;
  }

  /**
   * Receives a batch of records with one wait: waits for the first record,
   * then returns it with every record already queued, up to `max` (default
   * 64, 1 to 1,024). It never waits for a second record. Each record is
   * whole and cut to `maxSize` (default 65,536) on its own, with
   * `truncated: true`, as {@linkcode PacketSocket.receive} cuts one.
   *
   * @param options `max` caps the records returned, `maxSize` the bytes of
   * each; `signal` aborts the wait, rejecting with its reason, and then no
   * record is consumed.
   * @returns The records in the order they arrived (at least one), or `null`
   * exactly where `receive()` would resolve `null`: at end of stream or
   * once the socket is closed.
   * @throws {TypeError} For options of the wrong shape, or a `max` or
   * `maxSize` that is not an integer.
   * @throws {RangeError} For a `max` outside 1 to 1,024 or a negative `maxSize`.
   *
   * @example Drain what a burst queued, with one await
   * ```ts
   * import { seqpacketPair } from "@bsd/sockets/seqpacket";
   *
   * const [a, b] = seqpacketPair();
   * for (let i = 0; i < 5; i++) await a.send(new Uint8Array([i]));
   * const batch = await b.receiveMany({ max: 16 });
   * console.log(batch?.map((m) => m.data[0])); // [ 0, 1, 2, 3, 4 ]
   * a.close();
   * b.close();
   * ```
   */
  receiveMany(options?: ReceiveManyOptions): Promise<Message<A>[] | null> {
    let checked: { max: number; maxSize: number; signal?: AbortSignal };
    try {
      checked = checkReceiveManyOptions(options);
    } catch (err) {
      return Promise.reject(err);
    }
    const receiver = receivers.get(this) as BatchReceiver<A> | undefined;
    if (receiver === undefined) {
      return Promise.reject(new TypeError("receiveMany: this socket has no engine attached"));
    }
    return receiver.receiveMany(checked.max, checked.maxSize, checked.signal);
  }

  /**
   * Sets a socket option by name (`setsockopt`); {@linkcode SocketOptions}
   * lists the names, their values and the sockets each applies to.
   *
   * @param name The option.
   * @param value Its value.
   * @throws {TypeError} For an unknown name or a value of the wrong type.
   * @throws {RangeError} For a number out of the option's range.
   * @throws {Deno.errors.NotSupported} For an option that does not apply to
   * this socket, or on the built-in backend (open it with `backend: "ffi"`).
   * @throws {Deno.errors.BadResource} Once closed.
   *
   * @example A time to live of 1 for what a UDP socket sends
   * ```ts
   * import { listenDatagram } from "@bsd/sockets/datagram";
   *
   * using sock = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
   * sock.setOption("ttl", 1);
   * console.log(sock.getOption("ttl")); // 1
   * ```
   */
  setOption<K extends SocketOptionName>(name: K, value: SocketOptions[K]): void {
    const t = optionTarget(this, "setOption");
    setSocketOption(t.socket, t.shape, t.label(), name, value);
  }

  /**
   * Reads a socket option by name (`getsockopt`), as the kernel holds it (a
   * buffer size reads back doubled: the kernel counts its bookkeeping).
   *
   * @param name The option.
   * @returns Its value.
   * @throws {TypeError} For an unknown name.
   * @throws {Deno.errors.NotSupported} For an option that does not apply to
   * this socket (or cannot be read back on it), or on the built-in backend.
   * @throws {Deno.errors.BadResource} Once closed.
   *
   * @example The receive buffer a seqpacket socket has
   * ```ts
   * import { seqpacketPair } from "@bsd/sockets/seqpacket";
   *
   * const [a, b] = seqpacketPair();
   * console.log(a.getOption("receiveBufferSize") > 0); // true
   * a.close();
   * b.close();
   * ```
   */
  getOption<K extends SocketOptionName>(name: K): SocketOptions[K] {
    const t = optionTarget(this, "getOption");
    return getSocketOption(t.socket, t.shape, t.label(), name);
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
