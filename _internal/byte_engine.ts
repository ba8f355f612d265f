// What `StreamConn` and `StreamListener` stand on: a byte engine (one
// connection's bytes) and a stream listener engine (its connections). The
// built-in ones wrap Deno.Conn and Deno.Listener (_internal/builtin_stream.ts),
// the FFI ones FdSocket (_internal/stream_ffi.ts, _internal/ffi_listener.ts).
// What only the FFI engine can do sits behind `extras(call)`: the built-in
// engine declares there, in one place, that it cannot, and the classes ask it.
// Private to the package.

import type { NetAddr, PeerCredentials, TcpInfo, UnixAddr } from "../types.ts";
import type { FdSocket } from "../ffi/socket.ts";
import { peerPermit, type Permit } from "../ffi/permissions.ts";
import { describeAddress } from "../ffi/errors.ts";
import type { Backend } from "./record_engine.ts";
import type { ListenerEngine } from "./accept_loop.ts";
import type { BufferSizes } from "./buffer_sizes.ts";
import type { Engine } from "./engine.ts";

/** A stream socket's address in this package's shape. */
export type StreamAddr = NetAddr | UnixAddr;

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

/** What `StreamConn.receive` resolves. */
export interface ReceivedBytes {
  data: Uint8Array;
  fds?: number[];
  controlTruncated?: boolean;
}

/** The calls only an engine with a descriptor of its own serves. */
export interface ByteExtras {
  /** The socket options, `tcpInfo` and the other descriptor calls go to. */
  readonly socket: FdSocket<unknown>;
  /** Writes all of `data` (at least 1 byte), `fds` with its first byte. */
  sendWithFds(data: Uint8Array, fds: number[]): Promise<number>;
  /** The bytes there are, up to `maxSize`, with their descriptors; `null` at end or closed. */
  receive(
    maxSize: number,
    signal: AbortSignal | undefined,
    peek: boolean,
  ): Promise<ReceivedBytes | null>;
  /** `SO_PEERCRED`. */
  peerCredentials(): PeerCredentials;
  /** `TCP_INFO`. */
  tcpInfo(): TcpInfo;
}

/**
 * One connection's bytes. Arguments arrive checked; every method may be
 * called after `close()`.
 */
export interface ByteEngine extends Engine<"bytes"> {
  readonly backend: Backend;
  /** The descriptor the engine owns; `null` on the built-in engine and once closed. */
  readonly fd: number | null;
  readonly closed: boolean;
  readonly localAddr: StreamAddr;
  readonly remoteAddr: StreamAddr;
  /** How errors name the connection. */
  readonly label: string;
  /** What the connection was made with, checked again after a revocation. */
  readonly permit: Permit;
  /** Up to `p.length` bytes; `null` at end of stream and once closed. */
  read(p: Uint8Array): Promise<number | null>;
  /** All of `p`; `call` names the operation in errors. */
  write(p: Uint8Array, call: "write" | "send"): Promise<number>;
  /** `shutdown(SHUT_WR)`. */
  closeWrite(): Promise<void>;
  setNoDelay(on: boolean): void;
  setKeepAlive(on: boolean): void;
  /** The bytes received as a Web stream; it closes the connection when it ends. */
  readonly readable: ReadableStream<Uint8Array>;
  /** A Web stream that writes; closing it closes the connection. */
  readonly writable: WritableStream<Uint8Array>;
  ref(): void;
  unref(): void;
  /** Idempotent: a pending read resolves `null`, a pending write rejects BadResource. */
  close(): void;
  /** The descriptor calls; throws `NotSupported` naming `call` on an engine without them. */
  extras(call: string): ByteExtras;
}

/** A stream listener's engine: its connections come as byte engines. */
export interface StreamListenerEngine extends ListenerEngine<ByteEngine>, Engine<"listener"> {
  readonly addr: StreamAddr;
  /** The socket options go to; throws `NotSupported` naming `call` when there is none. */
  extras(call: string): { readonly socket: FdSocket<unknown> };
}

/**
 * How errors name a connection: its peer, or for a server-side Unix
 * connection (whose peer is unnamed) the socket file.
 */
export function labelFor(local: StreamAddr, remote: StreamAddr): string {
  return describeAddress("path" in remote && remote.path === "" ? local : remote);
}

/** The permit of what connecting to `target` asks, for the connection to keep. */
export function targetPermit(target: StreamTarget): Permit {
  return target.path !== undefined
    ? peerPermit({ path: target.path })
    : peerPermit({ hostname: target.hostname, port: target.port });
}
