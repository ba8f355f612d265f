// The C structs the engine reads and writes, each declared once by field
// name: every offset into a struct elsewhere in ffi/ is one of these. Linux on
// x86_64 and aarch64 (LP64, little-endian): the two ABIs lay out every struct
// here alike. `struct epoll_event`, the one that differs, is the reactor's
// (EPOLL_EVENT_SIZE in constants.ts). tests/structs_test.ts compares each
// table with what the C compiler says. Pure: importing this file loads no
// native code.

/** `struct iovec` (sys/uio.h): one buffer of a scatter/gather list. */
export const IOVEC = { size: 16, base: 0, len: 8 } as const;

/** `struct msghdr` (sys/socket.h): what sendmsg and recvmsg take. */
export const MSGHDR = {
  size: 56,
  name: 0,
  namelen: 8,
  iov: 16,
  iovlen: 24,
  control: 32,
  controllen: 40,
  flags: 48,
} as const;

/**
 * `struct mmsghdr`: a `msghdr` at offset 0, then the byte count the call
 * moved, so a `msghdr` field of slot `i` is at `i * MMSGHDR.size + MSGHDR.x`.
 */
export const MMSGHDR = { size: 64, hdr: 0, len: 56 } as const;

/**
 * `struct cmsghdr` (sys/socket.h): a control message's header; its data
 * starts at `data` (`CMSG_DATA`). `len` is a `size_t`.
 */
export const CMSGHDR = { size: 16, len: 0, level: 8, type: 12, data: 16 } as const;

/** `CMSG_ALIGN(n)`: control messages are aligned to a `size_t`. */
export function cmsgAlign(n: number): number {
  return (n + 7) & ~7;
}

/** `CMSG_SPACE(n)`: the room one control message with `n` bytes of data takes. */
export function cmsgSpace(n: number): number {
  return CMSGHDR.size + cmsgAlign(n);
}

/** `CMSG_LEN(n)`: the `cmsg_len` of a control message with `n` bytes of data. */
export function cmsgLen(n: number): number {
  return CMSGHDR.size + n;
}

/** `struct ucred` (sys/socket.h): `SO_PEERCRED`'s and `SCM_CREDENTIALS`' credentials. */
export const UCRED = { size: 12, pid: 0, uid: 4, gid: 8 } as const;

/** `struct ip_mreqn` (netinet/in.h): an IPv4 group, a local address and an interface. */
export const IP_MREQN = { size: 12, multiaddr: 0, address: 4, ifindex: 8 } as const;

/** `struct ipv6_mreq` (netinet/in.h): an IPv6 group and an interface. */
export const IPV6_MREQ = { size: 20, multiaddr: 0, ifindex: 16 } as const;

/** `struct in_pktinfo` (`IP_PKTINFO`): the interface and destination of a received packet. */
export const IN_PKTINFO = { size: 12, ifindex: 0, specDst: 4, addr: 8 } as const;

/** `struct in6_pktinfo` (`IPV6_PKTINFO`): a received packet's destination and interface. */
export const IN6_PKTINFO = { size: 20, addr: 0, ifindex: 16 } as const;

/** `struct timespec` (time.h): `SCM_TIMESTAMPNS` and clock_gettime's answer. */
export const TIMESPEC = { size: 16, sec: 0, nsec: 8 } as const;

/** `struct sock_filter` (linux/filter.h): one classic BPF instruction. */
export const SOCK_FILTER = { size: 8, code: 0, jt: 2, jf: 3, k: 4 } as const;

/** `struct sock_fprog` (linux/filter.h): a BPF program's length and address. */
export const SOCK_FPROG = { size: 16, len: 0, filter: 8 } as const;

/** `struct tpacket_stats` (linux/if_packet.h): `PACKET_STATISTICS`. */
export const TPACKET_STATS = { size: 8, packets: 0, drops: 4 } as const;

/** `struct tpacket_req3` (linux/if_packet.h): a `TPACKET_V3` ring's shape. */
export const TPACKET_REQ3 = {
  size: 28,
  blockSize: 0,
  blockNr: 4,
  frameSize: 8,
  frameNr: 12,
  retireBlkTov: 16,
  sizeofPriv: 20,
  featureReqWord: 24,
} as const;

/**
 * `struct tpacket_block_desc` with its `struct tpacket_hdr_v1` (at offset 8)
 * flattened in: the header of one block of a `TPACKET_V3` ring.
 */
export const TPACKET_BLOCK_DESC = {
  version: 0,
  offsetToPriv: 4,
  blockStatus: 8,
  numPkts: 12,
  offsetToFirstPkt: 16,
  blkLen: 20,
  seqNum: 24,
} as const;

/**
 * `struct tpacket3_hdr` (linux/if_packet.h): one frame of a `TPACKET_V3`
 * ring. Its `sockaddr_ll` follows at `TPACKET_ALIGN(sizeof)`, `address`.
 */
export const TPACKET3_HDR = {
  size: 48,
  nextOffset: 0,
  sec: 4,
  nsec: 8,
  snaplen: 12,
  len: 16,
  status: 20,
  mac: 24,
  net: 26,
  address: 48,
} as const;

/**
 * `struct tcp_info` (linux/tcp.h; `TCP_INFO` names the option): the fields
 * the module reads. No size: each kernel appends fields, and writes only as
 * much as the caller's buffer holds.
 */
export const TCP_INFO_LAYOUT = {
  state: 0,
  caState: 1,
  retransmits: 2,
  probes: 3,
  backoff: 4,
  rto: 8,
  ato: 12,
  sndMss: 16,
  rcvMss: 20,
  unacked: 24,
  sacked: 28,
  lost: 32,
  retrans: 36,
  lastDataSent: 44,
  lastDataRecv: 52,
  lastAckRecv: 56,
  pmtu: 60,
  rcvSsthresh: 64,
  rtt: 68,
  rttvar: 72,
  sndSsthresh: 76,
  sndCwnd: 80,
  advmss: 84,
  reordering: 88,
  rcvRtt: 92,
  rcvSpace: 96,
  totalRetrans: 100,
  pacingRate: 104,
  maxPacingRate: 112,
  bytesAcked: 120,
  bytesReceived: 128,
  segsOut: 136,
  segsIn: 140,
  notsentBytes: 144,
  minRtt: 148,
  dataSegsIn: 152,
  dataSegsOut: 156,
  deliveryRate: 160,
  busyTime: 168,
  rwndLimited: 176,
  sndbufLimited: 184,
  delivered: 192,
  deliveredCe: 196,
  bytesSent: 200,
  bytesRetrans: 208,
  dsackDups: 216,
  reordSeen: 220,
  rcvOoopack: 224,
  sndWnd: 228,
} as const;

/** `struct sockaddr_in` (netinet/in.h); `port` and `addr` in network order. */
export const SOCKADDR_IN = { size: 16, family: 0, port: 2, addr: 4 } as const;

/** `struct sockaddr_in6` (netinet/in.h); `port` and `addr` in network order. */
export const SOCKADDR_IN6 = {
  size: 28,
  family: 0,
  port: 2,
  flowinfo: 4,
  addr: 8,
  scopeId: 24,
} as const;

/** `struct sockaddr_un` (sys/un.h): `path` runs to the end (`UNIX_PATH_MAX`). */
export const SOCKADDR_UN = { size: 110, family: 0, path: 2 } as const;

/** `struct sockaddr_ll` (linux/if_packet.h); `protocol` in network order. */
export const SOCKADDR_LL = {
  size: 20,
  family: 0,
  protocol: 2,
  ifindex: 4,
  hatype: 8,
  pkttype: 10,
  halen: 11,
  addr: 12,
} as const;

/** `struct sockaddr_nl` (linux/netlink.h). */
export const SOCKADDR_NL = { size: 12, family: 0, pid: 4, groups: 8 } as const;

/** `struct sockaddr_storage`: room for any address the kernel reports. */
export const SOCKADDR_STORAGE = { size: 128, family: 0 } as const;

/** The credentials of a process, as `SO_PEERCRED` and `SCM_CREDENTIALS` carry them. */
export interface Credentials {
  pid: number;
  uid: number;
  gid: number;
}

/** The `struct ucred` at `offset` of `v`. */
export function decodeUcred(v: DataView, offset: number): Credentials {
  return {
    pid: v.getInt32(offset + UCRED.pid, true),
    uid: v.getUint32(offset + UCRED.uid, true),
    gid: v.getUint32(offset + UCRED.gid, true),
  };
}
