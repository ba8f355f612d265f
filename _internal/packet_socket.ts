// What every packet socket does the same way, whatever engine moves its
// records: argument checks, receive, read() as one record per call, batches,
// options, async iteration, ref/unref, close and dispose, all over the
// RecordEngine a subclass hands to the constructor. Users meet the class only
// as the parent of the socket classes.

import {
  checkBoolean,
  checkBuffer,
  checkInteger,
  checkObject,
  checkOptionalInteger,
  checkSignal,
} from "./checks.ts";
import { getSocketOption, needsFfiBackend, setSocketOption } from "./options.ts";
import type { RecordEngine } from "./record_engine.ts";
import type {
  Message,
  PacketSocket,
  ReceiveManyOptions,
  ReceiveOptions,
  SocketOptionName,
  SocketOptions,
} from "../types.ts";

/** The default and the ceiling of `maxSize`. */
export const DEFAULT_MAX_SIZE = 65536;
const MAX_MAX_SIZE = 1 << 30;
/** The default and the ceiling of receiveMany's `max`. */
const DEFAULT_BATCH = 64;
const MAX_BATCH = 1024;

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

/** Checks read's buffer; the engine's label is formatted only for the error. */
function checkReadBuffer(p: Uint8Array, label: string): void {
  try {
    checkBuffer("read", p);
  } catch {
    checkBuffer(label === "" ? "read" : `read ${label}`, p);
  }
}

/**
 * The shared half of every packet socket: datagram, seqpacket, raw, packet
 * and netlink sockets extend it. It implements receiving (`receive`,
 * `read`, `receiveMany`, async iteration), `write`, options, `ref`/`unref`,
 * `close` and disposal once, over the engine that moves the socket's
 * records, so those behave the same on every socket type; each subclass
 * adds its address, its `send` and what else is its own. Users meet it only
 * as the parent of those classes.
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
  readonly #engine: RecordEngine<A>;

  /**
   * Not for users: each socket class builds its engine and passes it here.
   *
   * @param engine What moves this socket's records.
   * @internal
   */
  constructor(engine: RecordEngine<A>) {
    this.#engine = engine;
  }

  /** The address this socket is bound to. */
  abstract readonly localAddr: A;

  /**
   * Sends `data` as one record to the socket's default destination: the
   * connected peer (the kernel, on a netlink socket). Each class also takes
   * a destination or options of its own.
   *
   * @param data The record.
   * @returns The number of bytes sent.
   * @throws {Deno.errors.NotConnected} When the socket has no destination of its own.
   * @throws {Deno.errors.BadResource} Once the socket is closed.
   *
   * @example Send one record over a pair
   * ```ts
   * import { seqpacketPair } from "@bsd/sockets/seqpacket";
   *
   * const [a, b] = seqpacketPair();
   * console.log(await a.send(new Uint8Array(5))); // 5
   * a.close();
   * b.close();
   * ```
   */
  abstract send(data: Uint8Array): Promise<number>;

  /**
   * Which implementation serves this socket: `"ffi"` (the FFI engine, every
   * type) or `"builtin"` (Deno's own sockets, datagram only).
   */
  get backend(): "builtin" | "ffi" {
    return this.#engine.backend;
  }

  /**
   * The socket's descriptor; `null` on the built-in backend and after
   * `close()`. The socket keeps owning it: pass it on, never close it yourself.
   *
   * @example Look at the descriptor
   * ```ts
   * import { seqpacketPair } from "@bsd/sockets/seqpacket";
   *
   * const [a, b] = seqpacketPair();
   * console.log(typeof a.fd); // "number"
   * a.close();
   * console.log(a.fd); // null
   * b.close();
   * ```
   */
  get fd(): number | null {
    return this.#engine.fd;
  }

  /**
   * Receives one record, whole or cut to `maxSize` (default 65,536) with
   * `truncated: true`. With `peek` (FFI backend) the record stays queued and
   * the next receive returns it again.
   *
   * @param options `maxSize` caps the bytes returned; `signal` stops
   * waiting, and then no record is consumed; `peek` leaves the record queued.
   * @returns The record with its sender, or `null` at end of stream (a
   * seqpacket peer closed) and once this socket is closed.
   * @throws {TypeError} For options of the wrong shape.
   * @throws {RangeError} For a `maxSize` out of range.
   * @throws {Deno.errors.NotSupported} For `peek` on the built-in backend.
   *
   * @example Receive a record longer than the buffer
   * ```ts
   * import { seqpacketPair } from "@bsd/sockets/seqpacket";
   *
   * const [a, b] = seqpacketPair();
   * await a.send(new Uint8Array(100));
   * const first = await b.receive({ maxSize: 10 });
   * console.log(first?.data.length, first?.truncated); // 10 true
   * a.close();
   * b.close();
   * ```
   */
  receive(options?: ReceiveOptions): Promise<Message<A> | null> {
    if (options === undefined) return this.#engine.receive(DEFAULT_MAX_SIZE, undefined, false);
    let checked: { maxSize: number; signal?: AbortSignal; peek: boolean };
    try {
      checked = checkReceiveOptions(options);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#engine.receive(checked.maxSize, checked.signal, checked.peek);
  }

  /**
   * Reads exactly one record into `p`, cut to `p.length` if longer (the rest
   * of that record is discarded). Descriptors that came with it are closed:
   * a `Reader` cannot hand them over, use `receive()` to get them.
   *
   * @param p Where to copy the record: a `Uint8Array` over a fixed-length,
   * non-shared `ArrayBuffer`.
   * @returns The bytes copied (at most `p.length`), or `null` at end of
   * stream and once this socket is closed.
   * @throws {TypeError} For a buffer that is not such a `Uint8Array`.
   *
   * @example Use it as a Reader
   * ```ts
   * import type { Reader } from "@bsd/sockets";
   * import { seqpacketPair } from "@bsd/sockets/seqpacket";
   *
   * const [a, b] = seqpacketPair();
   * await a.write(new TextEncoder().encode("one record"));
   * const r: Reader = b;
   * const buf = new Uint8Array(4);
   * console.log(await r.read(buf)); // 4: the rest of the record is gone
   * a.close();
   * console.log(await r.read(buf)); // null
   * b.close();
   * ```
   */
  read(p: Uint8Array): Promise<number | null> {
    try {
      checkReadBuffer(p, this.#engine.label);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#engine.receiveInto(p, undefined);
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
    return this.#engine.receiveMany(checked.max, checked.maxSize, checked.signal);
  }

  /**
   * Sends `p` as one record to the connected peer, as `send(p)` does.
   *
   * @param p The record.
   * @returns The number of bytes sent.
   * @throws {Deno.errors.NotConnected} When the socket has no peer to send
   * to (an unconnected datagram or raw socket, a cooked packet socket): the
   * answer every socket type gives a send with no destination.
   * @throws {Deno.errors.BadResource} Once the socket is closed.
   *
   * @example Use it as a Writer
   * ```ts
   * import type { Writer } from "@bsd/sockets";
   * import { seqpacketPair } from "@bsd/sockets/seqpacket";
   *
   * const [a, b] = seqpacketPair();
   * const w: Writer = a;
   * console.log(await w.write(new Uint8Array([1, 2, 3]))); // 3
   * a.close();
   * b.close();
   * ```
   */
  write(p: Uint8Array): Promise<number> {
    return this.send(p);
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
    const target = this.#engine.options;
    if (target === null) throw needsFfiBackend("setOption", this.#engine.label);
    setSocketOption(target.socket, target.shape, this.#engine.label, name, value);
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
    const target = this.#engine.options;
    if (target === null) throw needsFfiBackend("getOption", this.#engine.label);
    return getSocketOption(target.socket, target.shape, this.#engine.label, name);
  }

  /**
   * Lets pending operations keep the process alive again (the default),
   * after {@linkcode PacketSocketBase.unref}.
   *
   * @example Undo an unref
   * ```ts
   * import { seqpacketPair } from "@bsd/sockets/seqpacket";
   *
   * const [a, b] = seqpacketPair();
   * b.unref();
   * const pending = b.receive(); // alone, this would not keep the program running
   * b.ref(); // now it does again, so awaiting it is safe
   * a.close();
   * console.log(await pending); // null: the peer closed
   * b.close();
   * ```
   */
  ref(): void {
    this.#engine.ref();
  }

  /**
   * Lets the process exit even while a receive or send is pending, for a
   * socket that should not hold a program open by itself.
   *
   * @example A background socket
   * ```ts
   * import { seqpacketPair } from "@bsd/sockets/seqpacket";
   *
   * const [a, b] = seqpacketPair();
   * b.unref();
   * b.receive().then((m) => console.log(m)); // does not keep the program running
   * a.close();
   * b.close();
   * ```
   */
  unref(): void {
    this.#engine.unref();
  }

  /**
   * Closes the socket: a pending receive resolves `null`, a pending send
   * rejects with `BadResource`, descriptors received but not yet returned
   * are closed. Calling it again does nothing.
   *
   * @example Close twice
   * ```ts
   * import { seqpacketPair } from "@bsd/sockets/seqpacket";
   *
   * const [a, b] = seqpacketPair();
   * a.close();
   * a.close(); // no-op
   * console.log(await b.receive()); // null
   * b.close();
   * ```
   */
  close(): void {
    this.#engine.close();
  }

  /** Yields each record until end of stream or `close()`. */
  async *[Symbol.asyncIterator](): AsyncIterator<Message<A>> {
    for (;;) {
      const message = await this.#engine.receive(DEFAULT_MAX_SIZE, undefined, false);
      if (message === null) return;
      yield message;
    }
  }

  /** Closes the socket, so `using sock = ...` releases it. */
  [Symbol.dispose](): void {
    this.close();
  }
}
