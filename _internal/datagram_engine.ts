// What a DatagramSocket stands on: a record engine plus what a datagram
// socket sends and sets. The built-in engine (datagram_builtin.ts) and the
// FFI engine (datagram_ffi.ts) implement it; the class never asks which one
// it has. Private to the package.

import type { NetAddr, ReceiveInfo, UnixAddr } from "../types.ts";
import type { Permit } from "../ffi/permissions.ts";
import type { RecordEngine } from "./record_engine.ts";
import type { BufferSizes } from "./buffer_sizes.ts";

/** UDP, or a Unix datagram socket. */
export type Transport = "udp" | "unixgram";

/** A destination as checked once: canonical address, sockaddr, label, payload limit. */
export interface Destination<A> {
  addr: A;
  /** The sockaddr bytes; `null` for the connected peer, which the kernel already holds. */
  sockaddr: Uint8Array | null;
  /** The address in the built-in engine's form, made on its first send there. */
  builtin?: { transport: string; hostname?: string; port?: number; path?: string };
  label: string;
  limit: number;
  /** The permission to send there, as the engine's policy asks. */
  permit: Permit;
}

/** One record of a batch: `to` is its destination's sockaddr, as `FdSocket.sendMany` reads it. */
export interface OutgoingRecord<A> {
  data: Uint8Array;
  to: Uint8Array | null;
  destination: Destination<A>;
}

/** A multicast join or leave, its group and interface checked. */
export interface MembershipChange {
  join: boolean;
  /** The group as the caller wrote it. */
  group: string;
  /** The group's address bytes. */
  bytes: Uint8Array;
  /** The interface by name or index; undefined for the kernel's choice. */
  iface: string | number | undefined;
  /** The call and group, for messages. */
  what: string;
}

/**
 * A datagram socket's engine. Arguments arrive checked, permissions granted.
 * What an engine cannot do it refuses itself, with `Deno.errors.NotSupported`
 * naming `backend: "ffi"`, so the class holds no list of backend limits.
 */
export interface DatagramEngine<A extends NetAddr | UnixAddr> extends RecordEngine<A> {
  /** The address the socket is bound to. */
  readonly local: A;
  /** The IP family of a UDP socket; `null` for a Unix one. */
  readonly family: "ipv4" | "ipv6" | null;
  /** Resolves an IPv6 zone given by interface name; undefined where only indexes are taken. */
  readonly resolveZone: ((name: string) => number) | undefined;
  /** What a send to `to` must be permitted, besides what the engine checks itself. */
  permitFor(to: NetAddr | UnixAddr): Permit;
  /** Sends one record to `to` (its sockaddr `null`: the connected peer). */
  send(
    data: Uint8Array,
    to: Destination<A>,
    fds: number[] | undefined,
    signal: AbortSignal | undefined,
  ): Promise<number>;
  /** Sends the records in order; resolves how many were sent. */
  sendMany(records: readonly OutgoingRecord<A>[], signal: AbortSignal | undefined): Promise<number>;
  /** Makes `to` the default destination and the only sender received from. */
  connect(to: Destination<A>): Promise<void>;
  /** Joins or leaves a multicast group (UDP). */
  membership(change: MembershipChange): Promise<void>;
  /** The TTL (IPv6: hop limit) of multicast sent (UDP). */
  setMulticastTtl(ttl: number): void | Promise<void>;
  /** Whether multicast sent loops back to this host (UDP). */
  setMulticastLoopback(on: boolean): void | Promise<void>;
  /** Whether broadcast destinations are allowed (UDP). */
  setBroadcast(on: boolean): void;
}

/** A UDP socket's options as listenDatagram checked them. */
export interface UdpSetup {
  hostname: string;
  family: "ipv4" | "ipv6";
  port: number;
  label: string;
  reuseAddress: boolean;
  broadcast: boolean;
  multicastLoopback: boolean;
  multicastTtl: number | undefined;
  multicastInterface: string | number | undefined;
  bufferSizes: BufferSizes;
  busyPoll: number | undefined;
  reusePort: boolean | undefined;
  v6Only: boolean | undefined;
  device: string | undefined;
  receiveInfo: ReceiveInfo[] | undefined;
}

/** A Unix datagram socket's options as listenDatagram checked them. */
export interface UnixSetup {
  path: string;
  /** The path's sockaddr, encoded as the path was checked. */
  address: Uint8Array;
  label: string;
  bufferSizes: BufferSizes;
  busyPoll: number | undefined;
  passCredentials: boolean | undefined;
}
