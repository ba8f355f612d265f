/**
 * Sequenced-packet sockets (`SOCK_SEQPACKET`): Unix-domain connections that
 * keep record boundaries, carry file descriptors and know who the peer is.
 *
 * One `send` is one record and one `receive` returns one record, whole or
 * marked `truncated`; a record is never split or merged with the next. An
 * empty record is a real record (`data.length === 0`), while `null` means the
 * peer closed its side. Records can carry up to 253 open descriptors, and
 * {@linkcode SeqpacketConn.peerCredentials} tells the peer's process id, user
 * and group, as the kernel vouches for them.
 *
 * Linux only. Requires `--allow-ffi`; a filesystem path also needs
 * `--allow-read` and `--allow-write` of the path and
 * `--allow-net=unix:<path>` (or `--allow-net`), an abstract name (leading
 * `"\0"`) needs `--allow-net`. {@linkcode seqpacketPair} needs only
 * `--allow-ffi`.
 *
 * @example Records keep their boundaries, an empty one included
 * ```ts
 * import { seqpacketPair } from "@bsd/sockets/seqpacket";
 *
 * const [a, b] = seqpacketPair();
 * await a.send(new TextEncoder().encode("hello"));
 * await a.send(new Uint8Array(0));
 * a.close();
 * for await (const message of b) {
 *   console.log(message.data.length); // 5, then 0
 * }
 * b.close(); // the loop ended at end of stream
 * ```
 *
 * @module
 */

import {
  type OwnedSocketFile,
  ownSocketFile,
  removeOwnSocketFile,
} from "./_internal/socket_file.ts";
import { checkBusyPoll, PacketSocketBase } from "./_internal/packet_socket.ts";
import { FfiRecords } from "./_internal/ffi_records.ts";
import {
  checkBuffer,
  checkFds,
  checkObject,
  checkOptionalInteger,
  checkSignal,
  checkUnixPath,
} from "./_internal/checks.ts";
import { describeAddress } from "./ffi/errors.ts";
import { applyBufferSizes, type BufferSizes, checkBufferSizes } from "./_internal/buffer_sizes.ts";
import { peerPermit, type Permit, requirePermit, requireUnix } from "./ffi/permissions.ts";
import { decodeUnix, encodeUnix } from "./ffi/sockaddr.ts";
import { setOptionOn } from "./ffi/options.ts";
import { closeFds as closeEngineFds, FdSocket, type FdSocketOptions } from "./ffi/socket.ts";
import { registerAdopter } from "./_internal/adopt.ts";
import { AcceptLoop } from "./_internal/accept_loop.ts";
import type { Engine } from "./_internal/engine.ts";
import { FfiListenerEngine } from "./_internal/ffi_listener.ts";
import type {
  Closer,
  Message,
  PeerCredentials,
  ReceiveManyOptions,
  ReceiveOptions,
  SocketOptionName,
  SocketOptions,
  UnixAddr,
} from "./types.ts";
import { getSocketOption, setSocketOption } from "./_internal/options.ts";

// Declared once, in types.ts; still exported here, where it was first.
export type { PeerCredentials } from "./types.ts";

/**
 * One record received on a {@linkcode SeqpacketConn}.
 *
 * Descriptors in `fds` belong to the receiver from then on: close them with
 * {@linkcode closeFds} when done, or pass them on with
 * {@linkcode SeqpacketConn.send}.
 *
 * @example Tell what came with a record
 * ```ts
 * import type { SeqpacketMessage } from "@bsd/sockets/seqpacket";
 *
 * function describe(m: SeqpacketMessage): string {
 *   const fds = m.fds?.length ?? 0;
 *   const lost = m.controlTruncated ? ", some descriptors were lost" : "";
 *   return `${m.data.length} B with ${fds} descriptors${lost}`;
 * }
 * ```
 */
export interface SeqpacketMessage extends Message<UnixAddr> {
  /** Always `null`: a seqpacket socket is connected, its peer is `remoteAddr`. */
  from: null;
  /**
   * `true` when the kernel could not deliver every descriptor sent with this
   * record (`MSG_CTRUNC`), typically because this process reached its limit
   * of open files. The kernel closed the ones it could not deliver; those
   * in `fds` were delivered and are the receiver's to close.
   */
  controlTruncated?: boolean;
  /** The sending process's credentials, which the kernel attaches to every record. */
  credentials?: PeerCredentials;
}

/**
 * Options for {@linkcode SeqpacketConn.send}.
 *
 * @example Send a descriptor with a record
 * ```ts
 * import type { SeqpacketSendOptions } from "@bsd/sockets/seqpacket";
 *
 * const options: SeqpacketSendOptions = { fds: [1], signal: AbortSignal.timeout(1000) };
 * ```
 */
export interface SeqpacketSendOptions {
  /**
   * Open descriptors to pass with the record (`SCM_RIGHTS`), at most 253.
   * The receiver gets its own copies; these stay open here.
   */
  fds?: readonly number[];
  /**
   * Stops waiting for room in the peer's queue; the promise then rejects
   * with `signal.reason` and nothing was sent.
   */
  signal?: AbortSignal;
}

/**
 * Options every seqpacket socket takes.
 *
 * @example Room for records up to about 1 MiB
 * ```ts
 * import type { SeqpacketSocketOptions } from "@bsd/sockets/seqpacket";
 *
 * const options: SeqpacketSocketOptions = { sendBufferSize: 1 << 20 };
 * ```
 *
 * @example Spin up to 50 µs for each reply before waiting for it
 * ```ts
 * import { seqpacketPair } from "@bsd/sockets/seqpacket";
 *
 * const [client, server] = seqpacketPair({ busyPoll: 50 });
 * await client.send(new Uint8Array([1]));
 * console.log((await server.receive())?.data); // Uint8Array(1) [ 1 ]
 * client.close();
 * server.close();
 * ```
 */
export interface SeqpacketSocketOptions {
  /**
   * The send buffer size in bytes (`SO_SNDBUF`). It also bounds the largest
   * record the socket can send: Linux doubles the value for its bookkeeping
   * and accepts a record of up to that doubled size minus 32 bytes. Above
   * `net.core.wmem_max` it needs `CAP_NET_ADMIN` (`SO_SNDBUFFORCE`);
   * without it the kernel caps the value. The default (Linux's
   * `net.core.wmem_default`, usually 212,992) allows records of about 208 KiB.
   */
  sendBufferSize?: number;
  /**
   * The receive buffer size in bytes (`SO_RCVBUF`; past
   * `net.core.rmem_max` only with `CAP_NET_ADMIN`, `SO_RCVBUFFORCE`).
   */
  receiveBufferSize?: number;
  /**
   * Microseconds a receive that finds no record keeps trying before it
   * waits (Linux's `SO_BUSY_POLL` idea, done here on the JS thread), from 0
   * to 10,000; default 0. A waiting receive is woken through one of Deno's
   * thread-pool threads, a hand-off that costs more than the reply itself
   * on loopback; spinning answers a reply that comes within the budget as
   * soon as it lands. The price: while it spins (at most this long per receive)
   * the JS thread runs nothing else, no timers and no other I/O. Between
   * tries it yields its CPU, so a peer on the same CPU still runs. For
   * request-reply traffic where latency matters more than CPU time; a few
   * tens of microseconds is typical.
   */
  busyPoll?: number;
}

/**
 * Options for {@linkcode listenSeqpacket}.
 *
 * @example A socket file in a temporary directory
 * ```ts
 * import type { ListenSeqpacketOptions } from "@bsd/sockets/seqpacket";
 *
 * const options: ListenSeqpacketOptions = { path: `${Deno.makeTempDirSync()}/app.sock` };
 * ```
 */
export interface ListenSeqpacketOptions extends SeqpacketSocketOptions {
  /**
   * A filesystem path of at most 107 bytes, or a Linux abstract name: a
   * leading `"\0"`, at most 108 bytes, each character one byte
   * (U+0000–U+00FF), further `"\0"` bytes allowed. Not `""`.
   */
  path: string;
  /**
   * How many connections may wait for `accept()`; default 4096 (the kernel caps it at
   * `net.core.somaxconn`).
   */
  backlog?: number;
}

/**
 * Options for {@linkcode connectSeqpacket}.
 *
 * @example Give up after two seconds
 * ```ts
 * import type { ConnectSeqpacketOptions } from "@bsd/sockets/seqpacket";
 *
 * const options: ConnectSeqpacketOptions = {
 *   path: "/run/app.sock",
 *   signal: AbortSignal.timeout(2000),
 * };
 * ```
 */
export interface ConnectSeqpacketOptions extends SeqpacketSocketOptions {
  /** The listener's path or abstract name, as for {@linkcode ListenSeqpacketOptions.path}. */
  path: string;
  /**
   * Abandons the attempt (which waits only while the listener's backlog is
   * full); the promise then rejects with `signal.reason`.
   */
  signal?: AbortSignal;
}

/**
 * Options for {@linkcode SeqpacketListener.accept}.
 *
 * @example Wait at most one second for a client
 * ```ts
 * import type { SeqpacketAcceptOptions } from "@bsd/sockets/seqpacket";
 *
 * const options: SeqpacketAcceptOptions = { signal: AbortSignal.timeout(1000) };
 * ```
 */
export interface SeqpacketAcceptOptions {
  /**
   * Stops waiting; the promise then rejects with `signal.reason`. No
   * connection is lost: one that arrives later goes to the next `accept()`.
   */
  signal?: AbortSignal;
}

const UNNAMED: UnixAddr = Object.freeze({ transport: "seqpacket", path: "" });

function decodeAddr(name: Uint8Array, length: number): UnixAddr {
  return decodeUnix(name, length, "seqpacket");
}

// SO_PASSCRED on every socket: the kernel then attaches credentials to every
// record, so a 0-byte read that has none is end of stream, not an empty record.
function engineOptions(label: string): FdSocketOptions<UnixAddr> {
  return { label, zero: "eof-without-credentials", unix: true };
}

/** The checked {@linkcode SeqpacketSocketOptions}. */
interface Tuning {
  bufferSizes: BufferSizes;
  busyPoll?: number;
}

function checkTuning(call: string, options: SeqpacketSocketOptions): Tuning {
  return {
    bufferSizes: checkBufferSizes(call, options),
    busyPoll: checkBusyPoll(call, options.busyPoll),
  };
}

/** Applies what a connection's options ask for; `passCredentials` as well unless inherited. */
function prepare(socket: FdSocket<UnixAddr>, tuning: Tuning, passCredentials = true): void {
  if (passCredentials) socket.setOption("passCredentials", true);
  applyBufferSizes(socket, tuning.bufferSizes);
  if (tuning.busyPoll !== undefined) socket.setBusyPoll(tuning.busyPoll);
}

function checkPath(call: string, path: unknown): Uint8Array {
  if (path === "") {
    throw new TypeError(`${call}: path must not be empty: an unnamed socket has no address`);
  }
  checkUnixPath(call, path);
  return encodeUnix(path as string);
}

function checkSize(call: string, what: string, value: unknown, max: number): number | undefined {
  return checkOptionalInteger(`${call}: ${what}`, value, 1, max);
}

/**
 * A connected sequenced-packet socket: one end of a connection made by
 * {@linkcode connectSeqpacket}, {@linkcode SeqpacketListener.accept} or
 * {@linkcode seqpacketPair}.
 *
 * It is a {@linkcode PacketSocket}: `receive()` and async iteration give
 * whole records with their descriptors, `read(p)` copies one record into
 * `p`, `write(p)` and {@linkcode SeqpacketConn.send} send one. When the
 * peer's queue is full, sending waits (it never drops a record and never
 * spins).
 *
 * After `close()`: `read`/`receive` resolve `null` (a pending one too),
 * `send`/`write`/`closeWrite` reject with `Deno.errors.BadResource` (a
 * pending `send` too), and the peer reads `null`.
 *
 * @example Ask and answer over a pair
 * ```ts
 * import { seqpacketPair } from "@bsd/sockets/seqpacket";
 *
 * const [client, server] = seqpacketPair();
 * await client.send(new TextEncoder().encode("ping"));
 * const request = await server.receive();
 * await server.send(new TextEncoder().encode(`pong to ${request?.data.length} B`));
 * const reply = await client.receive();
 * console.log(new TextDecoder().decode(reply?.data)); // "pong to 4 B"
 * client.close();
 * server.close();
 * ```
 */
export class SeqpacketConn extends PacketSocketBase<UnixAddr> {
  readonly #socket: FdSocket<UnixAddr>;
  readonly #localAddr: UnixAddr;
  readonly #remoteAddr: UnixAddr;
  readonly #sendWhat: string;
  readonly #permit: Permit;

  /**
   * Not for users: {@linkcode connectSeqpacket}, {@linkcode seqpacketPair},
   * {@linkcode SeqpacketListener.accept} and `fromFd` build connections.
   *
   * @param socket The connected socket, with `SO_PASSCRED` on; owned from then on.
   * @param local The address of this end.
   * @param remote The address of the other end.
   * @internal
   */
  constructor(socket: FdSocket<UnixAddr>, local: UnixAddr, remote: UnixAddr) {
    super(new FfiRecords(socket, { family: "unix", kind: "seqpacket" }));
    this.#socket = socket;
    this.#localAddr = local;
    this.#remoteAddr = remote;
    this.#permit = peerPermit(remote);
    this.#sendWhat = `send ${socket.label}`;
  }

  /**
   * The address of this end: the listener's path on an accepted connection,
   * `""` (unnamed) on a client and on either end of a pair.
   */
  get localAddr(): UnixAddr {
    return this.#localAddr;
  }

  /**
   * The address of the other end: the path that was connected to on a
   * client, `""` (unnamed) on an accepted connection from an unnamed client
   * and on either end of a pair.
   */
  get remoteAddr(): UnixAddr {
    return this.#remoteAddr;
  }

  /**
   * Sends `data` as one record, with descriptors if `fds` is given.
   *
   * Waits while the peer's queue is full. The record goes whole or not at
   * all: one larger than the send buffer allows is an error naming its size
   * (see {@linkcode SeqpacketSocketOptions.sendBufferSize}).
   *
   * @param data The record, possibly empty: a `Uint8Array` over a
   * fixed-length, non-shared `ArrayBuffer`. It must not change until the
   * promise settles.
   * @param options Descriptors to pass and a signal to stop waiting.
   * @returns The number of bytes sent: `data.length`.
   * @throws {TypeError} For a buffer that is not such a `Uint8Array`, or a
   * descriptor that is not an integer.
   * @throws {RangeError} For more than 253 descriptors, or a negative one.
   * @throws {Deno.errors.BadResource} When this socket is or gets closed, or
   * a descriptor in `fds` is not open.
   * @throws {Deno.errors.BrokenPipe} When the peer has closed.
   * @throws {Deno.errors.NotCapable} When a permission for the peer's path
   * (as {@linkcode connectSeqpacket} asks) was revoked since the connection
   * was made: a revocation takes effect on the next send.
   * @throws {SocketError} With code `"EMSGSIZE"` for a record over the limit.
   *
   * @example Pass standard output to the other end
   * ```ts
   * import { closeFds, seqpacketPair } from "@bsd/sockets/seqpacket";
   *
   * const [a, b] = seqpacketPair();
   * await a.send(new TextEncoder().encode("my stdout"), { fds: [1] });
   * const message = await b.receive();
   * console.log(message?.fds?.length); // 1: a new descriptor for the same stdout
   * closeFds(message?.fds ?? []);
   * a.close();
   * b.close();
   * ```
   */
  send(data: Uint8Array, options?: SeqpacketSendOptions): Promise<number> {
    let checked: { fds?: number[]; signal?: AbortSignal } | undefined;
    try {
      checkBuffer(this.#sendWhat, data);
      if (options !== undefined) {
        checkObject(`${this.#sendWhat}: options`, options);
        checked = {
          fds: checkFds(this.#sendWhat, options.fds),
          signal: checkSignal(this.#sendWhat, options.signal),
        };
      }
      requirePermit(this.#permit);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#socket.send(data, null, checked);
  }

  /**
   * Receives one record.
   *
   * @param options `maxSize` (default 65,536) caps the bytes returned: a
   * longer record comes back cut with `truncated: true`, and the rest of it
   * is discarded. `signal` stops waiting; no record is consumed by an
   * aborted receive.
   * @returns The record, or `null` at end of stream (the peer closed or
   * called `closeWrite()`) and once this socket is closed.
   * @throws {TypeError} For a `maxSize` that is not an integer or a `signal`
   * that is not an `AbortSignal`.
   * @throws {RangeError} For a negative `maxSize`.
   *
   * @example Receive a record longer than the buffer
   * ```ts
   * import { seqpacketPair } from "@bsd/sockets/seqpacket";
   *
   * const [a, b] = seqpacketPair();
   * await a.send(new Uint8Array(100));
   * await a.send(new Uint8Array(3));
   * const first = await b.receive({ maxSize: 10 });
   * console.log(first?.data.length, first?.truncated); // 10 true
   * const second = await b.receive({ maxSize: 10 });
   * console.log(second?.data.length, second?.truncated); // 3 false
   * a.close();
   * b.close();
   * ```
   */
  override receive(options?: ReceiveOptions): Promise<SeqpacketMessage | null> {
    return super.receive(options) as Promise<SeqpacketMessage | null>;
  }

  /**
   * Receives a batch of records with one wait, as
   * {@linkcode PacketSocketBase.receiveMany} does, typed as this socket's
   * records: each with its descriptors and the sender's credentials.
   *
   * @param options `max` records (default 64, 1 to 1,024) of at most
   * `maxSize` bytes each; `signal` aborts the wait, and then consumes nothing.
   * @returns The records queued now (at least one), or `null` at end of
   * stream and once this socket is closed.
   * @throws {TypeError} For options of the wrong shape.
   * @throws {RangeError} For a `max` outside 1 to 1,024 or a negative `maxSize`.
   *
   * @example Every record queued, with one await
   * ```ts
   * import { seqpacketPair } from "@bsd/sockets/seqpacket";
   *
   * const [a, b] = seqpacketPair();
   * await a.send(new Uint8Array(1));
   * await a.send(new Uint8Array(2));
   * const batch = await b.receiveMany();
   * console.log(batch?.map((m) => m.data.length)); // [ 1, 2 ]
   * console.log(batch?.[0].credentials?.pid === Deno.pid); // true
   * a.close();
   * b.close();
   * ```
   */
  override receiveMany(options?: ReceiveManyOptions): Promise<SeqpacketMessage[] | null> {
    return super.receiveMany(options) as Promise<SeqpacketMessage[] | null>;
  }

  /**
   * Half-closes the connection: the peer reads `null` once it has received
   * every record sent before, while this end can still receive.
   *
   * @returns A promise that resolves once the kernel has been told.
   * @throws {Deno.errors.BadResource} When this socket is closed.
   *
   * @example Say "no more" and still read the answer
   * ```ts
   * import { seqpacketPair } from "@bsd/sockets/seqpacket";
   *
   * const [a, b] = seqpacketPair();
   * await a.send(new TextEncoder().encode("last one"));
   * await a.closeWrite();
   * console.log((await b.receive())?.data.length); // 8
   * console.log(await b.receive()); // null
   * await b.send(new TextEncoder().encode("ok"));
   * console.log((await a.receive())?.data.length); // 2
   * a.close();
   * b.close();
   * ```
   */
  closeWrite(): Promise<void> {
    try {
      this.#socket.shutdown("write");
    } catch (err) {
      return Promise.reject(err);
    }
    return Promise.resolve();
  }

  /**
   * The credentials of the peer process as the kernel recorded them when
   * the connection was made (`SO_PEERCRED`): for a pair, this process.
   *
   * @returns The peer's pid, uid and gid.
   * @throws {Deno.errors.BadResource} When this socket is closed.
   *
   * @example Check who is at the other end
   * ```ts
   * import { seqpacketPair } from "@bsd/sockets/seqpacket";
   *
   * const [a, b] = seqpacketPair();
   * console.log(a.peerCredentials().pid === Deno.pid); // true
   * a.close();
   * b.close();
   * ```
   */
  peerCredentials(): PeerCredentials {
    return this.#socket.getOption("peerCredentials");
  }
}

/**
 * The engine of a listening socket on `addr`: each accepted connection gets
 * what `tuning` asks (SO_PASSCRED came with it from the listener).
 */
function listenerEngine(
  socket: FdSocket<UnixAddr>,
  addr: UnixAddr,
  tuning: Tuning,
  file: OwnedSocketFile | null,
): FfiListenerEngine<UnixAddr, SeqpacketConn> {
  return new FfiListenerEngine(socket, addr, file, (fd) => {
    const conn = new FdSocket<UnixAddr>(fd, engineOptions(socket.label));
    try {
      prepare(conn, tuning, false);
      return new SeqpacketConn(conn, addr, conn.peerAddress(decodeAddr));
    } catch (err) {
      conn.close();
      throw err;
    }
  });
}

/**
 * A listening sequenced-packet socket, from {@linkcode listenSeqpacket}.
 *
 * Accepts connections with {@linkcode SeqpacketListener.accept} or by async
 * iteration, which ends without throwing once the listener is closed. A
 * listener on a filesystem path removes its socket file when it closes, but
 * only if the file at that path is still the one it created (same device
 * and inode).
 *
 * @example Serve connections until closed
 * ```ts
 * import { connectSeqpacket, listenSeqpacket } from "@bsd/sockets/seqpacket";
 *
 * const listener = listenSeqpacket({ path: `${Deno.makeTempDirSync()}/echo.sock` });
 * const server = (async () => {
 *   for await (const conn of listener) {
 *     for await (const message of conn) await conn.send(message.data);
 *     conn.close();
 *   }
 * })();
 * using client = await connectSeqpacket({ path: listener.addr.path });
 * await client.send(new TextEncoder().encode("echo me"));
 * console.log((await client.receive())?.data.length); // 7
 * client.close();
 * listener.close();
 * await server; // the loop ends without an error
 * ```
 */
export class SeqpacketListener implements AsyncIterable<SeqpacketConn>, Closer, Disposable {
  readonly #engine: FfiListenerEngine<UnixAddr, SeqpacketConn>;
  readonly #loop: AcceptLoop<SeqpacketConn, SeqpacketConn>;

  /**
   * Not for users: {@linkcode listenSeqpacket} and `fromFd` make listeners,
   * from engines only this package can build.
   *
   * @param engine The listening socket's engine.
   * @throws {TypeError} When `engine` is not a seqpacket listener's.
   * @internal
   */
  constructor(engine: Engine<"listener">) {
    if (!(engine instanceof FfiListenerEngine)) {
      throw new TypeError("SeqpacketListener: not a seqpacket listener's engine");
    }
    this.#engine = engine;
    this.#loop = new AcceptLoop(engine, (conn) => conn, engine.socket.label);
  }

  /** Which engine serves this socket: always `"ffi"` (seqpacket has no built-in). */
  get backend(): "ffi" {
    return "ffi";
  }

  /**
   * The listening descriptor, `null` after `close()`. The listener keeps
   * owning it: pass it on (to hand the listener to another process), never
   * close it yourself.
   *
   * @example Look at the descriptor
   * ```ts
   * import { listenSeqpacket } from "@bsd/sockets/seqpacket";
   *
   * using listener = listenSeqpacket({ path: `\0fd-example-${Deno.pid}` });
   * console.log(typeof listener.fd); // "number"
   * ```
   */
  get fd(): number | null {
    return this.#engine.fd;
  }

  /**
   * Sets a socket option by name (`setsockopt`); {@linkcode SocketOptions}
   * lists the names, their values and the sockets each applies to.
   *
   * @param name The option.
   * @param value Its value.
   * @throws {TypeError} For an unknown name or a value of the wrong type.
   * @throws {RangeError} For a number out of the option's range.
   * @throws {Deno.errors.NotSupported} For an option that does not apply to this socket.
   * @throws {Deno.errors.BadResource} Once closed.
   *
   * @example A bigger send buffer
   * ```ts
   * import type { SeqpacketListener } from "@bsd/sockets/seqpacket";
   *
   * function tune(sock: SeqpacketListener): void {
   *   sock.setOption("sendBufferSize", 1 << 20);
   * }
   * ```
   */
  setOption<K extends SocketOptionName>(name: K, value: SocketOptions[K]): void {
    const { socket } = this.#engine;
    setSocketOption(socket, { family: "unix", kind: "seqpacket" }, socket.label, name, value);
  }

  /**
   * Reads a socket option by name (`getsockopt`), as the kernel holds it
   * (a buffer size reads back doubled: the kernel counts its bookkeeping).
   *
   * @param name The option.
   * @returns Its value.
   * @throws {TypeError} For an unknown name.
   * @throws {Deno.errors.NotSupported} For an option that does not apply to this socket.
   * @throws {Deno.errors.BadResource} Once closed.
   *
   * @example The receive buffer the kernel holds
   * ```ts
   * import type { SeqpacketListener } from "@bsd/sockets/seqpacket";
   *
   * function show(sock: SeqpacketListener): void {
   *   console.log(sock.getOption("receiveBufferSize"));
   * }
   * ```
   */
  getOption<K extends SocketOptionName>(name: K): SocketOptions[K] {
    const { socket } = this.#engine;
    return getSocketOption(socket, { family: "unix", kind: "seqpacket" }, socket.label, name);
  }

  /** The path or abstract name this listener is bound to, exactly as given. */
  get addr(): UnixAddr {
    return this.#engine.addr;
  }

  /**
   * Waits for the next connection.
   *
   * Accepts may overlap: each connection goes to one caller, oldest first.
   * Records a client sends before it is accepted wait in its queue, with
   * their boundaries (an empty one too).
   *
   * @param options `signal` stops waiting; the promise then rejects with
   * `signal.reason`, and a connection that arrives afterwards goes to the
   * next `accept()`.
   * @returns The accepted connection.
   * @throws {Deno.errors.BadResource} When the listener is or gets closed.
   *
   * @example Accept with a timeout
   * ```ts
   * import { listenSeqpacket } from "@bsd/sockets/seqpacket";
   *
   * using listener = listenSeqpacket({ path: `${Deno.makeTempDirSync()}/idle.sock` });
   * try {
   *   using conn = await listener.accept({ signal: AbortSignal.timeout(10) });
   *   console.log("accepted", conn.peerCredentials());
   * } catch (err) {
   *   console.log((err as Error).name); // "TimeoutError": nobody connected
   * }
   * ```
   */
  accept(options?: SeqpacketAcceptOptions): Promise<SeqpacketConn> {
    let signal: AbortSignal | undefined;
    try {
      if (options !== undefined) {
        checkObject("accept: options", options);
        signal = checkSignal("accept", options.signal);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#loop.accept(signal);
  }

  /**
   * Yields each accepted connection; ends, without throwing, once the
   * listener is closed.
   *
   * @returns An async iterator of connections.
   * @throws {Error} An accept failure other than the listener closing (for
   * example `EMFILE`), with the call and the address in its message.
   *
   * @example Count connections until closed
   * ```ts
   * import type { SeqpacketListener } from "@bsd/sockets/seqpacket";
   *
   * async function serveAll(listener: SeqpacketListener): Promise<number> {
   *   let n = 0;
   *   for await (const conn of listener) {
   *     n++;
   *     conn.close();
   *   }
   *   return n;
   * }
   * ```
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<SeqpacketConn> {
    return this.#loop.connections();
  }

  /**
   * Stops listening. Pending `accept()` calls reject with `BadResource`,
   * iteration ends, and clients not yet accepted read `null`. A listener on
   * a filesystem path removes its socket file, unless the file there is no
   * longer the one it created. Connections already accepted stay open.
   * Calling it again does nothing.
   *
   * @example Close removes the socket file
   * ```ts
   * import { listenSeqpacket } from "@bsd/sockets/seqpacket";
   *
   * const path = `${Deno.makeTempDirSync()}/gone.sock`;
   * const listener = listenSeqpacket({ path });
   * console.log(Deno.lstatSync(path).isSocket); // true
   * listener.close();
   * try {
   *   Deno.lstatSync(path);
   * } catch (err) {
   *   console.log(err instanceof Deno.errors.NotFound); // true: the file is gone
   * }
   * ```
   */
  close(): void {
    this.#loop.close();
  }

  /** Closes the listener, so that `using listener = ...` closes it at the end of the scope. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Lets a pending `accept()` keep the process alive again (the default),
   * after {@linkcode SeqpacketListener.unref}.
   *
   * @example Undo an unref
   * ```ts
   * import type { SeqpacketListener } from "@bsd/sockets/seqpacket";
   *
   * function keepServing(listener: SeqpacketListener): void {
   *   listener.ref();
   * }
   * ```
   */
  ref(): void {
    this.#loop.ref();
  }

  /**
   * Stops a pending `accept()` from keeping the process alive, for a
   * listener that should not hold a program open by itself.
   *
   * @example A background listener
   * ```ts
   * import type { SeqpacketListener } from "@bsd/sockets/seqpacket";
   *
   * function background(listener: SeqpacketListener): void {
   *   listener.unref();
   * }
   * ```
   */
  unref(): void {
    this.#loop.unref();
  }
}

/**
 * Listens for sequenced-packet connections on a Unix path or abstract name.
 *
 * Requires `--allow-ffi`; for a filesystem path also `--allow-read` and
 * `--allow-write` of the path and `--allow-net=unix:<path>` (or
 * `--allow-net`); for an abstract name (leading `"\0"`), `--allow-net`.
 * A path that already exists, even a stale socket file, is `AddrInUse` and
 * is left untouched.
 *
 * @param options Where to listen, and the send buffer size for accepted
 * connections.
 * @returns The listener.
 * @throws {TypeError} For a wrong shape, an empty path or a NUL byte in a
 * filesystem path.
 * @throws {RangeError} For a path over 107 bytes (108 for an abstract name).
 * @throws {Deno.errors.AddrInUse} When the address is taken.
 * @throws {Deno.errors.NotFound} When the directory does not exist.
 * @throws {Deno.errors.NotCapable} Without the permissions above.
 *
 * @example An abstract name, and a client that connects to it
 * ```ts
 * import { connectSeqpacket, listenSeqpacket } from "@bsd/sockets/seqpacket";
 *
 * using listener = listenSeqpacket({ path: `\0bsd-sockets-doc-${Deno.pid}` });
 * using client = await connectSeqpacket({ path: listener.addr.path });
 * using conn = await listener.accept();
 * console.log(conn.peerCredentials().pid === Deno.pid); // true
 * ```
 */
export function listenSeqpacket(options: ListenSeqpacketOptions): SeqpacketListener {
  const call = "listenSeqpacket";
  checkObject(`${call}: options`, options);
  const { path } = options;
  const address = checkPath(call, path);
  const tuning = checkTuning(call, options);
  const backlog = checkSize(call, "backlog", options.backlog, 65535) ?? 4096;
  requireUnix(path);
  const label = describeAddress({ path });
  const socket = FdSocket.open<UnixAddr>("unix", "seqpacket", 0, engineOptions(label));
  let file: OwnedSocketFile | null = null;
  try {
    // Before listen(), so every accepted socket is born with SO_PASSCRED
    // and a client's records sent before accept() carry credentials.
    socket.setOption("passCredentials", true);
    socket.bind(address);
    file = ownSocketFile(path);
    socket.listen(backlog);
  } catch (err) {
    removeOwnSocketFile(file);
    socket.close();
    throw err;
  }
  const addr: UnixAddr = { transport: "seqpacket", path };
  return new SeqpacketListener(listenerEngine(socket, addr, tuning, file));
}

/**
 * Connects to a sequenced-packet listener on a Unix path or abstract name.
 *
 * Requires the same permissions as {@linkcode listenSeqpacket} for `path`.
 *
 * @param options The listener's address, the send buffer size and a signal
 * to give up.
 * @returns The connection, with `remoteAddr.path` exactly as given.
 * @throws {TypeError} For a wrong shape, an empty path or a NUL byte in a
 * filesystem path.
 * @throws {RangeError} For a path over 107 bytes (108 for an abstract name).
 * @throws {Deno.errors.NotFound} When nothing is at the path.
 * @throws {Deno.errors.ConnectionRefused} When nobody listens there.
 * @throws {Deno.errors.NotCapable} Without the permissions above.
 *
 * @example Connect, send, read the answer
 * ```ts
 * import { connectSeqpacket, listenSeqpacket } from "@bsd/sockets/seqpacket";
 *
 * using listener = listenSeqpacket({ path: `${Deno.makeTempDirSync()}/app.sock` });
 * using client = await connectSeqpacket({ path: listener.addr.path });
 * await client.send(new TextEncoder().encode("hello"));
 * using conn = await listener.accept();
 * const hello = await conn.receive();
 * console.log(new TextDecoder().decode(hello?.data)); // "hello"
 * ```
 */
export async function connectSeqpacket(options: ConnectSeqpacketOptions): Promise<SeqpacketConn> {
  const call = "connectSeqpacket";
  checkObject(`${call}: options`, options);
  const { path } = options;
  const address = checkPath(call, path);
  const tuning = checkTuning(call, options);
  const signal = checkSignal(call, options.signal);
  requireUnix(path);
  const socket = FdSocket.open<UnixAddr>(
    "unix",
    "seqpacket",
    0,
    engineOptions(describeAddress({ path })),
  );
  try {
    // Before connect(), so records the listener sends carry credentials.
    prepare(socket, tuning);
    await socket.connect(address, socket.label, signal);
    return new SeqpacketConn(socket, socket.localAddress(decodeAddr), {
      transport: "seqpacket",
      path,
    });
  } catch (err) {
    socket.close();
    throw err;
  }
}

/**
 * Creates two connected sequenced-packet sockets (`socketpair`), unnamed:
 * for talking between parts of one program, or to hand one end to another
 * process as a descriptor.
 *
 * Requires `--allow-ffi` only.
 *
 * @param options The send buffer size of both ends.
 * @returns The two ends.
 * @throws {Deno.errors.NotCapable} Without `--allow-ffi`.
 *
 * @example Records cross in both directions
 * ```ts
 * import { seqpacketPair } from "@bsd/sockets/seqpacket";
 *
 * const [left, right] = seqpacketPair();
 * await left.send(new Uint8Array([1]));
 * await right.send(new Uint8Array([2, 2]));
 * console.log((await right.receive())?.data); // Uint8Array(1) [ 1 ]
 * console.log((await left.receive())?.data); // Uint8Array(2) [ 2, 2 ]
 * left.close();
 * right.close();
 * ```
 */
export function seqpacketPair(
  options: SeqpacketSocketOptions = {},
): [SeqpacketConn, SeqpacketConn] {
  const call = "seqpacketPair";
  checkObject(`${call}: options`, options);
  const tuning = checkTuning(call, options);
  const [a, b] = FdSocket.pair<UnixAddr>("seqpacket", engineOptions(describeAddress(UNNAMED)));
  try {
    // Both ends before either sends: every record then carries credentials.
    prepare(a, tuning);
    prepare(b, tuning);
  } catch (err) {
    a.close();
    b.close();
    throw err;
  }
  return [new SeqpacketConn(a, UNNAMED, UNNAMED), new SeqpacketConn(b, UNNAMED, UNNAMED)];
}

/**
 * Closes descriptors received in {@linkcode SeqpacketMessage.fds}.
 *
 * Deno has no other way to close a descriptor it did not open itself.
 * Requires `--allow-ffi`.
 *
 * @param fds The descriptors; each is closed once, errors ignored (one that
 * is already closed stays closed).
 * @throws {TypeError} When `fds` is not an array of integers.
 * @throws {RangeError} For a negative descriptor.
 *
 * @example Close what came with a record
 * ```ts
 * import { closeFds, seqpacketPair } from "@bsd/sockets/seqpacket";
 *
 * const [a, b] = seqpacketPair();
 * await a.send(new Uint8Array(0), { fds: [0, 1, 2] });
 * const message = await b.receive();
 * closeFds(message?.fds ?? []);
 * a.close();
 * b.close();
 * ```
 */
export function closeFds(fds: readonly number[]): void {
  const checked = checkFds("closeFds", fds, Infinity) ?? [];
  closeEngineFds(checked);
}

// The fromFd part of this module: a listening descriptor becomes a
// SeqpacketListener, a connected one a SeqpacketConn. Both get SO_PASSCRED,
// which the end-of-stream rule needs (records queued before it carry none).
registerAdopter({
  matches: (d) => d.family === "unix" && d.kind === "seqpacket",
  adopt(d) {
    const local = FdSocket.nameOf(d.fd, "getsockname", decodeAddr)!;
    const remote = d.listening ? null : FdSocket.nameOf(d.fd, "getpeername", decodeAddr);
    if (!d.listening && remote === null) {
      throw new Deno.errors.NotConnected(
        `fromFd fd ${d.fd}: a seqpacket socket neither listening nor connected`,
      );
    }
    requireUnix(local.path);
    if (remote !== null) requireUnix(remote.path);
    const label = describeAddress(remote === null || remote.path === "" ? local : remote);
    // Before take(): a failed setsockopt leaves the descriptor as it was.
    setOptionOn(d.fd, label, "passCredentials", true);
    d.take();
    const socket = new FdSocket<UnixAddr>(d.fd, engineOptions(label));
    return remote === null
      ? new SeqpacketListener(listenerEngine(socket, local, { bufferSizes: {} }, null))
      : new SeqpacketConn(socket, local, remote);
  },
});
