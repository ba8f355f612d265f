// The FFI engine of stream.ts: TCP and Unix stream sockets opened, bound,
// connected and accepted on FdSocket, and the Web streams over its bytes.
// Private to the package; stream.ts wraps what this returns in its classes.

import type { NetAddr, UnixAddr } from "../types.ts";
import { peerPermit, type Permit, requireNet, requireUnix } from "../ffi/permissions.ts";
import { decodeInet, decodeUnix, encodeInet, encodeUnix, ipFamily } from "../ffi/sockaddr.ts";
import { FdSocket } from "../ffi/socket.ts";
import { describeAddress } from "../ffi/errors.ts";
import { applyBufferSizes, type BufferSizes } from "./buffer_sizes.ts";
import { type OwnedSocketFile, ownSocketFile, removeOwnSocketFile } from "../_socket_file.ts";

/** The FFI backend's open-time options, checked (only those given are present). */
export interface OpenTuning {
  backlog?: number;
  reusePort?: boolean;
  localAddr?: { hostname: string | undefined; port: number };
}

/** Where a stream socket listens or connects, checked. */
export type StreamTarget =
  & (
    | { path: undefined; hostname: string; port: number; label: string }
    | { path: string; label: string }
  )
  & { sizes?: BufferSizes }
  & OpenTuning;

/** A stream socket's address in this package's shape. */
export type StreamAddr = NetAddr | UnixAddr;

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

/** The permit of what connecting to `target` asks, for the connection to keep. */
export function targetPermit(target: StreamTarget): Permit {
  return target.path !== undefined
    ? peerPermit({ path: target.path })
    : peerPermit({ hostname: target.hostname, port: target.port });
}

function requireTarget(target: StreamTarget): void {
  if (target.path !== undefined) requireUnix(target.path);
  else requireNet(target.hostname, target.port);
}

/** A bound, listening socket, its address, and the socket file it created. */
export interface Listening {
  socket: FdSocket<StreamAddr>;
  addr: StreamAddr;
  file: OwnedSocketFile | null;
}

/** `socket`, `bind`, `listen`: the FFI half of listenStream. */
export function listenFfi(target: StreamTarget): Listening {
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
    return { socket, addr, file };
  } catch (err) {
    removeOwnSocketFile(file);
    socket.close();
    throw err;
  }
}

/** A connected socket and both its addresses. */
export interface Connected {
  socket: FdSocket<StreamAddr>;
  local: StreamAddr;
  remote: StreamAddr;
}

/** `socket`, `connect` through the engine: the FFI half of connectStream. */
export async function connectFfi(
  target: StreamTarget,
  signal: AbortSignal | undefined,
): Promise<Connected> {
  const { address, family } = encodeTarget(target);
  const bindTo = target.localAddr && localAddress(target.localAddr, family, target.label);
  requireTarget(target);
  if (bindTo) requireNet(bindTo.hostname, bindTo.port);
  const socket = FdSocket.open<StreamAddr>(family, "stream", 0, { label: target.label });
  try {
    if (bindTo) socket.bind(bindTo.address, describeAddress(bindTo));
    if (target.sizes) applyBufferSizes(socket, target.sizes);
    await socket.connect(address, target.label, signal);
    const unix = target.path !== undefined;
    const local = socket.localAddress(decoderFor(unix));
    const remote: StreamAddr = unix
      ? { transport: "unix", path: target.path }
      : socket.peerAddress(decodeTcp);
    return { socket, local, remote };
  } catch (err) {
    socket.close();
    throw err;
  }
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
export function acceptedFfi(fd: number, listener: StreamAddr, label: string): Connected {
  const socket = new FdSocket<StreamAddr>(fd, { label });
  try {
    const unix = "path" in listener;
    const local = unix ? listener : socket.localAddress(decodeTcp);
    return { socket, local, remote: socket.peerAddress(decoderFor(unix)) };
  } catch (err) {
    socket.close();
    throw err;
  }
}

/** The size of each chunk a readable stream reads. */
const CHUNK = 16384;

/**
 * The bytes `read` returns as a Web stream that reads only when asked
 * (`highWaterMark: 0`), so that holding it takes nothing from `read`. It
 * closes the connection when it ends or is cancelled, as Deno's own does.
 */
export function readableFrom(
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
export function writableTo(
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
