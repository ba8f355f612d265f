// The C numbers the library uses, per platform. Pure data: importing it loads
// no native code, so the pure modules (icmp.ts) and the bench may use it too.
//
// Linux x86_64 and aarch64 share every number below (the generic and the
// x86_64 ABIs agree on sockets). Struct layouts are in structs.ts, but for
// the one that differs between them, `struct epoll_event`, described by
// EPOLL_EVENT_SIZE. Another platform would need its own numbers here, chosen
// by `Deno.build`.

/** Whether this machine stores integers little-endian (struct fields in host order). */
export const HOST_LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** Address families. */
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_PACKET = 17;
export const AF_NETLINK = 16;

/** Socket types and the flags that may be or'ed into them. */
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_SEQPACKET = 5;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;

/** Protocols. */
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_RAW = 255;
export const ETH_P_ALL = 0x0003;
export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
export const ETH_P_IPV6 = 0x86dd;

/** The IP protocols the public options name, by their names there. */
export const IP_PROTOCOL_NUMBERS = {
  icmp: IPPROTO_ICMP,
  tcp: IPPROTO_TCP,
  udp: IPPROTO_UDP,
  icmpv6: IPPROTO_ICMPV6,
  raw: IPPROTO_RAW,
} as const;

/** The EtherTypes the public options name, by their names there. */
export const ETHER_TYPE_NUMBERS = {
  all: ETH_P_ALL,
  ipv4: ETH_P_IP,
  arp: ETH_P_ARP,
  ipv6: ETH_P_IPV6,
} as const;

/** Option levels. */
export const SOL_SOCKET = 1;
export const SOL_IP = 0;
export const SOL_IPV6 = 41;
export const SOL_PACKET = 263;
export const SOL_NETLINK = 270;

/** SOL_SOCKET options. */
export const SO_REUSEADDR = 2;
export const SO_TYPE = 3;
export const SO_ERROR = 4;
export const SO_BROADCAST = 6;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_PASSCRED = 16;
export const SO_PEERCRED = 17;
export const SO_BINDTODEVICE = 25;
export const SO_ATTACH_FILTER = 26;
export const SO_SNDBUFFORCE = 32;
export const SO_RCVBUFFORCE = 33;
export const SO_KEEPALIVE = 9;
export const SCM_RIGHTS = 1;
export const SCM_CREDENTIALS = 2;

/** IPPROTO_IP options. */
export const IP_TTL = 2;
export const IP_HDRINCL = 3;
export const IP_MULTICAST_IF = 32;
export const IP_MULTICAST_TTL = 33;
export const IP_MULTICAST_LOOP = 34;
export const IP_ADD_MEMBERSHIP = 35;
export const IP_DROP_MEMBERSHIP = 36;

/** IPPROTO_IPV6 options. */
export const IPV6_MULTICAST_IF = 17;
export const IPV6_MULTICAST_HOPS = 18;
export const IPV6_MULTICAST_LOOP = 19;
export const IPV6_JOIN_GROUP = 20;
export const IPV6_LEAVE_GROUP = 21;

/** IPPROTO_TCP options (the level is IPPROTO_TCP, also called SOL_TCP). */
export const TCP_NODELAY = 1;

/** SOL_PACKET options. */
export const PACKET_RX_RING = 5;
export const PACKET_STATISTICS = 6;
export const PACKET_VERSION = 10;

// Netlink protocols and SOL_NETLINK options.
export const NETLINK_ROUTE = 0;
export const NETLINK_SOCK_DIAG = 4;
export const NETLINK_KOBJECT_UEVENT = 15;
export const NETLINK_GENERIC = 16;
/** The netlink protocols the public options name, by their names there. */
export const NETLINK_PROTOCOL_NUMBERS = {
  route: NETLINK_ROUTE,
  sock_diag: NETLINK_SOCK_DIAG,
  uevent: NETLINK_KOBJECT_UEVENT,
  generic: NETLINK_GENERIC,
} as const;
export const NETLINK_ADD_MEMBERSHIP = 1;
export const NETLINK_CAP_ACK = 10;
export const NETLINK_EXT_ACK = 11;
/** The block-based receive ring (linux/if_packet.h). */
export const TPACKET_V3 = 2;
/** A ring block or frame owned by the kernel, or handed to the user. */
export const TP_STATUS_KERNEL = 0;
export const TP_STATUS_USER = 1;

/** mmap(). */
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;

/** Message flags. */
export const MSG_CTRUNC = 0x8;
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_CMSG_CLOEXEC = 0x40000000;

/** shutdown() directions. */
export const SHUT_RD = 0;
export const SHUT_WR = 1;
export const SHUT_RDWR = 2;

/** epoll. */
export const EPOLL_CLOEXEC = 0o2000000;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;
export const EPOLLIN = 0x001;
export const EPOLLOUT = 0x004;
export const EPOLLERR = 0x008;
export const EPOLLHUP = 0x010;
export const EPOLLRDHUP = 0x2000;
export const EPOLLONESHOT = 0x40000000;
export const EPOLLET = 0x80000000;
export const EFD_CLOEXEC = 0o2000000;
export const EFD_NONBLOCK = 0o4000;

/**
 * io_uring (linux/io_uring.h). The system call numbers are the generic ones,
 * shared by x86_64 and aarch64 (every call numbered 424 or later is).
 */
export const SYS_IO_URING_SETUP = 425n;
export const SYS_IO_URING_ENTER = 426n;
export const SYS_IO_URING_REGISTER = 427n;
export const IORING_SETUP_TASKRUN_FLAG = 1 << 9;
export const IORING_SETUP_SINGLE_ISSUER = 1 << 12;
export const IORING_SETUP_DEFER_TASKRUN = 1 << 13;
export const IORING_FEAT_SINGLE_MMAP = 1 << 0;
export const IORING_OFF_SQ_RING = 0n;
export const IORING_OFF_CQ_RING = 0x8000000n;
export const IORING_OFF_SQES = 0x10000000n;
export const IORING_OP_POLL_ADD = 6;
export const IORING_POLL_ADD_MULTI = 1 << 0;
export const IORING_CQE_F_MORE = 1 << 1;
export const IORING_SQ_TASKRUN = 1 << 2;
export const IORING_CQ_EVENTFD_DISABLED = 1 << 0;
export const IORING_ENTER_GETEVENTS = 1 << 0;
export const IORING_REGISTER_EVENTFD = 4;
export const POLLIN = 0x001;
/** MAP_POPULATE: fault the rings in now rather than on first touch. */
export const MAP_POPULATE = 0x8000;
/** Sizes of `struct io_uring_params`, `struct io_uring_sqe` and `struct io_uring_cqe`. */
export const SIZEOF_IO_URING_PARAMS = 120;
export const SIZEOF_IO_URING_SQE = 64;
export const SIZEOF_IO_URING_CQE = 16;

/** Kernel limits the library checks before a call. */
export const UNIX_PATH_MAX = 108;
/** SCM_MAX_FD: the most descriptors one SCM_RIGHTS message may carry. */
export const SCM_MAX_FD = 253;
/** BPF_MAXINSNS: the longest classic BPF program the kernel accepts. */
export const BPF_MAXINSNS = 4096;
export const IFNAMSIZ = 16;

/** `struct epoll_event` is packed on x86_64 (12 bytes) and not on aarch64 (16). */
export const EPOLL_EVENT_SIZE = Deno.build.arch === "x86_64" ? 12 : 16;
/** Offset of `data` inside `struct epoll_event`. */
export const EPOLL_EVENT_DATA_OFFSET = Deno.build.arch === "x86_64" ? 4 : 8;

/**
 * errno numbers by name, and the message Linux's strerror gives, lower-cased
 * as the library prints it. Only the errnos the library meets are listed; an
 * unlisted number prints as `errno N`.
 */
export const ERRNO: Readonly<Record<string, readonly [number, string]>> = {
  EPERM: [1, "operation not permitted"],
  ENOENT: [2, "no such file or directory"],
  EINTR: [4, "interrupted system call"],
  EIO: [5, "input/output error"],
  EBADF: [9, "bad file descriptor"],
  EAGAIN: [11, "resource temporarily unavailable"],
  ENOMEM: [12, "cannot allocate memory"],
  EACCES: [13, "permission denied"],
  EFAULT: [14, "bad address"],
  EBUSY: [16, "device or resource busy"],
  EEXIST: [17, "file exists"],
  ENODEV: [19, "no such device"],
  ENOTDIR: [20, "not a directory"],
  EINVAL: [22, "invalid argument"],
  ENFILE: [23, "too many open files in system"],
  EMFILE: [24, "too many open files"],
  ENOSPC: [28, "no space left on device"],
  EPIPE: [32, "broken pipe"],
  ENAMETOOLONG: [36, "file name too long"],
  ENOSYS: [38, "function not implemented"],
  ELOOP: [40, "too many levels of symbolic links"],
  ENOPROTOOPT: [92, "protocol not available"],
  EPROTONOSUPPORT: [93, "protocol not supported"],
  ESOCKTNOSUPPORT: [94, "socket type not supported"],
  EOPNOTSUPP: [95, "operation not supported"],
  EAFNOSUPPORT: [97, "address family not supported by protocol"],
  EADDRINUSE: [98, "address already in use"],
  EADDRNOTAVAIL: [99, "cannot assign requested address"],
  ENETDOWN: [100, "network is down"],
  ENETUNREACH: [101, "network is unreachable"],
  ECONNABORTED: [103, "software caused connection abort"],
  ECONNRESET: [104, "connection reset by peer"],
  ENOBUFS: [105, "no buffer space available"],
  EISCONN: [106, "transport endpoint is already connected"],
  ENOTCONN: [107, "transport endpoint is not connected"],
  ETIMEDOUT: [110, "connection timed out"],
  ECONNREFUSED: [111, "connection refused"],
  EHOSTUNREACH: [113, "no route to host"],
  EALREADY: [114, "operation already in progress"],
  EINPROGRESS: [115, "operation now in progress"],
  EDESTADDRREQ: [89, "destination address required"],
  EMSGSIZE: [90, "message too long"],
  EPROTOTYPE: [91, "protocol wrong type for socket"],
  EPROTO: [71, "protocol error"],
  ENOTSOCK: [88, "socket operation on non-socket"],
};

/** errno number → name, derived from ERRNO. */
export const ERRNO_NAME: ReadonlyMap<number, string> = new Map(
  Object.entries(ERRNO).map(([name, [num]]) => [num, name]),
);

/** The errno numbers the engine tests for by name. */
export const EAGAIN = ERRNO.EAGAIN[0];
export const EINTR = ERRNO.EINTR[0];
export const EINPROGRESS = ERRNO.EINPROGRESS[0];
export const EALREADY = ERRNO.EALREADY[0];
export const EISCONN = ERRNO.EISCONN[0];
export const ENOTCONN = ERRNO.ENOTCONN[0];
export const ECONNABORTED = ERRNO.ECONNABORTED[0];
export const EMSGSIZE = ERRNO.EMSGSIZE[0];

// ---------------------------------------------------------------------------
// Descriptors: what fromFd asks of one, and the journal's sealed memfd.

/** SOL_SOCKET options that describe a socket (fromFd). */
export const SO_ACCEPTCONN = 30;
export const SO_PROTOCOL = 38;
export const SO_DOMAIN = 39;

/** fcntl() commands and flags. */
export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const F_DUPFD_CLOEXEC = 1030;
export const FD_CLOEXEC = 1;
export const O_NONBLOCK = 0o4000;
export const F_ADD_SEALS = 1033;
export const F_SEAL_SEAL = 0x1;
export const F_SEAL_SHRINK = 0x2;
export const F_SEAL_GROW = 0x4;
export const F_SEAL_WRITE = 0x8;

/** memfd_create() flags. */
export const MFD_CLOEXEC = 0x1;
export const MFD_ALLOW_SEALING = 0x2;

/** clock_gettime() clocks. */
export const CLOCK_MONOTONIC = 1;

// ---------------------------------------------------------------------------
// Socket options by name (ffi/options.ts), per-packet information, peek.

/** SOL_SOCKET options. */
export const SO_REUSEPORT = 15;
export const SO_TIMESTAMPNS = 35;
/** The control message type SO_TIMESTAMPNS delivers (the same number). */
export const SCM_TIMESTAMPNS = SO_TIMESTAMPNS;
export const SO_MARK = 36;
export const SO_ATTACH_REUSEPORT_CBPF = 51;

/** IPPROTO_IP options and the control messages they deliver. */
export const IP_TOS = 1;
export const IP_PKTINFO = 8;
export const IP_RECVTTL = 12;
export const IP_RECVTOS = 13;

/** IPPROTO_IPV6 options and the control messages they deliver. */
export const IPV6_UNICAST_HOPS = 16;
export const IPV6_V6ONLY = 26;
export const IPV6_RECVPKTINFO = 49;
export const IPV6_PKTINFO = 50;
export const IPV6_RECVHOPLIMIT = 51;
export const IPV6_HOPLIMIT = 52;
export const IPV6_RECVTCLASS = 66;
export const IPV6_TCLASS = 67;

/** IPPROTO_TCP options. */
export const TCP_KEEPIDLE = 4;
export const TCP_KEEPINTVL = 5;
export const TCP_KEEPCNT = 6;
export const TCP_INFO = 11;
export const TCP_USER_TIMEOUT = 18;

/** recv() flag: read without consuming. */
export const MSG_PEEK = 0x2;
