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
}

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
