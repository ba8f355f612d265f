// The FFI datagram engine: an FdSocket (UDP or Unix datagram) as a
// DatagramEngine, and the ways one is made: opened and bound, a socketpair,
// or a descriptor adopted. Private to the package.

import type { NetAddr, UnixAddr } from "../types.ts";
import { describeAddress } from "../ffi/errors.ts";
import { interfaceIndex } from "../ffi/interfaces.ts";
import { getOptionOn } from "../ffi/options.ts";
import { peerPermit, type Permit, requireNet, requireUnix } from "../ffi/permissions.ts";
import { decodeInet, decodeUnix, encodeInet } from "../ffi/sockaddr.ts";
import { FdSocket, type FdSocketOptions } from "../ffi/socket.ts";
import type { DescribedFd } from "./adopt.ts";
import { applyBufferSizes } from "./buffer_sizes.ts";
import type {
  DatagramEngine,
  Destination,
  MembershipChange,
  OutgoingRecord,
  UdpSetup,
  UnixSetup,
} from "./datagram_engine.ts";
import {
  resolveInterface,
  setMembership,
  setMulticastInterface,
  setMulticastLoop,
  setMulticastTtl,
} from "./multicast.ts";
import { FfiRecords } from "./ffi_records.ts";
import { enableReceiveInfo } from "./options.ts";

/** A datagram socket's descriptor: FfiRecords receives; this adds what datagrams send and set. */
export class FfiDatagramEngine<A extends NetAddr | UnixAddr> extends FfiRecords<A>
  implements DatagramEngine<A> {
  readonly resolveZone = interfaceIndex;
  readonly local: A;
  readonly family: "ipv4" | "ipv6" | null;
  readonly #sock: FdSocket<A>;
  readonly #label: string;

  constructor(sock: FdSocket<A>, local: A, family: "ipv4" | "ipv6" | null) {
    super(sock, { family: family ?? "unix", kind: "datagram" });
    this.#sock = sock;
    this.local = local;
    this.family = family;
    this.#label = describeAddress(local);
  }

  /** The bound address, also for a socketpair end, whose descriptor is labelled with none. */
  override get label(): string {
    return this.#label;
  }

  /** The kernel checks no Deno permission: each destination is checked as Deno would. */
  permitFor(to: NetAddr | UnixAddr): Permit {
    return peerPermit(to);
  }

  send(
    data: Uint8Array,
    to: Destination<A>,
    fds: number[] | undefined,
    signal: AbortSignal | undefined,
  ): Promise<number> {
    return this.#sock.send(data, to.sockaddr, { label: to.label, fds, signal });
  }

  sendMany(
    records: readonly OutgoingRecord<A>[],
    signal: AbortSignal | undefined,
  ): Promise<number> {
    if (records.length === 0) return Promise.resolve(0);
    return this.#sock.sendMany(records, signal);
  }

  /** The kernel's connect: it drops other senders' datagrams. */
  connect(to: Destination<A>): Promise<void> {
    return this.#sock.connect(to.sockaddr!, to.label);
  }

  membership(change: MembershipChange): Promise<void> {
    try {
      const ifindex = change.iface === undefined ? 0 : resolveInterface(change.iface, change.what);
      const call = change.join ? "joinMulticast" : "leaveMulticast";
      const membership = { group: change.bytes, ifindex };
      setMembership(this.#sock, this.family!, change.join, membership, call, change.group);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  setMulticastTtl(ttl: number): void {
    setMulticastTtl(this.#sock, this.family!, ttl);
  }

  setMulticastLoopback(on: boolean): void {
    setMulticastLoop(this.#sock, this.family!, on);
  }

  setBroadcast(on: boolean): void {
    this.#sock.setOption("broadcast", on);
  }
}

/** Opens a UDP socket on the FFI engine, its options set before it is bound. */
export function openFfiUdp(setup: UdpSetup): FfiDatagramEngine<NetAddr> {
  const { family, label } = setup;
  const address = encodeInet(setup.hostname, setup.port, interfaceIndex);
  const multicastIndex = setup.multicastInterface === undefined
    ? undefined
    : resolveInterface(setup.multicastInterface, `listenDatagram ${label}`);
  const sock = FdSocket.open<NetAddr>(family, "datagram", 0, { label, decode: decodeUdp });
  try {
    if (setup.reuseAddress) sock.setOption("reuseAddress", true);
    if (setup.reusePort) sock.setOption("reusePort", true);
    if (setup.v6Only !== undefined) sock.setOption("ipv6Only", setup.v6Only);
    if (setup.device !== undefined) sock.setOption("bindToDevice", setup.device);
    if (setup.receiveInfo !== undefined) enableReceiveInfo(sock, family, setup.receiveInfo);
    sock.setOption("broadcast", setup.broadcast);
    setMulticastLoop(sock, family, setup.multicastLoopback);
    if (setup.multicastTtl !== undefined) setMulticastTtl(sock, family, setup.multicastTtl);
    if (multicastIndex !== undefined) setMulticastInterface(sock, family, multicastIndex);
    applyBufferSizes(sock, setup.bufferSizes);
    if (setup.busyPoll !== undefined) sock.setBusyPoll(setup.busyPoll);
    sock.bind(address, label);
    const local = sock.localAddress(decodeUdp);
    sock.label = describeAddress(local);
    return new FfiDatagramEngine<NetAddr>(sock, local, family);
  } catch (err) {
    sock.close();
    throw err;
  }
}

/** Opens a Unix datagram socket on the FFI engine, bound to its path (`""`: autobound). */
export function openFfiUnix(setup: UnixSetup): FfiDatagramEngine<UnixAddr> {
  const { path, label } = setup;
  const credentials = setup.passCredentials ?? false;
  const sock = FdSocket.open<UnixAddr>("unix", "datagram", 0, unixOptions(label, credentials));
  try {
    if (setup.passCredentials) sock.setOption("passCredentials", true);
    applyBufferSizes(sock, setup.bufferSizes);
    if (setup.busyPoll !== undefined) sock.setBusyPoll(setup.busyPoll);
    sock.bind(setup.address, label);
    const local = path === ""
      ? sock.localAddress(decodeUnixgram)
      : { transport: "unixgram", path } satisfies UnixAddr;
    sock.label = describeAddress(local);
    return new FfiDatagramEngine<UnixAddr>(sock, local, null);
  } catch (err) {
    sock.close();
    throw err;
  }
}

/** The two ends of `socketpair(AF_UNIX, SOCK_DGRAM)`, each with no name. */
export function ffiDatagramPair(): [FfiDatagramEngine<UnixAddr>, FfiDatagramEngine<UnixAddr>] {
  const [a, b] = FdSocket.pair<UnixAddr>(
    "datagram",
    unixOptions(describeAddress({ path: "" }), false),
  );
  return [
    new FfiDatagramEngine(a, { transport: "unixgram", path: "" }, null),
    new FfiDatagramEngine(b, { transport: "unixgram", path: "" }, null),
  ];
}

/** A datagram descriptor adopted: its engine, and the peer the kernel holds for it. */
export interface AdoptedDatagram<A extends NetAddr | UnixAddr> {
  engine: FfiDatagramEngine<A>;
  peer: A | null;
}

/**
 * Adopts a UDP or Unix datagram descriptor: its names read and their
 * permissions checked before `d.take()`, so a refusal leaves it untouched.
 *
 * @throws {Deno.errors.NotCapable} Without the permission for either name.
 */
export function adoptFfiDatagram(
  d: DescribedFd,
): AdoptedDatagram<UnixAddr> | AdoptedDatagram<NetAddr> {
  if (d.family === "unix") {
    const local = FdSocket.nameOf(d.fd, "getsockname", decodeUnixgram)!;
    const peer = FdSocket.nameOf(d.fd, "getpeername", decodeUnixgram);
    requireUnix(local.path);
    if (peer !== null) requireUnix(peer.path);
    const label = describeAddress(local);
    // Read before take(): nothing after it may fail and leave the fd changed.
    const passCredentials = getOptionOn(d.fd, label, "passCredentials");
    d.take();
    const sock = new FdSocket<UnixAddr>(d.fd, unixOptions(label, false));
    if (passCredentials) sock.setControl("fds+credentials");
    return { engine: new FfiDatagramEngine(sock, local, null), peer };
  }
  const local = FdSocket.nameOf(d.fd, "getsockname", decodeUdp)!;
  const peer = FdSocket.nameOf(d.fd, "getpeername", decodeUdp);
  requireNet(local.hostname, local.port);
  if (peer !== null) requireNet(peer.hostname, peer.port);
  d.take();
  const sock = new FdSocket<NetAddr>(d.fd, { label: describeAddress(local), decode: decodeUdp });
  return { engine: new FfiDatagramEngine(sock, local, d.family as "ipv4" | "ipv6"), peer };
}

/**
 * How the engine serves a Unix datagram socket: senders decoded, descriptors
 * received (so they reach the caller instead of being closed by the kernel),
 * and credentials when the socket asked for them.
 */
function unixOptions(label: string, credentials: boolean): FdSocketOptions<UnixAddr> {
  return {
    label,
    decode: decodeSender,
    unix: true,
    control: credentials ? "fds+credentials" : "fds",
  };
}

function decodeUdp(name: Uint8Array, length: number): NetAddr {
  return decodeInet(name, length, "udp");
}

function decodeUnixgram(name: Uint8Array, length: number): UnixAddr {
  return decodeUnix(name, length, "unixgram");
}

/** The sender of a Unix datagram; `null` when it has no name. */
function decodeSender(name: Uint8Array, length: number): UnixAddr | null {
  const addr = decodeUnixgram(name, length);
  return addr.path === "" ? null : addr;
}
