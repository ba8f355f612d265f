// The FFI stream engines: TCP and Unix stream sockets opened, bound,
// connected, accepted and paired on FdSocket; `FfiByteEngine` over one
// connection, with the Web streams over its bytes. Private to the package;
// stream.ts wraps what this returns.

import type { NetAddr, PeerCredentials, TcpInfo, UnixAddr } from "../types.ts";
import { NO_CHECK, peerPermit, type Permit, requireNet, requireUnix } from "../ffi/permissions.ts";
import { decodeInet, decodeUnix, encodeInet, encodeUnix, ipFamily } from "../ffi/sockaddr.ts";
import { FdSocket } from "../ffi/socket.ts";
import { describeAddress } from "../ffi/errors.ts";
import { applyBufferSizes } from "./buffer_sizes.ts";
import { type OwnedSocketFile, ownSocketFile, removeOwnSocketFile } from "./socket_file.ts";
import {
  type ByteEngine,
  type ByteExtras,
  labelFor,
  type ReceivedBytes,
  type StreamAddr,
  type StreamTarget,
  targetPermit,
} from "./byte_engine.ts";
import { ENGINE } from "./engine.ts";
import { FfiListenerEngine } from "./ffi_listener.ts";
import { tcpInfoOf } from "./options.ts";

/** A TCP address (IPv4 or IPv6) from a sockaddr. */
function decodeTcp(name: Uint8Array, length: number): NetAddr {
  return decodeInet(name, length, "tcp");
}

/** A Unix stream address from a sockaddr_un (`path: ""` when unnamed). */
export function decodeUnixStream(name: Uint8Array, length: number): UnixAddr {
  return decodeUnix(name, length, "unix");
}

/** The decoder for a socket's family. */
export function decoderFor(unix: boolean): (name: Uint8Array, length: number) => StreamAddr {
  return unix ? decodeUnixStream : decodeTcp;
}

/** The sockaddr and family of a target, checked before any system call. */
function encodeTarget(
  target: StreamTarget,
): { address: Uint8Array; family: "unix" | "ipv4" | "ipv6" } {
  if (target.path !== undefined) return { address: encodeUnix(target.path), family: "unix" };
  return {
    address: encodeInet(target.hostname, target.port),
    family: ipFamily(target.hostname),
  };
}

/** What the built-ins ask to listen on or connect to `addr`. */
export function requireStream(addr: StreamAddr): void {
  if ("path" in addr) requireUnix(addr.path);
  else requireNet(addr.hostname, addr.port);
}

function requireTarget(target: StreamTarget): void {
  if (target.path !== undefined) requireUnix(target.path);
  else requireNet(target.hostname, target.port);
}

/** `socket`, `bind`, `listen`: the FFI engine of listenStream. */
export function listenFfi(target: StreamTarget): FfiListenerEngine<StreamAddr, ByteEngine> {
  const { address, family } = encodeTarget(target);
  requireTarget(target);
  const socket = FdSocket.open<StreamAddr>(family, "stream", 0, { label: target.label });
  let file: OwnedSocketFile | null = null;
  try {
    // As Deno.listen does: a restarted server may bind while old connections linger.
    if (target.path === undefined) socket.setOption("reuseAddress", true);
    if (target.reusePort) socket.setOption("reusePort", true);
    if (target.sizes) applyBufferSizes(socket, target.sizes);
    socket.bind(address);
    if (target.path !== undefined) file = ownSocketFile(target.path);
    socket.listen(target.backlog);
    const addr: StreamAddr = target.path === undefined
      ? socket.localAddress(decodeTcp)
      : { transport: "unix", path: target.path };
    return ffiListener(socket, addr, file);
  } catch (err) {
    removeOwnSocketFile(file);
    socket.close();
    throw err;
  }
}

/**
 * The engine of a listening socket: each accepted connection keeps asking
 * what listening on `addr` asked.
 */
export function ffiListener(
  socket: FdSocket<StreamAddr>,
  addr: StreamAddr,
  file: OwnedSocketFile | null,
): FfiListenerEngine<StreamAddr, ByteEngine> {
  const permit = peerPermit(addr);
  return new FfiListenerEngine(socket, addr, file, (fd) => accepted(fd, addr, socket, permit));
}

/**
 * `socket`, `connect` through the engine: the FFI engine of connectStream.
 * An abort that comes after a connect completed at once still wins.
 */
export async function connectFfi(
  target: StreamTarget,
  signal: AbortSignal | undefined,
): Promise<FfiByteEngine> {
  const { address, family } = encodeTarget(target);
  const bindTo = target.localAddr && localAddress(target.localAddr, family, target.label);
  requireTarget(target);
  if (bindTo) requireNet(bindTo.hostname, bindTo.port);
  const socket = FdSocket.open<StreamAddr>(family, "stream", 0, { label: target.label });
  let engine: FfiByteEngine;
  try {
    if (bindTo) socket.bind(bindTo.address, describeAddress(bindTo));
    if (target.sizes) applyBufferSizes(socket, target.sizes);
    await socket.connect(address, target.label, signal);
    const unix = target.path !== undefined;
    const local = socket.localAddress(decoderFor(unix));
    const remote: StreamAddr = unix
      ? { transport: "unix", path: target.path }
      : socket.peerAddress(decodeTcp);
    engine = new FfiByteEngine(socket, local, remote, targetPermit(target));
  } catch (err) {
    socket.close();
    throw err;
  }
  if (signal?.aborted) {
    engine.close();
    throw signal.reason;
  }
  return engine;
}

/** The sockaddr to bind before connecting, of the target's family. */
function localAddress(
  local: { hostname: string | undefined; port: number },
  family: "unix" | "ipv4" | "ipv6",
  label: string,
): { address: Uint8Array; hostname: string; port: number } {
  const hostname = local.hostname ?? (family === "ipv6" ? "::" : "0.0.0.0");
  if (family === "unix" || ipFamily(hostname) !== family) {
    throw new TypeError(
      `connect ${label}: localAddr ${JSON.stringify(hostname)} is not of the target's family`,
    );
  }
  return { address: encodeInet(hostname, local.port), hostname, port: local.port };
}

/** Adopts a descriptor `accept4` returned; the listener's address is this end's for Unix. */
function accepted(
  fd: number,
  listener: StreamAddr,
  from: FdSocket<StreamAddr>,
  permit: Permit,
): FfiByteEngine {
  const socket = new FdSocket<StreamAddr>(fd, { label: from.label });
  try {
    const unix = "path" in listener;
    const local = unix ? listener : socket.localAddress(decodeTcp);
    return new FfiByteEngine(socket, local, socket.peerAddress(decoderFor(unix)), permit);
  } catch (err) {
    socket.close();
    throw err;
  }
}

const UNNAMED: UnixAddr = Object.freeze({ transport: "unix", path: "" });

/** `socketpair(AF_UNIX, SOCK_STREAM)`: two engines, both unnamed. */
export function pairFfi(): [FfiByteEngine, FfiByteEngine] {
  const [a, b] = FdSocket.pair<StreamAddr>("stream", { label: describeAddress(UNNAMED) });
  return [new FfiByteEngine(a, UNNAMED, UNNAMED), new FfiByteEngine(b, UNNAMED, UNNAMED)];
}

/** A connection's bytes on an FdSocket: every call a byte engine has, extras included. */
export class FfiByteEngine implements ByteEngine, ByteExtras {
  readonly [ENGINE] = "bytes" as const;
  readonly backend = "ffi" as const;
  readonly socket: FdSocket<StreamAddr>;
  readonly localAddr: StreamAddr;
  readonly remoteAddr: StreamAddr;
  readonly label: string;
  readonly permit: Permit;
  #readable: ReadableStream<Uint8Array> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;

  /**
   * @param socket The connected socket, owned from now on.
   * @param local This end's address.
   * @param remote The peer's.
   * @param permit What the connection was made with (nothing: not checked again).
   */
  constructor(
    socket: FdSocket<StreamAddr>,
    local: StreamAddr,
    remote: StreamAddr,
    permit: Permit = NO_CHECK,
  ) {
    this.socket = socket;
    this.localAddr = local;
    this.remoteAddr = remote;
    this.permit = permit;
    this.label = socket.label = labelFor(local, remote);
  }

  get fd(): number | null {
    return this.socket.closed ? null : this.socket.fd;
  }

  get closed(): boolean {
    return this.socket.closed;
  }

  read(p: Uint8Array): Promise<number | null> {
    // 0 bytes from read(2) would mean end of stream.
    if (p.length === 0) return Promise.resolve(this.socket.closed ? null : 0);
    return this.socket.readInto(p);
  }

  write(p: Uint8Array, call: "write" | "send"): Promise<number> {
    return this.socket.sendAll(p, undefined, call);
  }

  closeWrite(): Promise<void> {
    try {
      this.socket.shutdown("write");
    } catch (err) {
      return Promise.reject(err);
    }
    return Promise.resolve();
  }

  setNoDelay(on: boolean): void {
    this.socket.setOption("tcpNoDelay", on);
  }

  setKeepAlive(on: boolean): void {
    this.socket.setOption("keepAlive", on);
  }

  get readable(): ReadableStream<Uint8Array> {
    return this.#readable ??= readableFrom((p) => this.read(p), () => this.close());
  }

  get writable(): WritableStream<Uint8Array> {
    return this.#writable ??= writableTo((p) => this.write(p, "write"), () => this.close());
  }

  ref(): void {
    if (!this.socket.closed) this.socket.ref();
  }

  unref(): void {
    if (!this.socket.closed) this.socket.unref();
  }

  close(): void {
    this.socket.close();
  }

  extras(_call: string): ByteExtras {
    return this;
  }

  sendWithFds(data: Uint8Array, fds: number[]): Promise<number> {
    return this.socket.sendAll(data, fds, "send");
  }

  receive(
    maxSize: number,
    signal: AbortSignal | undefined,
    peek: boolean,
  ): Promise<ReceivedBytes | null> {
    if (peek) return this.socket.peekStream(maxSize, signal).then((data) => data && { data });
    return this.socket.receiveStream(maxSize, signal).then((r) => {
      if (r === null) return null;
      const m: ReceivedBytes = { data: r.data };
      if (r.fds) m.fds = r.fds;
      if (r.controlTruncated) m.controlTruncated = true;
      return m;
    });
  }

  peerCredentials(): PeerCredentials {
    return this.socket.getOption("peerCredentials");
  }

  tcpInfo(): TcpInfo {
    return tcpInfoOf(this.socket, this.label);
  }
}

/** The size of each chunk a readable stream reads. */
const CHUNK = 16384;

/**
 * The bytes `read` returns as a Web stream that reads only when asked
 * (`highWaterMark: 0`), so that holding it takes nothing from `read`. It
 * closes the connection when it ends or is cancelled, as Deno's own does.
 */
function readableFrom(
  read: (p: Uint8Array) => Promise<number | null>,
  close: () => void,
): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const buf = new Uint8Array(CHUNK);
      let n: number | null;
      try {
        n = await read(buf);
      } catch (err) {
        close();
        controller.error(err);
        return;
      }
      if (n === null) {
        close();
        controller.close();
      } else controller.enqueue(buf.subarray(0, n));
    },
    cancel: close,
  }, { highWaterMark: 0 });
}

/** A Web stream that writes each chunk with `write`; closing it closes the connection. */
function writableTo(
  write: (p: Uint8Array) => Promise<number>,
  close: () => void,
): WritableStream<Uint8Array> {
  return new WritableStream<Uint8Array>({
    async write(chunk) {
      await write(chunk);
    },
    close,
    abort: close,
  });
}
