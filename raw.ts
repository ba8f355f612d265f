/**
 * Raw sockets: IP packets of one protocol (`openRaw`) and whole link-layer
 * frames on one interface (`openPacket`), with classic BPF filters.
 *
 * What a receive returns depends on the socket, as Linux delivers it:
 *
 * | socket | a record is |
 * | --- | --- |
 * | `openRaw({ family: "ipv4" })` | the IPv4 header, then the payload (see `@bsd/sockets/icmp`) |
 * | `openRaw({ family: "ipv6" })` | the payload only: IPv6 raw sockets never see the IP header |
 * | `openRaw({ unprivileged: true })` | the ICMP message only, IPv4 or IPv6 |
 * | `openPacket({ interface })` | the whole frame, Ethernet header first |
 * | `openPacket({ interface, cooked: true })` | the network-layer packet (`from.protocol`) |
 *
 * A raw socket sees every packet of its protocol the host receives, including
 * the requests the kernel answers itself and, on loopback, the packets it
 * sent: match replies on what identifies them (an ICMP echo's identifier and
 * sequence number), not on arrival.
 *
 * Requires `--allow-ffi`, and `CAP_NET_RAW` for everything but
 * `unprivileged` ICMP sockets. Destinations need `--allow-net` for their
 * host; packet sockets, which see every host's traffic, need unscoped
 * `--allow-net`. Linux only.
 *
 * This module also re-exports the BPF filter builder (`compileFilter`,
 * `validateFilter`, `BPF`, …) from `bpf.ts`.
 *
 * @example Ping the loopback once (needs CAP_NET_RAW)
 * ```ts ignore
 * import { openRaw } from "@bsd/sockets/raw";
 * import { decodeEcho, decodeIPv4Header, encodeEcho } from "@bsd/sockets/icmp";
 *
 * using sock = openRaw({ family: "ipv4", protocol: "icmp" });
 * await sock.send(encodeEcho({ id: 7, sequence: 1 }), { transport: "ip", hostname: "127.0.0.1" });
 * for await (const { data } of sock) {
 *   // The request itself comes by too: match the reply.
 *   const echo = decodeEcho(decodeIPv4Header(data).payload);
 *   if (echo?.type === "reply" && echo.id === 7 && echo.sequence === 1) break;
 * }
 * ```
 *
 * @module
 */

import {
  attachOptions,
  attachReceiver,
  checkBusyPoll,
  PacketSocketBase,
  receiveFrom,
} from "./_packet.ts";
import { checkBoolean, checkObject, checkOptionalInteger, describeValue } from "./_checks.ts";
import { type BpfProgram, validateFilter } from "./bpf.ts";
import { checkBuffer } from "./ffi/buffers.ts";
import { ETHER_TYPE_NUMBERS, IP_PROTOCOL_NUMBERS } from "./ffi/constants.ts";
import { describeAddress } from "./ffi/errors.ts";
import { encodeFilter } from "./ffi/filter.ts";
import {
  checkInterfaceName,
  interfaceIndex,
  interfaceName,
  requireInterface,
} from "./ffi/interfaces.ts";
import { ringBlocks, useReceiveRing } from "./ffi/packet_ring.ts";
import {
  type Permit,
  permit,
  requireAnyNet,
  requireNet,
  requirePermit,
} from "./ffi/permissions.ts";
import { type CheckedDestination, DestinationCache } from "./_internal/destinations.ts";
import { applyBufferSizes, type BufferSizes, checkBufferSizes } from "./_internal/buffer_sizes.ts";
import {
  checkInteger,
  decodeInet,
  decodeIp,
  decodeLink,
  encodeInet,
  encodeLink,
  ipFamily,
} from "./ffi/sockaddr.ts";
import { FdSocket } from "./ffi/socket.ts";
import { registerAdopter } from "./_internal/adopt.ts";
import type { IpAddr, LinkAddr, Message, ReceiveInfo, ReceiveOptions } from "./types.ts";
import { checkReceiveInfo, enableReceiveInfo } from "./_internal/options.ts";

export * from "./bpf.ts";

const CAP_NET_RAW_HINT = "raw sockets need CAP_NET_RAW (run as root, or grant it with " +
  "`setcap cap_net_raw+ep` on the deno binary)";
const PING_HINT = 'for ICMP echo without it, use openRaw({ family, protocol: "icmp", ' +
  "unprivileged: true }), which net.ipv4.ping_group_range may allow";
const PING_GROUP_HINT = "unprivileged ICMP sockets are allowed only to groups inside the sysctl " +
  'net.ipv4.ping_group_range (for example `sysctl -w net.ipv4.ping_group_range="0 2147483647"`)';

// ---------------------------------------------------------------------------
// openRaw

/**
 * Options for {@linkcode openRaw}.
 *
 * @example A raw ICMPv6 socket bound to the loopback interface
 * ```ts
 * import type { RawOptions } from "@bsd/sockets/raw";
 *
 * const options: RawOptions = { family: "ipv6", protocol: "icmpv6", interface: "lo" };
 * ```
 */
export interface RawOptions {
  /** The IP version. */
  family: "ipv4" | "ipv6";
  /**
   * The IP protocol carried: `"icmp"` (ICMP on IPv4, ICMPv6 on IPv6),
   * `"icmpv6"` (IPv6 only), `"tcp"`, `"udp"`, `"raw"` (255: send-only, the
   * caller writes the IPv4 header), or a protocol number 0–255.
   */
  protocol: "icmp" | "icmpv6" | "tcp" | "udp" | "raw" | number;
  /**
   * IPv4 only: records sent start with the caller's own IPv4 header
   * (`IP_HDRINCL`; the kernel always fills in the checksum and total length,
   * and the source address and identification where they are 0). Always on
   * for `protocol: "raw"`.
   */
  headerIncluded?: boolean;
  /** Send and receive only through this interface (`SO_BINDTODEVICE`). */
  interface?: string;
  /**
   * Per-packet information every received {@linkcode Message} carries (see
   * {@linkcode ReceiveInfo}): on a ping socket, which gets no IP header, this
   * is how a reply's TTL is known.
   */
  receiveInfo?: readonly ReceiveInfo[];
  /**
   * Open an ICMP "ping" socket instead (`SOCK_DGRAM`, ICMP or ICMPv6 only),
   * which needs no `CAP_NET_RAW` when the process's group is inside the sysctl
   * `net.ipv4.ping_group_range` (it governs IPv6 too). Only echo requests can
   * be sent; the kernel fills in the checksum and replaces the echo
   * identifier with the socket's own ({@linkcode RawSocket.echoId}), and it
   * delivers only the replies to this socket's requests, without an IP
   * header.
   */
  unprivileged?: boolean;
  /**
   * Microseconds a receive that finds no record keeps trying before it
   * waits, 0 to 10,000; default 0. A waiting receive is woken through one of
   * Deno's pool threads, a hand-off that costs more than the reply itself on
   * loopback; a spinning one takes a reply that lands within the budget at once, but holds the JS
   * thread (no timers, no other I/O) for up to this long per receive. It
   * yields its CPU between tries, so a peer on the same CPU still runs.
   */
  busyPoll?: number;
  /** The receive buffer in bytes (`SO_RCVBUF`; past `net.core.rmem_max` only as root). */
  receiveBufferSize?: number;
  /** The send buffer in bytes (`SO_SNDBUF`; past `net.core.wmem_max` only as root). */
  sendBufferSize?: number;
}

/**
 * Opens a raw IP socket for one protocol, or an unprivileged ICMP socket.
 *
 * IPv4 records arrive with their IPv4 header (as Linux delivers them; decode
 * it with `decodeIPv4Header` from `@bsd/sockets/icmp`), IPv6 records and
 * unprivileged ICMP records without one. For ICMPv6 the kernel computes the
 * checksum of what is sent; for ICMP over raw IPv4 the caller must (the
 * encoders in `@bsd/sockets/icmp` do).
 *
 * Requires `--allow-ffi`, and `CAP_NET_RAW` unless `unprivileged` is set.
 * Sending needs `--allow-net` for the destination host.
 *
 * @param options The family, the protocol and how to open it.
 * @returns The open socket.
 * @throws {TypeError} For options of the wrong shape or that cannot go together.
 * @throws {RangeError} For a protocol number outside 0–255 or an interface name over 15 bytes.
 * @throws {Deno.errors.NotCapable} Without `--allow-ffi`.
 * @throws {Deno.errors.PermissionDenied} Without `CAP_NET_RAW` (the message says
 * so and names the unprivileged alternative), or for an unprivileged socket
 * whose group `net.ipv4.ping_group_range` does not admit (the message names the sysctl).
 * @throws {Deno.errors.NotFound} When `interface` names no interface.
 *
 * @example An unprivileged ping socket
 * ```ts ignore
 * import { openRaw } from "@bsd/sockets/raw";
 *
 * using sock = openRaw({ family: "ipv4", protocol: "icmp", unprivileged: true });
 * console.log(sock.echoId); // the identifier the kernel puts in every request
 * ```
 */
export function openRaw(options: RawOptions): RawSocket {
  const o = checkRawOptions(options);
  const label = describeAddress(`${o.family}/${o.name}`);
  if (o.interface !== undefined) requireInterface(o.interface, "openRaw");
  let sock: FdSocket<IpAddr>;
  try {
    sock = FdSocket.open<IpAddr>(o.family, o.unprivileged ? "datagram" : "raw", o.protocol, {
      label,
      decode: decodeIp,
    });
  } catch (err) {
    throw explainDenied(err, o.unprivileged ? PING_GROUP_HINT : rawHint(o.protocol, o.family));
  }
  try {
    if (o.interface !== undefined) sock.setOption("bindToDevice", o.interface);
    if (o.headerIncluded) sock.setOption("ipHeaderIncluded", true);
    if (o.receiveInfo) enableReceiveInfo(sock, o.family, o.receiveInfo);
    if (o.busyPoll !== undefined) sock.setBusyPoll(o.busyPoll);
    applyBufferSizes(sock, o.bufferSizes);
    // Binding a ping socket to port 0 makes the kernel pick its echo
    // identifier now, so echoId is known before the first request.
    if (o.unprivileged) sock.bind(encodeInet(o.family === "ipv4" ? "0.0.0.0" : "::", 0));
    return adoptRaw(sock, o.family, o.unprivileged);
  } catch (err) {
    sock.close();
    throw err;
  }
}

interface CheckedRawOptions {
  family: "ipv4" | "ipv6";
  receiveInfo: ReceiveInfo[] | undefined;
  protocol: number;
  name: string;
  headerIncluded: boolean;
  interface?: string;
  unprivileged: boolean;
  busyPoll?: number;
  bufferSizes: BufferSizes;
}

function checkRawOptions(options: RawOptions): CheckedRawOptions {
  checkObject("openRaw: options", options);
  const { family } = options;
  if (family !== "ipv4" && family !== "ipv6") {
    throw new TypeError(`openRaw: family must be "ipv4" or "ipv6", got ${describeValue(family)}`);
  }
  const headerIncluded = checkBoolean("openRaw: headerIncluded", options.headerIncluded) ?? false;
  const unprivileged = checkBoolean("openRaw: unprivileged", options.unprivileged) ?? false;
  let protocol: number;
  let name: string;
  if (typeof options.protocol === "string") {
    if (!Object.hasOwn(IP_PROTOCOL_NUMBERS, options.protocol)) {
      throw new TypeError(
        `openRaw: protocol must be a number or one of ${
          Object.keys(IP_PROTOCOL_NUMBERS).map((n) => JSON.stringify(n)).join(", ")
        }, got ${JSON.stringify(options.protocol)}`,
      );
    }
    name = options.protocol;
    protocol = IP_PROTOCOL_NUMBERS[name as keyof typeof IP_PROTOCOL_NUMBERS];
    if (name === "icmp" && family === "ipv6") {
      protocol = IP_PROTOCOL_NUMBERS.icmpv6;
      name = "icmpv6";
    }
    if (name === "icmpv6" && family === "ipv4") {
      throw new TypeError('openRaw: protocol "icmpv6" needs family "ipv6"; use "icmp" on ipv4');
    }
  } else {
    protocol = checkInteger("openRaw: protocol", options.protocol, 0, 255);
    name = String(protocol);
  }
  const icmp = family === "ipv4" ? IP_PROTOCOL_NUMBERS.icmp : IP_PROTOCOL_NUMBERS.icmpv6;
  if (unprivileged && protocol !== icmp) {
    throw new TypeError(
      `openRaw: unprivileged sockets carry only ICMP, so protocol must be "icmp", got ${
        JSON.stringify(options.protocol)
      }`,
    );
  }
  if (headerIncluded && family !== "ipv4") {
    throw new TypeError("openRaw: headerIncluded is for IPv4 only");
  }
  if (headerIncluded && unprivileged) {
    throw new TypeError("openRaw: headerIncluded cannot be used with unprivileged sockets");
  }
  const checked: CheckedRawOptions = {
    family,
    protocol,
    name,
    headerIncluded,
    unprivileged,
    busyPoll: checkBusyPoll("openRaw", options.busyPoll),
    receiveInfo: checkReceiveInfo("openRaw: receiveInfo", options.receiveInfo),
    bufferSizes: checkBufferSizes("openRaw", options),
  };
  if (options.interface !== undefined) {
    checked.interface = checkInterfaceName(options.interface, "openRaw: interface");
  }
  return checked;
}

function rawHint(protocol: number, family: "ipv4" | "ipv6"): string {
  const icmp = family === "ipv4" ? IP_PROTOCOL_NUMBERS.icmp : IP_PROTOCOL_NUMBERS.icmpv6;
  return protocol === icmp ? `${CAP_NET_RAW_HINT}; ${PING_HINT}` : CAP_NET_RAW_HINT;
}

/** Adds `hint` to a PermissionDenied from opening a socket; other errors pass unchanged. */
function explainDenied(err: unknown, hint: string): unknown {
  if (err instanceof Deno.errors.PermissionDenied) err.message += `: ${hint}`;
  return err;
}

/** A destination host, checked and encoded. */
interface Destination extends CheckedDestination {
  hostname: string;
  addr: Uint8Array;
  label: string;
}

/** Destinations remembered per socket, each encoded once. */
const DESTINATION_CACHE_SIZE = 256;

/** Throws `TypeError` unless `to` is shaped as an `IpAddr`. */
function checkIpAddr(to: unknown, call: string): asserts to is IpAddr {
  if (typeof to !== "object" || to === null || typeof (to as IpAddr).hostname !== "string") {
    throw new TypeError(
      `${call}: destination must be an IpAddr ({ transport: "ip", hostname }), got ${
        describeValue(to)
      }`,
    );
  }
  const { transport } = to as IpAddr;
  if (transport !== undefined && transport !== "ip") {
    throw new TypeError(
      `${call}: destination transport must be "ip", got ${JSON.stringify(transport)}`,
    );
  }
}

/** The sockaddr, the quoted label and the net permission for a destination host. */
function destination(to: IpAddr, call: string, family: "ipv4" | "ipv6"): Destination {
  const { hostname } = to;
  if (ipFamily(hostname) !== family) {
    throw new TypeError(
      `${call} ${describeAddress(hostname)}: the destination is ${
        ipFamily(hostname) === "ipv4" ? "IPv4" : "IPv6"
      }, this socket is ${family === "ipv4" ? "IPv4" : "IPv6"}`,
    );
  }
  return {
    addr: encodeInet(hostname, 0, interfaceIndex),
    label: describeAddress(hostname),
    hostname,
    permit: hostPermit(hostname),
  };
}

function hostPermit(hostname: string): Permit {
  return permit(() => requireNet(hostname));
}

function notConnected(call: string, label: string, how: string): Error {
  return new Deno.errors.NotConnected(
    `${call} ${label}: socket is not connected; ${how}`,
  );
}

// Set by the class's static block: only this module can make a RawSocket.
let adoptRaw: (
  sock: FdSocket<IpAddr>,
  family: "ipv4" | "ipv6",
  ping: boolean,
  remote?: IpAddr | null,
) => RawSocket;

/**
 * A raw IP socket, or an unprivileged ICMP socket, from {@linkcode openRaw}.
 *
 * `send(data, to)` sends one packet to a host; `connect(to)` sets the host
 * `write(p)` sends to. Received IPv4 packets include the IPv4 header, IPv6
 * ones and unprivileged ICMP ones do not. `from` is the sender's address.
 *
 * @example Two raw IPv6 sockets talking an experimental protocol (253)
 * ```ts ignore
 * import { openRaw } from "@bsd/sockets/raw";
 *
 * using a = openRaw({ family: "ipv6", protocol: 253 });
 * await a.connect({ transport: "ip", hostname: "::1" });
 * await a.write(new TextEncoder().encode("hello"));
 * ```
 */
export class RawSocket extends PacketSocketBase<IpAddr> {
  readonly #sock: FdSocket<IpAddr>;
  readonly #family: "ipv4" | "ipv6";
  readonly #ping: boolean;
  #local: IpAddr;
  #remote: IpAddr | null;
  #echoId: number | null;
  #peerPermit: Permit | null;
  readonly #destinations: DestinationCache<Destination>;

  private constructor(
    sock: FdSocket<IpAddr>,
    family: "ipv4" | "ipv6",
    ping: boolean,
    remote: IpAddr | null,
  ) {
    super();
    this.#sock = sock;
    attachReceiver(this, sock);
    attachOptions(this, {
      socket: sock,
      shape: { family, kind: ping ? "datagram" : "raw" },
      label: () => sock.label,
    });
    this.#family = family;
    this.#ping = ping;
    this.#local = sock.localAddress(decodeIp);
    this.#echoId = ping ? this.#boundPort() : null;
    this.#remote = remote;
    this.#peerPermit = remote === null ? null : hostPermit(remote.hostname);
    this.#destinations = new DestinationCache<Destination>({
      key: (to) => (to as IpAddr).hostname,
      make: (to) => destination(to as IpAddr, "send", family),
    }, DESTINATION_CACHE_SIZE);
  }

  static {
    adoptRaw = (sock, family, ping, remote) => new RawSocket(sock, family, ping, remote ?? null);
  }

  #boundPort(): number {
    // A ping socket's "port" is its echo identifier.
    return this.#sock.localAddress((name, length) => decodeInet(name, length, "udp").port);
  }

  /** Which engine serves this socket: always `"ffi"` (raw and packet sockets have no built-in). */
  get backend(): "ffi" {
    return "ffi";
  }

  /**
   * The socket's descriptor, `null` after `close()`. The socket keeps owning
   * it: pass it on, never close it yourself.
   *
   * @example Look at the descriptor
   * ```ts ignore
   * import { openRaw } from "@bsd/sockets/raw";
   *
   * using sock = openRaw({ family: "ipv4", protocol: "icmp" });
   * console.log(typeof sock.fd); // "number"
   * ```
   */
  get fd(): number | null {
    return this.#sock.closed ? null : this.#sock.fd;
  }

  /** The local address: the wildcard until connected, then the source address used. */
  get localAddr(): IpAddr {
    return this.#local;
  }

  /** The host given to {@linkcode RawSocket.connect}, or `null` before it. */
  get remoteAddr(): IpAddr | null {
    return this.#remote;
  }

  /**
   * The echo identifier of an unprivileged ICMP socket: the kernel writes it
   * into every echo request sent (whatever identifier the request held) and
   * delivers only replies that carry it. `null` on raw sockets, where the
   * identifier is the caller's.
   */
  get echoId(): number | null {
    return this.#echoId;
  }

  /** Whether this is an unprivileged ICMP socket (see {@linkcode RawOptions.unprivileged}). */
  get unprivileged(): boolean {
    return this.#ping;
  }

  /**
   * Sends one packet (`sendto`), to `to` or, without it, to the connected
   * host. On IPv4 with `headerIncluded`, `data` starts with the IPv4 header.
   * Waits for room in the send queue; never sends in part.
   *
   * Requires `--allow-net` for the destination host (the connected one when
   * `to` is omitted). Each host is checked on its first send and again after
   * any `Deno.permissions.revoke`, so a revoked permission takes effect on
   * the next send.
   *
   * @param data The packet: for ICMP, the ICMP message with its header.
   * @param to The destination host; omit on a connected socket.
   * @returns The number of bytes sent.
   * @throws {TypeError} For a buffer or destination of the wrong shape or family.
   * @throws {Deno.errors.NotCapable} Without net access to the destination.
   * @throws {Deno.errors.NotConnected} When `to` is omitted and the socket is not connected.
   * @throws {Deno.errors.BadResource} Once the socket is closed.
   * @throws {SocketError} `EMSGSIZE` for a packet too large.
   *
   * @example Send an echo request
   * ```ts ignore
   * import { openRaw } from "@bsd/sockets/raw";
   * import { encodeEcho } from "@bsd/sockets/icmp";
   *
   * using sock = openRaw({ family: "ipv4", protocol: "icmp" });
   * const request = encodeEcho({ id: 1, sequence: 1 });
   * await sock.send(request, { transport: "ip", hostname: "127.0.0.1" });
   * ```
   */
  send(data: Uint8Array, to?: IpAddr): Promise<number> {
    try {
      if (to === undefined) {
        checkBuffer(data, `send ${this.#sock.label}`);
        if (this.#sock.closed) return this.#sock.send(data, null);
        if (this.#peerPermit === null) {
          throw notConnected(
            "send",
            this.#sock.label,
            "call connect(to) first, or give send(data, to)",
          );
        }
        requirePermit(this.#peerPermit);
        return this.#sock.send(data, null);
      }
      checkIpAddr(to, "send");
      const dest = this.#destinations.resolve(to);
      checkBuffer(data, `send ${dest.label}`);
      return this.#sock.send(data, dest.addr, { label: dest.label });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Sets the host `write` sends to, and receives only from it from then on
   * (`connect`; no packet is exchanged).
   *
   * Requires `--allow-net` for the host.
   *
   * @param to The peer host.
   * @throws {TypeError} For a destination of the wrong shape or family.
   * @throws {Deno.errors.NotCapable} Without net access to the host.
   * @throws {Deno.errors.BadResource} Once the socket is closed.
   *
   * @example Connect, then write
   * ```ts ignore
   * import { openRaw } from "@bsd/sockets/raw";
   *
   * using sock = openRaw({ family: "ipv6", protocol: 253 });
   * await sock.connect({ transport: "ip", hostname: "::1" });
   * await sock.write(new Uint8Array([1, 2, 3]));
   * ```
   */
  async connect(to: IpAddr): Promise<void> {
    checkIpAddr(to, "connect");
    const dest = destination(to, "connect", this.#family);
    requirePermit(dest.permit);
    await this.#sock.connect(dest.addr, dest.label);
    this.#sock.label = dest.label;
    this.#remote = { transport: "ip", hostname: dest.hostname };
    this.#peerPermit = dest.permit;
    this.#local = this.#sock.localAddress(decodeIp);
  }

  /**
   * Sends `p` as one packet to the connected host.
   *
   * @param p The packet.
   * @returns The number of bytes sent.
   * @throws {TypeError} For a buffer of the wrong kind.
   * @throws {Deno.errors.NotConnected} When the socket is not connected.
   */
  write(p: Uint8Array): Promise<number> {
    return this.send(p);
  }

  /**
   * Receives one packet: with the IPv4 header on raw IPv4 sockets, without
   * an IP header otherwise. Resolves `null` once closed.
   *
   * @param options `maxSize` (default 65,536) and an abort `signal`.
   * @returns The packet and its sender, or `null`.
   * @throws {TypeError} For options of the wrong shape.
   * @throws {RangeError} For a `maxSize` out of range.
   *
   * @example Wait at most a second for a packet
   * ```ts ignore
   * import { openRaw } from "@bsd/sockets/raw";
   *
   * using sock = openRaw({ family: "ipv4", protocol: "icmp" });
   * const message = await sock.receive({ signal: AbortSignal.timeout(1000) });
   * ```
   */
  receive(options?: ReceiveOptions): Promise<Message<IpAddr> | null> {
    return receiveFrom(this.#sock, options);
  }

  /**
   * Attaches a classic BPF filter (`SO_ATTACH_FILTER`), replacing any other:
   * packets it rejects are dropped before they are queued. Raw IPv4 filters
   * see the IPv4 header first (`compileFilter(match, { link: "ip" })`); raw
   * IPv6 and unprivileged ICMP filters see the payload first. Packets already
   * queued stay.
   *
   * @param program The program, checked with `validateFilter` before the system call.
   * @throws {TypeError} For a program of the wrong shape.
   * @throws {RangeError} For an invalid program (empty, over 4,096
   * instructions, a jump out of range, no final return, …).
   * @throws {Deno.errors.BadResource} Once the socket is closed.
   *
   * @example Keep only echo replies
   * ```ts ignore
   * import { compileFilter, openRaw } from "@bsd/sockets/raw";
   *
   * using sock = openRaw({ family: "ipv4", protocol: "icmp" });
   * sock.setFilter(compileFilter({ ipProtocol: "icmp", icmpType: 0 }, { link: "ip" }));
   * ```
   */
  setFilter(program: BpfProgram): void {
    validateFilter(program);
    this.#sock.setOption("attachFilter", encodeFilter(program));
  }

  /** Lets pending operations keep the process alive (the default). */
  ref(): void {
    this.#sock.ref();
  }

  /** Lets the process exit even while a receive or send is pending. */
  unref(): void {
    this.#sock.unref();
  }

  /**
   * Closes the socket; pending receives resolve `null` and pending sends
   * reject with `BadResource`. Calling it again does nothing.
   */
  close(): void {
    this.#sock.close();
  }
}

// ---------------------------------------------------------------------------
// openPacket

/**
 * Options for {@linkcode openPacket}.
 *
 * @example IPv4 frames on eth0, cooked
 * ```ts
 * import type { PacketOptions } from "@bsd/sockets/raw";
 *
 * const options: PacketOptions = { interface: "eth0", protocol: "ipv4", cooked: true };
 * ```
 */
export interface PacketOptions {
  /** The interface to capture on and send through, such as `"eth0"`. */
  interface: string;
  /**
   * The EtherType to receive: `"all"` (the default, which includes frames
   * this host sends, as `packetType: "outgoing"`), `"ipv4"`, `"ipv6"`,
   * `"arp"`, or a number 1–65535.
   */
  protocol?: "all" | "ipv4" | "ipv6" | "arp" | number;
  /**
   * Receive and send the network-layer packet without the link-layer header
   * (`SOCK_DGRAM`); the kernel builds the header when sending, so a cooked
   * `send` needs a destination. Default `false`: whole frames (`SOCK_RAW`).
   */
  cooked?: boolean;
  /**
   * A BPF filter attached before the socket starts receiving, so it applies
   * from the very first frame (see {@linkcode LinkSocket.setFilter}).
   */
  filter?: BpfProgram;
  /**
   * Deliver each frame as soon as it arrives (as libpcap's immediate mode
   * does). By default frames are captured into a ring of memory shared with
   * the kernel and handed over in batches: a batch closes when its 1 MiB
   * block is full or 8 to 16 ms after its first frame. That costs no system
   * call and no wake-up per frame, which leaves the CPU to keep up with a
   * flood. Choose `immediate` when each frame's latency matters more.
   */
  immediate?: boolean;
  /**
   * Bytes of kernel memory where frames wait to be read: the ring's size
   * (whole MiB, default and minimum 4 MiB), or with `immediate` the socket's
   * receive buffer (`SO_RCVBUF`, where each frame also costs about 700 bytes
   * of overhead; past `net.core.rmem_max` only with `CAP_NET_ADMIN`). A
   * burst longer than this is dropped and counted (see
   * {@linkcode LinkSocket.statistics}).
   */
  receiveBufferSize?: number;
  /**
   * The old name of {@linkcode PacketOptions.receiveBufferSize}, still taken.
   *
   * @deprecated Use `receiveBufferSize`, the name every socket type takes.
   */
  bufferSize?: number;
  /** The send buffer in bytes (`SO_SNDBUF`; past `net.core.wmem_max` only as root). */
  sendBufferSize?: number;
  /**
   * Microseconds a receive that finds no record keeps trying before it
   * waits, 0 to 10,000; default 0. A waiting receive is woken through one of
   * Deno's pool threads, a hand-off that costs more than the reply itself on
   * loopback; a spinning one takes a reply that lands within the budget at once, but holds the JS
   * thread (no timers, no other I/O) for up to this long per receive. It
   * yields its CPU between tries, so a peer on the same CPU still runs.
   * Frames from the ring come in batches anyway; this suits `immediate`.
   */
  busyPoll?: number;
}

/**
 * Opens an `AF_PACKET` socket on one interface: captures the frames of a
 * protocol that cross it, and sends frames through it.
 *
 * The socket is created listening to no protocol, gets its filter (if
 * `filter` is given), and only then is bound to the interface and protocol,
 * so it never sees a frame from another interface or one its filter would
 * have dropped. `from` on each message is the full {@linkcode LinkAddr}:
 * interface, index, EtherType, the sender's hardware address and the packet
 * type (`"outgoing"` for frames this host sent; a socket does not receive
 * the frames it sends itself, other sockets on the interface do).
 *
 * Frames are captured into a ring shared with the kernel and delivered in
 * batches, within 8 to 16 ms on a quiet link; `immediate: true` delivers each
 * frame at once, at a higher cost per frame (see {@linkcode PacketOptions}).
 *
 * Requires `--allow-ffi`, unscoped `--allow-net` (a packet socket sees and
 * reaches every host) and `CAP_NET_RAW`.
 *
 * @param options The interface, protocol, framing and filter.
 * @returns The open socket.
 * @throws {TypeError} For options of the wrong shape.
 * @throws {RangeError} For a protocol outside 1–65535, an interface name over
 * 15 bytes or an invalid filter (before any system call).
 * @throws {Deno.errors.NotCapable} Without `--allow-ffi` or `--allow-net`.
 * @throws {Deno.errors.PermissionDenied} Without `CAP_NET_RAW`, saying so.
 * @throws {Deno.errors.NotFound} When the interface does not exist.
 *
 * @example Capture one DNS packet on eth0
 * ```ts ignore
 * import { compileFilter, openPacket } from "@bsd/sockets/raw";
 *
 * using sock = openPacket({
 *   interface: "eth0",
 *   filter: compileFilter({ ipProtocol: "udp", port: 53 }, { link: "ethernet" }),
 * });
 * const message = await sock.receive();
 * console.log(message?.from?.address, message?.data.length);
 * ```
 */
export function openPacket(options: PacketOptions): LinkSocket {
  checkObject("openPacket: options", options);
  const name = checkInterfaceName(options.interface, "openPacket: interface");
  const cooked = checkBoolean("openPacket: cooked", options.cooked) ?? false;
  const protocol = typeof options.protocol === "string"
    ? etherTypeByName(options.protocol)
    : checkInteger("openPacket: protocol", options.protocol ?? ETHER_TYPE_NUMBERS.all, 1, 0xffff);
  let filter: Uint8Array | undefined;
  if (options.filter !== undefined) {
    validateFilter(options.filter);
    filter = encodeFilter(options.filter);
  }
  const immediate = checkBoolean("openPacket: immediate", options.immediate) ?? false;
  const sizes = checkBufferSizes("openPacket", options);
  const oldSize = checkOptionalInteger("openPacket: bufferSize", options.bufferSize, 1, 2 ** 40);
  if (oldSize !== undefined && sizes.receive !== undefined) {
    throw new TypeError(
      "openPacket: give receiveBufferSize only; bufferSize is its deprecated old name",
    );
  }
  const receiveSize = sizes.receive ?? oldSize;
  const busyPoll = checkBusyPoll("openPacket", options.busyPoll);
  const label = describeAddress(name);
  requireAnyNet(`every host, for a packet socket on ${label}`);
  const ifindex = requireInterface(name, "openPacket");

  const decode = linkDecoder(ifindex, name);
  let sock: FdSocket<LinkAddr>;
  try {
    // Protocol 0: the socket receives nothing until bind names one.
    sock = FdSocket.open<LinkAddr>("packet", cooked ? "datagram" : "raw", 0, { label, decode });
  } catch (err) {
    throw explainDenied(err, "packet sockets need CAP_NET_RAW (run as root, or grant it)");
  }
  try {
    if (filter) sock.setOption("attachFilter", filter);
    if (!immediate) useReceiveRing(sock, ringBlocks(receiveSize));
    else if (receiveSize !== undefined) sock.setBufferSize("receive", receiveSize);
    if (sizes.send !== undefined) sock.setBufferSize("send", sizes.send);
    if (busyPoll !== undefined) sock.setBusyPoll(busyPoll);
    sock.bind(encodeLink({ ifindex, protocol }));
    return adoptLink(sock, sock.localAddress(decode), cooked);
  } catch (err) {
    sock.close();
    throw err;
  }
}

/** Decodes a `sockaddr_ll`, naming the interface (`name` for the bound one, known already). */
function linkDecoder(
  ifindex: number,
  name: string,
): (sockaddr: Uint8Array, length: number) => LinkAddr {
  return (sockaddr, length) => {
    const link = decodeLink(sockaddr, length) as LinkAddr;
    link.interface = link.ifindex === ifindex ? name : interfaceName(link.ifindex) ?? "";
    return link;
  };
}

function etherTypeByName(name: string): number {
  if (!Object.hasOwn(ETHER_TYPE_NUMBERS, name)) {
    throw new TypeError(
      `openPacket: protocol must be a number or one of ${
        Object.keys(ETHER_TYPE_NUMBERS).map((n) => JSON.stringify(n)).join(", ")
      }, got ${JSON.stringify(name)}`,
    );
  }
  return ETHER_TYPE_NUMBERS[name as keyof typeof ETHER_TYPE_NUMBERS];
}

/**
 * Counts from {@linkcode LinkSocket.statistics}.
 *
 * @example Report drops
 * ```ts
 * import type { PacketStatistics } from "@bsd/sockets/raw";
 *
 * function report(s: PacketStatistics): string {
 *   return `${s.received} received, ${s.dropped} dropped`;
 * }
 * ```
 */
export interface PacketStatistics {
  /** Frames that passed the filter and were queued to the socket. */
  received: number;
  /** Frames that passed the filter but were dropped: the receive queue was full. */
  dropped: number;
}

// Set by the class's static block: only this module can make a LinkSocket.
let adoptLink: (sock: FdSocket<LinkAddr>, local: LinkAddr, cooked: boolean) => LinkSocket;

/**
 * An `AF_PACKET` socket bound to one interface, from {@linkcode openPacket}.
 *
 * Records are whole frames (or network-layer packets when cooked); `from` is
 * the frame's {@linkcode LinkAddr}. `send(frame)` puts a frame on the
 * interface as it is; `write(p)` is `send(p)`.
 *
 * @example Inject a broadcast frame
 * ```ts ignore
 * import { openPacket } from "@bsd/sockets/raw";
 *
 * using sock = openPacket({ interface: "veth0" });
 * const frame = new Uint8Array(60);
 * frame.fill(0xff, 0, 6); // destination: broadcast
 * frame.set(sock.localAddr.address, 6); // source: this interface
 * frame.set([0x88, 0xb5], 12); // EtherType: local experimental
 * await sock.send(frame);
 * ```
 */
export class LinkSocket extends PacketSocketBase<LinkAddr> {
  readonly #sock: FdSocket<LinkAddr>;
  readonly #local: LinkAddr;
  readonly #cooked: boolean;
  readonly #permit: Permit;

  private constructor(sock: FdSocket<LinkAddr>, local: LinkAddr, cooked: boolean) {
    super();
    this.#sock = sock;
    attachReceiver(this, sock);
    this.#local = local;
    this.#cooked = cooked;
    attachOptions(this, {
      socket: sock,
      shape: { family: "packet", kind: cooked ? "datagram" : "raw" },
      label: () => sock.label,
    });
    this.#permit = permit(() =>
      requireAnyNet(`every host, for a packet socket on ${describeAddress(local.interface)}`)
    );
  }

  static {
    adoptLink = (sock, local, cooked) => new LinkSocket(sock, local, cooked);
  }

  /** Which engine serves this socket: always `"ffi"` (raw and packet sockets have no built-in). */
  get backend(): "ffi" {
    return "ffi";
  }

  /**
   * The socket's descriptor, `null` after `close()`. The socket keeps owning
   * it: pass it on, never close it yourself.
   *
   * @example Look at the descriptor
   * ```ts ignore
   * import { openPacket } from "@bsd/sockets/raw";
   *
   * using sock = openPacket({ interface: "lo" });
   * console.log(typeof sock.fd); // "number"
   * ```
   */
  get fd(): number | null {
    return this.#sock.closed ? null : this.#sock.fd;
  }

  /** The interface this socket is bound to, with its hardware address and bound protocol. */
  get localAddr(): LinkAddr {
    return this.#local;
  }

  /**
   * Sends one frame (`sendto` with a `sockaddr_ll`). Without `to`, a whole
   * frame goes out on the bound interface as given. With `to`, its `ifindex`
   * (default: the bound one), `protocol` and `address` are used; a cooked
   * socket needs them to build the link-layer header. Never sends in part.
   *
   * Needs unscoped `--allow-net`, checked again after any
   * `Deno.permissions.revoke`, so a revoked permission takes effect on the next send.
   *
   * @param data The frame, link-layer header first unless cooked.
   * @param to Where to send: needed on cooked sockets.
   * @returns The number of bytes sent.
   * @throws {TypeError} For a buffer or address of the wrong shape.
   * @throws {Deno.errors.NotConnected} On a cooked socket when `to` is omitted:
   * a cooked socket has no destination of its own.
   * @throws {Deno.errors.NotCapable} Once unscoped net access is revoked.
   * @throws {RangeError} For an address field out of range.
   * @throws {Deno.errors.NotFound} When `to.ifindex` names no interface.
   * @throws {Deno.errors.BadResource} Once the socket is closed.
   * @throws {SocketError} `EMSGSIZE` for a frame over the interface's MTU.
   *
   * @example Send an IPv4 packet to a known MAC, cooked
   * ```ts ignore
   * import { openPacket } from "@bsd/sockets/raw";
   *
   * using sock = openPacket({ interface: "veth0", protocol: "ipv4", cooked: true });
   * const packet = new Uint8Array(20); // an IPv4 packet, built elsewhere
   * await sock.send(packet, { ...sock.localAddr, address: new Uint8Array([2, 0, 0, 0, 0, 1]) });
   * ```
   */
  send(data: Uint8Array, to?: LinkAddr): Promise<number> {
    try {
      checkBuffer(data, `send ${this.#sock.label}`);
      if (to === undefined) {
        if (this.#cooked && !this.#sock.closed) {
          throw notConnected(
            "send",
            this.#sock.label,
            "a cooked packet socket needs a destination (to.address and to.protocol) " +
              "to build the link-layer header",
          );
        }
        requirePermit(this.#permit);
        return this.#sock.send(data, null);
      }
      if (typeof to !== "object" || to === null) {
        throw new TypeError(
          `send ${this.#sock.label}: destination must be a LinkAddr, got ${describeValue(to)}`,
        );
      }
      const addr = encodeLink({
        ifindex: to.ifindex ?? this.#local.ifindex,
        protocol: to.protocol ?? this.#local.protocol,
        address: to.address,
      });
      // Another interface than the bound one is looked up first, so that
      // one that does not exist gets the answer every type gives.
      if (to.ifindex !== undefined && to.ifindex !== this.#local.ifindex) {
        requireInterface(to.ifindex, "send");
      }
      requirePermit(this.#permit);
      return this.#sock.send(data, addr);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Sends `p` as one frame on the bound interface: `send(p)`.
   *
   * @param p The frame.
   * @returns The number of bytes sent.
   * @throws {Deno.errors.NotConnected} On a cooked socket, which needs `send(p, to)`.
   */
  write(p: Uint8Array): Promise<number> {
    return this.send(p);
  }

  /**
   * Receives one frame with its {@linkcode LinkAddr}. Resolves `null` once
   * closed.
   *
   * @param options `maxSize` (default 65,536) and an abort `signal`.
   * @returns The frame and where it came from, or `null`.
   * @throws {TypeError} For options of the wrong shape.
   * @throws {RangeError} For a `maxSize` out of range.
   *
   * @example Print the next frame's source
   * ```ts ignore
   * import { openPacket } from "@bsd/sockets/raw";
   *
   * using sock = openPacket({ interface: "eth0" });
   * const m = await sock.receive();
   * console.log(m?.from?.address);
   * ```
   */
  receive(options?: ReceiveOptions): Promise<Message<LinkAddr> | null> {
    return receiveFrom(this.#sock, options);
  }

  /**
   * Attaches a classic BPF filter (`SO_ATTACH_FILTER`), replacing any other.
   * It sees the Ethernet header first (`compileFilter(match, { link:
   * "ethernet" })`), or the network header when cooked (`link: "cooked"`).
   * Frames already queued stay; pass `filter` to `openPacket` to filter from
   * the first frame.
   *
   * @param program The program, checked with `validateFilter` before the system call.
   * @throws {TypeError} For a program of the wrong shape.
   * @throws {RangeError} For an invalid program.
   * @throws {Deno.errors.BadResource} Once the socket is closed.
   *
   * @example Only UDP port 9999
   * ```ts ignore
   * import { compileFilter, openPacket } from "@bsd/sockets/raw";
   *
   * using sock = openPacket({ interface: "eth0" });
   * sock.setFilter(compileFilter({ ipProtocol: "udp", port: 9999 }, { link: "ethernet" }));
   * ```
   */
  setFilter(program: BpfProgram): void {
    validateFilter(program);
    this.#sock.setOption("attachFilter", encodeFilter(program));
  }

  /**
   * Frames received and dropped since the previous call, or since the socket
   * opened (`PACKET_STATISTICS`; reading resets the kernel's counters).
   *
   * @returns The counts.
   * @throws {Deno.errors.BadResource} Once the socket is closed.
   */
  statistics(): PacketStatistics {
    const { packets, drops } = this.#sock.getOption("packetStatistics");
    return { received: packets - drops, dropped: drops };
  }

  /** Lets pending operations keep the process alive (the default). */
  ref(): void {
    this.#sock.ref();
  }

  /** Lets the process exit even while a receive or send is pending. */
  unref(): void {
    this.#sock.unref();
  }

  /**
   * Closes the socket; pending receives resolve `null` and pending sends
   * reject with `BadResource`. Calling it again does nothing.
   */
  close(): void {
    this.#sock.close();
  }
}

// ---------------------------------------------------------------------------

// The fromFd part of this module: raw IP descriptors and ping sockets
// (ICMP datagram sockets) become RawSocket, packet sockets LinkSocket.
registerAdopter({
  matches: (d) =>
    (d.family === "ipv4" || d.family === "ipv6") &&
    (d.kind === "raw" ||
      (d.kind === "datagram" &&
        d.protocol ===
          (d.family === "ipv4" ? IP_PROTOCOL_NUMBERS.icmp : IP_PROTOCOL_NUMBERS.icmpv6))),
  adopt(d) {
    const family = d.family as "ipv4" | "ipv6";
    const remote = FdSocket.nameOf(d.fd, "getpeername", decodeIp);
    // As openRaw and send: net access to the host it talks to.
    if (remote !== null) requireNet(remote.hostname);
    d.take();
    const label = describeAddress(remote?.hostname ?? `${family}/${d.protocol}`);
    return adoptRaw(
      new FdSocket<IpAddr>(d.fd, { label, decode: decodeIp }),
      family,
      d.kind === "datagram",
      remote,
    );
  },
});

registerAdopter({
  matches: (d) => d.family === "packet" && (d.kind === "raw" || d.kind === "datagram"),
  adopt(d) {
    const bound = FdSocket.nameOf(d.fd, "getsockname", decodeLink)!;
    const name = interfaceName(bound.ifindex) ?? "";
    requireAnyNet(`every host, for a packet socket on ${describeAddress(name)}`);
    const decode = linkDecoder(bound.ifindex, name);
    const local = FdSocket.nameOf(d.fd, "getsockname", decode)!;
    d.take();
    const sock = new FdSocket<LinkAddr>(d.fd, { label: describeAddress(name), decode });
    return adoptLink(sock, local, d.kind === "datagram");
  },
});
