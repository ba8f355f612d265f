/**
 * Stream sockets (`SOCK_STREAM`): TCP and Unix stream connections.
 *
 * A thin layer over Deno's built-in `Deno.listen` and `Deno.connect` that
 * gives them the shape every socket type of this package shares: `Reader`,
 * `Writer` and `Closer`, checked arguments, errors that name the call and the
 * address, `AbortSignal` on `connect` and `accept`, and a Unix listener that
 * removes its own socket file, and only its own, when it closes.
 *
 * One class, two engines: `backend: "builtin"` (the default) wraps Deno's
 * sockets; `backend: "ffi"` drives the descriptor through this package's
 * epoll engine, and adds what Deno's sockets cannot give: the descriptor
 * (`fd`), descriptors passed over Unix streams (`send(data, { fds })`,
 * `receive()`), `peerCredentials()`, {@linkcode streamPair} and `fromFd`.
 *
 * Permissions, as Deno asks them for its own sockets: `--allow-net` for TCP;
 * for a Unix path, `--allow-read` and `--allow-write` of the path and
 * `--allow-net=unix:<absolute path>` (or plain `--allow-net`); for an abstract
 * Unix name (leading `"\0"`), unscoped `--allow-net`. The FFI backend checks
 * the same before any system call, and needs `--allow-ffi` as well.
 *
 * @example Echo once over a Unix stream socket
 * ```ts
 * import { connectStream, listenStream } from "@bsd/sockets/stream";
 *
 * const dir = Deno.makeTempDirSync();
 * {
 *   using listener = listenStream({ path: `${dir}/echo.sock` });
 *   const served = (async () => {
 *     using conn = await listener.accept();
 *     const buf = new Uint8Array(64);
 *     const n = await conn.read(buf);
 *     if (n !== null) await conn.write(buf.subarray(0, n));
 *   })();
 *   using client = await connectStream({ path: listener.addr.path });
 *   await client.write(new TextEncoder().encode("ping"));
 *   const reply = new Uint8Array(64);
 *   const n = await client.read(reply);
 *   console.log(new TextDecoder().decode(reply.subarray(0, n ?? 0))); // "ping"
 *   await served;
 * } // the listener closes here and removes echo.sock
 * Deno.removeSync(dir);
 * ```
 *
 * @module
 */

import type {
  Closer,
  NetAddr,
  PeerCredentials,
  Reader,
  SocketOptionName,
  SocketOptions,
  TcpInfo,
  UnixAddr,
  Writer,
} from "./types.ts";
import {
  checkBoolean,
  checkBuffer,
  checkFds,
  checkInteger,
  checkObject,
  checkPort,
  checkSignal,
  checkUnixPath,
} from "./_internal/checks.ts";
import { DEFAULT_MAX_SIZE } from "./_internal/packet_socket.ts";
import { closedError, describeAddress } from "./ffi/errors.ts";
import { ipFamily } from "./ffi/sockaddr.ts";
import type { Shape } from "./ffi/options.ts";
import type { BpfProgram } from "./bpf.ts";
import { FdSocket } from "./ffi/socket.ts";
import { type BufferSizes, checkBufferSizes } from "./_internal/buffer_sizes.ts";
import { peerPermit, requirePermit } from "./ffi/permissions.ts";
import { type DescribedFd, registerAdopter } from "./_internal/adopt.ts";
import type {
  ByteEngine,
  ByteExtras,
  OpenTuning,
  StreamAddr,
  StreamListenerEngine,
} from "./_internal/byte_engine.ts";
import { AcceptLoop } from "./_internal/accept_loop.ts";
import { type Engine, isEngine } from "./_internal/engine.ts";
import { FfiListenerEngine } from "./_internal/ffi_listener.ts";
import {
  BuiltinByteEngine,
  BuiltinListenerEngine,
  connectBuiltin,
  listenBuiltin,
} from "./_internal/builtin_stream.ts";
import {
  connectFfi,
  decoderFor,
  FfiByteEngine,
  ffiListener,
  listenFfi,
  pairFfi,
  requireStream,
} from "./_internal/stream_ffi.ts";
import { attachReusePortProgram, getSocketOption, setSocketOption } from "./_internal/options.ts";

/**
 * Where a TCP stream socket listens or connects.
 *
 * @example Listen on every IPv4 interface, port 8080
 * ```ts
 * import type { TcpStreamOptions } from "@bsd/sockets/stream";
 *
 * const options: TcpStreamOptions = { hostname: "0.0.0.0", port: 8080 };
 * ```
 */
export interface TcpStreamOptions {
  /**
   * An IP address or host name. Defaults to `"0.0.0.0"` (every IPv4
   * interface) for `listenStream` and `"127.0.0.1"` for `connectStream`, as
   * Deno's own `Deno.listen` and `Deno.connect` do.
   */
  hostname?: string;
  /** The port, 0 to 65535; `0` asks `listenStream` for any free port. */
  port: number;
  /**
   * The engine: `"builtin"` (the default) or `"ffi"`. The FFI backend takes
   * IP addresses (and `"localhost"`) only, no other host names.
   */
  backend?: StreamBackend;
  /**
   * `listenStream`, FFI backend: the length of the queue of connections not
   * yet accepted (1 to 65,535, capped by `net.core.somaxconn`); 4,096 when
   * not given. Giving it picks the FFI backend.
   */
  backlog?: number;
  /**
   * `listenStream`, FFI backend: set `SO_REUSEPORT` before binding, so
   * several sockets of one user (in one process or several) share the port
   * and the kernel spreads connections over them. Picks the FFI backend.
   */
  reusePort?: boolean;
  /**
   * `connectStream`, FFI backend: the local address to bind before
   * connecting (the source address and port); an IP address of the same
   * family as `hostname`, port 0 (the default) for any. Picks the FFI backend.
   */
  localAddr?: { hostname?: string; port?: number };
  /**
   * The receive buffer in bytes (`SO_RCVBUF`; past `net.core.rmem_max` only
   * as root), 1 to 2^31-1. FFI backend: the built-in one cannot set it. A
   * listener's connections inherit it.
   */
  receiveBufferSize?: number;
  /** The send buffer in bytes (`SO_SNDBUF`), as `receiveBufferSize`. FFI backend. */
  sendBufferSize?: number;
}

/**
 * Where a Unix stream socket listens or connects.
 *
 * @example A socket file in a temporary directory
 * ```ts
 * import type { UnixStreamOptions } from "@bsd/sockets/stream";
 *
 * const options: UnixStreamOptions = { path: "/run/user/1000/app.sock" };
 * ```
 */
export interface UnixStreamOptions {
  /**
   * A filesystem path of at most 107 bytes, or a Linux abstract name: a
   * leading `"\0"`, at most 108 bytes, ASCII only (Deno's built-in sockets
   * pass names as UTF-8, so a character above U+007F would not name the bytes
   * it does for the other socket types of this package).
   */
  path: string;
  /**
   * The engine: `"builtin"` (the default) or `"ffi"`. Descriptor passing,
   * {@linkcode StreamConn.receive} and {@linkcode StreamConn.peerCredentials}
   * need `"ffi"`.
   */
  backend?: StreamBackend;
  /** `listenStream`, FFI backend: as {@linkcode TcpStreamOptions.backlog}. */
  backlog?: number;
  /**
   * The receive buffer in bytes (`SO_RCVBUF`; past `net.core.rmem_max` only
   * as root), 1 to 2^31-1. FFI backend: the built-in one cannot set it. A
   * listener's connections inherit it.
   */
  receiveBufferSize?: number;
  /** The send buffer in bytes (`SO_SNDBUF`), as `receiveBufferSize`. FFI backend. */
  sendBufferSize?: number;
}

/**
 * Which engine serves a stream socket: Deno's own sockets (`"builtin"`), or
 * this package's FFI engine over libc (`"ffi"`, needs `--allow-ffi`), which
 * gives the descriptor, descriptor passing and peer credentials.
 *
 * @example Ask for the FFI engine
 * ```ts
 * import type { StreamBackend } from "@bsd/sockets/stream";
 *
 * const backend: StreamBackend = "ffi";
 * ```
 */
export type StreamBackend = "builtin" | "ffi";

/**
 * What {@linkcode StreamConn.receive} returns: bytes, and the descriptors
 * that came with them.
 *
 * @example Keep the first descriptor, close the rest
 * ```ts
 * import type { StreamMessage } from "@bsd/sockets/stream";
 * import { closeFds } from "@bsd/sockets/seqpacket";
 *
 * function firstFd(m: StreamMessage): number | undefined {
 *   const [first, ...rest] = m.fds ?? [];
 *   closeFds(rest);
 *   return first;
 * }
 * ```
 */
export interface StreamMessage {
  /**
   * The bytes there were, up to `maxSize`. When descriptors came, these end
   * with the bytes of the write that carried them (plain bytes written
   * before it may come first), never with bytes of a later write.
   */
  data: Uint8Array;
  /** Descriptors received with `SCM_RIGHTS`, close-on-exec; yours to close. */
  fds?: number[];
  /** The kernel had more descriptors than could be installed (`MSG_CTRUNC`): some are missing. */
  controlTruncated?: boolean;
}

/**
 * Options for {@linkcode StreamConn.send}.
 *
 * @example Pass a descriptor
 * ```ts
 * import type { StreamSendOptions } from "@bsd/sockets/stream";
 *
 * const options: StreamSendOptions = { fds: [0] };
 * ```
 */
export interface StreamSendOptions {
  /** Descriptors to pass (`SCM_RIGHTS`, at most 253); they go with the first byte of the data. */
  fds?: readonly number[];
}

/**
 * Options for {@linkcode StreamConn.receive}.
 *
 * @example At most 4 KiB, within a second
 * ```ts
 * import type { StreamReceiveOptions } from "@bsd/sockets/stream";
 *
 * const options: StreamReceiveOptions = { maxSize: 4096, signal: AbortSignal.timeout(1000) };
 * ```
 */
export interface StreamReceiveOptions {
  /** The most bytes to return, 1 to 2^30; default 65,536. */
  maxSize?: number;
  /** Stops waiting; the promise then rejects with `signal.reason` and nothing is consumed. */
  signal?: AbortSignal;
  /**
   * Return the bytes there are without consuming them (`MSG_PEEK`): the next
   * read or receive returns them again. A peek carries no descriptors.
   */
  peek?: boolean;
}

/**
 * Options for {@linkcode listenStream}: a TCP or a Unix address.
 *
 * @example Either kind
 * ```ts
 * import type { ListenStreamOptions } from "@bsd/sockets/stream";
 *
 * const tcp: ListenStreamOptions = { port: 0 };
 * const unix: ListenStreamOptions = { path: "/tmp/app.sock" };
 * ```
 */
export type ListenStreamOptions = TcpStreamOptions | UnixStreamOptions;

/**
 * Options for {@linkcode connectStream}: a TCP or a Unix address, and a
 * signal that abandons the attempt.
 *
 * @example Give up after two seconds
 * ```ts
 * import type { ConnectStreamOptions } from "@bsd/sockets/stream";
 *
 * const options: ConnectStreamOptions = { port: 8080, signal: AbortSignal.timeout(2000) };
 * ```
 */
export type ConnectStreamOptions = (TcpStreamOptions | UnixStreamOptions) & {
  /** Abandons the connection attempt; the promise then rejects with `signal.reason`. */
  signal?: AbortSignal;
};

/**
 * Options for {@linkcode StreamListener.accept}.
 *
 * @example Wait at most one second for a client
 * ```ts
 * import type { StreamAcceptOptions } from "@bsd/sockets/stream";
 *
 * const options: StreamAcceptOptions = { signal: AbortSignal.timeout(1000) };
 * ```
 */
export interface StreamAcceptOptions {
  /**
   * Stops waiting; the promise then rejects with `signal.reason`. No
   * connection is lost: one that arrives later goes to the next `accept()`.
   */
  signal?: AbortSignal;
}

/**
 * A connected stream socket: TCP or Unix.
 *
 * `read` and `write` follow {@linkcode Reader} and {@linkcode Writer};
 * `readable` and `writable` are the Web streams of the same connection (use
 * one style or the other for each direction, not both at once).
 *
 * After `close()`: `read` resolves `null`, `write` and `closeWrite` reject
 * with `Deno.errors.BadResource`; a `read` pending at that moment resolves
 * `null` and a pending `write` rejects with `BadResource`.
 *
 * @typeParam A The address type: {@linkcode NetAddr} for TCP,
 * {@linkcode UnixAddr} for Unix.
 *
 * @example Send a request, half-close, read the whole answer
 * ```ts
 * import { connectStream, listenStream } from "@bsd/sockets/stream";
 *
 * using listener = listenStream({ hostname: "127.0.0.1", port: 0 });
 * const served = (async () => {
 *   using conn = await listener.accept();
 *   const buf = new Uint8Array(64);
 *   let total = 0;
 *   for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) total += n;
 *   await conn.write(new TextEncoder().encode(`got ${total} bytes`));
 * })();
 * using conn = await connectStream({ port: listener.addr.port });
 * await conn.write(new TextEncoder().encode("hello"));
 * await conn.closeWrite();
 * const answer = await new Response(conn.readable).text();
 * console.log(answer); // "got 5 bytes"
 * await served;
 * ```
 */
export class StreamConn<A extends NetAddr | UnixAddr = NetAddr | UnixAddr>
  implements Reader, Writer, Closer, Disposable {
  readonly #engine: ByteEngine;
  readonly #label: string;
  readonly #readWhat: string;
  readonly #writeWhat: string;

  /**
   * Wraps a connected `Deno.Conn` (TCP or Unix). Normally you get a
   * `StreamConn` from {@linkcode connectStream} or
   * {@linkcode StreamListener.accept}; this is for a connection Deno made
   * some other way. The `StreamConn` owns it from then on. (This package
   * also passes its own engines here; users cannot make one.)
   *
   * @param conn A TCP or Unix connection that is not used elsewhere.
   * @throws {TypeError} When `conn` is neither TCP nor Unix.
   */
  constructor(conn: Deno.Conn | Engine<"bytes">) {
    const engine = byteEngine(conn);
    this.#engine = engine;
    this.#label = engine.label;
    this.#readWhat = `read ${this.#label}`;
    this.#writeWhat = `write ${this.#label}`;
  }

  /** Which engine serves this connection (see {@linkcode StreamBackend}). */
  get backend(): StreamBackend {
    return this.#engine.backend;
  }

  /**
   * The descriptor on the FFI backend; `null` on the built-in one and after
   * `close()`. The connection keeps owning it: pass it on (for example with
   * `send(data, { fds: [conn.fd] })`), never close it yourself.
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
   * @throws {Deno.errors.NotSupported} For an option that does not apply to this
   *   socket, or on the built-in backend (open it with `backend: "ffi"`).
   * @throws {Deno.errors.BadResource} Once closed.
   *
   * @example Probe an idle connection after 30 s, every 5 s, 3 times
   * ```ts
   * import type { StreamConn } from "@bsd/sockets/stream";
   *
   * function tune(sock: StreamConn): void {
   *   sock.setOption("keepAlive", true);
   *   sock.setOption("keepAliveIdle", 30);
   *   sock.setOption("keepAliveInterval", 5);
   *   sock.setOption("keepAliveCount", 3);
   * }
   * ```
   */
  setOption<K extends SocketOptionName>(name: K, value: SocketOptions[K]): void {
    const { socket } = this.#engine.extras("setOption");
    setSocketOption(socket, this.#shape(), this.#label, name, value);
  }

  /**
   * Reads a socket option by name (`getsockopt`), as the kernel holds it
   * (a buffer size reads back doubled: the kernel counts its bookkeeping).
   *
   * @param name The option.
   * @returns Its value.
   * @throws {TypeError} For an unknown name.
   * @throws {Deno.errors.NotSupported} For an option that does not apply to this
   *   socket, or on the built-in backend (open it with `backend: "ffi"`).
   * @throws {Deno.errors.BadResource} Once closed.
   *
   * @example Whether Nagle is off
   * ```ts
   * import type { StreamConn } from "@bsd/sockets/stream";
   *
   * function show(sock: StreamConn): void {
   *   console.log(sock.getOption("noDelay"));
   * }
   * ```
   */
  getOption<K extends SocketOptionName>(name: K): SocketOptions[K] {
    const { socket } = this.#engine.extras("getOption");
    return getSocketOption(socket, this.#shape(), this.#label, name);
  }

  /**
   * TCP only, FFI backend: what the kernel reports of this connection
   * (`TCP_INFO`): state, round-trip times, congestion window, bytes
   * acknowledged and received, delivery rate and more.
   *
   * @returns The connection's {@linkcode TcpInfo}.
   * @throws {Deno.errors.NotSupported} On a Unix connection or on the built-in backend.
   * @throws {Deno.errors.BadResource} Once closed.
   *
   * @example Print the smoothed round-trip time
   * ```ts
   * import type { StreamConn } from "@bsd/sockets/stream";
   *
   * function report(conn: StreamConn): void {
   *   const { state, rtt, cwnd } = conn.tcpInfo();
   *   console.log(`${state}: rtt ${rtt} µs, cwnd ${cwnd}`);
   * }
   * ```
   */
  tcpInfo(): TcpInfo {
    this.#tcp("tcpInfo");
    return this.#engine.extras("tcpInfo").tcpInfo();
  }

  #shape(): Shape {
    const local: StreamAddr = this.#engine.localAddr;
    return { family: "path" in local ? "unix" : ipFamily(local.hostname), kind: "stream" };
  }

  /** The address of this end of the connection (`path: ""` for an unnamed Unix client). */
  get localAddr(): A {
    return this.#engine.localAddr as A;
  }

  /** The address of the peer (`path: ""` when a Unix peer is unnamed). */
  get remoteAddr(): A {
    return this.#engine.remoteAddr as A;
  }

  /**
   * The bytes received, as a Web stream: Deno's own stream for this
   * connection. When it ends (end of stream, or cancelled) Deno closes the
   * whole connection, so after a half-close use `read` to keep writing.
   */
  get readable(): ReadableStream<Uint8Array> {
    return this.#engine.readable;
  }

  /**
   * A Web stream that sends what is written to it: Deno's own stream for
   * this connection. Closing it closes the whole connection, not only the
   * sending side (that is `closeWrite()`).
   */
  get writable(): WritableStream<Uint8Array> {
    return this.#engine.writable;
  }

  /**
   * Reads up to `p.length` bytes into `p`.
   *
   * @param p Where to put the bytes: a `Uint8Array` over a fixed-length,
   * non-shared `ArrayBuffer`.
   * @returns The number of bytes read, or `null` at end of stream (the peer
   * closed or half-closed its side) and once this connection is closed.
   * @throws {TypeError} For a buffer that is not such a `Uint8Array`.
   * @throws {Deno.errors.ConnectionReset} When the peer reset the connection.
   *
   * @example Read one chunk
   * ```ts
   * import type { StreamConn } from "@bsd/sockets/stream";
   *
   * async function readChunk(conn: StreamConn): Promise<Uint8Array | null> {
   *   const buf = new Uint8Array(4096);
   *   const n = await conn.read(buf);
   *   return n === null ? null : buf.subarray(0, n);
   * }
   * ```
   */
  read(p: Uint8Array): Promise<number | null> {
    try {
      checkBuffer(this.#readWhat, p);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#engine.read(p);
  }

  /**
   * Writes all of `p`. Unlike `Deno.Conn.write`, it never stops part way: it
   * resolves once every byte has been handed to the kernel.
   *
   * The connection keeps the permission it was made with (the address it
   * connected to, or for an accepted one the listener's), checked again
   * after any `Deno.permissions.revoke`: a revoked permission takes effect
   * on the next write or send, on both backends, as on every socket type.
   *
   * @param p The bytes: a `Uint8Array` over a fixed-length, non-shared
   * `ArrayBuffer`.
   * @returns `p.length`.
   * @throws {TypeError} For a buffer that is not such a `Uint8Array`.
   * @throws {Deno.errors.NotCapable} When that permission was revoked.
   * @throws {Deno.errors.BrokenPipe} After `closeWrite()` or when the peer has gone.
   * @throws {Deno.errors.ConnectionReset} When the peer reset the connection.
   * @throws {Deno.errors.BadResource} When this connection is closed.
   *
   * @example Send a line
   * ```ts
   * import type { StreamConn } from "@bsd/sockets/stream";
   *
   * async function sendLine(conn: StreamConn, line: string): Promise<void> {
   *   await conn.write(new TextEncoder().encode(line + "\n"));
   * }
   * ```
   */
  write(p: Uint8Array): Promise<number> {
    const engine = this.#engine;
    const closed = engine.closed;
    try {
      checkBuffer(this.#writeWhat, p);
      if (!closed) requirePermit(engine.permit);
    } catch (err) {
      return Promise.reject(err);
    }
    if (closed) return Promise.reject(closedError("write", this.#label));
    return engine.write(p, "write");
  }

  /**
   * Shuts down the sending side (`shutdown(SHUT_WR)`): the peer reads end of
   * stream, and this end can still read the peer's answer. Calling it again
   * does nothing.
   *
   * @returns A promise that settles when the shutdown is done.
   * @throws {Deno.errors.BadResource} When this connection is closed.
   * @see {@link https://man7.org/linux/man-pages/man2/shutdown.2.html | shutdown(2)}
   *
   * @example Signal the end of a request
   * ```ts
   * import type { StreamConn } from "@bsd/sockets/stream";
   *
   * async function finish(conn: StreamConn, request: Uint8Array): Promise<void> {
   *   await conn.write(request);
   *   await conn.closeWrite();
   * }
   * ```
   */
  closeWrite(): Promise<void> {
    if (this.#engine.closed) return Promise.reject(closedError("closeWrite", this.#label));
    return this.#engine.closeWrite();
  }

  /**
   * Closes the connection. A pending `read` resolves `null`, a pending
   * `write` rejects with `BadResource`. Calling it again does nothing.
   *
   * @example Close when done
   * ```ts
   * import type { StreamConn } from "@bsd/sockets/stream";
   *
   * function hangUp(conn: StreamConn): void {
   *   conn.close();
   *   conn.close(); // no-op
   * }
   * ```
   */
  close(): void {
    this.#engine.close();
  }

  /** Closes the connection, so that `using conn = ...` closes it at the end of the scope. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Lets a pending operation keep the process alive again (the default),
   * after {@linkcode StreamConn.unref}.
   *
   * @example Undo an unref
   * ```ts
   * import type { StreamConn } from "@bsd/sockets/stream";
   *
   * function keepAlive(conn: StreamConn): void {
   *   conn.ref();
   * }
   * ```
   */
  ref(): void {
    this.#engine.ref();
  }

  /**
   * Stops pending operations on this connection from keeping the process
   * alive, for a connection that should not hold a program open.
   *
   * @example A background connection
   * ```ts
   * import type { StreamConn } from "@bsd/sockets/stream";
   *
   * function background(conn: StreamConn): void {
   *   conn.unref();
   * }
   * ```
   */
  unref(): void {
    this.#engine.unref();
  }

  /**
   * TCP only: turns Nagle's algorithm off (`true`, the default argument:
   * `TCP_NODELAY` set, small writes leave at once) or on (`false`).
   *
   * @param on Whether to set `TCP_NODELAY`.
   * @throws {Deno.errors.NotSupported} On a Unix connection.
   * @throws {Deno.errors.BadResource} When this connection is closed.
   *
   * @example Let small writes coalesce
   * ```ts
   * import type { StreamConn } from "@bsd/sockets/stream";
   *
   * function batchWrites(conn: StreamConn): void {
   *   conn.setNoDelay(false);
   * }
   * ```
   */
  setNoDelay(on = true): void {
    this.#tcp("setNoDelay");
    this.#engine.setNoDelay(on);
  }

  /**
   * TCP only: turns keep-alive probes on (`true`, the default argument:
   * `SO_KEEPALIVE`) or off (`false`).
   *
   * @param on Whether to set `SO_KEEPALIVE`.
   * @throws {Deno.errors.NotSupported} On a Unix connection.
   * @throws {Deno.errors.BadResource} When this connection is closed.
   *
   * @example Detect a vanished peer on an idle connection
   * ```ts
   * import type { StreamConn } from "@bsd/sockets/stream";
   *
   * function probeIdle(conn: StreamConn): void {
   *   conn.setKeepAlive(true);
   * }
   * ```
   */
  setKeepAlive(on = true): void {
    this.#tcp("setKeepAlive");
    this.#engine.setKeepAlive(on);
  }

  /** Throws off TCP or once closed. */
  #tcp(call: string): void {
    if (this.#engine.localAddr.transport !== "tcp") {
      throw new Deno.errors.NotSupported(
        `${call} ${this.#label}: not supported on a Unix stream socket, only on TCP`,
      );
    }
    if (this.#engine.closed) throw closedError(call, this.#label);
  }

  /**
   * Sends all of `data`, and with its first byte the descriptors in
   * `options.fds` (`sendmsg` with `SCM_RIGHTS`). Without descriptors it is
   * {@linkcode StreamConn.write}. The receiver gets them with the
   * {@linkcode StreamConn.receive} that returns the first bytes of `data`.
   * This connection's own descriptors stay open: the receiver gets copies.
   *
   * @param data The bytes, at least one when descriptors go with them.
   * @param options `fds`: the descriptors to pass (FFI backend, Unix only).
   * @returns `data.length`.
   * @throws {TypeError} For a buffer that is not a fixed-length `Uint8Array`
   * or descriptors that are not integers.
   * @throws {RangeError} For over 253 descriptors, a descriptor out of range,
   * or descriptors with no data to carry them.
   * @throws {Deno.errors.NotSupported} For descriptors on the built-in
   * backend (it needs `backend: "ffi"`) or over TCP.
   * @throws {Deno.errors.NotCapable} When the connection's permission was
   * revoked (see {@linkcode StreamConn.write}).
   * @throws {Deno.errors.BadResource} When this connection is closed, or a
   * descriptor is not open.
   *
   * @example Hand a file to the peer
   * ```ts ignore
   * import { connectStream } from "@bsd/sockets/stream";
   *
   * using conn = await connectStream({ path: "/run/app.sock", backend: "ffi" });
   * using other = await connectStream({ path: "/run/other.sock", backend: "ffi" });
   * // The peer gets its own descriptor of the other connection.
   * await conn.send(new TextEncoder().encode("take this"), { fds: [other.fd!] });
   * ```
   */
  send(data: Uint8Array, options?: StreamSendOptions): Promise<number> {
    const engine = this.#engine;
    let fds: number[] | undefined;
    let extras: ByteExtras | undefined;
    try {
      checkBuffer(this.#writeWhat, data);
      if (options !== undefined) {
        checkObject(`${this.#writeWhat}: options`, options);
        fds = checkFds(this.#writeWhat, options.fds);
      }
      if (fds !== undefined && fds.length > 0) extras = this.#unixExtras("send with fds");
      if (extras !== undefined && data.length === 0) {
        throw new RangeError(
          `${this.#writeWhat}: descriptors need at least 1 byte of data to go with`,
        );
      }
      if (!engine.closed) requirePermit(engine.permit);
    } catch (err) {
      return Promise.reject(err);
    }
    if (engine.closed) return Promise.reject(closedError("send", this.#label));
    return extras === undefined ? engine.write(data, "send") : extras.sendWithFds(data, fds!);
  }

  /**
   * Receives the bytes there are, up to `maxSize`, with the descriptors that
   * came with them (`recvmsg`, installed close-on-exec). Descriptors come
   * with the receive that returns the first bytes of the write that carried
   * them, and that receive holds no bytes of a later write. FFI backend.
   *
   * @param options `maxSize` (default 65,536) and `signal`.
   * @returns The bytes and descriptors, or `null` at end of stream and once
   * this connection is closed.
   * @throws {RangeError} For a `maxSize` outside 1 to 2^30.
   * @throws {Deno.errors.NotSupported} On the built-in backend.
   * @throws {Deno.errors.ConnectionReset} When the peer reset the connection.
   *
   * @example Take a descriptor from a peer
   * ```ts
   * import { streamPair } from "@bsd/sockets/stream";
   *
   * const [a, b] = streamPair();
   * await a.send(new TextEncoder().encode("fd"), { fds: [a.fd!] });
   * const m = await b.receive();
   * console.log(new TextDecoder().decode(m?.data), m?.fds?.length); // "fd" 1
   * a.close();
   * b.close();
   * ```
   */
  receive(options?: StreamReceiveOptions): Promise<StreamMessage | null> {
    let maxSize = DEFAULT_MAX_SIZE;
    let signal: AbortSignal | undefined;
    let peek = false;
    let extras: ByteExtras;
    try {
      if (options !== undefined) {
        checkObject(`${this.#readWhat}: options`, options);
        if (options.maxSize !== undefined) {
          maxSize = checkInteger(`${this.#readWhat}: maxSize`, options.maxSize, 1, 1 << 30);
        }
        signal = checkSignal(this.#readWhat, options.signal);
        peek = checkBoolean(`${this.#readWhat}: peek`, options.peek) ?? false;
      }
      extras = this.#engine.extras("receive");
    } catch (err) {
      return Promise.reject(err);
    }
    return extras.receive(maxSize, signal, peek);
  }

  /**
   * The credentials of the peer process as they were when it connected (or
   * made the pair): `SO_PEERCRED`. FFI backend, Unix only.
   *
   * @returns The peer's pid, uid and gid.
   * @throws {Deno.errors.NotSupported} On the built-in backend or over TCP.
   * @throws {Deno.errors.BadResource} When this connection is closed.
   *
   * @example Who is on the other end
   * ```ts
   * import { streamPair } from "@bsd/sockets/stream";
   *
   * const [a, b] = streamPair();
   * console.log(a.peerCredentials().pid === Deno.pid); // true
   * a.close();
   * b.close();
   * ```
   */
  peerCredentials(): PeerCredentials {
    return this.#unixExtras("peerCredentials").peerCredentials();
  }

  /** The engine's descriptor calls for `call`, which needs a Unix connection. */
  #unixExtras(call: string): ByteExtras {
    const extras = this.#engine.extras(call);
    if (this.#engine.localAddr.transport !== "unix") {
      throw new Deno.errors.NotSupported(
        `${call} ${this.#label}: not supported on TCP, only on a Unix stream socket`,
      );
    }
    return extras;
  }
}

/** The engine a StreamConn stands on: its own, or Deno's connection wrapped. */
function byteEngine(conn: Deno.Conn | Engine<"bytes">): ByteEngine {
  if (!isEngine(conn)) return new BuiltinByteEngine(conn);
  if (conn instanceof FfiByteEngine || conn instanceof BuiltinByteEngine) return conn;
  throw new TypeError("StreamConn: not a connection's engine");
}

/** The engine a StreamListener stands on: its own, or Deno's listener wrapped. */
function listenerEngine(listener: Deno.Listener | Engine<"listener">): StreamListenerEngine {
  if (!isEngine(listener)) return new BuiltinListenerEngine(listener);
  if (listener instanceof FfiListenerEngine || listener instanceof BuiltinListenerEngine) {
    return listener;
  }
  throw new TypeError("StreamListener: not a stream listener's engine");
}

/**
 * A listening stream socket: TCP or Unix.
 *
 * Accepts connections with {@linkcode StreamListener.accept} or by async
 * iteration, which ends without throwing once the listener is closed. A
 * Unix listener removes its socket file when it closes, but only if the file
 * at that path is still the one it created (same device and inode): a file
 * someone else put there in the meantime is left alone.
 *
 * @typeParam A The address type: {@linkcode NetAddr} for TCP,
 * {@linkcode UnixAddr} for Unix.
 *
 * @example Serve connections until closed
 * ```ts
 * import { connectStream, listenStream } from "@bsd/sockets/stream";
 *
 * const listener = listenStream({ hostname: "127.0.0.1", port: 0 });
 * const server = (async () => {
 *   for await (const conn of listener) {
 *     await conn.write(new TextEncoder().encode("hi"));
 *     conn.close();
 *   }
 * })();
 * using client = await connectStream({ port: listener.addr.port });
 * const greeting = await new Response(client.readable).text();
 * console.log(greeting); // "hi"
 * listener.close();
 * await server; // the loop ends without an error
 * ```
 */
export class StreamListener<A extends NetAddr | UnixAddr = NetAddr | UnixAddr>
  implements AsyncIterable<StreamConn<A>>, Closer, Disposable {
  readonly #engine: StreamListenerEngine;
  readonly #loop: AcceptLoop<ByteEngine, StreamConn<A>>;
  readonly #label: string;

  /**
   * Wraps a listening `Deno.Listener` (TCP or Unix). Normally you get a
   * `StreamListener` from {@linkcode listenStream}; this is for a listener
   * Deno made some other way, taken over as it is: a Unix listener takes the
   * file now at its path as its own. (This package also passes its own
   * engines here; users cannot make one.)
   *
   * @param listener A TCP or Unix listener that is not used elsewhere.
   * @throws {TypeError} When `listener` is neither TCP nor Unix.
   */
  constructor(listener: Deno.Listener | Engine<"listener">) {
    const engine = listenerEngine(listener);
    this.#engine = engine;
    this.#label = describeAddress(engine.addr);
    this.#loop = new AcceptLoop(engine, (e) => new StreamConn<A>(e), this.#label);
  }

  /** The address this listener is bound to (with the real port when `port: 0` was asked). */
  get addr(): A {
    return this.#engine.addr as A;
  }

  /** Which engine serves this listener (see {@linkcode StreamBackend}). */
  get backend(): StreamBackend {
    return this.#engine.backend;
  }

  /**
   * The descriptor on the FFI backend; `null` on the built-in one and after
   * `close()`. The listener keeps owning it; never close it yourself.
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
   * @throws {Deno.errors.NotSupported} For an option that does not apply to this
   *   socket, or on the built-in backend (open it with `backend: "ffi"`).
   * @throws {Deno.errors.BadResource} Once closed.
   *
   * @example A bigger receive buffer for accepted connections
   * ```ts
   * import type { StreamListener } from "@bsd/sockets/stream";
   *
   * function tune(sock: StreamListener): void {
   *   sock.setOption("receiveBufferSize", 1 << 20);
   * }
   * ```
   */
  setOption<K extends SocketOptionName>(name: K, value: SocketOptions[K]): void {
    const { socket } = this.#engine.extras("setOption");
    setSocketOption(socket, this.#shape(), this.#label, name, value);
  }

  /**
   * Reads a socket option by name (`getsockopt`), as the kernel holds it
   * (a buffer size reads back doubled: the kernel counts its bookkeeping).
   *
   * @param name The option.
   * @returns Its value.
   * @throws {TypeError} For an unknown name.
   * @throws {Deno.errors.NotSupported} For an option that does not apply to this
   *   socket, or on the built-in backend (open it with `backend: "ffi"`).
   * @throws {Deno.errors.BadResource} Once closed.
   *
   * @example Whether the port is shared
   * ```ts
   * import type { StreamListener } from "@bsd/sockets/stream";
   *
   * function show(sock: StreamListener): void {
   *   console.log(sock.getOption("reusePort"));
   * }
   * ```
   */
  getOption<K extends SocketOptionName>(name: K): SocketOptions[K] {
    const { socket } = this.#engine.extras("getOption");
    return getSocketOption(socket, this.#shape(), this.#label, name);
  }

  /**
   * FFI backend, TCP and UDP: steers the port's reuse-port group with a
   * classic BPF program (`SO_ATTACH_REUSEPORT_CBPF`). The kernel runs it on
   * each connection request and hands that to the group member whose index (in the order
   * the members bound, from 0) the program returns; an index past the group
   * falls back to the hash. For UDP the program sees the payload
   * (`BPF.NET_OFF + n` reaches the IP and UDP headers); for TCP, the SYN's
   * headers through `BPF.NET_OFF`. One program serves the whole group.
   *
   * @param program The program, checked with `validateFilter` first.
   * @throws {TypeError} For a program of the wrong shape.
   * @throws {RangeError} For an invalid program.
   * @throws {Deno.errors.NotSupported} On the built-in backend or a Unix socket.
   * @throws {Deno.errors.BadResource} Once closed.
   *
   * @example Even source ports to member 0, odd to member 1
   * ```ts ignore
   * import { BPF, bpfStatement } from "@bsd/sockets/raw";
   * import { listenStream } from "@bsd/sockets/stream";
   *
   * using a = listenStream({ hostname: "127.0.0.1", port: 8080, reusePort: true });
   * using b = listenStream({ hostname: "127.0.0.1", port: 8080, reusePort: true });
   * a.attachReusePortFilter([
   *   bpfStatement(BPF.LD | BPF.H | BPF.ABS, BPF.NET_OFF + 20), // IPv4 without options
   *   bpfStatement(BPF.ALU | BPF.AND | BPF.K, 1),
   *   bpfStatement(BPF.RET | BPF.A, 0),
   * ]);
   * ```
   */
  attachReusePortFilter(program: BpfProgram): void {
    const { socket } = this.#engine.extras("attachReusePortFilter");
    attachReusePortProgram(socket, this.#shape(), this.#label, program);
  }

  #shape(): Shape {
    const local: StreamAddr = this.#engine.addr;
    return { family: "path" in local ? "unix" : ipFamily(local.hostname), kind: "stream" };
  }

  /**
   * Waits for the next connection.
   *
   * Accepts may overlap: each connection goes to one caller, oldest first.
   *
   * @param options `signal` stops waiting; the promise then rejects with
   * `signal.reason`, and a connection that arrives afterwards goes to the
   * next `accept()` instead of being lost.
   * @returns The accepted connection.
   * @throws {Deno.errors.BadResource} When the listener is or gets closed.
   *
   * @example Accept with a timeout
   * ```ts
   * import { listenStream } from "@bsd/sockets/stream";
   *
   * using listener = listenStream({ hostname: "127.0.0.1", port: 0 });
   * try {
   *   using conn = await listener.accept({ signal: AbortSignal.timeout(10) });
   *   console.log("client from", conn.remoteAddr);
   * } catch (err) {
   *   console.log((err as Error).name); // "TimeoutError": nobody connected
   * }
   * ```
   */
  accept(options: StreamAcceptOptions = {}): Promise<StreamConn<A>> {
    let signal: AbortSignal | undefined;
    try {
      signal = checkSignal("accept", options?.signal);
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
   * @throws {Error} An accept failure other than the listener closing
   * (for example `EMFILE`), with the call and the address in its message.
   *
   * @example Count connections until closed
   * ```ts
   * import type { StreamListener } from "@bsd/sockets/stream";
   *
   * async function serveAll(listener: StreamListener): Promise<number> {
   *   let n = 0;
   *   for await (const conn of listener) {
   *     n++;
   *     conn.close();
   *   }
   *   return n;
   * }
   * ```
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<StreamConn<A>> {
    return this.#loop.connections();
  }

  /**
   * Stops listening. Pending `accept()` calls reject with `BadResource` and
   * iteration ends. A Unix listener removes its socket file, unless the file
   * at that path is no longer the one it created. Calling it again does
   * nothing.
   *
   * @example Close twice
   * ```ts
   * import { listenStream } from "@bsd/sockets/stream";
   *
   * const listener = listenStream({ hostname: "127.0.0.1", port: 0 });
   * listener.close();
   * listener.close(); // no-op
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
   * after {@linkcode StreamListener.unref}.
   *
   * @example Undo an unref
   * ```ts
   * import type { StreamListener } from "@bsd/sockets/stream";
   *
   * function keepServing(listener: StreamListener): void {
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
   * import type { StreamListener } from "@bsd/sockets/stream";
   *
   * function background(listener: StreamListener): void {
   *   listener.unref();
   * }
   * ```
   */
  unref(): void {
    this.#loop.unref();
  }
}

/**
 * Listens for stream connections: TCP for `{ hostname?, port }`, Unix for
 * `{ path }`.
 *
 * Requires `--allow-net` for TCP; for a Unix path, `--allow-read` and
 * `--allow-write` of the path and `--allow-net=unix:<absolute path>` (or
 * `--allow-net`); for an abstract name (leading `"\0"`), `--allow-net`.
 * `hostname` defaults to `"0.0.0.0"`, every IPv4 interface, as for
 * `Deno.listen`. A path that already exists, even a stale socket file, is
 * `AddrInUse` and is left untouched. `backend: "ffi"` also needs
 * `--allow-ffi`; its connections are FFI-backed too.
 *
 * On close, the listener removes its socket file only if it is still the one
 * it created; keeping a file that replaced it needs write access to its
 * directory (without it, Deno removes whatever is at the path).
 *
 * @param options Where to listen.
 * @returns The listener.
 * @throws {TypeError} For a wrong shape, a non-integer port, an empty path or
 * a NUL byte in a filesystem path.
 * @throws {RangeError} For a port outside 0–65535 or a path over 107 bytes
 * (108 for an abstract name).
 * @throws {Deno.errors.AddrInUse} When the address is taken.
 * @throws {Deno.errors.NotSupported} For an abstract name with a character
 * above U+007F.
 * @throws {Deno.errors.NotCapable} Without the permissions above.
 * @throws {TypeError} For `backend: "ffi"` with a host name that is not an
 * IP address or `"localhost"` (the FFI engine resolves no names).
 *
 * @example A TCP listener on a free port
 * ```ts
 * import { listenStream } from "@bsd/sockets/stream";
 *
 * using listener = listenStream({ hostname: "127.0.0.1", port: 0 });
 * console.log(listener.addr.port > 0); // true
 * ```
 */
export function listenStream(options: TcpStreamOptions): StreamListener<NetAddr>;
/**
 * Listens for Unix stream connections on a path or an abstract name.
 *
 * @param options Where to listen.
 * @returns The listener.
 *
 * @example A Unix listener on an abstract name: no file involved
 * ```ts
 * import { listenStream } from "@bsd/sockets/stream";
 *
 * using listener = listenStream({ path: `\0example-${Deno.pid}` });
 * console.log(listener.addr.transport); // "unix"
 * ```
 */
export function listenStream(options: UnixStreamOptions): StreamListener<UnixAddr>;
/**
 * Listens for stream connections, TCP or Unix, decided by the options.
 *
 * @param options Where to listen.
 * @returns The listener.
 *
 * @example Either kind, chosen at run time
 * ```ts
 * import { type ListenStreamOptions, listenStream } from "@bsd/sockets/stream";
 *
 * const options: ListenStreamOptions = { hostname: "127.0.0.1", port: 0 };
 * using listener = listenStream(options);
 * console.log(listener.addr.transport); // "tcp"
 * ```
 */
export function listenStream(options: ListenStreamOptions): StreamListener;
export function listenStream(options: ListenStreamOptions): StreamListener {
  const target = checkTarget(options, "listen", "0.0.0.0");
  return new StreamListener(target.backend === "ffi" ? listenFfi(target) : listenBuiltin(target));
}

/**
 * Connects a stream socket: TCP for `{ hostname?, port }`, Unix for
 * `{ path }`.
 *
 * Requires `--allow-net` for TCP; for a Unix path, `--allow-read` and
 * `--allow-write` of the path and `--allow-net=unix:<absolute path>` (or
 * `--allow-net`); for an abstract name, `--allow-net`. `hostname` defaults
 * to `"127.0.0.1"`, as for `Deno.connect`. `backend: "ffi"` also needs
 * `--allow-ffi`.
 *
 * @param options Where to connect, and an optional `signal`: when it aborts,
 * the promise rejects with `signal.reason` at once, and a connection that
 * completes afterwards is closed.
 * @returns The connection.
 * @throws {TypeError} For a wrong shape, a non-integer port, an empty path or
 * a NUL byte in a filesystem path.
 * @throws {RangeError} For a port outside 0–65535 or a path over 107 bytes
 * (108 for an abstract name).
 * @throws {Deno.errors.ConnectionRefused} When nothing listens there.
 * @throws {Deno.errors.NotFound} When the Unix path does not exist.
 * @throws {Deno.errors.NotCapable} Without the permissions above.
 * @throws {TypeError} For `backend: "ffi"` with a host name that is not an
 * IP address or `"localhost"` (the FFI engine resolves no names).
 *
 * @example Connect with a timeout
 * ```ts
 * import { connectStream, listenStream } from "@bsd/sockets/stream";
 *
 * using listener = listenStream({ hostname: "127.0.0.1", port: 0 });
 * using conn = await connectStream({
 *   port: listener.addr.port,
 *   signal: AbortSignal.timeout(2000),
 * });
 * console.log(conn.remoteAddr.port === listener.addr.port); // true
 * ```
 */
export function connectStream(
  options: TcpStreamOptions & { signal?: AbortSignal },
): Promise<StreamConn<NetAddr>>;
/**
 * Connects a Unix stream socket to a path or an abstract name.
 *
 * @param options Where to connect, and an optional `signal`.
 * @returns The connection.
 *
 * @example Connect to a Unix listener
 * ```ts
 * import { connectStream, listenStream } from "@bsd/sockets/stream";
 *
 * const dir = Deno.makeTempDirSync();
 * {
 *   using listener = listenStream({ path: `${dir}/app.sock` });
 *   using conn = await connectStream({ path: listener.addr.path });
 *   console.log(conn.remoteAddr.path === listener.addr.path); // true
 * }
 * Deno.removeSync(dir); // empty: the listener removed app.sock
 * ```
 */
export function connectStream(
  options: UnixStreamOptions & { signal?: AbortSignal },
): Promise<StreamConn<UnixAddr>>;
/**
 * Connects a stream socket, TCP or Unix, decided by the options.
 *
 * @param options Where to connect, and an optional `signal`.
 * @returns The connection.
 *
 * @example Either kind, chosen at run time
 * ```ts
 * import { type ConnectStreamOptions, connectStream, listenStream } from "@bsd/sockets/stream";
 *
 * using listener = listenStream({ hostname: "127.0.0.1", port: 0 });
 * const options: ConnectStreamOptions = { port: listener.addr.port };
 * using conn = await connectStream(options);
 * console.log(conn.localAddr.transport); // "tcp"
 * ```
 */
export function connectStream(options: ConnectStreamOptions): Promise<StreamConn>;
export async function connectStream(options: ConnectStreamOptions): Promise<StreamConn> {
  const target = checkTarget(options, "connect", "127.0.0.1");
  const signal = checkSignal("connect", options.signal);
  signal?.throwIfAborted();
  const engine = target.backend === "ffi"
    ? await connectFfi(target, signal)
    : await connectBuiltin(target, signal);
  return new StreamConn(engine);
}

type Target =
  & ({ path: undefined; hostname: string; port: number; label: string } | {
    path: string;
    label: string;
  })
  & { backend: StreamBackend; sizes: BufferSizes }
  & OpenTuning;

function checkTarget(options: unknown, call: string, defaultHost: string): Target {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${call}: options must be an object with a port or a path`);
  }
  const o = options as {
    hostname?: unknown;
    port?: unknown;
    path?: unknown;
    backend?: unknown;
    receiveBufferSize?: unknown;
    sendBufferSize?: unknown;
  } & Record<keyof OpenTuning, unknown>;
  const tuning = checkTuning(o, call);
  const wantsFfi = Object.keys(tuning).length > 0;
  const backend = o.backend ?? (wantsFfi ? "ffi" : "builtin");
  if (backend !== "builtin" && backend !== "ffi") {
    throw new TypeError(
      `${call}: backend must be "builtin" or "ffi", got ${JSON.stringify(backend)}`,
    );
  }
  if (backend === "builtin" && wantsFfi) {
    throw new Deno.errors.NotSupported(
      `${call}: ${Object.keys(tuning).join(", ")} need backend: "ffi"`,
    );
  }
  const sizes = checkBufferSizes(call, o);
  if (backend === "builtin" && (sizes.receive !== undefined || sizes.send !== undefined)) {
    throw new Deno.errors.NotSupported(
      `${call}: the built-in backend cannot set ${
        sizes.receive !== undefined ? "receiveBufferSize" : "sendBufferSize"
      }; use backend: "ffi"`,
    );
  }
  if (o.path !== undefined) {
    if (o.port !== undefined || o.hostname !== undefined) {
      throw new TypeError(`${call}: give either a path or a hostname and port, not both`);
    }
    checkUnixPath(call, o.path);
    const path = o.path as string;
    const label = describeAddress({ path });
    if (path.startsWith("\0") && /[^\0-\x7f]/.test(path)) {
      throw new Deno.errors.NotSupported(
        `${call} ${label}: an abstract name for a stream socket must be ASCII, ` +
          `since Deno passes it as UTF-8; seqpacket sockets take any bytes`,
      );
    }
    if (tuning.reusePort !== undefined || tuning.localAddr !== undefined) {
      throw new TypeError(`${call} ${label}: reusePort and localAddr apply to TCP only`);
    }
    return { path, label, backend, sizes, ...tuning };
  }
  const port = checkPort(`${call}: port`, o.port);
  if (o.hostname !== undefined && typeof o.hostname !== "string") {
    throw new TypeError(`${call}: hostname must be a string, got ${typeof o.hostname}`);
  }
  const hostname = (o.hostname as string | undefined) ?? defaultHost;
  return {
    path: undefined,
    hostname,
    port,
    label: describeAddress({ hostname, port }),
    backend,
    sizes,
    ...tuning,
  };
}

/** The open-time options of the FFI backend, checked; only those given. */
function checkTuning(o: Record<keyof OpenTuning, unknown>, call: string): OpenTuning {
  const tuning: OpenTuning = {};
  if (o.backlog !== undefined) {
    if (call !== "listen") throw new TypeError(`${call}: backlog applies to listenStream only`);
    tuning.backlog = checkInteger(`${call}: backlog`, o.backlog, 1, 65535);
  }
  if (o.reusePort !== undefined) {
    if (call !== "listen") throw new TypeError(`${call}: reusePort applies to listenStream only`);
    tuning.reusePort = checkBoolean(`${call}: reusePort`, o.reusePort);
  }
  if (o.localAddr !== undefined) {
    if (call !== "connect") {
      throw new TypeError(`${call}: localAddr applies to connectStream only`);
    }
    checkObject(`${call}: localAddr`, o.localAddr);
    const local = o.localAddr as { hostname?: unknown; port?: unknown };
    if (local.hostname !== undefined && typeof local.hostname !== "string") {
      throw new TypeError(`${call}: localAddr.hostname must be a string`);
    }
    const port = local.port === undefined ? 0 : checkPort(`${call}: localAddr: port`, local.port);
    tuning.localAddr = { hostname: local.hostname as string | undefined, port };
  }
  return tuning;
}

/**
 * A connected pair of Unix stream sockets (`socketpair(AF_UNIX,
 * SOCK_STREAM)`), FFI-backed: a bidirectional byte pipe that can carry
 * descriptors, for example to a child process. Both addresses are unnamed
 * (`path: ""`). Requires `--allow-ffi` only.
 *
 * @returns The two ends.
 * @throws {Deno.errors.NotCapable} Without `--allow-ffi`.
 * @throws {Error} When the process is out of descriptors (`EMFILE`).
 *
 * @example Bytes one way, the answer back
 * ```ts
 * import { streamPair } from "@bsd/sockets/stream";
 *
 * const [a, b] = streamPair();
 * await a.write(new TextEncoder().encode("ping"));
 * const buf = new Uint8Array(4);
 * const n = await b.read(buf);
 * console.log(new TextDecoder().decode(buf.subarray(0, n ?? 0))); // "ping"
 * a.close();
 * b.close();
 * ```
 */
export function streamPair(): [StreamConn<UnixAddr>, StreamConn<UnixAddr>] {
  const [a, b] = pairFfi();
  return [new StreamConn<UnixAddr>(a), new StreamConn<UnixAddr>(b)];
}

// fromFd: a stream descriptor becomes an FFI-backed listener or connection.
registerAdopter({
  matches: (d) => d.kind === "stream" && d.family !== "packet" && d.family !== "netlink",
  adopt: adoptStream,
});

function adoptStream(d: DescribedFd): StreamListener | StreamConn {
  const decode = decoderFor(d.family === "unix");
  const local = FdSocket.nameOf(d.fd, "getsockname", decode)!;
  if (d.listening) {
    requireStream(local);
    d.take();
    const socket = new FdSocket<StreamAddr>(d.fd, { label: describeAddress(local) });
    // The socket file belongs to whoever bound it (systemd, a parent): it stays.
    return new StreamListener(ffiListener(socket, local, null));
  }
  const remote = FdSocket.nameOf(d.fd, "getpeername", decode);
  if (remote === null) {
    throw new Deno.errors.NotConnected(
      `fromFd fd ${d.fd}: a ${d.family} stream socket neither listening nor connected`,
    );
  }
  // What connect would ask for the named end; an unnamed pair asks nothing more.
  const named = "path" in remote && remote.path === "" ? local : remote;
  requireStream(named);
  d.take();
  const socket = new FdSocket<StreamAddr>(d.fd, { label: describeAddress(named) });
  return new StreamConn(new FfiByteEngine(socket, local, remote, peerPermit(named)));
}
