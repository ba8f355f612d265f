/**
 * The interfaces every socket type shares, and the address types they report.
 *
 * `Reader`, `Writer` and `Closer` are structurally the same as the ones in
 * `@std/io`, so code written against them works with any socket of this module
 * and with anything else that reads and writes bytes.
 *
 * @example Write generic code once
 * ```ts
 * import type { Reader, Writer } from "@bsd/sockets";
 *
 * async function echoOnce(conn: Reader & Writer): Promise<void> {
 *   const buf = new Uint8Array(1024);
 *   const n = await conn.read(buf);
 *   if (n !== null) await conn.write(buf.subarray(0, n));
 * }
 * ```
 *
 * @module
 */

/**
 * Something bytes can be read from.
 *
 * On a stream, `read` returns up to `p.length` bytes; on a packet socket it
 * returns exactly one record, cut to `p.length`.
 *
 * @example Read one chunk
 * ```ts
 * import type { Reader } from "@bsd/sockets";
 *
 * async function readSome(r: Reader): Promise<Uint8Array | null> {
 *   const buf = new Uint8Array(512);
 *   const n = await r.read(buf);
 *   return n === null ? null : buf.subarray(0, n);
 * }
 * ```
 */
export interface Reader {
  /**
   * Reads into `p` and resolves with the number of bytes read, or `null` at
   * end of stream or once the socket is closed.
   */
  read(p: Uint8Array): Promise<number | null>;
}

/**
 * Something bytes can be written to.
 *
 * On a packet socket one `write` is one record, sent to the connected peer.
 *
 * @example Write a greeting
 * ```ts
 * import type { Writer } from "@bsd/sockets";
 *
 * async function greet(w: Writer): Promise<number> {
 *   return await w.write(new TextEncoder().encode("hello"));
 * }
 * ```
 */
export interface Writer {
  /** Writes `p` and resolves with the number of bytes written. */
  write(p: Uint8Array): Promise<number>;
}

/**
 * Something that holds a resource until it is closed.
 *
 * @example Close whatever is given
 * ```ts
 * import type { Closer } from "@bsd/sockets";
 *
 * function closeAll(items: Closer[]): void {
 *   for (const item of items) item.close();
 * }
 * ```
 */
export interface Closer {
  /** Releases the resource; calling it again does nothing. */
  close(): void;
}

/**
 * The address of a TCP or UDP endpoint.
 *
 * @example A loopback UDP address
 * ```ts
 * import type { NetAddr } from "@bsd/sockets";
 *
 * const addr: NetAddr = { transport: "udp", hostname: "127.0.0.1", port: 5353 };
 * ```
 */
export interface NetAddr {
  /** The transport protocol. */
  transport: "tcp" | "udp";
  /** The IP address in text form (`"127.0.0.1"`, `"::1"`). */
  hostname: string;
  /** The port, 0 to 65535. */
  port: number;
}

/**
 * The address of a Unix-domain socket.
 *
 * `path` is `""` for an unnamed socket; a leading `"\0"` names a socket in the
 * Linux abstract namespace (such names may hold further `"\0"` bytes).
 *
 * @example A filesystem and an abstract name
 * ```ts
 * import type { UnixAddr } from "@bsd/sockets";
 *
 * const onDisk: UnixAddr = { transport: "unix", path: "/tmp/app.sock" };
 * const abstract: UnixAddr = { transport: "seqpacket", path: "\0app" };
 * ```
 */
export interface UnixAddr {
  /** The socket type: stream (`"unix"`), datagram (`"unixgram"`) or `"seqpacket"`. */
  transport: "unix" | "unixgram" | "seqpacket";
  /** The path, `""` when unnamed, or `"\0…"` for an abstract name. */
  path: string;
}

/**
 * The address of a raw IP endpoint: a host, without a port.
 *
 * @example The IPv6 loopback
 * ```ts
 * import type { IpAddr } from "@bsd/sockets";
 *
 * const lo: IpAddr = { transport: "ip", hostname: "::1" };
 * ```
 */
export interface IpAddr {
  /** Always `"ip"`. */
  transport: "ip";
  /** The IP address in text form. */
  hostname: string;
}

/**
 * A link-layer (`AF_PACKET`) address: where a frame came from or goes to.
 *
 * @example A broadcast destination on eth0
 * ```ts
 * import type { LinkAddr } from "@bsd/sockets";
 *
 * const to: LinkAddr = {
 *   transport: "packet",
 *   interface: "eth0",
 *   ifindex: 2,
 *   protocol: 0x0800,
 *   address: new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
 *   packetType: "broadcast",
 * };
 * ```
 */
export interface LinkAddr {
  /** Always `"packet"`. */
  transport: "packet";
  /** The interface name, such as `"eth0"`. */
  interface: string;
  /** The interface index. */
  ifindex: number;
  /** The EtherType in host order, such as `0x0800` for IPv4. */
  protocol: number;
  /** The hardware address (6 bytes on Ethernet). */
  address: Uint8Array;
  /** Who the frame was addressed to, as the kernel classified it. */
  packetType: "host" | "broadcast" | "multicast" | "otherhost" | "outgoing";
}

/**
 * One record received from a packet socket.
 *
 * @example Print a message
 * ```ts
 * import type { Message, NetAddr } from "@bsd/sockets";
 *
 * function describe(m: Message<NetAddr>): string {
 *   const who = m.from ? `${m.from.hostname}:${m.from.port}` : "unnamed";
 *   return `${m.data.length} B from ${who}${m.truncated ? " (truncated)" : ""}`;
 * }
 * ```
 */
export interface Message<A> {
  /** The record's bytes; may be empty, since a 0-byte record is not end of stream. */
  data: Uint8Array;
  /**
   * The sender's address; `null` when the sender is unnamed, and on a connected seqpacket socket.
   */
  from: A | null;
  /** `true` when the record was longer than the buffer and was cut. */
  truncated: boolean;
  /**
   * Seqpacket and Unix datagram (FFI backend): descriptors received with the
   * record (`SCM_RIGHTS`), each close-on-exec and the receiver's to close.
   */
  fds?: number[];
  /**
   * Seqpacket and Unix datagram: `true` when the kernel could not deliver
   * every descriptor sent with this record (`MSG_CTRUNC`), typically because
   * this process reached its open-file limit. The kernel closed the
   * undelivered ones; those in `fds` were delivered and are the receiver's to close.
   */
  controlTruncated?: boolean;
  /**
   * The sending process's credentials (`SCM_CREDENTIALS`): on every record of
   * a seqpacket connection, and of a Unix datagram socket opened with
   * `passCredentials: true`.
   */
  credentials?: PeerCredentials;
  /** IPv4, with `receiveInfo: ["ttl"]`: the time to live the packet arrived with (`IP_TTL`). */
  ttl?: number;
  /** IPv6, with `receiveInfo: ["ttl"]`: the hop limit the packet arrived with (`IPV6_HOPLIMIT`). */
  hopLimit?: number;
  /** IPv4, with `receiveInfo: ["tos"]`: the packet's type-of-service byte (`IP_TOS`). */
  tos?: number;
  /** IPv6, with `receiveInfo: ["tos"]`: the packet's traffic class (`IPV6_TCLASS`). */
  trafficClass?: number;
  /**
   * With `receiveInfo: ["destination"]`: the address the packet was sent to
   * (one of this host's, or a broadcast or multicast group) and the index of
   * the interface it came in on (`IP_PKTINFO`/`IPV6_PKTINFO`).
   */
  destination?: PacketDestination;
  /**
   * With `receiveInfo: ["timestamp"]`: when the kernel received the packet,
   * in nanoseconds since the Unix epoch (`SO_TIMESTAMPNS`, the system clock).
   * A `bigint`, since a `Date` keeps only milliseconds;
   * `new Date(Number(t / 1_000_000n))` converts.
   */
  timestamp?: bigint;
  /**
   * A peek only (`receive({ peek: true })`): the record's full length in
   * bytes, as the kernel reports it (`MSG_TRUNC`), also when it is longer
   * than `maxSize` and `data` holds only the first `maxSize` of them.
   */
  recordLength?: number;
}

/**
 * Where a received packet was addressed: see {@linkcode Message.destination}.
 *
 * @example Answer from the address that was asked
 * ```ts
 * import type { PacketDestination } from "@bsd/sockets";
 *
 * const replyFrom = (d: PacketDestination): string => d.address;
 * ```
 */
export interface PacketDestination {
  /** The destination IP address, as text. */
  address: string;
  /** The index of the interface the packet arrived on. */
  ifindex: number;
}

/**
 * The per-packet information a socket may be opened to receive with each
 * record (`receiveInfo` of `listenDatagram` and `openRaw`, FFI backend):
 * `"ttl"` fills `ttl` (IPv4) or `hopLimit` (IPv6), `"tos"` fills `tos` or
 * `trafficClass`, `"destination"` fills `destination`, `"timestamp"` fills
 * `timestamp`.
 *
 * @example Everything a DNS server wants
 * ```ts
 * import type { ReceiveInfo } from "@bsd/sockets";
 *
 * const info: ReceiveInfo[] = ["destination", "timestamp"];
 * ```
 */
export type ReceiveInfo = "ttl" | "destination" | "timestamp" | "tos";

/**
 * The process credentials of a peer: what `SO_PEERCRED` reports for a
 * connection and what the kernel attaches to a record (`SCM_CREDENTIALS`).
 *
 * @example Allow only the same user
 * ```ts
 * import type { PeerCredentials } from "@bsd/sockets";
 *
 * function sameUser(peer: PeerCredentials): boolean {
 *   return peer.uid === Deno.uid();
 * }
 * ```
 */
export interface PeerCredentials {
  /** The process id (as seen from this process's pid namespace). */
  pid: number;
  /** The effective user id. */
  uid: number;
  /** The effective group id. */
  gid: number;
}

/**
 * A socket that moves whole records: datagram, raw, packet and seqpacket
 * sockets all implement it.
 *
 * `read(p)` returns one record per call; async iteration yields messages until
 * end of stream or `close()`.
 *
 * @example Drain a packet socket
 * ```ts
 * import type { PacketSocket } from "@bsd/sockets";
 *
 * async function count<A>(sock: PacketSocket<A>): Promise<number> {
 *   let n = 0;
 *   for await (const _message of sock) n++;
 *   return n;
 * }
 * ```
 */
export interface PacketSocket<A>
  extends Reader, Writer, Closer, AsyncIterable<Message<A>>, Disposable {
  /** The address this socket is bound to. */
  readonly localAddr: A;
  /**
   * Receives one record. Resolves `null` at end of stream or after `close()`;
   * rejects with `signal.reason` when aborted, and then consumes no record.
   * `maxSize` (default 65,536) caps the bytes returned; a longer record comes
   * back cut, with `truncated: true`.
   */
  receive(options?: ReceiveOptions): Promise<Message<A> | null>;
  /**
   * Receives a batch with one wait: the first record to come, with every
   * record already queued behind it, up to `max` (default 64, 1 to 1,024).
   * Never waits for a second record. `null` exactly where `receive()` gives
   * `null`; an abort rejects with `signal.reason` and consumes nothing; each
   * record is whole and cut to `maxSize` on its own.
   */
  receiveMany(options?: ReceiveManyOptions): Promise<Message<A>[] | null>;
}

/**
 * Options for {@linkcode PacketSocket.receive}.
 *
 * @example Receive with a deadline
 * ```ts
 * import type { ReceiveOptions } from "@bsd/sockets";
 *
 * const options: ReceiveOptions = { signal: AbortSignal.timeout(1000), maxSize: 1500 };
 * ```
 */
export interface ReceiveOptions {
  /** Aborts the receive; no record is consumed by an aborted receive. */
  signal?: AbortSignal;
  /** The most bytes to return, 65,536 when not given. */
  maxSize?: number;
  /**
   * FFI backend: return the next record without consuming it (`MSG_PEEK`);
   * the next receive returns it again. The peeked message carries
   * `recordLength`, the record's full length, and no descriptors or
   * credentials (the receive that follows has them).
   */
  peek?: boolean;
}

/**
 * Options for {@linkcode PacketSocket.receiveMany}.
 *
 * @example Up to 32 records of at most 1500 bytes each
 * ```ts
 * import type { ReceiveManyOptions } from "@bsd/sockets";
 *
 * const options: ReceiveManyOptions = { max: 32, maxSize: 1500 };
 * ```
 */
export interface ReceiveManyOptions extends ReceiveOptions {
  /** The most records to return, 1 to 1,024; 64 when not given. */
  max?: number;
}

/**
 * The options `setOption`/`getOption` take on every FFI-backed socket, by
 * name, with the type of their value. Times are in seconds except
 * `userTimeout` (milliseconds). Buffer sizes read back as the kernel holds
 * them: twice what was set (it counts its bookkeeping), capped by
 * `net.core.rmem_max`/`wmem_max` unless the process has `CAP_NET_ADMIN`.
 * Each option applies to the sockets its description names; any other
 * socket refuses it with `Deno.errors.NotSupported` before any system call.
 *
 * @example Keep-alive settings as one object
 * ```ts
 * import type { SocketOptions } from "@bsd/sockets";
 *
 * const keepAlive: Partial<SocketOptions> = {
 *   keepAlive: true,
 *   keepAliveIdle: 30,
 *   keepAliveInterval: 5,
 *   keepAliveCount: 3,
 * };
 * ```
 */
export interface SocketOptions {
  /** `SO_REUSEADDR`: bind a port whose earlier connections linger in TIME_WAIT. TCP and UDP. */
  reuseAddress: boolean;
  /**
   * `SO_REUSEPORT`: sockets of one user share a port; the kernel spreads work over them. TCP and
   * UDP.
   */
  reusePort: boolean;
  /** `SO_KEEPALIVE`: probe an idle connection. TCP. */
  keepAlive: boolean;
  /** `TCP_KEEPIDLE`: seconds idle before the first probe (1 to 32,767). TCP. */
  keepAliveIdle: number;
  /** `TCP_KEEPINTVL`: seconds between probes (1 to 32,767). TCP. */
  keepAliveInterval: number;
  /** `TCP_KEEPCNT`: unanswered probes before the connection is dropped (1 to 127). TCP. */
  keepAliveCount: number;
  /** `TCP_NODELAY`: send small writes at once (no Nagle). TCP. */
  noDelay: boolean;
  /**
   * `TCP_USER_TIMEOUT`: milliseconds sent data may stay unacknowledged before the connection is
   * dropped; 0 = the system's default. TCP.
   */
  userTimeout: number;
  /** `IP_TTL`: the time to live of outgoing IPv4 packets (1 to 255). IPv4. */
  ttl: number;
  /** `IPV6_UNICAST_HOPS`: the hop limit of outgoing IPv6 packets (1 to 255). IPv6. */
  hopLimit: number;
  /** `IP_TOS`: the type-of-service byte of outgoing IPv4 packets (0 to 255). IPv4. */
  tos: number;
  /** `IPV6_TCLASS`: the traffic class of outgoing IPv6 packets (0 to 255). IPv6. */
  trafficClass: number;
  /** `IPV6_V6ONLY`: an IPv6 socket does not also serve IPv4 (before bind). IPv6. */
  v6Only: boolean;
  /**
   * `SO_BINDTODEVICE`: send and receive through this interface only; `""` unbinds. Needs
   * `CAP_NET_RAW` to change once set. IP and packet sockets.
   */
  bindToDevice: string;
  /** `SO_RCVBUF`: the kernel's receive buffer, in bytes. Every socket. */
  receiveBufferSize: number;
  /** `SO_SNDBUF`: the kernel's send buffer, in bytes. Every socket. */
  sendBufferSize: number;
  /** `SO_BROADCAST`: allow sends to a broadcast address. IPv4 datagram and raw. */
  broadcast: boolean;
  /**
   * `IP_MULTICAST_TTL`: the time to live of outgoing IPv4 multicast (0 to 255). IPv4 datagram and
   * raw.
   */
  multicastTtl: number;
  /**
   * `IPV6_MULTICAST_HOPS`: the hop limit of outgoing IPv6 multicast (0 to 255). IPv6 datagram and
   * raw.
   */
  multicastHops: number;
  /**
   * `IP_MULTICAST_LOOP`/`IPV6_MULTICAST_LOOP`: this host's own multicast comes back. Datagram and
   * raw.
   */
  multicastLoop: boolean;
  /**
   * `IP_MULTICAST_IF`/`IPV6_MULTICAST_IF`: the index of the interface outgoing
   * multicast leaves by (0 = the routing table's choice). Datagram and raw;
   * set-only on IPv4, where the kernel reports an address, not the interface.
   */
  multicastInterface: number;
  /**
   * `SO_MARK`: the firewall mark of outgoing packets (0 to 2³²−1). Needs `CAP_NET_ADMIN`.
   * IP and packet sockets.
   */
  mark: number;
}

/**
 * The name of a socket option `setOption`/`getOption` take.
 *
 * @example A list of names
 * ```ts
 * import type { SocketOptionName } from "@bsd/sockets";
 *
 * const tcpTimers: SocketOptionName[] = ["keepAliveIdle", "userTimeout"];
 * ```
 */
export type SocketOptionName = keyof SocketOptions;

/**
 * A TCP connection's state, as `tcpi_state` names it.
 *
 * @example Test for an open connection
 * ```ts
 * import type { TcpState } from "@bsd/sockets";
 *
 * const open = (state: TcpState): boolean => state === "established";
 * ```
 */
export type TcpState =
  | "unknown"
  | "established"
  | "synSent"
  | "synReceived"
  | "finWait1"
  | "finWait2"
  | "timeWait"
  | "closed"
  | "closeWait"
  | "lastAck"
  | "listen"
  | "closing"
  | "newSynReceived"
  | "boundInactive";

/**
 * What the kernel reports of one TCP connection (`TCP_INFO`). Times are in
 * microseconds; `cwnd`/`ssthresh` in segments; `deliveryRate` and
 * `pacingRate` in bytes per second. A field this kernel does not report is
 * absent.
 *
 * @example The round-trip time in milliseconds
 * ```ts
 * import type { TcpInfo } from "@bsd/sockets";
 *
 * const rttMs = (info: TcpInfo): number => info.rtt / 1000;
 * ```
 */
export interface TcpInfo {
  /** The connection's state (`tcpi_state`). */
  state: TcpState;
  /** The congestion-avoidance state: 0 open, 1 disorder, 2 CWR, 3 recovery, 4 loss. */
  caState: number;
  /** Retransmissions of the segment now unacknowledged (`tcpi_retransmits`). */
  retransmits: number;
  /** Unanswered zero-window or keep-alive probes. */
  probes: number;
  /** The exponential backoff of the retransmission timer. */
  backoff: number;
  /** The retransmission timeout, µs. */
  rto: number;
  /** The delayed-acknowledgement timeout, µs. */
  ato: number;
  /** The largest segment sent, bytes. */
  sendMss: number;
  /** The largest segment the peer is believed to send, bytes. */
  receiveMss: number;
  /** Segments sent and not yet acknowledged. */
  unacked: number;
  /** Segments selectively acknowledged. */
  sacked: number;
  /** Segments believed lost. */
  lost: number;
  /** Segments retransmitted and not yet acknowledged. */
  retrans: number;
  /** Milliseconds since data was last sent. */
  lastDataSent: number;
  /** Milliseconds since data was last received. */
  lastDataReceived: number;
  /** Milliseconds since an acknowledgement was last received. */
  lastAckReceived: number;
  /** The path MTU, bytes. */
  pmtu: number;
  /** The receive-side slow-start threshold, bytes. */
  receiveSsthresh: number;
  /** The smoothed round-trip time, µs. */
  rtt: number;
  /** The round-trip time's mean deviation, µs. */
  rttvar: number;
  /** The slow-start threshold, segments. */
  ssthresh: number;
  /** The congestion window, segments. */
  cwnd: number;
  /** The segment size advertised to the peer, bytes. */
  advmss: number;
  /** The reordering the sender tolerates, segments. */
  reordering: number;
  /** The receiver's round-trip estimate, µs. */
  receiveRtt: number;
  /** The receive buffer space the auto-tuner aims for, bytes. */
  receiveSpace: number;
  /** Every retransmission over the connection's life. */
  totalRetrans: number;
  /** The pacing rate, bytes per second. */
  pacingRate?: bigint;
  /** The ceiling of the pacing rate, bytes per second. */
  maxPacingRate?: bigint;
  /** Bytes the peer acknowledged. */
  bytesAcked?: bigint;
  /** Bytes received in order. */
  bytesReceived?: bigint;
  /** Segments sent, retransmissions included. */
  segsOut?: number;
  /** Segments received. */
  segsIn?: number;
  /** Bytes queued and not yet sent. */
  notsentBytes?: number;
  /** The lowest round-trip time seen, µs. */
  minRtt?: number;
  /** Segments received that carried data. */
  dataSegsIn?: number;
  /** Segments sent that carried data. */
  dataSegsOut?: number;
  /** The latest delivery-rate sample, bytes per second. */
  deliveryRate?: bigint;
  /** Time spent sending data, µs. */
  busyTime?: bigint;
  /** Time the peer's receive window held sending back, µs. */
  receiveWindowLimited?: bigint;
  /** Time the send buffer held sending back, µs. */
  sendBufferLimited?: bigint;
  /** Segments delivered, retransmissions included. */
  delivered?: number;
  /** Segments delivered with an ECN congestion mark. */
  deliveredCe?: number;
  /** Bytes sent, retransmissions included. */
  bytesSent?: bigint;
  /** Bytes retransmitted. */
  bytesRetrans?: bigint;
  /** Duplicate segments the peer reported (DSACK). */
  dsackDups?: number;
  /** Reordering events seen. */
  reorderSeen?: number;
  /** Segments received out of order. */
  receiveOutOfOrder?: number;
  /** The peer's advertised receive window, bytes. */
  sendWindow?: number;
}
