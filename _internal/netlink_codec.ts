// The netlink wire format, pure: message headers, attributes (nested), the
// rtnetlink and sock_diag structures, and their translation into the shapes
// `ip -j` and `ss` print. No I/O and no native code; every decoder reads
// through the lengths it was given and throws only RangeError or TypeError
// for bytes that do not hold what they claim. The C names of the kernel's
// constants stay in this file. Private to the package.

import { HOST_LITTLE_ENDIAN } from "../ffi/constants.ts";
import { formatIPv4, formatIPv6 } from "../ffi/sockaddr.ts";

// The shapes the decoders produce; netlink.ts re-exports them as its own.

/**
 * One netlink message: its header fields and payload (a view into the
 * record it came in).
 *
 * @example Count a dump's messages by type
 * ```ts
 * import type { NetlinkMessage } from "@bsd/sockets/netlink";
 *
 * function byType(messages: NetlinkMessage[]): Map<number, number> {
 *   const counts = new Map<number, number>();
 *   for (const m of messages) counts.set(m.type, (counts.get(m.type) ?? 0) + 1);
 *   return counts;
 * }
 * ```
 */
export interface NetlinkMessage {
  /** `nlmsg_type`: the family's message type. */
  type: number;
  /** `nlmsg_flags`. */
  flags: number;
  /** `nlmsg_seq`: the request it answers. */
  seq: number;
  /** `nlmsg_pid`: the sender's port id (0 for the kernel). */
  pid: number;
  /** The message after its 16-byte header. */
  payload: Uint8Array;
}

/**
 * A network interface as `ip -j link` prints it. Fields `ip` leaves out are
 * absent here too.
 *
 * @example Whether a link has carrier
 * ```ts
 * import type { Link } from "@bsd/sockets/netlink";
 *
 * const hasCarrier = (l: Link) => l.flags.includes("LOWER_UP");
 * ```
 */
export interface Link {
  /** The interface index. */
  ifindex: number;
  /** The interface name. */
  ifname: string;
  /** `IFF_*` names (`"UP"`, `"LOOPBACK"`, …), `"NO-CARRIER"` and `"M-DOWN"` as ip adds them. */
  flags: string[];
  /** The MTU. */
  mtu?: number;
  /** The queueing discipline (`"noqueue"`, `"fq_codel"`, …). */
  qdisc?: string;
  /** The master device's name (bridge, bond, VRF). */
  master?: string;
  /** RFC 2863 state: `"UP"`, `"DOWN"`, `"UNKNOWN"`, `"LOWERLAYERDOWN"`, … */
  operstate?: string;
  /** `"DEFAULT"` or `"DORMANT"`. */
  linkmode?: string;
  /** The device group: `"default"` or its number. */
  group?: string;
  /** The transmit queue length, when not 0. */
  txqlen?: number;
  /** The hardware type: `"ether"`, `"loopback"`, `"none"`, … */
  "link_type": string;
  /** The hardware address. */
  address?: string;
  /** The hardware broadcast address (the peer's on a point-to-point link). */
  broadcast?: string;
  /** The device this one sits on (a veth's peer, a VLAN's parent), or null for none. */
  link?: string | null;
  /** The index of that device when it lives in another namespace. */
  "link_index"?: number;
  /** The namespace id of that device's namespace. */
  "link_netnsid"?: number;
  /** Set on a point-to-point link. */
  "link_pointtopoint"?: boolean;
  /** The permanent hardware address, when it differs from `address`. */
  permaddr?: string;
  /** Set when the link is held down by a protocol. */
  "proto_down"?: boolean;
  /** The alias (`ip link set … alias`). */
  ifalias?: string;
  /** Alternative names. */
  altnames?: string[];
  /** The operational state's number when ip has no name for it. */
  "operstate_index"?: number;
  /** The link mode's number when ip has no name for it. */
  "linkmode_index"?: number;
}

/**
 * One address as `ip -j addr` prints it inside a link's `addr_info`,
 * flattened: with the link's `ifindex` and `ifname`.
 *
 * @example The IPv4 addresses in CIDR form
 * ```ts
 * import type { Address } from "@bsd/sockets/netlink";
 *
 * const cidr = (as: Address[]) =>
 *   as.filter((a) => a.family === "inet").map((a) => `${a.local}/${a.prefixlen}`);
 * ```
 */
export interface Address {
  /** The interface's index. */
  ifindex: number;
  /** The interface's name. */
  ifname: string;
  /** `"inet"` or `"inet6"`. */
  family: "inet" | "inet6";
  /** The address. */
  local: string;
  /** The prefix length. */
  prefixlen: number;
  /** `"global"`, `"link"`, `"host"`, … */
  scope: string;
  /** The peer's address on a point-to-point address. */
  address?: string;
  /** The broadcast address. */
  broadcast?: string;
  /** The anycast address. */
  anycast?: string;
  /** The multicast address. */
  multicast?: string;
  /** The label (IPv4): the interface name, or `name:alias`. */
  label?: string;
  /** The metric of the prefix route. */
  metric?: number;
  /** Who added it (`"kernel_lo"`, …), when the kernel says. */
  protocol?: string;
  /** Seconds the address stays valid; 4294967295 is forever. */
  "valid_life_time"?: number;
  /** Seconds it stays preferred; 4294967295 is forever. */
  "preferred_life_time"?: number;
  /** Set on an address not configured permanently (SLAAC, DHCP). */
  dynamic?: boolean;
  /** Set on a secondary IPv4 address. */
  secondary?: boolean;
  /** Set on a temporary (privacy) IPv6 address. */
  temporary?: boolean;
  /** Set when duplicate address detection is off. */
  nodad?: boolean;
  /** Set while duplicate address detection runs. */
  tentative?: boolean;
  /** Set when duplicate address detection failed. */
  dadfailed?: boolean;
  /** Set once the preferred lifetime ran out. */
  deprecated?: boolean;
  /** Set when no prefix route was added for it. */
  noprefixroute?: boolean;
  /**
   * Other flags, set like the rest: `optimistic`, `home`, `mngtmpaddr`, `autojoin`,
   * `stable-privacy`.
   */
  [flag: string]: string | number | boolean | undefined;
}

/**
 * A route as `ip -j route` prints it. As there, `type` is left out for
 * unicast, `table` for main, `protocol` for boot and `scope` for global.
 *
 * @example Find the default gateway
 * ```ts
 * import type { Route } from "@bsd/sockets/netlink";
 *
 * const gateway = (rs: Route[]) => rs.find((r) => r.dst === "default")?.gateway;
 * ```
 */
export interface Route {
  /** `"default"`, `"prefix/len"`, or a bare address for a full-length prefix. */
  dst: string;
  /** The next hop. */
  gateway?: string;
  /** The outgoing interface's name. */
  dev?: string;
  /** Who added it: `"kernel"`, `"static"`, `"dhcp"`, `"ra"`, …; absent for boot. */
  protocol?: string;
  /** `"link"`, `"host"`, …; absent for global. */
  scope?: string;
  /** `"local"`, `"broadcast"`, `"multicast"`, `"unreachable"`, …; absent for unicast. */
  type?: string;
  /** `"local"`, `"default"` or the number; absent for main. */
  table?: string;
  /** The preferred source address. */
  prefsrc?: string;
  /** The metric (priority). */
  metric?: number;
  /** Route flags: `"onlink"`, `"linkdown"`, `"dead"`, … */
  flags: string[];
  /** IPv6 router preference: `"low"`, `"medium"` or `"high"`. */
  pref?: string | number;
  /** A source prefix (`from`). */
  from?: string;
  /** A zero source prefix of this length, as ip prints it. */
  src?: string;
  /** The nexthop object's id. */
  nhid?: number;
  /** The firewall mark it matches. */
  mark?: number;
  /** The uid it matches. */
  uid?: number;
  /**
   * A multipath route's paths (`RTA_MULTIPATH`); such a route has no `gateway` or `dev` of its own.
   */
  nexthops?: RouteNexthop[];
  /**
   * Its metrics (`RTA_METRICS`), in the one-object array ip prints: `mtu`,
   * `advmss`, `window`, `rtt` and `rttvar` (ms), `congestion` (a name),
   * `ecn` (`null` when set), …
   */
  metrics?: Record<string, number | string | null>[];
  /** Seconds until it expires (an IPv6 route learned from a router advertisement). */
  expires?: number;
  /** The route's error, as the kernel keeps it for some IPv6 routes. */
  error?: number;
  /** Its realms (`RTA_FLOW`): `to`, and `from` when set, by name or number. */
  flow?: { from?: string; to: string };
}

/**
 * One path of a multipath route, as `ip -j route` prints it in `nexthops`.
 *
 * @example Describe the paths
 * ```ts
 * import type { Route } from "@bsd/sockets/netlink";
 *
 * const paths = (r: Route) =>
 *   (r.nexthops ?? []).map((h) => `${h.gateway ?? "-"} dev ${h.dev} weight ${h.weight}`);
 * ```
 */
export interface RouteNexthop {
  /** The next hop. */
  gateway?: string;
  /** The outgoing interface's name. */
  dev: string;
  /** Its share of the traffic, 1 to 256 (`rtnh_hops` + 1). */
  weight: number;
  /** Next-hop flags: `"onlink"`, `"linkdown"`, `"dead"`, … */
  flags: string[];
}

/**
 * A socket as `ss` shows it: the `Netid`, `State`, `Recv-Q`, `Send-Q`,
 * `Local Address:Port` and `Peer Address:Port` columns, with the inode and
 * uid `ss -e` adds. For Unix sockets, as in `ss -x`, the address is the path
 * (`@name` for an abstract name, `*` for none) and the "port" the inode.
 *
 * @example Format like ss
 * ```ts
 * import type { SocketEntry } from "@bsd/sockets/netlink";
 *
 * const line = (s: SocketEntry) =>
 *   `${s.state} ${s.recvQ} ${s.sendQ} ${s.localAddress}:${s.localPort} ` +
 *   `${s.peerAddress}:${s.peerPort}`;
 * ```
 */
export interface SocketEntry {
  /** `"tcp"`, `"udp"`, `"u_str"`, `"u_dgr"` or `"u_seq"`. */
  netid: "tcp" | "udp" | "u_str" | "u_dgr" | "u_seq";
  /** `"inet"`, `"inet6"` or `"unix"`. */
  family: "inet" | "inet6" | "unix";
  /** `"ESTAB"`, `"LISTEN"`, `"UNCONN"`, `"TIME-WAIT"`, … as ss names them. */
  state: string;
  /** Bytes (or, listening, connections) waiting to be read. */
  recvQ: number;
  /** Bytes waiting to be sent (or, listening, the backlog). */
  sendQ: number;
  /** The local address. */
  localAddress: string;
  /** The local port; for Unix sockets, the inode. */
  localPort: number;
  /** The peer's address. */
  peerAddress: string;
  /** The peer's port; for Unix sockets, the peer's inode (0 for none). */
  peerPort: number;
  /** The socket's inode (0 for a TIME-WAIT socket). */
  inode: number;
  /** The owner's uid, when the kernel reports it. */
  uid?: number;
}

// ---------------------------------------------------------------------------
// Struct layouts, declared once by field name. A number is a byte array of
// that length; integers are in host order except those marked `be`.

type FieldType = "u8" | "u16" | "u16be" | "u32" | "i32" | number;
type Decoded<F extends Record<string, FieldType>> = {
  [K in keyof F]: F[K] extends number ? Uint8Array : number;
};

type Reader = (v: DataView, bytes: Uint8Array, at: number) => number | Uint8Array;

function readerOf(type: FieldType): Reader {
  if (typeof type === "number") return (_, b, at) => b.subarray(at, at + type);
  switch (type) {
    case "u8":
      return (v, _, at) => v.getUint8(at);
    case "u16":
      return (v, _, at) => v.getUint16(at, HOST_LITTLE_ENDIAN);
    case "u16be":
      return (v, _, at) => v.getUint16(at);
    case "u32":
      return (v, _, at) => v.getUint32(at, HOST_LITTLE_ENDIAN);
    case "i32":
      return (v, _, at) => v.getInt32(at, HOST_LITTLE_ENDIAN);
  }
}

/** A DataView over all of `bytes`' buffer, made once per buffer: dumps decode thousands. */
const views = new WeakMap<ArrayBufferLike, DataView>();
function viewOf(bytes: Uint8Array): DataView {
  let v = views.get(bytes.buffer);
  if (v === undefined) {
    v = new DataView(bytes.buffer);
    views.set(bytes.buffer, v);
  }
  return v;
}

/** A C struct with natural alignment and explicit padding fields. */
export class Layout<F extends Record<string, FieldType>> {
  readonly size: number;
  readonly #fields: [string, FieldType, number, Reader][] = [];

  constructor(readonly name: string, fields: F) {
    let offset = 0;
    for (const [field, type] of Object.entries(fields)) {
      this.#fields.push([field, type, offset, readerOf(type)]);
      offset += typeof type === "number"
        ? type
        : type === "u8"
        ? 1
        : type.startsWith("u16")
        ? 2
        : 4;
    }
    this.size = offset;
  }

  /** The struct at `offset` of `bytes`; RangeError when it does not fit. */
  decode(bytes: Uint8Array, offset = 0): Decoded<F> {
    if (!(bytes instanceof Uint8Array)) {
      throw new TypeError(`${this.name} must be read from a Uint8Array`);
    }
    if (offset < 0 || bytes.length - offset < this.size) {
      throw new RangeError(
        `${this.name} needs ${this.size} bytes, got ${Math.max(0, bytes.length - offset)}`,
      );
    }
    const v = viewOf(bytes);
    const base = bytes.byteOffset + offset;
    const out: Record<string, number | Uint8Array> = {};
    for (const [field, type, at, read] of this.#fields) {
      out[field] = typeof type === "number"
        ? read(v, bytes, offset + at)
        : read(v, bytes, base + at);
    }
    return out as Decoded<F>;
  }

  /** The struct's bytes; fields left out are zero. */
  encode(values: Partial<Decoded<F>>): Uint8Array {
    const out = new Uint8Array(this.size);
    const v = new DataView(out.buffer);
    for (const [field, type, at] of this.#fields) {
      const value = (values as Record<string, number | Uint8Array | undefined>)[field];
      if (value === undefined) continue;
      if (typeof type === "number") out.set((value as Uint8Array).subarray(0, type), at);
      else if (type === "u8") v.setUint8(at, value as number);
      else if (type === "u16") v.setUint16(at, value as number, HOST_LITTLE_ENDIAN);
      else if (type === "u16be") v.setUint16(at, value as number);
      else if (type === "u32") v.setUint32(at, value as number, HOST_LITTLE_ENDIAN);
      else v.setInt32(at, value as number, HOST_LITTLE_ENDIAN);
    }
    return out;
  }
}

export const NLMSGHDR = new Layout("nlmsghdr", {
  length: "u32",
  type: "u16",
  flags: "u16",
  seq: "u32",
  pid: "u32",
});
const NLMSGERR = new Layout("nlmsgerr", { error: "i32" });
export const IFINFOMSG = new Layout("ifinfomsg", {
  family: "u8",
  pad: "u8",
  type: "u16",
  index: "i32",
  flags: "u32",
  change: "u32",
});
export const IFADDRMSG = new Layout("ifaddrmsg", {
  family: "u8",
  prefixlen: "u8",
  flags: "u8",
  scope: "u8",
  index: "u32",
});
export const RTMSG = new Layout("rtmsg", {
  family: "u8",
  dstLen: "u8",
  srcLen: "u8",
  tos: "u8",
  table: "u8",
  protocol: "u8",
  scope: "u8",
  type: "u8",
  flags: "u32",
});
const IFA_CACHEINFO = new Layout("ifa_cacheinfo", {
  preferred: "u32",
  valid: "u32",
  created: "u32",
  updated: "u32",
});
/** `inet_diag_sockid` inlined: ports and addresses in network order. */
const INET_DIAG_SOCKID = {
  sport: "u16be",
  dport: "u16be",
  src: 16,
  dst: 16,
  interface: "u32",
  cookie: 8,
} as const;
export const INET_DIAG_REQ_V2 = new Layout("inet_diag_req_v2", {
  family: "u8",
  protocol: "u8",
  ext: "u8",
  pad: "u8",
  states: "u32",
  ...INET_DIAG_SOCKID,
});
export const INET_DIAG_MSG = new Layout("inet_diag_msg", {
  family: "u8",
  state: "u8",
  timer: "u8",
  retrans: "u8",
  ...INET_DIAG_SOCKID,
  expires: "u32",
  rqueue: "u32",
  wqueue: "u32",
  uid: "u32",
  inode: "u32",
});
export const UNIX_DIAG_REQ = new Layout("unix_diag_req", {
  family: "u8",
  protocol: "u8",
  pad: "u16",
  states: "u32",
  inode: "u32",
  show: "u32",
  cookie: 8,
});
export const UNIX_DIAG_MSG = new Layout("unix_diag_msg", {
  family: "u8",
  type: "u8",
  state: "u8",
  pad: "u8",
  inode: "u32",
  cookie: 8,
});
const UNIX_DIAG_RQLEN = new Layout("unix_diag_rqlen", { rqueue: "u32", wqueue: "u32" });

// ---------------------------------------------------------------------------
// Numbers from <linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_link.h>,
// <linux/if_addr.h>, <linux/sock_diag.h>, <linux/inet_diag.h>, <linux/unix_diag.h>.

const AF_UNSPEC = 0, AF_UNIX = 1, AF_INET = 2, AF_INET6 = 10;
const NLMSG_NOOP = 1, NLMSG_ERROR = 2, NLMSG_DONE = 3, NLMSG_OVERRUN = 4;
const NLM_F_REQUEST = 0x1, NLM_F_ACK = 0x4, NLM_F_DUMP = 0x300;
const NLM_F_DUMP_INTR = 0x10, NLM_F_CAPPED = 0x100, NLM_F_ACK_TLVS = 0x200;
const NLMSGERR_ATTR_MSG = 1;
const NLA_TYPE_MASK = 0x3fff, NLA_F_NESTED = 0x8000;
const RTM_NEWLINK = 16, RTM_DELLINK = 17, RTM_GETLINK = 18, RTM_SETLINK = 19;
const RTM_NEWADDR = 20, RTM_DELADDR = 21, RTM_GETADDR = 22;
const RTM_NEWROUTE = 24, RTM_DELROUTE = 25, RTM_GETROUTE = 26;
const SOCK_DIAG_BY_FAMILY = 20;
const RTMGRP_LINK = 0x1, RTMGRP_IPV4_IFADDR = 0x10, RTMGRP_IPV4_ROUTE = 0x40;
const RTMGRP_IPV6_IFADDR = 0x100, RTMGRP_IPV6_ROUTE = 0x400;

const IFLA = {
  ADDRESS: 1,
  BROADCAST: 2,
  IFNAME: 3,
  MTU: 4,
  LINK: 5,
  QDISC: 6,
  MASTER: 10,
  TXQLEN: 13,
  OPERSTATE: 16,
  LINKMODE: 17,
  IFALIAS: 20,
  GROUP: 27,
  PROTO_DOWN: 39,
  LINK_NETNSID: 37,
  PROP_LIST: 52,
  ALT_IFNAME: 53,
  PERM_ADDRESS: 54,
} as const;
const IFA = {
  ADDRESS: 1,
  LOCAL: 2,
  LABEL: 3,
  BROADCAST: 4,
  ANYCAST: 5,
  CACHEINFO: 6,
  MULTICAST: 7,
  FLAGS: 8,
  RT_PRIORITY: 9,
  PROTO: 11,
} as const;
const RTA = {
  DST: 1,
  SRC: 2,
  OIF: 4,
  GATEWAY: 5,
  PRIORITY: 6,
  PREFSRC: 7,
  MULTIPATH: 9,
  FLOW: 11,
  CACHEINFO: 12,
  METRICS: 8,
  TABLE: 15,
  MARK: 16,
  UID: 25,
  PREF: 20,
  NH_ID: 30,
} as const;
const INET_DIAG_NONE = 0;
const UNIX_DIAG = { NAME: 0, PEER: 2, RQLEN: 4, UID: 7 } as const;
const UDIAG_SHOW_NAME = 0x1, UDIAG_SHOW_PEER = 0x4, UDIAG_SHOW_RQLEN = 0x10;
const UDIAG_SHOW_UID = 0x40;
const IFF_UP = 0x1, IFF_POINTOPOINT = 0x10, IFF_RUNNING = 0x40;
const RTM_F_CLONED = 0x200;
const RT_TABLE_MAIN = 254;
const RTN_UNICAST = 1;
const RTPROT_BOOT = 3;
const RT_SCOPE_UNIVERSE = 0;
const IFA_F_SECONDARY = 0x1, IFA_F_PERMANENT = 0x80;

// Names as iproute2 prints them (ip/ipaddress.c, lib/rt_names.c, lib/ll_types.c).
const LINK_FLAGS: readonly [number, string][] = [
  [0x8, "LOOPBACK"],
  [0x2, "BROADCAST"],
  [0x10, "POINTOPOINT"],
  [0x1000, "MULTICAST"],
  [0x80, "NOARP"],
  [0x200, "ALLMULTI"],
  [0x100, "PROMISC"],
  [0x400, "MASTER"],
  [0x800, "SLAVE"],
  [0x4, "DEBUG"],
  [0x8000, "DYNAMIC"],
  [0x4000, "AUTOMEDIA"],
  [0x2000, "PORTSEL"],
  [0x20, "NOTRAILERS"],
  [0x1, "UP"],
  [0x10000, "LOWER_UP"],
  [0x20000, "DORMANT"],
  [0x40000, "ECHO"],
];
const OPER_STATES = ["UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP"];
const LINK_MODES = ["DEFAULT", "DORMANT"];
const LINK_TYPES: ReadonlyMap<number, string> = new Map([
  [0, "netrom"],
  [1, "ether"],
  [2, "eether"],
  [3, "ax25"],
  [6, "ieee802"],
  [7, "arcnet"],
  [24, "ieee1394"],
  [32, "infiniband"],
  [256, "slip"],
  [280, "can"],
  [512, "ppp"],
  [513, "hdlc"],
  [768, "ipip"],
  [769, "tunnel6"],
  [772, "loopback"],
  [774, "fddi"],
  [776, "sit"],
  [778, "gre"],
  [779, "pimreg"],
  [800, "tr"],
  [801, "ieee802.11"],
  [802, "ieee802.11/prism"],
  [803, "ieee802.11/radiotap"],
  [804, "ieee802.15.4"],
  [820, "phonet"],
  [821, "phonet_pipe"],
  [822, "caif"],
  [823, "gre6"],
  [824, "netlink"],
  [825, "6lowpan"],
  [65534, "none"],
  [65535, "void"],
]);
/** Link types whose hardware address is an IP address (ll_addr_n2a). */
const IPV4_LINK_TYPES = new Set([768, 776, 778]);
const IPV6_LINK_TYPES = new Set([769, 823]);
const ADDRESS_FLAGS: readonly [number, string][] = [
  [0x2, "nodad"],
  [0x4, "optimistic"],
  [0x8, "dadfailed"],
  [0x10, "home"],
  [0x20, "deprecated"],
  [0x40, "tentative"],
  [0x100, "mngtmpaddr"],
  [0x200, "noprefixroute"],
  [0x400, "autojoin"],
  [0x800, "stable-privacy"],
];
const SCOPES: ReadonlyMap<number, string> = new Map([
  [0, "global"],
  [200, "site"],
  [253, "link"],
  [254, "host"],
  [255, "nowhere"],
]);
const PROTOCOLS: ReadonlyMap<number, string> = new Map([
  [0, "unspec"],
  [1, "redirect"],
  [2, "kernel"],
  [3, "boot"],
  [4, "static"],
  [8, "gated"],
  [9, "ra"],
  [10, "mrt"],
  [11, "zebra"],
  [12, "bird"],
  [13, "dnrouted"],
  [14, "xorp"],
  [15, "ntk"],
  [16, "dhcp"],
  [18, "keepalived"],
  [42, "babel"],
  [99, "openr"],
  [186, "bgp"],
  [187, "isis"],
  [188, "ospf"],
  [189, "rip"],
  [192, "eigrp"],
]);
const ADDRESS_PROTOCOLS = ["unspec", "kernel_lo", "kernel_ra", "kernel_ll"];
const ROUTE_TYPES = [
  "none",
  "unicast",
  "local",
  "broadcast",
  "anycast",
  "multicast",
  "blackhole",
  "unreachable",
  "prohibit",
  "throw",
  "nat",
  "xresolve",
];
const TABLES: ReadonlyMap<number, string> = new Map([
  [0, "unspec"],
  [253, "default"],
  [254, "main"],
  [255, "local"],
]);
const ROUTE_FLAGS: readonly [number, string][] = [
  [0x1, "dead"],
  [0x4, "onlink"],
  [0x2, "pervasive"],
  [0x8, "offload"],
  [0x40, "trap"],
  [0x100, "notify"],
  [0x10, "linkdown"],
  [0x20, "unresolved"],
  [0x4000, "rt_offload"],
  [0x8000, "rt_trap"],
  [0x20000000, "rt_offload_failed"],
];
const PREFERENCES: ReadonlyMap<number, string> = new Map([[3, "low"], [0, "medium"], [1, "high"]]);
/** TCP states as ss names them, by number (TCP_ESTABLISHED = 1 …). */
const SOCKET_STATES = [
  "UNKNOWN",
  "ESTAB",
  "SYN-SENT",
  "SYN-RECV",
  "FIN-WAIT-1",
  "FIN-WAIT-2",
  "TIME-WAIT",
  "UNCONN",
  "CLOSE-WAIT",
  "LAST-ACK",
  "LISTEN",
  "CLOSING",
  "NEW-SYN-RECV",
];
const UNIX_NETIDS: ReadonlyMap<number, SocketEntry["netid"]> = new Map([
  [1, "u_str"],
  [2, "u_dgr"],
  [5, "u_seq"],
]);

// ---------------------------------------------------------------------------
// Messages and attributes

const align4 = (n: number): number => (n + 3) & ~3;

/** One message's bytes: the header, then the payload padded to 4 bytes. */
export function encodeMessage(m: Omit<NetlinkMessage, "pid"> & { pid?: number }): Uint8Array {
  const length = NLMSGHDR.size + m.payload.length;
  const out = new Uint8Array(align4(length));
  out.set(NLMSGHDR.encode({ length, type: m.type, flags: m.flags, seq: m.seq, pid: m.pid ?? 0 }));
  out.set(m.payload, NLMSGHDR.size);
  return out;
}

/** Every message in one received record, each bounded by its own length. */
export function decodeMessages(bytes: Uint8Array): NetlinkMessage[] {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("a record must be a Uint8Array");
  const out: NetlinkMessage[] = [];
  const v = viewOf(bytes), base = bytes.byteOffset;
  let offset = 0;
  while (offset < bytes.length) {
    const remain = bytes.length - offset;
    if (remain < NLMSGHDR.size) {
      throw new RangeError(`nlmsghdr needs ${NLMSGHDR.size} bytes, got ${remain}`);
    }
    const at = base + offset;
    const length = v.getUint32(at, HOST_LITTLE_ENDIAN);
    if (length < NLMSGHDR.size || length > remain) {
      throw new RangeError(`nlmsghdr at ${offset} claims ${length} bytes, ${remain} remain`);
    }
    out.push({
      type: v.getUint16(at + 4, HOST_LITTLE_ENDIAN),
      flags: v.getUint16(at + 6, HOST_LITTLE_ENDIAN),
      seq: v.getUint32(at + 8, HOST_LITTLE_ENDIAN),
      pid: v.getUint32(at + 12, HOST_LITTLE_ENDIAN),
      payload: bytes.subarray(offset + NLMSGHDR.size, offset + length),
    });
    offset += align4(length);
  }
  return out;
}

/** One attribute (`rtattr`/`nlattr`): its type without the flag bits, and its data. */
export interface Attribute {
  type: number;
  nested: boolean;
  data: Uint8Array;
}

/** The attributes in `bytes` (after a message's fixed struct), each bounded by its length. */
export function decodeAttributes(bytes: Uint8Array): Attribute[] {
  const out: Attribute[] = [];
  walkAttributes(bytes, (type, nested, data) => out.push({ type, nested, data }));
  return out;
}

function walkAttributes(
  bytes: Uint8Array,
  visit: (type: number, nested: boolean, data: Uint8Array) => void,
): void {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("attributes must be a Uint8Array");
  const v = viewOf(bytes), base = bytes.byteOffset;
  let offset = 0;
  while (offset + 4 <= bytes.length) {
    const length = v.getUint16(base + offset, HOST_LITTLE_ENDIAN);
    const type = v.getUint16(base + offset + 2, HOST_LITTLE_ENDIAN);
    if (length < 4 || length > bytes.length - offset) {
      throw new RangeError(
        `attribute at ${offset} claims ${length} bytes, ${bytes.length - offset} remain`,
      );
    }
    visit(
      type & NLA_TYPE_MASK,
      (type & NLA_F_NESTED) !== 0,
      bytes.subarray(offset + 4, offset + length),
    );
    offset += align4(length);
  }
  if (offset < bytes.length) {
    throw new RangeError(`${bytes.length - offset} stray bytes after the last attribute`);
  }
}

/** The attributes by type; of repeated types the last wins, as iproute2 reads them. */
function attributeTable(bytes: Uint8Array): (Uint8Array | undefined)[] {
  const table: (Uint8Array | undefined)[] = [];
  walkAttributes(bytes, (type, _, data) => {
    table[type] = data;
  });
  return table;
}

/** One attribute's bytes; `data` may be nested attributes' bytes. */
export function encodeAttribute(type: number, data: Uint8Array): Uint8Array {
  const length = 4 + data.length;
  if (length > 0xffff) throw new RangeError(`attribute ${type} is ${length} bytes, over 65,535`);
  const out = new Uint8Array(align4(length));
  const v = new DataView(out.buffer);
  v.setUint16(0, length, HOST_LITTLE_ENDIAN);
  v.setUint16(2, type, HOST_LITTLE_ENDIAN);
  out.set(data, 4);
  return out;
}

function u8(data: Uint8Array, what: string): number {
  if (data.length < 1) throw new RangeError(`${what} needs 1 byte, got 0`);
  return data[0];
}

function u32(data: Uint8Array, what: string): number {
  if (data.length < 4) throw new RangeError(`${what} needs 4 bytes, got ${data.length}`);
  return viewOf(data).getUint32(data.byteOffset, HOST_LITTLE_ENDIAN);
}

const utf8 = new TextDecoder();
/** A NUL-terminated string attribute (the NUL may be missing). */
function str(data: Uint8Array): string {
  const end = data.indexOf(0);
  return utf8.decode(end < 0 ? data : data.subarray(0, end));
}

/** An address attribute of `family` as iproute2 prints it. */
function ip(family: number, data: Uint8Array, what: string): string {
  if (family === AF_INET && data.length === 4) return formatIPv4(data);
  if (family === AF_INET6 && data.length === 16) return formatIPv6(data);
  throw new RangeError(`${what} of family ${family} has ${data.length} bytes`);
}

// ---------------------------------------------------------------------------
// Requests and replies

/** A request without its sequence number: what the socket's `request()` sends. */
export interface Request {
  type: number;
  flags: number;
  payload: Uint8Array;
}

/** The header flags of a request: always REQUEST, then DUMP or ACK. */
export function requestFlags(flags: number, dump: boolean): number {
  return flags | NLM_F_REQUEST | (dump ? NLM_F_DUMP : NLM_F_ACK);
}

/** What a reply means to the request it answers. */
export type Reply =
  | { kind: "data"; message: NetlinkMessage }
  | { kind: "done"; errno: number; extack?: string }
  | { kind: "ack"; errno: number; extack?: string }
  | { kind: "skip" };

/**
 * Classifies a reply: data (a part of a dump or an answer), the end of a
 * dump, an acknowledgement (errno 0) or error (errno > 0), or a message to
 * skip (NOOP). OVERRUN means messages were lost: reported as ENOBUFS.
 */
export function classifyReply(m: NetlinkMessage): Reply {
  if (m.type === NLMSG_NOOP) return { kind: "skip" };
  if (m.type === NLMSG_OVERRUN) return { kind: "ack", errno: 105 };
  if (m.type === NLMSG_DONE) {
    // sock_diag and a few others end a dump with no payload at all.
    const errno = m.payload.length >= 4 ? -NLMSGERR.decode(m.payload).error : 0;
    const extack = m.flags & NLM_F_ACK_TLVS ? extackMessage(m.payload.subarray(4)) : undefined;
    return { kind: "done", errno: Math.max(0, errno), extack };
  }
  if (m.type === NLMSG_ERROR) {
    const errno = -NLMSGERR.decode(m.payload).error;
    let offset = 4 + NLMSGHDR.size;
    if (!(m.flags & NLM_F_CAPPED)) offset = 4 + NLMSGHDR.decode(m.payload, 4).length;
    if (offset > m.payload.length) {
      throw new RangeError(`nlmsgerr echoes ${offset - 4} bytes, the message has fewer`);
    }
    const extack = m.flags & NLM_F_ACK_TLVS
      ? extackMessage(m.payload.subarray(align4(offset)))
      : undefined;
    return { kind: "ack", errno: Math.max(0, errno), extack };
  }
  return { kind: "data", message: m };
}

/**
 * How many times, in all, a dump the kernel flags interrupted is run before
 * the request gives up: each run takes a fresh snapshot, so a table that
 * changes now and then settles within a few.
 */
export const DUMP_ATTEMPTS = 5;

/** The end of an answer: errno 0 for success, the kernel's message if it sent one. */
export interface AnswerEnd {
  errno: number;
  extack?: string;
}

/**
 * One answer collected message by message: its data, and whether the kernel
 * flagged any message of it (a part, or the end of a dump) as interrupted,
 * which it does once the table changed between two parts of a dump: then
 * the parts may miss entries or hold one twice.
 */
export class AnswerCollector {
  /** The data messages, in order. */
  readonly messages: NetlinkMessage[] = [];
  #interrupted = false;

  /** Whether a message of the answer carried the interrupted flag. */
  get interrupted(): boolean {
    return this.#interrupted;
  }

  /**
   * Takes one message that answers the request.
   *
   * @returns The end once it came, else null: more are due.
   */
  add(m: NetlinkMessage): AnswerEnd | null {
    if (m.flags & NLM_F_DUMP_INTR) this.#interrupted = true;
    const reply = classifyReply(m);
    if (reply.kind === "data") this.messages.push(m);
    else if (reply.kind === "done" || reply.kind === "ack") {
      return { errno: reply.errno, extack: reply.extack };
    }
    return null;
  }
}

/**
 * Runs a dump until the kernel answers it without the interrupted flag, at
 * most {@linkcode DUMP_ATTEMPTS} times; errors of a run end it at once.
 *
 * @param run One whole dump, collected.
 * @param gaveUp The error for a dump interrupted on every run.
 * @returns The messages of the first run that was not interrupted.
 */
export async function consistentDump(
  run: () => Promise<AnswerCollector>,
  gaveUp: () => Error,
): Promise<NetlinkMessage[]> {
  for (let attempt = 0; attempt < DUMP_ATTEMPTS; attempt++) {
    const answer = await run();
    if (!answer.interrupted) return answer.messages;
  }
  throw gaveUp();
}

function extackMessage(tlvs: Uint8Array): string | undefined {
  const message = attributeTable(tlvs)[NLMSGERR_ATTR_MSG];
  return message === undefined ? undefined : str(message);
}

type FamilyName = "inet" | "inet6";
const FAMILY_NUMBER: Record<FamilyName | "all", number> = {
  inet: AF_INET,
  inet6: AF_INET6,
  all: AF_UNSPEC,
};

/** The request that sets a link's administrative state (`ip link set … up|down`). */
export function setLinkRequest(ifindex: number, up: boolean): Request {
  return {
    type: RTM_SETLINK,
    flags: NLM_F_REQUEST | NLM_F_ACK,
    payload: IFINFOMSG.encode({ index: ifindex, flags: up ? IFF_UP : 0, change: IFF_UP }),
  };
}

/** The dump request for every link, every address or every route of a family. */
export function dumpRequest(
  what: "link" | "address" | "route",
  family: FamilyName | "all",
): Request {
  const f = FAMILY_NUMBER[family];
  const [type, payload] = what === "link"
    ? [RTM_GETLINK, IFINFOMSG.encode({ family: AF_UNSPEC })]
    : what === "address"
    ? [RTM_GETADDR, IFADDRMSG.encode({ family: f })]
    : [RTM_GETROUTE, RTMSG.encode({ family: f })];
  return { type, flags: NLM_F_REQUEST | NLM_F_DUMP, payload };
}

/** The sock_diag dump request for every TCP, UDP or Unix socket (all states). */
export function diagRequest(protocol: "tcp" | "udp" | "unix", family: FamilyName): Request {
  const payload = protocol === "unix"
    ? UNIX_DIAG_REQ.encode({
      family: AF_UNIX,
      states: 0xffffffff,
      show: UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_UID,
    })
    : INET_DIAG_REQ_V2.encode({
      family: FAMILY_NUMBER[family],
      protocol: protocol === "tcp" ? 6 : 17,
      ext: INET_DIAG_NONE,
      // Every state but NEW_SYN_RECV (12), which ss does not show either.
      states: 0xfff,
    });
  return { type: SOCK_DIAG_BY_FAMILY, flags: NLM_F_REQUEST | NLM_F_DUMP, payload };
}

/** The multicast group mask for the kinds of change a watcher asked for. */
export function changeGroups(kinds: readonly ("link" | "address" | "route")[]): number {
  let groups = 0;
  if (kinds.includes("link")) groups |= RTMGRP_LINK;
  if (kinds.includes("address")) groups |= RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
  if (kinds.includes("route")) groups |= RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
  return groups;
}

/** What a change notification is about, or null for other messages. */
export function changeOf(
  m: NetlinkMessage,
): { type: "link" | "address" | "route"; change: "new" | "delete" } | null {
  switch (m.type) {
    case RTM_NEWLINK:
      return { type: "link", change: "new" };
    case RTM_DELLINK:
      return { type: "link", change: "delete" };
    case RTM_NEWADDR:
      return { type: "address", change: "new" };
    case RTM_DELADDR:
      return { type: "address", change: "delete" };
    case RTM_NEWROUTE:
      return { type: "route", change: "new" };
    case RTM_DELROUTE:
      return { type: "route", change: "delete" };
  }
  return null;
}

// ---------------------------------------------------------------------------
// rtnetlink → ip -j

/** What the decoders need to know about other links: name and whether up. */
export type LinkLookup = (ifindex: number) => { name: string; up: boolean } | undefined;

/** The index, name and up state of a link message, for a {@linkcode LinkLookup}. */
export function linkIdentity(m: NetlinkMessage): { ifindex: number; name: string; up: boolean } {
  const ifi = IFINFOMSG.decode(m.payload);
  const name = attributeTable(m.payload.subarray(IFINFOMSG.size))[IFLA.IFNAME];
  return {
    ifindex: ifi.index,
    name: name === undefined ? `if${ifi.index}` : str(name),
    up: (ifi.flags & IFF_UP) !== 0,
  };
}

function nameOf(lookup: LinkLookup, ifindex: number): string {
  // ll_index_to_name's answer for an index it does not know.
  return lookup(ifindex)?.name ?? `if${ifindex}`;
}

function named(table: ReadonlyMap<number, string>, n: number): string {
  return table.get(n) ?? String(n);
}

function hardwareAddress(data: Uint8Array, type: number): string {
  if (data.length === 4 && IPV4_LINK_TYPES.has(type)) return formatIPv4(data);
  if (data.length === 16 && IPV6_LINK_TYPES.has(type)) return formatIPv6(data);
  return Array.from(data, (b) => b.toString(16).padStart(2, "0")).join(":");
}

/** An RTM_NEWLINK/RTM_DELLINK message as `ip -j link` prints it. */
export function decodeLink(m: NetlinkMessage, lookup: LinkLookup): Link {
  const ifi = IFINFOMSG.decode(m.payload);
  const tb = attributeTable(m.payload.subarray(IFINFOMSG.size));
  const link: Partial<Link> & Record<string, unknown> = { ifindex: ifi.index };
  let masterDown = false;
  const iflink = tb[IFLA.LINK];
  if (iflink !== undefined) {
    const peer = u32(iflink, "IFLA_LINK");
    if (peer === 0) link.link = null;
    else if (tb[IFLA.LINK_NETNSID] !== undefined) link.link_index = peer;
    else {
      link.link = nameOf(lookup, peer);
      masterDown = lookup(peer)?.up === false;
    }
  }
  const name = tb[IFLA.IFNAME];
  link.ifname = name === undefined ? `if${ifi.index}` : str(name);
  link.flags = linkFlags(ifi.flags, masterDown);
  if (tb[IFLA.MTU] !== undefined) link.mtu = u32(tb[IFLA.MTU]!, "IFLA_MTU");
  if (tb[IFLA.QDISC] !== undefined) link.qdisc = str(tb[IFLA.QDISC]!);
  if (tb[IFLA.MASTER] !== undefined) {
    link.master = nameOf(lookup, u32(tb[IFLA.MASTER]!, "IFLA_MASTER"));
  }
  if (tb[IFLA.OPERSTATE] !== undefined) {
    const state = u8(tb[IFLA.OPERSTATE]!, "IFLA_OPERSTATE");
    if (state < OPER_STATES.length) link.operstate = OPER_STATES[state];
    else link.operstate_index = state;
  }
  if (tb[IFLA.LINKMODE] !== undefined) {
    const mode = u8(tb[IFLA.LINKMODE]!, "IFLA_LINKMODE");
    if (mode < LINK_MODES.length) link.linkmode = LINK_MODES[mode];
    else link.linkmode_index = mode;
  }
  if (tb[IFLA.GROUP] !== undefined) {
    const group = u32(tb[IFLA.GROUP]!, "IFLA_GROUP");
    link.group = group === 0 ? "default" : String(group);
  }
  if (tb[IFLA.TXQLEN] !== undefined) {
    const qlen = u32(tb[IFLA.TXQLEN]!, "IFLA_TXQLEN");
    if (qlen !== 0) link.txqlen = qlen;
  }
  link.link_type = LINK_TYPES.get(ifi.type) ?? `[${ifi.type}]`;
  const address = tb[IFLA.ADDRESS];
  if (address !== undefined) link.address = hardwareAddress(address, ifi.type);
  const broadcast = tb[IFLA.BROADCAST];
  if (broadcast !== undefined) {
    if (ifi.flags & IFF_POINTOPOINT) link.link_pointtopoint = true;
    link.broadcast = hardwareAddress(broadcast, ifi.type);
  }
  const perm = tb[IFLA.PERM_ADDRESS];
  if (perm !== undefined && (address === undefined || !sameBytes(perm, address))) {
    link.permaddr = hardwareAddress(perm, ifi.type);
  }
  if (tb[IFLA.LINK_NETNSID] !== undefined) {
    link.link_netnsid = u32(tb[IFLA.LINK_NETNSID]!, "IFLA_LINK_NETNSID") | 0;
  }
  if (tb[IFLA.PROTO_DOWN] !== undefined && u8(tb[IFLA.PROTO_DOWN]!, "IFLA_PROTO_DOWN") !== 0) {
    link.proto_down = true;
  }
  if (tb[IFLA.IFALIAS] !== undefined) link.ifalias = str(tb[IFLA.IFALIAS]!);
  const props = tb[IFLA.PROP_LIST];
  if (props !== undefined) {
    const alt = decodeAttributes(props).filter((a) => a.type === IFLA.ALT_IFNAME);
    if (alt.length > 0) link.altnames = alt.map((a) => str(a.data));
  }
  return link as Link;
}

function linkFlags(flags: number, masterDown: boolean): string[] {
  const out: string[] = [];
  if (flags & IFF_UP && !(flags & IFF_RUNNING)) out.push("NO-CARRIER");
  let rest = flags & ~IFF_RUNNING;
  for (const [bit, name] of LINK_FLAGS) {
    if (rest & bit) {
      out.push(name);
      rest &= ~bit;
    }
  }
  if (rest) out.push((rest >>> 0).toString(16));
  if (masterDown) out.push("M-DOWN");
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** An RTM_NEWADDR/RTM_DELADDR message as one entry of `ip -j addr`'s `addr_info`, flattened. */
export function decodeAddress(m: NetlinkMessage, lookup: LinkLookup): Address {
  const ifa = IFADDRMSG.decode(m.payload);
  const tb = attributeTable(m.payload.subarray(IFADDRMSG.size));
  const family = ifa.family === AF_INET ? "inet" : ifa.family === AF_INET6 ? "inet6" : null;
  if (family === null) throw new RangeError(`address family ${ifa.family} is not IPv4 or IPv6`);
  const flags = tb[IFA.FLAGS] !== undefined ? u32(tb[IFA.FLAGS]!, "IFA_FLAGS") : ifa.flags;
  const local = tb[IFA.LOCAL] ?? tb[IFA.ADDRESS];
  const peer = tb[IFA.ADDRESS] ?? local;
  const out: Partial<Address> & Record<string, unknown> = {
    ifindex: ifa.index,
    ifname: nameOf(lookup, ifa.index),
    family,
  };
  if (local !== undefined) {
    out.local = ip(ifa.family, local, "IFA_LOCAL");
    if (peer !== undefined && !sameBytes(peer, local)) out.address = ip(ifa.family, peer, "IFA");
    out.prefixlen = ifa.prefixlen;
    if (tb[IFA.RT_PRIORITY] !== undefined) {
      out.metric = u32(tb[IFA.RT_PRIORITY]!, "IFA_RT_PRIORITY");
    }
  }
  for (const [key, type] of [["broadcast", IFA.BROADCAST], ["anycast", IFA.ANYCAST]] as const) {
    const a = tb[type];
    if (a !== undefined) out[key] = ip(ifa.family, a, `IFA_${key.toUpperCase()}`);
  }
  const multicast = tb[IFA.MULTICAST];
  if (multicast !== undefined) out.multicast = ip(ifa.family, multicast, "IFA_MULTICAST");
  out.scope = named(SCOPES, ifa.scope);
  if (!(flags & IFA_F_PERMANENT)) out.dynamic = true;
  let rest = flags & ~IFA_F_PERMANENT;
  if (rest & IFA_F_SECONDARY) {
    out[family === "inet6" ? "temporary" : "secondary"] = true;
    rest &= ~IFA_F_SECONDARY;
  }
  for (const [bit, name] of ADDRESS_FLAGS) {
    if (rest & bit) {
      out[name] = true;
      rest &= ~bit;
    }
  }
  if (rest) out.ifa_flags = (rest >>> 0).toString(16).padStart(2, "0");
  if (tb[IFA.PROTO] !== undefined) {
    const proto = u8(tb[IFA.PROTO]!, "IFA_PROTO");
    out.protocol = ADDRESS_PROTOCOLS[proto] ?? String(proto);
  }
  if (tb[IFA.LABEL] !== undefined) out.label = str(tb[IFA.LABEL]!);
  const cache = tb[IFA.CACHEINFO];
  if (cache !== undefined) {
    const ci = IFA_CACHEINFO.decode(cache);
    out.valid_life_time = ci.valid;
    out.preferred_life_time = ci.preferred;
  }
  return out as Address;
}

/**
 * An RTM_NEWROUTE/RTM_DELROUTE message as `ip -j route` prints it, with its
 * table's number; null for a cached clone, which `ip route` leaves out too.
 */
export function decodeRoute(
  m: NetlinkMessage,
  lookup: LinkLookup,
): { route: Route; table: number; family: FamilyName } | null {
  const r = RTMSG.decode(m.payload);
  if (r.flags & RTM_F_CLONED) return null;
  const family = r.family === AF_INET ? "inet" : r.family === AF_INET6 ? "inet6" : null;
  if (family === null) return null;
  const tb = attributeTable(m.payload.subarray(RTMSG.size));
  const table = tb[RTA.TABLE] !== undefined ? u32(tb[RTA.TABLE]!, "RTA_TABLE") : r.table;
  const hostLength = family === "inet" ? 32 : 128;
  const out: Partial<Route> & Record<string, unknown> = {};
  if (r.type !== RTN_UNICAST) out.type = ROUTE_TYPES[r.type] ?? String(r.type);
  const dst = tb[RTA.DST];
  out.dst = dst !== undefined
    ? (r.dstLen === hostLength
      ? ip(r.family, dst, "RTA_DST")
      : `${ip(r.family, dst, "RTA_DST")}/${r.dstLen}`)
    : r.dstLen
    ? `0/${r.dstLen}`
    : "default";
  const src = tb[RTA.SRC];
  if (src !== undefined) {
    out.from = r.srcLen === hostLength
      ? ip(r.family, src, "RTA_SRC")
      : `${ip(r.family, src, "RTA_SRC")}/${r.srcLen}`;
  } else if (r.srcLen) out.src = `0/${r.srcLen}`;
  if (tb[RTA.NH_ID] !== undefined) out.nhid = u32(tb[RTA.NH_ID]!, "RTA_NH_ID");
  const gateway = tb[RTA.GATEWAY];
  if (gateway !== undefined) out.gateway = ip(r.family, gateway, "RTA_GATEWAY");
  if (tb[RTA.OIF] !== undefined) out.dev = nameOf(lookup, u32(tb[RTA.OIF]!, "RTA_OIF"));
  if (table !== 0 && table !== RT_TABLE_MAIN) out.table = named(TABLES, table);
  if (r.protocol !== RTPROT_BOOT) out.protocol = named(PROTOCOLS, r.protocol);
  if (r.scope !== RT_SCOPE_UNIVERSE) out.scope = named(SCOPES, r.scope);
  const prefsrc = tb[RTA.PREFSRC];
  if (prefsrc !== undefined) out.prefsrc = ip(r.family, prefsrc, "RTA_PREFSRC");
  if (tb[RTA.PRIORITY] !== undefined) out.metric = u32(tb[RTA.PRIORITY]!, "RTA_PRIORITY");
  out.flags = routeFlags(r.flags);
  if (tb[RTA.MARK] !== undefined) {
    const mark = u32(tb[RTA.MARK]!, "RTA_MARK");
    if (mark) out.mark = mark;
  }
  if (tb[RTA.UID] !== undefined) out.uid = u32(tb[RTA.UID]!, "RTA_UID");
  if (tb[RTA.PREF] !== undefined) {
    const pref = u8(tb[RTA.PREF]!, "RTA_PREF");
    out.pref = PREFERENCES.get(pref) ?? pref;
  }
  const multipath = tb[RTA.MULTIPATH];
  if (multipath !== undefined) out.nexthops = decodeNexthops(r.family, multipath, lookup);
  if (tb[RTA.METRICS] !== undefined) out.metrics = [decodeMetrics(tb[RTA.METRICS]!)];
  const cacheinfo = tb[RTA.CACHEINFO];
  if (cacheinfo !== undefined) {
    if (cacheinfo.length < 16) {
      throw new RangeError(`RTA_CACHEINFO needs 16 bytes, got ${cacheinfo.length}`);
    }
    const v = viewOf(cacheinfo), base = cacheinfo.byteOffset;
    // rta_expires is in clock ticks; ip divides by sysconf(_SC_CLK_TCK), 100 on Linux.
    const ticks = v.getInt32(base + 8, HOST_LITTLE_ENDIAN);
    if (ticks !== 0) out.expires = Math.trunc(ticks / USER_HZ);
    const error = v.getUint32(base + 12, HOST_LITTLE_ENDIAN);
    if (error !== 0) out.error = error;
  }
  if (tb[RTA.FLOW] !== undefined) {
    const realms = u32(tb[RTA.FLOW]!, "RTA_FLOW");
    const from = realms >>> 16;
    out.flow = from ? { from: realmName(from), to: realmName(realms & 0xffff) } : {
      to: realmName(realms & 0xffff),
    };
  }
  return { route: out as Route, table, family };
}

/** The kernel's USER_HZ: the unit of rta_expires. */
const USER_HZ = 100;

/** A realm as rtnl_rtrealm_n2a prints it without an rt_realms file. */
function realmName(realm: number): string {
  return realm === 0 ? "unknown" : String(realm);
}

/** RTAX_* names as ip prints them in "metrics" (mx_names; 16, CC_ALGO, is "congestion"). */
const METRIC_NAMES: readonly (string | undefined)[] = [
  undefined,
  undefined,
  "mtu",
  "window",
  "rtt",
  "rttvar",
  "ssthresh",
  "cwnd",
  "advmss",
  "reordering",
  "hoplimit",
  "initcwnd",
  "features",
  "rto_min",
  "initrwnd",
  "quickack",
  "congestion",
  "fastopen_no_cookie",
];
const RTAX_LOCK = 1, RTAX_RTT = 4, RTAX_RTTVAR = 5, RTAX_HOPLIMIT = 10;
const RTAX_FEATURES = 12, RTAX_CC_ALGO = 16, RTAX_FEATURE_ECN = 0x1;

/** `RTA_METRICS` as print_rta_metrics prints it in JSON. */
function decodeMetrics(data: Uint8Array): Record<string, number | string | null> {
  const tb = attributeTable(data);
  const lock = tb[RTAX_LOCK] !== undefined ? u32(tb[RTAX_LOCK]!, "RTAX_LOCK") : 0;
  const out: Record<string, number | string | null> = {};
  for (let i = 2; i < METRIC_NAMES.length; i++) {
    const attr = tb[i];
    // A locked metric without a value is printed as 0, as ip does.
    if (attr === undefined && !(lock & (1 << i))) continue;
    if (i === RTAX_CC_ALGO) {
      if (attr !== undefined) out.congestion = str(attr);
      continue;
    }
    let value = attr === undefined ? 0 : u32(attr, `metric ${METRIC_NAMES[i]}`);
    if (i === RTAX_HOPLIMIT && value === 0xffffffff) continue;
    if (i === RTAX_FEATURES) {
      if (value & RTAX_FEATURE_ECN) out.ecn = null;
      if (value & ~RTAX_FEATURE_ECN) out.features = `0x${value.toString(16)}`;
      continue;
    }
    if (i === RTAX_RTT) value = Math.trunc(value / 8);
    else if (i === RTAX_RTTVAR) value = Math.trunc(value / 4);
    out[METRIC_NAMES[i]!] = value;
  }
  return out;
}

/** Route and next-hop flags by the names ip prints (print_rt_flags). */
function routeFlags(flags: number): string[] {
  return flags === 0 ? [] : ROUTE_FLAGS.filter(([b]) => flags & b).map(([, n]) => n);
}

/** The size of struct rtnexthop: len u16, flags u8, hops u8, ifindex i32. */
const RTNEXTHOP_SIZE = 8;

/** `RTA_MULTIPATH`: rtnexthop structs, each followed by its attributes (print_rta_multipath). */
function decodeNexthops(family: number, data: Uint8Array, lookup: LinkLookup): RouteNexthop[] {
  const v = viewOf(data), base = data.byteOffset;
  const out: RouteNexthop[] = [];
  let offset = 0;
  while (offset + RTNEXTHOP_SIZE <= data.length) {
    const length = v.getUint16(base + offset, HOST_LITTLE_ENDIAN);
    if (length < RTNEXTHOP_SIZE || length > data.length - offset) {
      throw new RangeError(
        `RTA_MULTIPATH: a next hop at ${offset} claims ${length} bytes, ` +
          `${data.length - offset} remain`,
      );
    }
    const tb = attributeTable(data.subarray(offset + RTNEXTHOP_SIZE, offset + length));
    const hop: Partial<RouteNexthop> = {};
    const gateway = tb[RTA.GATEWAY];
    if (gateway !== undefined) hop.gateway = ip(family, gateway, "RTA_GATEWAY");
    hop.dev = nameOf(lookup, v.getInt32(base + offset + 4, HOST_LITTLE_ENDIAN));
    hop.weight = data[offset + 3] + 1;
    hop.flags = routeFlags(data[offset + 2]);
    out.push(hop as RouteNexthop);
    offset += align4(length);
  }
  return out;
}

// ---------------------------------------------------------------------------
// sock_diag → ss

/** An inet_diag reply as `ss -tan`/`-uan` shows it (plus inode and uid). */
export function decodeInetSocket(m: NetlinkMessage, protocol: "tcp" | "udp"): SocketEntry {
  const d = INET_DIAG_MSG.decode(m.payload);
  const family = d.family === AF_INET ? "inet" : d.family === AF_INET6 ? "inet6" : null;
  if (family === null) throw new RangeError(`inet_diag family ${d.family} is not IPv4 or IPv6`);
  const address = (bytes: Uint8Array): string =>
    family === "inet" ? formatIPv4(bytes.subarray(0, 4)) : formatIPv6(bytes);
  return {
    netid: protocol,
    family,
    state: SOCKET_STATES[d.state] ?? String(d.state),
    recvQ: d.rqueue,
    sendQ: d.wqueue,
    localAddress: address(d.src),
    localPort: d.sport,
    peerAddress: address(d.dst),
    peerPort: d.dport,
    inode: d.inode,
    uid: d.uid,
  };
}

/**
 * A unix_diag reply as `ss -xa` shows it: the name (`@` for an abstract one,
 * `*` for none) with the inode as its "port", the peer's inode; the peer's
 * name is filled in by the caller, who has seen every socket.
 */
export function decodeUnixSocket(m: NetlinkMessage): SocketEntry {
  const d = UNIX_DIAG_MSG.decode(m.payload);
  const tb = attributeTable(m.payload.subarray(UNIX_DIAG_MSG.size));
  const name = tb[UNIX_DIAG.NAME];
  let localAddress = "*";
  if (name !== undefined && name.length > 0) {
    localAddress = name[0] === 0 ? `@${utf8.decode(name.subarray(1))}` : str(name);
  }
  const rq = tb[UNIX_DIAG.RQLEN];
  const queues = rq === undefined ? { rqueue: 0, wqueue: 0 } : UNIX_DIAG_RQLEN.decode(rq);
  const entry: SocketEntry = {
    netid: UNIX_NETIDS.get(d.type) ?? "u_str",
    family: "unix",
    state: SOCKET_STATES[d.state] ?? String(d.state),
    recvQ: queues.rqueue,
    sendQ: queues.wqueue,
    localAddress,
    localPort: d.inode,
    peerAddress: "*",
    peerPort: tb[UNIX_DIAG.PEER] !== undefined ? u32(tb[UNIX_DIAG.PEER]!, "UNIX_DIAG_PEER") : 0,
    inode: d.inode,
  };
  if (tb[UNIX_DIAG.UID] !== undefined) entry.uid = u32(tb[UNIX_DIAG.UID]!, "UNIX_DIAG_UID");
  return entry;
}
