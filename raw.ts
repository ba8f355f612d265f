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

import { checkBusyPoll, PacketSocketBase } from "./_internal/packet_socket.ts";
import { FfiRecords } from "./_internal/ffi_records.ts";
import { explainDenied, notConnected } from "./_internal/socket_errors.ts";
import {
  checkBoolean,
  checkBuffer,
  checkInteger,
  checkInterfaceName,
  checkObject,
  describeValue,
} from "./_internal/checks.ts";
import { type BpfProgram, validateFilter } from "./bpf.ts";
import { IP_PROTOCOL_NUMBERS } from "./ffi/constants.ts";
import { describeAddress } from "./ffi/errors.ts";
import { encodeFilter } from "./ffi/filter.ts";
import { interfaceIndex, requireInterface } from "./ffi/interfaces.ts";
import { permit, requireNet, requirePermit } from "./ffi/permissions.ts";
import { type CheckedDestination, DestinationCache } from "./_internal/destinations.ts";
import { applyBufferSizes, type BufferSizes, checkBufferSizes } from "./_internal/buffer_sizes.ts";
import { decodeInet, decodeIp, encodeInet, ipFamily } from "./ffi/sockaddr.ts";
import { FdSocket } from "./ffi/socket.ts";
import { registerAdopter } from "./_internal/adopt.ts";
import type { IpAddr, ReceiveInfo } from "./types.ts";
import { checkReceiveInfo, enableReceiveInfo } from "./_internal/options.ts";

export * from "./bpf.ts";
export * from "./link.ts";

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
    return new RawSocket(sock, o.family, o.unprivileged, null);
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
    checked.interface = checkInterfaceName("openRaw: interface", options.interface);
  }
  return checked;
}

function rawHint(protocol: number, family: "ipv4" | "ipv6"): string {
  const icmp = family === "ipv4" ? IP_PROTOCOL_NUMBERS.icmp : IP_PROTOCOL_NUMBERS.icmpv6;
  return protocol === icmp ? `${CAP_NET_RAW_HINT}; ${PING_HINT}` : CAP_NET_RAW_HINT;
}

/** A destination host, checked and encoded once, as datagram sockets keep theirs. */
interface Destination extends CheckedDestination {
  addr: IpAddr;
  sockaddr: Uint8Array;
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
    addr: { transport: "ip", hostname },
    sockaddr: encodeInet(hostname, 0, interfaceIndex),
    label: describeAddress(hostname),
    permit: permit(() => requireNet(hostname)),
  };
}

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
  readonly #ping: boolean;
  #local: IpAddr;
  readonly #echoId: number | null;
  #peer: Destination | null;
  readonly #destinations: DestinationCache<Destination>;
  /** The call whose destination is being checked, for the messages of the cache's codec. */
  #call = "send";

  /**
   * Not for users: {@linkcode openRaw} and `fromFd` build raw sockets.
   *
   * @param sock The socket, owned from then on.
   * @param family Its IP version.
   * @param ping Whether it is an unprivileged ICMP socket.
   * @param remote The host it is connected to, or `null`.
   * @internal
   */
  constructor(
    sock: FdSocket<IpAddr>,
    family: "ipv4" | "ipv6",
    ping: boolean,
    remote: IpAddr | null,
  ) {
    super(new FfiRecords(sock, { family, kind: ping ? "datagram" : "raw" }));
    this.#sock = sock;
    this.#ping = ping;
    this.#local = sock.localAddress(decodeIp);
    // A ping socket's "port" is its echo identifier.
    this.#echoId = ping
      ? sock.localAddress((name, length) => decodeInet(name, length, "udp").port)
      : null;
    this.#destinations = new DestinationCache<Destination>({
      key: (to) => (to as IpAddr).hostname,
      make: (to) => destination(to as IpAddr, this.#call, family),
    }, DESTINATION_CACHE_SIZE);
    this.#peer = remote === null ? null : destination(remote, "fromFd", family);
  }

  /** The local address: the wildcard until connected, then the source address used. */
  get localAddr(): IpAddr {
    return this.#local;
  }

  /** The host given to {@linkcode RawSocket.connect}, or `null` before it. */
  get remoteAddr(): IpAddr | null {
    return this.#peer?.addr ?? null;
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
        checkBuffer(`send ${this.#sock.label}`, data);
        if (this.#sock.closed) return this.#sock.send(data, null);
        if (this.#peer === null) {
          throw notConnected(
            "send",
            this.#sock.label,
            "call connect(to) first, or give send(data, to)",
          );
        }
        requirePermit(this.#peer.permit);
        return this.#sock.send(data, null);
      }
      const dest = this.#destination(to, "send");
      checkBuffer(`send ${dest.label}`, data);
      return this.#sock.send(data, dest.sockaddr, { label: dest.label });
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
    const dest = this.#destination(to, "connect");
    await this.#sock.connect(dest.sockaddr, dest.label);
    this.#sock.label = dest.label;
    this.#peer = dest;
    this.#local = this.#sock.localAddress(decodeIp);
  }

  /** Checks `to`: shape and encoding once per destination, permission as the policy asks. */
  #destination(to: IpAddr, call: string): Destination {
    checkIpAddr(to, call);
    this.#call = call;
    return this.#destinations.resolve(to);
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
}

// ---------------------------------------------------------------------------

// The fromFd part of this module: raw IP descriptors and ping sockets
// (ICMP datagram sockets) become RawSocket (link.ts adopts packet sockets).
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
    const sock = new FdSocket<IpAddr>(d.fd, { label, decode: decodeIp });
    return new RawSocket(sock, family, d.kind === "datagram", remote);
  },
});
