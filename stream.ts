/**
 * Stream sockets (`SOCK_STREAM`): TCP and Unix stream connections.
 *
 * A thin layer over Deno's built-in `Deno.listen` and `Deno.connect` that
 * gives them the shape every socket type of this package shares: `Reader`,
 * `Writer` and `Closer`, checked arguments, errors that name the call and the
 * address, `AbortSignal` on `connect` and `accept`, and a Unix listener that
 * removes its own socket file, and only its own, when it closes.
 *
 * Permissions, as Deno asks them for its own sockets: `--allow-net` for TCP;
 * for a Unix path, `--allow-read` and `--allow-write` of the path and
 * `--allow-net=unix:<absolute path>` (or plain `--allow-net`); for an abstract
 * Unix name (leading `"\0"`), unscoped `--allow-net`.
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

import type { Closer, NetAddr, Reader, UnixAddr, Writer } from "./types.ts";
import { checkBuffer } from "./ffi/buffers.ts";
import { checkSignal } from "./_checks.ts";
import { closedError, describeAddress, withContext } from "./ffi/errors.ts";
import { checkPort, checkUnixPath } from "./ffi/sockaddr.ts";
import {
  isOwnSocketFile,
  type OwnedSocketFile,
  ownSocketFile,
  removeOwnSocketFile,
} from "./_socket_file.ts";

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
  #conn: Deno.Conn;
  #localAddr: A;
  #remoteAddr: A;
  #label: string;
  #readWhat: string;
  #writeWhat: string;
  #closed = false;

  /**
   * Wraps a connected `Deno.Conn` (TCP or Unix). Normally you get a
   * `StreamConn` from {@linkcode connectStream} or
   * {@linkcode StreamListener.accept}; this is for a connection Deno made
   * some other way. The `StreamConn` owns it from then on.
   *
   * @param conn A TCP or Unix connection that is not used elsewhere.
   * @throws {TypeError} When `conn` is neither TCP nor Unix.
   */
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.#localAddr = toAddr(conn.localAddr) as A;
    this.#remoteAddr = toAddr(conn.remoteAddr) as A;
    // A server-side Unix connection has an unnamed peer: name the socket file instead.
    const named = "path" in this.#remoteAddr && this.#remoteAddr.path === ""
      ? this.#localAddr
      : this.#remoteAddr;
    this.#label = describeAddress(named);
    this.#readWhat = `read ${this.#label}`;
    this.#writeWhat = `write ${this.#label}`;
  }

  /** The address of this end of the connection (`path: ""` for an unnamed Unix client). */
  get localAddr(): A {
    return this.#localAddr;
  }

  /** The address of the peer (`path: ""` when a Unix peer is unnamed). */
  get remoteAddr(): A {
    return this.#remoteAddr;
  }

  /**
   * The bytes received, as a Web stream: Deno's own stream for this
   * connection. When it ends (end of stream, or cancelled) Deno closes the
   * whole connection, so after a half-close use `read` to keep writing.
   */
  get readable(): ReadableStream<Uint8Array> {
    return this.#conn.readable;
  }

  /**
   * A Web stream that sends what is written to it: Deno's own stream for
   * this connection. Closing it closes the whole connection, not only the
   * sending side (that is `closeWrite()`).
   */
  get writable(): WritableStream<Uint8Array> {
    return this.#conn.writable;
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
      checkBuffer(p, this.#readWhat);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.#closed) return Promise.resolve(null);
    return this.#conn.read(p).catch(this.#readFailed);
  }

  /**
   * Writes all of `p`. Unlike `Deno.Conn.write`, it never stops part way: it
   * resolves once every byte has been handed to the kernel.
   *
   * @param p The bytes: a `Uint8Array` over a fixed-length, non-shared
   * `ArrayBuffer`.
   * @returns `p.length`.
   * @throws {TypeError} For a buffer that is not such a `Uint8Array`.
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
    try {
      checkBuffer(p, this.#writeWhat);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.#closed) return Promise.reject(closedError("write", this.#label));
    return this.#conn.write(p).then(
      (n) => n === p.length ? n : this.#writeRest(p, n),
      this.#writeFailed,
    );
  }

  async #writeRest(p: Uint8Array, done: number): Promise<number> {
    while (done < p.length) {
      if (this.#closed) throw closedError("write", this.#label);
      try {
        done += await this.#conn.write(p.subarray(done));
      } catch (err) {
        this.#writeFailed(err);
      }
    }
    return done;
  }

  #readFailed = (err: unknown): null => {
    if (this.#closed) return null;
    throw withContext(err, "read", this.#label);
  };

  #writeFailed = (err: unknown): never => {
    if (this.#closed) throw closedError("write", this.#label);
    throw withContext(err, "write", this.#label);
  };

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
    if (this.#closed) return Promise.reject(closedError("closeWrite", this.#label));
    return this.#conn.closeWrite().catch((err) => {
      throw this.#closed
        ? closedError("closeWrite", this.#label)
        : withContext(err, "closeWrite", this.#label);
    });
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
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Deno already closed it: its readable stream closes the connection at end of stream.
    }
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
    if (!this.#closed) this.#conn.ref();
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
    if (!this.#closed) this.#conn.unref();
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
    this.#tcp("setNoDelay").setNoDelay(on);
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
    this.#tcp("setKeepAlive").setKeepAlive(on);
  }

  #tcp(call: string): Deno.TcpConn {
    if (this.#localAddr.transport !== "tcp") {
      throw new Deno.errors.NotSupported(
        `${call} ${this.#label}: not supported on a Unix stream socket, only on TCP`,
      );
    }
    if (this.#closed) throw closedError(call, this.#label);
    return this.#conn as Deno.TcpConn;
  }
}

type Settled<A extends NetAddr | UnixAddr> =
  | { ok: true; conn: StreamConn<A> }
  | { ok: false; error: unknown };

interface Waiter<A extends NetAddr | UnixAddr> {
  resolve(conn: StreamConn<A>): void;
  reject(err: unknown): void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

let keepCounter = 0;

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
  #listener: Deno.Listener;
  #addr: A;
  #label: string;
  #closed = false;
  #userRef = true;
  // One Deno accept at a time; its result goes to the oldest waiter, or is
  // kept for the next accept() when every waiter gave up (aborted).
  #inflight: Promise<void> | null = null;
  #waiters: Waiter<A>[] = [];
  #ready: Settled<A>[] = [];
  // The socket file this listener created (null for TCP and abstract names):
  // the path as Deno holds it (a relative one resolves against the cwd of
  // the moment), and the file itself, remembered by its absolute name.
  #path: string | null = null;
  #owned: OwnedSocketFile | null = null;

  /**
   * Wraps a listening `Deno.Listener` (TCP or Unix). Normally you get a
   * `StreamListener` from {@linkcode listenStream}; this is for a listener
   * Deno made some other way, taken over as it is: a Unix listener takes the
   * file now at its path as its own.
   *
   * @param listener A TCP or Unix listener that is not used elsewhere.
   * @throws {TypeError} When `listener` is neither TCP nor Unix.
   */
  constructor(listener: Deno.Listener) {
    this.#listener = listener;
    this.#addr = toAddr(listener.addr) as A;
    this.#label = describeAddress(this.#addr);
    if ("path" in this.#addr && this.#addr.path !== "" && !this.#addr.path.startsWith("\0")) {
      this.#path = this.#addr.path;
      // Already gone (null): whatever appears there later is not ours.
      this.#owned = ownSocketFile(this.#path);
    }
  }

  /** The address this listener is bound to (with the real port when `port: 0` was asked). */
  get addr(): A {
    return this.#addr;
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
    if (this.#closed) return Promise.reject(closedError("accept", this.#label));
    if (signal?.aborted) return Promise.reject(signal.reason);
    const ready = this.#ready.shift();
    if (ready) return ready.ok ? Promise.resolve(ready.conn) : Promise.reject(ready.error);
    return new Promise<StreamConn<A>>((resolve, reject) => {
      const waiter: Waiter<A> = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const i = this.#waiters.indexOf(waiter);
          if (i === -1) return;
          this.#waiters.splice(i, 1);
          this.#syncRef();
          reject(signal!.reason);
        },
      };
      this.#waiters.push(waiter);
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
      this.#pump();
      this.#syncRef();
    });
  }

  #pump(): void {
    if (this.#inflight !== null || this.#closed || this.#waiters.length === 0) return;
    this.#inflight = this.#listener.accept().then(
      (conn) => {
        this.#inflight = null;
        this.#deliver({ ok: true, conn: new StreamConn<A>(conn) });
      },
      (err) => {
        this.#inflight = null;
        const error = this.#closed
          ? closedError("accept", this.#label)
          : withContext(err, "accept", this.#label);
        this.#deliver({ ok: false, error });
      },
    );
  }

  #deliver(result: Settled<A>): void {
    if (this.#closed) {
      // Every waiter was already told; nobody can ask for this connection any more.
      if (result.ok) result.conn.close();
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter === undefined) {
      this.#ready.push(result);
      return;
    }
    waiter.signal?.removeEventListener("abort", waiter.onAbort);
    if (result.ok) waiter.resolve(result.conn);
    else waiter.reject(result.error);
    this.#pump();
    this.#syncRef();
  }

  // A pending Deno accept keeps the process alive only while someone waits
  // for it: after an aborted accept nobody does, and the program may end.
  #syncRef(): void {
    if (this.#closed) return;
    if (this.#userRef && this.#waiters.length > 0) this.#listener.ref();
    else this.#listener.unref();
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
  async *[Symbol.asyncIterator](): AsyncIterableIterator<StreamConn<A>> {
    while (true) {
      let conn: StreamConn<A>;
      try {
        conn = await this.accept();
      } catch (err) {
        if (this.#closed) return;
        throw err;
      }
      yield conn;
    }
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
    if (this.#closed) return;
    this.#closed = true;
    // Deno unlinks the path it listened on when its listener is dropped,
    // whatever file is there by then; keep a foreign file under a second
    // name while that happens, then put its name back.
    const restore = this.#keepForeignFile();
    try {
      this.#listener.close();
    } catch {
      // Already closed through the Deno.Listener itself.
    }
    const afterDrop = (): void => {
      restore?.();
      this.#removeOwnFile();
    };
    // With an accept in flight, Deno drops the listener when that accept settles.
    if (this.#path !== null) {
      if (this.#inflight === null) afterDrop();
      else this.#inflight.finally(afterDrop);
    }
    for (const waiter of this.#waiters.splice(0)) {
      waiter.signal?.removeEventListener("abort", waiter.onAbort);
      waiter.reject(closedError("accept", this.#label));
    }
    for (const result of this.#ready.splice(0)) if (result.ok) result.conn.close();
  }

  #keepForeignFile(): (() => void) | null {
    if (this.#path === null) return null;
    const path = this.#path;
    let st: Deno.FileInfo;
    try {
      st = Deno.lstatSync(path);
    } catch {
      return null;
    }
    if (isOwnSocketFile(st, this.#owned)) return null;
    const keep = `${path}.${Deno.pid}-${++keepCounter}.keep`;
    try {
      Deno.linkSync(path, keep);
    } catch {
      // Without write access to the directory the foreign file cannot be
      // kept; Deno will remove it (documented on listenStream).
      return null;
    }
    return () => {
      try {
        Deno.linkSync(keep, path);
      } catch {
        // Someone bound the path again in the meantime: theirs stays.
      }
      try {
        Deno.removeSync(keep);
      } catch { /* already gone */ }
    };
  }

  // Deno removed the relative path against the cwd of the moment: after a
  // chdir that was not our file, and ours is still where we made it. (An
  // absolute path Deno removed itself: then ours is gone already.)
  #removeOwnFile(): void {
    removeOwnSocketFile(this.#owned);
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
    this.#userRef = true;
    this.#syncRef();
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
    this.#userRef = false;
    this.#syncRef();
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
 * `AddrInUse` and is left untouched.
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
  let listener: Deno.Listener;
  try {
    listener = target.path === undefined
      ? Deno.listen({ hostname: target.hostname, port: target.port })
      : Deno.listen({ transport: "unix", path: target.path });
  } catch (err) {
    throw withContext(err, "listen", target.label);
  }
  return new StreamListener(listener);
}

/**
 * Connects a stream socket: TCP for `{ hostname?, port }`, Unix for
 * `{ path }`.
 *
 * Requires `--allow-net` for TCP; for a Unix path, `--allow-read` and
 * `--allow-write` of the path and `--allow-net=unix:<absolute path>` (or
 * `--allow-net`); for an abstract name, `--allow-net`. `hostname` defaults
 * to `"127.0.0.1"`, as for `Deno.connect`.
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
  try {
    // Deno cancels its own TCP connect on abort; a Unix connect it cannot
    // cancel, so that one is raced and a late connection closed.
    const conn = target.path === undefined
      ? await Deno.connect({ hostname: target.hostname, port: target.port, signal })
      : await abandonable(Deno.connect({ transport: "unix", path: target.path }), signal);
    return new StreamConn(conn);
  } catch (err) {
    if (signal?.aborted && err === signal.reason) throw err;
    throw withContext(err, "connect", target.label);
  }
}

function abandonable(
  connecting: Promise<Deno.Conn>,
  signal: AbortSignal | undefined,
): Promise<Deno.Conn> {
  if (signal === undefined) return connecting;
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      connecting.then((conn) => conn.close(), () => {});
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    connecting.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

type Target =
  | { path: undefined; hostname: string; port: number; label: string }
  | { path: string; label: string };

function checkTarget(options: unknown, call: string, defaultHost: string): Target {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${call}: options must be an object with a port or a path`);
  }
  const o = options as { hostname?: unknown; port?: unknown; path?: unknown };
  if (o.path !== undefined) {
    if (o.port !== undefined || o.hostname !== undefined) {
      throw new TypeError(`${call}: give either a path or a hostname and port, not both`);
    }
    checkUnixPath(o.path, false, call);
    const path = o.path as string;
    const label = describeAddress({ path });
    if (path.startsWith("\0") && /[^\0-\x7f]/.test(path)) {
      throw new Deno.errors.NotSupported(
        `${call} ${label}: an abstract name for a stream socket must be ASCII, ` +
          `since Deno passes it as UTF-8; seqpacket sockets take any bytes`,
      );
    }
    return { path, label };
  }
  const port = checkPort(o.port, call);
  if (o.hostname !== undefined && typeof o.hostname !== "string") {
    throw new TypeError(`${call}: hostname must be a string, got ${typeof o.hostname}`);
  }
  const hostname = (o.hostname as string | undefined) ?? defaultHost;
  return { path: undefined, hostname, port, label: describeAddress({ hostname, port }) };
}

// The shared checks do not know the call; the message should name it.
function toAddr(addr: Deno.Addr): NetAddr | UnixAddr {
  if (addr.transport === "tcp") {
    return { transport: "tcp", hostname: addr.hostname, port: addr.port };
  }
  if (addr.transport === "unix") {
    // Deno reports an unnamed Unix socket as path null; this package says "".
    return { transport: "unix", path: (addr.path as string | null) ?? "" };
  }
  throw new TypeError(`a stream socket must be TCP or Unix, got ${addr.transport}`);
}
