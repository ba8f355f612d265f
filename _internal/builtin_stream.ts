// The built-in byte engine and stream listener engine: Deno's own Deno.Conn
// and Deno.Listener (TCP and Unix), and Deno.listen/Deno.connect opening
// them. They have no descriptor: `extras` is where they say so. Private to
// the package; stream.ts wraps what this returns.

import type { NetAddr, UnixAddr } from "../types.ts";
import { closedError, describeAddress, withContext } from "../ffi/errors.ts";
import { NO_CHECK, peerPermit, type Permit } from "../ffi/permissions.ts";
import {
  isOwnSocketFile,
  type OwnedSocketFile,
  ownSocketFile,
  removeOwnSocketFile,
} from "./socket_file.ts";
import {
  type ByteEngine,
  type ByteExtras,
  labelFor,
  type StreamAddr,
  type StreamListenerEngine,
  type StreamTarget,
  targetPermit,
} from "./byte_engine.ts";
import { ENGINE } from "./engine.ts";
import { needsFfiBackend } from "./options.ts";

/** A Deno address as this package gives it; throws for anything but TCP and Unix. */
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

/** A Deno.Conn as a byte engine. */
export class BuiltinByteEngine implements ByteEngine {
  readonly [ENGINE] = "bytes" as const;
  readonly backend = "builtin" as const;
  readonly fd = null;
  readonly localAddr: StreamAddr;
  readonly remoteAddr: StreamAddr;
  readonly label: string;
  readonly permit: Permit;
  readonly #conn: Deno.Conn;
  #closed = false;

  /**
   * @param conn A TCP or Unix connection, owned from now on.
   * @param permit What it was made with (nothing: not checked again).
   * @throws {TypeError} When `conn` is neither TCP nor Unix.
   */
  constructor(conn: Deno.Conn, permit: Permit = NO_CHECK) {
    this.#conn = conn;
    this.localAddr = toAddr(conn.localAddr);
    this.remoteAddr = toAddr(conn.remoteAddr);
    this.label = labelFor(this.localAddr, this.remoteAddr);
    this.permit = permit;
  }

  get closed(): boolean {
    return this.#closed;
  }

  read(p: Uint8Array): Promise<number | null> {
    if (this.#closed) return Promise.resolve(null);
    return this.#conn.read(p).catch(this.#readFailed);
  }

  write(p: Uint8Array, call: "write" | "send"): Promise<number> {
    return this.#conn.write(p).then(
      (n) => n === p.length ? n : this.#writeRest(p, n, call),
      (err) => this.#writeFailed(err, call),
    );
  }

  // Deno.Conn.write may stop part way; the contract is all of it.
  async #writeRest(p: Uint8Array, done: number, call: "write" | "send"): Promise<number> {
    while (done < p.length) {
      if (this.#closed) throw closedError(call, this.label);
      try {
        done += await this.#conn.write(p.subarray(done));
      } catch (err) {
        this.#writeFailed(err, call);
      }
    }
    return done;
  }

  #readFailed = (err: unknown): null => {
    if (this.#closed) return null;
    throw withContext(err, "read", this.label);
  };

  #writeFailed(err: unknown, call: string): never {
    if (this.#closed) throw closedError(call, this.label);
    throw withContext(err, call, this.label);
  }

  closeWrite(): Promise<void> {
    return this.#conn.closeWrite().catch((err) => {
      throw this.#closed
        ? closedError("closeWrite", this.label)
        : withContext(err, "closeWrite", this.label);
    });
  }

  setNoDelay(on: boolean): void {
    (this.#conn as Deno.TcpConn).setNoDelay(on);
  }

  setKeepAlive(on: boolean): void {
    (this.#conn as Deno.TcpConn).setKeepAlive(on);
  }

  /** Deno's own stream: when it ends, Deno closes the whole connection. */
  get readable(): ReadableStream<Uint8Array> {
    return this.#conn.readable;
  }

  get writable(): WritableStream<Uint8Array> {
    return this.#conn.writable;
  }

  ref(): void {
    if (!this.#closed) this.#conn.ref();
  }

  unref(): void {
    if (!this.#closed) this.#conn.unref();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Deno already closed it: its readable stream closes the connection at end of stream.
    }
  }

  /** Deno's connections have no descriptor to pass, receive with, or ask. */
  extras(call: string): ByteExtras {
    throw needsFfiBackend(call, this.label);
  }
}

let keepCounter = 0;

/** A Deno.Listener as a stream listener engine. */
export class BuiltinListenerEngine implements StreamListenerEngine {
  readonly [ENGINE] = "listener" as const;
  readonly backend = "builtin" as const;
  readonly fd = null;
  readonly addr: StreamAddr;
  readonly #listener: Deno.Listener;
  readonly #label: string;
  /** What listening here asked, which each accepted connection keeps asking. */
  readonly #permit: Permit;
  // The socket file this listener created (null for TCP and abstract names):
  // the path as Deno holds it (a relative one resolves against the cwd of
  // the moment), and the file itself, remembered by its absolute name.
  readonly #path: string | null = null;
  readonly #owned: OwnedSocketFile | null = null;
  /** Settles when the Deno accept in flight does. */
  #inflight: Promise<void> | null = null;
  #closed = false;

  /**
   * Takes `listener` over as it is: a Unix listener takes the file now at
   * its path as its own.
   *
   * @param listener A TCP or Unix listener, owned from now on.
   * @throws {TypeError} When `listener` is neither TCP nor Unix.
   */
  constructor(listener: Deno.Listener) {
    this.#listener = listener;
    this.addr = toAddr(listener.addr);
    this.#label = describeAddress(this.addr);
    if ("path" in this.addr && this.addr.path !== "" && !this.addr.path.startsWith("\0")) {
      this.#path = this.addr.path;
      // Already gone (null): whatever appears there later is not ours.
      this.#owned = ownSocketFile(this.#path);
    }
    this.#permit = peerPermit(this.addr);
  }

  accept(): Promise<ByteEngine> {
    const accepted = this.#listener.accept().then(
      (conn) => new BuiltinByteEngine(conn, this.#permit),
      (err) => {
        throw this.#closed
          ? closedError("accept", this.#label)
          : withContext(err, "accept", this.#label);
      },
    );
    const settled = accepted.then(() => {}, () => {});
    this.#inflight = settled;
    settled.then(() => {
      if (this.#inflight === settled) this.#inflight = null;
    });
    return accepted;
  }

  /** Deno's listeners have no descriptor to set options on. */
  extras(call: string): never {
    throw needsFfiBackend(call, this.#label);
  }

  ref(): void {
    if (!this.#closed) this.#listener.ref();
  }

  unref(): void {
    if (!this.#closed) this.#listener.unref();
  }

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
    // Deno removed the relative path against the cwd of the moment: after a
    // chdir that was not our file, and ours is still where we made it. (An
    // absolute path Deno removed itself: then ours is gone already.)
    const afterDrop = (): void => {
      restore?.();
      removeOwnSocketFile(this.#owned);
    };
    // With an accept in flight, Deno drops the listener when that accept settles.
    if (this.#path !== null) {
      if (this.#inflight === null) afterDrop();
      else this.#inflight.finally(afterDrop);
    }
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
}

/** `Deno.listen`: the built-in engine of listenStream. */
export function listenBuiltin(target: StreamTarget): BuiltinListenerEngine {
  let listener: Deno.Listener;
  try {
    listener = target.path === undefined
      ? Deno.listen({ hostname: target.hostname, port: target.port })
      : Deno.listen({ transport: "unix", path: target.path });
  } catch (err) {
    throw withContext(err, "listen", target.label);
  }
  return new BuiltinListenerEngine(listener);
}

/** `Deno.connect`: the built-in engine of connectStream. */
export async function connectBuiltin(
  target: StreamTarget,
  signal: AbortSignal | undefined,
): Promise<BuiltinByteEngine> {
  try {
    // Deno cancels its own TCP connect on abort; a Unix connect it cannot
    // cancel, so that one is raced and a late connection closed.
    const conn = target.path === undefined
      ? await Deno.connect({ hostname: target.hostname, port: target.port, signal })
      : await abandonable(Deno.connect({ transport: "unix", path: target.path }), signal);
    return new BuiltinByteEngine(conn, targetPermit(target));
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
