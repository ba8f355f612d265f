// Socket options by name: the one table from a name to its level, option
// number and encoding, and the one path to setsockopt/getsockopt. Two name
// sets live here: the engine's own (OptionValues, one name per C option)
// and the public ones (SocketOptions), which pick the engine's option by the
// socket's family and refuse a name that does not apply to it.

import {
  IP_ADD_MEMBERSHIP,
  IP_DROP_MEMBERSHIP,
  IP_HDRINCL,
  IP_MULTICAST_IF,
  IP_MULTICAST_LOOP,
  IP_MULTICAST_TTL,
  IP_PKTINFO,
  IP_RECVTOS,
  IP_RECVTTL,
  IP_TOS,
  IP_TTL,
  IPPROTO_TCP,
  IPV6_JOIN_GROUP,
  IPV6_LEAVE_GROUP,
  IPV6_MULTICAST_HOPS,
  IPV6_MULTICAST_IF,
  IPV6_MULTICAST_LOOP,
  IPV6_RECVHOPLIMIT,
  IPV6_RECVPKTINFO,
  IPV6_RECVTCLASS,
  IPV6_TCLASS,
  IPV6_UNICAST_HOPS,
  IPV6_V6ONLY,
  NETLINK_ADD_MEMBERSHIP,
  NETLINK_CAP_ACK,
  NETLINK_EXT_ACK,
  PACKET_RX_RING,
  PACKET_STATISTICS,
  PACKET_VERSION,
  SO_ATTACH_FILTER,
  SO_ATTACH_REUSEPORT_CBPF,
  SO_BINDTODEVICE,
  SO_BROADCAST,
  SO_ERROR,
  SO_KEEPALIVE,
  SO_MARK,
  SO_PASSCRED,
  SO_PEERCRED,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SO_SNDBUF,
  SO_SNDBUFFORCE,
  SO_TIMESTAMPNS,
  SO_TYPE,
  SOL_IP,
  SOL_IPV6,
  SOL_NETLINK,
  SOL_PACKET,
  SOL_SOCKET,
  TCP_INFO,
  TCP_KEEPCNT,
  TCP_KEEPIDLE,
  TCP_KEEPINTVL,
  TCP_NODELAY,
  TCP_USER_TIMEOUT,
} from "./constants.ts";
import type { ReceiveInfo, SocketOptionName, TcpInfo, TcpState } from "../types.ts";
import { errnoError } from "./errors.ts";
import { encodeFprog } from "./filter.ts";
import { pointerOf, withPinned } from "./buffers.ts";
import {
  type Credentials,
  decodeUcred,
  IP_MREQN,
  IPV6_MREQ,
  TCP_INFO_LAYOUT,
  TPACKET_STATS,
} from "./structs.ts";
import { errno, libc } from "./libc.ts";

/** Address families, by the names the modules above use. */
export type Family = "unix" | "ipv4" | "ipv6" | "packet" | "netlink";
/** Socket types, by the names the modules above use. */
export type Kind = "stream" | "datagram" | "seqpacket" | "raw";

/** A multicast group (network-order address bytes) and the interface to join it on. */
export interface Membership {
  group: Uint8Array;
  ifindex: number;
}

/** The engine's options, one name per C option. */
export interface OptionValues {
  reuseAddress: boolean;
  reusePort: boolean;
  broadcast: boolean;
  sendBufferSize: number;
  receiveBufferSize: number;
  /** As root, past `net.core.wmem_max`. */
  sendBufferSizeForce: number;
  /** As root, past `net.core.rmem_max`. */
  receiveBufferSizeForce: number;
  passCredentials: boolean;
  bindToDevice: string;
  mark: number;
  /** Every record carries its kernel receive time (`SCM_TIMESTAMPNS`). */
  timestampNs: boolean;
  /** The bytes of a `struct sock_filter` array (see ffi/filter.ts). */
  attachFilter: Uint8Array;
  /** A `struct sock_filter` array choosing the member of a reuse-port group. */
  attachReusePortFilter: Uint8Array;
  ipTtl: number;
  ipTos: number;
  ipHeaderIncluded: boolean;
  ipReceiveTtl: boolean;
  ipReceiveTos: boolean;
  ipPacketInfo: boolean;
  multicastTtl: number;
  multicastLoop: boolean;
  /** The interface index for outgoing IPv4 multicast (0 = the routing table's choice). */
  multicastInterface: number;
  addMembership: Membership;
  dropMembership: Membership;
  ipv6UnicastHops: number;
  ipv6TrafficClass: number;
  ipv6Only: boolean;
  ipv6ReceivePacketInfo: boolean;
  ipv6ReceiveHopLimit: boolean;
  ipv6ReceiveTrafficClass: boolean;
  ipv6MulticastHops: number;
  ipv6MulticastLoop: boolean;
  ipv6MulticastInterface: number;
  ipv6JoinGroup: Membership;
  ipv6LeaveGroup: Membership;
  /** AF_PACKET ring layout version (TPACKET_V1…V3). */
  packetVersion: number;
  /** AF_PACKET receive ring: the bytes of a `struct tpacket_req3` (see ffi/packet_ring.ts). */
  packetReceiveRing: Uint8Array;
  /** Netlink: errors carry the kernel's message and the failing attribute. */
  netlinkExtendedAck: boolean;
  /** Netlink: errors echo only the failed request's header, not all of it. */
  netlinkCapAck: boolean;
  /** Netlink: joins multicast group number N (any N, unlike the bind-time bit mask). */
  netlinkAddMembership: number;
  keepAlive: boolean;
  tcpNoDelay: boolean;
  tcpKeepIdle: number;
  tcpKeepInterval: number;
  tcpKeepCount: number;
  tcpUserTimeout: number;
}

/** Options that can only be read. */
export interface ReadOnlyOptionValues {
  error: number;
  type: number;
  peerCredentials: Credentials;
  /**
   * AF_PACKET: packets that passed the filter and of those dropped, since
   * the last read (which resets both).
   */
  packetStatistics: { packets: number; drops: number };
}

/**
 * How a value is laid out: a C `int` (bool, int, uint), a NUL-terminated
 * string, a classic BPF program behind a `sock_fprog`, bytes passed as they
 * are, or a multicast request.
 */
type Encoding = "bool" | "int" | "uint" | "string" | "filter" | "struct" | "mreqn" | "mreq6";

const OPTIONS: Record<keyof OptionValues, readonly [number, number, Encoding]> = {
  reuseAddress: [SOL_SOCKET, SO_REUSEADDR, "bool"],
  reusePort: [SOL_SOCKET, SO_REUSEPORT, "bool"],
  broadcast: [SOL_SOCKET, SO_BROADCAST, "bool"],
  sendBufferSize: [SOL_SOCKET, SO_SNDBUF, "int"],
  receiveBufferSize: [SOL_SOCKET, SO_RCVBUF, "int"],
  sendBufferSizeForce: [SOL_SOCKET, SO_SNDBUFFORCE, "int"],
  receiveBufferSizeForce: [SOL_SOCKET, SO_RCVBUFFORCE, "int"],
  passCredentials: [SOL_SOCKET, SO_PASSCRED, "bool"],
  bindToDevice: [SOL_SOCKET, SO_BINDTODEVICE, "string"],
  mark: [SOL_SOCKET, SO_MARK, "uint"],
  timestampNs: [SOL_SOCKET, SO_TIMESTAMPNS, "bool"],
  attachFilter: [SOL_SOCKET, SO_ATTACH_FILTER, "filter"],
  attachReusePortFilter: [SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, "filter"],
  ipTtl: [SOL_IP, IP_TTL, "int"],
  ipTos: [SOL_IP, IP_TOS, "int"],
  ipHeaderIncluded: [SOL_IP, IP_HDRINCL, "bool"],
  ipReceiveTtl: [SOL_IP, IP_RECVTTL, "bool"],
  ipReceiveTos: [SOL_IP, IP_RECVTOS, "bool"],
  ipPacketInfo: [SOL_IP, IP_PKTINFO, "bool"],
  multicastTtl: [SOL_IP, IP_MULTICAST_TTL, "int"],
  multicastLoop: [SOL_IP, IP_MULTICAST_LOOP, "bool"],
  multicastInterface: [SOL_IP, IP_MULTICAST_IF, "mreqn"],
  addMembership: [SOL_IP, IP_ADD_MEMBERSHIP, "mreqn"],
  dropMembership: [SOL_IP, IP_DROP_MEMBERSHIP, "mreqn"],
  ipv6UnicastHops: [SOL_IPV6, IPV6_UNICAST_HOPS, "int"],
  ipv6TrafficClass: [SOL_IPV6, IPV6_TCLASS, "int"],
  ipv6Only: [SOL_IPV6, IPV6_V6ONLY, "bool"],
  ipv6ReceivePacketInfo: [SOL_IPV6, IPV6_RECVPKTINFO, "bool"],
  ipv6ReceiveHopLimit: [SOL_IPV6, IPV6_RECVHOPLIMIT, "bool"],
  ipv6ReceiveTrafficClass: [SOL_IPV6, IPV6_RECVTCLASS, "bool"],
  ipv6MulticastHops: [SOL_IPV6, IPV6_MULTICAST_HOPS, "int"],
  ipv6MulticastLoop: [SOL_IPV6, IPV6_MULTICAST_LOOP, "bool"],
  ipv6MulticastInterface: [SOL_IPV6, IPV6_MULTICAST_IF, "int"],
  ipv6JoinGroup: [SOL_IPV6, IPV6_JOIN_GROUP, "mreq6"],
  ipv6LeaveGroup: [SOL_IPV6, IPV6_LEAVE_GROUP, "mreq6"],
  packetVersion: [SOL_PACKET, PACKET_VERSION, "int"],
  packetReceiveRing: [SOL_PACKET, PACKET_RX_RING, "struct"],
  netlinkExtendedAck: [SOL_NETLINK, NETLINK_EXT_ACK, "bool"],
  netlinkCapAck: [SOL_NETLINK, NETLINK_CAP_ACK, "bool"],
  netlinkAddMembership: [SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, "int"],
  keepAlive: [SOL_SOCKET, SO_KEEPALIVE, "bool"],
  tcpNoDelay: [IPPROTO_TCP, TCP_NODELAY, "bool"],
  tcpKeepIdle: [IPPROTO_TCP, TCP_KEEPIDLE, "int"],
  tcpKeepInterval: [IPPROTO_TCP, TCP_KEEPINTVL, "int"],
  tcpKeepCount: [IPPROTO_TCP, TCP_KEEPCNT, "int"],
  tcpUserTimeout: [IPPROTO_TCP, TCP_USER_TIMEOUT, "uint"],
};
const READ_ONLY: Record<keyof ReadOnlyOptionValues, readonly [number, number]> = {
  error: [SOL_SOCKET, SO_ERROR],
  type: [SOL_SOCKET, SO_TYPE],
  peerCredentials: [SOL_SOCKET, SO_PEERCRED],
  packetStatistics: [SOL_PACKET, PACKET_STATISTICS],
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function encodeOption(encoding: Encoding, value: unknown): Uint8Array {
  switch (encoding) {
    case "bool":
    case "int":
    case "uint": {
      const out = new Uint8Array(4);
      new DataView(out.buffer).setUint32(0, Number(value) >>> 0, true);
      return out;
    }
    case "string":
      return encoder.encode(`${value}\0`);
    case "filter":
      // setOptionOn() pins the filter until setsockopt returns.
      return encodeFprog(value as Uint8Array, pointerOf(value as Uint8Array));
    case "struct":
      return value as Uint8Array;
    case "mreqn": {
      // A bare interface index (IP_MULTICAST_IF) leaves the group empty.
      const out = new Uint8Array(IP_MREQN.size);
      const m = typeof value === "number" ? undefined : value as Membership;
      if (m) out.set(m.group, IP_MREQN.multiaddr);
      const ifindex = m ? m.ifindex : value as number;
      new DataView(out.buffer).setInt32(IP_MREQN.ifindex, ifindex, true);
      return out;
    }
    case "mreq6": {
      const m = value as Membership;
      const out = new Uint8Array(IPV6_MREQ.size);
      out.set(m.group, IPV6_MREQ.multiaddr);
      new DataView(out.buffer).setUint32(IPV6_MREQ.ifindex, m.ifindex, true);
      return out;
    }
  }
}

/** `setsockopt(fd, …)` for the engine's option `name`. */
export function setOptionOn<K extends keyof OptionValues>(
  fd: number,
  label: string,
  name: K,
  value: OptionValues[K],
): void {
  const [level, opt, encoding] = OPTIONS[name];
  // A filter is reached through the sock_fprog's pointer: pinned meanwhile.
  const reached = value instanceof Uint8Array ? [value] : [];
  const rc = withPinned(reached, () => {
    const bytes = encodeOption(encoding, value);
    return libc().setsockopt(fd, level, opt, bytes, bytes.length);
  });
  if (rc < 0) throw errnoError(errno(), `setsockopt ${name}`, label);
}

/** What getOptionOn returns for `K`. */
export type OptionValue<K extends keyof OptionValues | keyof ReadOnlyOptionValues> = K extends
  keyof ReadOnlyOptionValues ? ReadOnlyOptionValues[K]
  : K extends keyof OptionValues ? OptionValues[K]
  : never;

const scratchLen = new Uint8Array(4);
const scratchLenView = new DataView(scratchLen.buffer);

/** `getsockopt` into `size` bytes; returns the bytes the kernel wrote. */
function getBytes(
  fd: number,
  label: string,
  call: string,
  level: number,
  opt: number,
  size: number,
) {
  const out = new Uint8Array(size);
  scratchLenView.setUint32(0, size, true);
  if (libc().getsockopt(fd, level, opt, out, scratchLen) < 0) {
    throw errnoError(errno(), `getsockopt ${call}`, label);
  }
  return out.subarray(0, Math.min(size, scratchLenView.getUint32(0, true)));
}

/** `getsockopt(fd, …)` for the engine's option `name`, decoded. */
export function getOptionOn<K extends keyof OptionValues | keyof ReadOnlyOptionValues>(
  fd: number,
  label: string,
  name: K,
): OptionValue<K> {
  const readOnly = name in READ_ONLY;
  const [level, opt, encoding] = readOnly
    ? [...READ_ONLY[name as keyof ReadOnlyOptionValues], "int" as const]
    : OPTIONS[name as keyof OptionValues];
  const out = getBytes(fd, label, name, level, opt, 16);
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let value: unknown;
  if (name === "peerCredentials") value = decodeUcred(v, 0);
  else if (name === "packetStatistics") {
    value = {
      packets: v.getUint32(TPACKET_STATS.packets, true),
      drops: v.getUint32(TPACKET_STATS.drops, true),
    };
  } else if (encoding === "string") {
    const end = out.indexOf(0);
    value = decoder.decode(end < 0 ? out : out.subarray(0, end));
  } else {
    // Some options (IP_MULTICAST_LOOP, IP_MULTICAST_TTL) may answer in one byte.
    const n = out.length >= 4 ? v.getUint32(0, true) : out.length === 1 ? out[0] : 0;
    value = encoding === "bool" ? n !== 0 : encoding === "uint" ? n : n | 0;
  }
  return value as OptionValue<K>;
}

// ---------------------------------------------------------------------------
// The escape hatch: an option by number, bytes in and out.

/** `setsockopt(fd, level, option, bytes)`. */
export function setRawOptionOn(
  fd: number,
  label: string,
  level: number,
  option: number,
  bytes: Uint8Array,
): void {
  if (libc().setsockopt(fd, level, option, bytes, bytes.length) < 0) {
    throw errnoError(errno(), `setsockopt ${level}/${option}`, label);
  }
}

/** `getsockopt(fd, level, option)` into `size` bytes; the bytes the kernel wrote. */
export function getRawOptionOn(
  fd: number,
  label: string,
  level: number,
  option: number,
  size: number,
): Uint8Array {
  return getBytes(fd, label, `${level}/${option}`, level, option, size);
}

// ---------------------------------------------------------------------------
// The public option names.

/** Where a public option applies: the engine's option per family, and the socket types. */
interface Scope {
  on: Partial<Record<Family, keyof OptionValues>>;
  kinds?: readonly Kind[];
  /** The sockets it applies to, for the message. */
  what: string;
  /** Integers: the range accepted. */
  range?: readonly [number, number];
  /** The families on which the option can be set but not read back. */
  setOnly?: readonly Family[];
}

const IP_BOTH = (name: keyof OptionValues) => ({ ipv4: name, ipv6: name });
const TCP = ["stream"] as const;
const PACKETS = ["datagram", "raw"] as const;
const INT31 = [0, 0x7fffffff] as const;
const BYTE = [0, 255] as const;

const PUBLIC: Record<SocketOptionName, Scope> = {
  reuseAddress: { on: IP_BOTH("reuseAddress"), kinds: ["stream", "datagram"], what: "TCP and UDP" },
  reusePort: { on: IP_BOTH("reusePort"), kinds: ["stream", "datagram"], what: "TCP and UDP" },
  keepAlive: { on: IP_BOTH("keepAlive"), kinds: TCP, what: "TCP" },
  keepAliveIdle: { on: IP_BOTH("tcpKeepIdle"), kinds: TCP, what: "TCP", range: [1, 32767] },
  keepAliveInterval: {
    on: IP_BOTH("tcpKeepInterval"),
    kinds: TCP,
    what: "TCP",
    range: [1, 32767],
  },
  keepAliveCount: { on: IP_BOTH("tcpKeepCount"), kinds: TCP, what: "TCP", range: [1, 127] },
  noDelay: { on: IP_BOTH("tcpNoDelay"), kinds: TCP, what: "TCP" },
  userTimeout: { on: IP_BOTH("tcpUserTimeout"), kinds: TCP, what: "TCP", range: INT31 },
  ttl: { on: { ipv4: "ipTtl" }, what: "IPv4", range: [1, 255] },
  hopLimit: { on: { ipv6: "ipv6UnicastHops" }, what: "IPv6", range: [1, 255] },
  tos: { on: { ipv4: "ipTos" }, what: "IPv4", range: BYTE },
  trafficClass: { on: { ipv6: "ipv6TrafficClass" }, what: "IPv6", range: BYTE },
  v6Only: { on: { ipv6: "ipv6Only" }, what: "IPv6" },
  bindToDevice: {
    on: { ...IP_BOTH("bindToDevice"), packet: "bindToDevice" },
    what: "IP and packet",
  },
  receiveBufferSize: {
    on: {
      ...IP_BOTH("receiveBufferSize"),
      unix: "receiveBufferSize",
      packet: "receiveBufferSize",
      netlink: "receiveBufferSize",
    },
    what: "every",
    range: INT31,
  },
  sendBufferSize: {
    on: {
      ...IP_BOTH("sendBufferSize"),
      unix: "sendBufferSize",
      packet: "sendBufferSize",
      netlink: "sendBufferSize",
    },
    what: "every",
    range: INT31,
  },
  broadcast: { on: { ipv4: "broadcast" }, kinds: PACKETS, what: "IPv4 datagram and raw" },
  multicastTtl: {
    on: { ipv4: "multicastTtl" },
    kinds: PACKETS,
    what: "IPv4 datagram and raw",
    range: BYTE,
  },
  multicastHops: {
    on: { ipv6: "ipv6MulticastHops" },
    kinds: PACKETS,
    what: "IPv6 datagram and raw",
    range: BYTE,
  },
  multicastLoop: {
    on: { ipv4: "multicastLoop", ipv6: "ipv6MulticastLoop" },
    kinds: PACKETS,
    what: "IP datagram and raw",
  },
  multicastInterface: {
    on: { ipv4: "multicastInterface", ipv6: "ipv6MulticastInterface" },
    kinds: PACKETS,
    what: "IP datagram and raw",
    range: INT31,
    setOnly: ["ipv4"],
  },
  mark: {
    on: { ...IP_BOTH("mark"), packet: "mark" },
    what: "IP and packet",
    range: [0, 0xffffffff],
  },
};

/** A socket's family and type, as the public option names are checked against. */
export interface Shape {
  family: Family;
  kind: Kind;
}

function describeShape(shape: Shape): string {
  const family = shape.family === "ipv4" ? "IPv4" : shape.family === "ipv6" ? "IPv6" : shape.family;
  return `${family} ${shape.kind}`;
}

/**
 * The engine's option behind public `name` on a socket of `shape`, checked
 * before any system call.
 *
 * @throws {TypeError} For a name that is not a public option.
 * @throws {Deno.errors.NotSupported} For a name that does not apply to this socket.
 */
export function resolveOption(
  name: unknown,
  shape: Shape,
  call: string,
  label: string,
  reading = false,
): keyof OptionValues {
  if (typeof name !== "string" || !Object.hasOwn(PUBLIC, name)) {
    throw new TypeError(`${where(call, label)}: unknown socket option ${JSON.stringify(name)}`);
  }
  const scope = PUBLIC[name as SocketOptionName];
  const option = scope.on[shape.family];
  if (option === undefined || (scope.kinds && !scope.kinds.includes(shape.kind))) {
    throw new Deno.errors.NotSupported(
      `${where(call, label)}: ${name} applies to ${scope.what} sockets, not to this ` +
        `${describeShape(shape)} socket`,
    );
  }
  if (reading && scope.setOnly?.includes(shape.family)) {
    throw new Deno.errors.NotSupported(
      `${where(call, label)}: ${name} cannot be read back on a ${describeShape(shape)} socket`,
    );
  }
  return option;
}

/**
 * What a value of public option `name` must be: a boolean, an interface name
 * (or `""`), or an integer in `[min, max]`. The check itself is made above
 * ffi/, with the package's argument checks.
 */
export function optionValueRule(
  name: SocketOptionName,
): { type: "boolean" } | { type: "interface" } | { type: "integer"; min: number; max: number } {
  const scope = PUBLIC[name];
  const encoding = OPTIONS[scope.on.ipv4 ?? scope.on.ipv6 ?? scope.on.packet ?? "mark"][2];
  if (encoding === "bool") return { type: "boolean" };
  if (encoding === "string") return { type: "interface" };
  const [min, max] = scope.range ?? INT31;
  return { type: "integer", min, max };
}

// ---------------------------------------------------------------------------
// TCP_INFO: `struct tcp_info` (linux/tcp.h, layout in structs.ts), by public name.

/** The state names of `tcpi_state`, by number (include/net/tcp_states.h). */
const TCP_STATES = [
  "unknown",
  "established",
  "synSent",
  "synReceived",
  "finWait1",
  "finWait2",
  "timeWait",
  "closed",
  "closeWait",
  "lastAck",
  "listen",
  "closing",
  "newSynReceived",
  "boundInactive",
] as const satisfies readonly TcpState[];

/** Each field after the state byte: where `struct tcp_info` holds it, and its width. */
const TCP_INFO_FIELDS: readonly (readonly [Exclude<keyof TcpInfo, "state">, number, 1 | 4 | 8])[] =
  [
    ["caState", TCP_INFO_LAYOUT.caState, 1],
    ["retransmits", TCP_INFO_LAYOUT.retransmits, 1],
    ["probes", TCP_INFO_LAYOUT.probes, 1],
    ["backoff", TCP_INFO_LAYOUT.backoff, 1],
    ["rto", TCP_INFO_LAYOUT.rto, 4],
    ["ato", TCP_INFO_LAYOUT.ato, 4],
    ["sendMss", TCP_INFO_LAYOUT.sndMss, 4],
    ["receiveMss", TCP_INFO_LAYOUT.rcvMss, 4],
    ["unacked", TCP_INFO_LAYOUT.unacked, 4],
    ["sacked", TCP_INFO_LAYOUT.sacked, 4],
    ["lost", TCP_INFO_LAYOUT.lost, 4],
    ["retrans", TCP_INFO_LAYOUT.retrans, 4],
    ["lastDataSent", TCP_INFO_LAYOUT.lastDataSent, 4],
    ["lastDataReceived", TCP_INFO_LAYOUT.lastDataRecv, 4],
    ["lastAckReceived", TCP_INFO_LAYOUT.lastAckRecv, 4],
    ["pmtu", TCP_INFO_LAYOUT.pmtu, 4],
    ["receiveSsthresh", TCP_INFO_LAYOUT.rcvSsthresh, 4],
    ["rtt", TCP_INFO_LAYOUT.rtt, 4],
    ["rttvar", TCP_INFO_LAYOUT.rttvar, 4],
    ["ssthresh", TCP_INFO_LAYOUT.sndSsthresh, 4],
    ["cwnd", TCP_INFO_LAYOUT.sndCwnd, 4],
    ["advmss", TCP_INFO_LAYOUT.advmss, 4],
    ["reordering", TCP_INFO_LAYOUT.reordering, 4],
    ["receiveRtt", TCP_INFO_LAYOUT.rcvRtt, 4],
    ["receiveSpace", TCP_INFO_LAYOUT.rcvSpace, 4],
    ["totalRetrans", TCP_INFO_LAYOUT.totalRetrans, 4],
    ["pacingRate", TCP_INFO_LAYOUT.pacingRate, 8],
    ["maxPacingRate", TCP_INFO_LAYOUT.maxPacingRate, 8],
    ["bytesAcked", TCP_INFO_LAYOUT.bytesAcked, 8],
    ["bytesReceived", TCP_INFO_LAYOUT.bytesReceived, 8],
    ["segsOut", TCP_INFO_LAYOUT.segsOut, 4],
    ["segsIn", TCP_INFO_LAYOUT.segsIn, 4],
    ["notsentBytes", TCP_INFO_LAYOUT.notsentBytes, 4],
    ["minRtt", TCP_INFO_LAYOUT.minRtt, 4],
    ["dataSegsIn", TCP_INFO_LAYOUT.dataSegsIn, 4],
    ["dataSegsOut", TCP_INFO_LAYOUT.dataSegsOut, 4],
    ["deliveryRate", TCP_INFO_LAYOUT.deliveryRate, 8],
    ["busyTime", TCP_INFO_LAYOUT.busyTime, 8],
    ["receiveWindowLimited", TCP_INFO_LAYOUT.rwndLimited, 8],
    ["sendBufferLimited", TCP_INFO_LAYOUT.sndbufLimited, 8],
    ["delivered", TCP_INFO_LAYOUT.delivered, 4],
    ["deliveredCe", TCP_INFO_LAYOUT.deliveredCe, 4],
    ["bytesSent", TCP_INFO_LAYOUT.bytesSent, 8],
    ["bytesRetrans", TCP_INFO_LAYOUT.bytesRetrans, 8],
    ["dsackDups", TCP_INFO_LAYOUT.dsackDups, 4],
    ["reorderSeen", TCP_INFO_LAYOUT.reordSeen, 4],
    ["receiveOutOfOrder", TCP_INFO_LAYOUT.rcvOoopack, 4],
    ["sendWindow", TCP_INFO_LAYOUT.sndWnd, 4],
  ];
/** Room for this layout and fields later kernels add (the kernel writes what fits). */
const TCP_INFO_SIZE = 512;

/** `getsockopt(fd, IPPROTO_TCP, TCP_INFO)`, decoded field by field. */
export function readTcpInfo(fd: number, label: string): TcpInfo {
  const out = getBytes(fd, label, "tcpInfo", IPPROTO_TCP, TCP_INFO, TCP_INFO_SIZE);
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const info: Record<string, unknown> = {
    state: TCP_STATES[out[TCP_INFO_LAYOUT.state]] ?? "unknown",
  };
  for (const [name, offset, width] of TCP_INFO_FIELDS) {
    if (offset + width > out.length) break;
    info[name] = width === 1
      ? v.getUint8(offset)
      : width === 4
      ? v.getUint32(offset, true)
      : v.getBigUint64(offset, true);
  }
  return info as unknown as TcpInfo;
}

/** `call "address"`, as error messages begin (the label is quoted already). */
export function where(call: string, label: string): string {
  return label === "" ? call : `${call} ${label}`;
}

// ---------------------------------------------------------------------------
// Receive info: the options that make the kernel attach per-packet information.

/** The engine options that make the kernel attach each kind of info, per family. */
const INFO_OPTIONS: Record<ReceiveInfo, { ipv4: keyof OptionValues; ipv6: keyof OptionValues }> = {
  ttl: { ipv4: "ipReceiveTtl", ipv6: "ipv6ReceiveHopLimit" },
  destination: { ipv4: "ipPacketInfo", ipv6: "ipv6ReceivePacketInfo" },
  tos: { ipv4: "ipReceiveTos", ipv6: "ipv6ReceiveTrafficClass" },
  timestamp: { ipv4: "timestampNs", ipv6: "timestampNs" },
};

/** The engine options to set for `names` on a socket of `family`. */
export function infoOptions(
  names: readonly ReceiveInfo[],
  family: "ipv4" | "ipv6",
): (keyof OptionValues)[] {
  return names.map((name) => INFO_OPTIONS[name][family]);
}

/** The public names `receiveInfo` takes. */
export const INFO_NAMES: readonly ReceiveInfo[] = Object.keys(INFO_OPTIONS) as ReceiveInfo[];
