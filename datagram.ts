/**
 * Datagram sockets (`SOCK_DGRAM`): UDP over IPv4 and IPv6, and Unix-domain
 * datagrams on a filesystem path, an abstract name or no name at all.
 *
 * One class, two backends, chosen per socket:
 *
 * - **built-in**: Deno's own `Deno.listenDatagram`, which exists only when
 *   Deno runs with `--unstable-net`. Chosen for UDP when it is there and the
 *   options ask for nothing it lacks; for Unix datagrams only when
 *   `--allow-ffi` is not granted, because Deno's Unix datagram socket refuses
 *   a send while a receive is pending on it (`Busy`).
 * - **ffi**: the package's FFI engine (needs `--allow-ffi`): everything the
 *   built-in does, plus a socket with no name of its own (`path: ""`),
 *   kernel-level `connect()`, buffer sizes, multicast TTL and interface,
 *   turning broadcast off, Unix records of any size, descriptors
 *   (`send(data, to, { fds })`, `Message.fds`) and credentials
 *   (`passCredentials`) over Unix datagrams, {@linkcode datagramPair},
 *   `recvmmsg` batching on receive and `sendmmsg` for
 *   {@linkcode DatagramSocket.sendMany}.
 *
 * `backend: "builtin" | "ffi"` overrides the choice; `socket.backend` says
 * which one serves the socket. On the built-in backend `connect()` is emulated:
 * this class drops other senders' datagrams, the kernel does not. Both backends
 * report truncation (a record longer than `maxSize` comes back cut, with
 * `truncated: true`), refuse a UDP payload over the protocol's limit before
 * sending anything, and report an unnamed Unix sender as `from: null`.
 *
 * Permissions: `--allow-net` for the UDP address; for a Unix path,
 * `--allow-read` and `--allow-write` of the path and `--allow-net` (or
 * `--allow-net=unix:<path>`); for an abstract name, unscoped `--allow-net`.
 * On the FFI backend every destination of `send` is checked too, as Deno
 * checks its own.
 *
 * @example Echo one datagram over UDP on loopback
 * ```ts
 * import { listenDatagram } from "@bsd/sockets/datagram";
 *
 * using server = listenDatagram({ hostname: "127.0.0.1", port: 0 });
 * using client = listenDatagram({ hostname: "127.0.0.1", port: 0 });
 * await client.send(new TextEncoder().encode("ping"), server.localAddr);
 * const request = await server.receive();
 * if (request?.from) await server.send(request.data, request.from);
 * const reply = await client.receive();
 * console.log(new TextDecoder().decode(reply?.data)); // "ping"
 * ```
 *
 * @module
 */

import { type OwnedSocketFile, ownSocketFile, removeOwnSocketFile } from "./_socket_file.ts";
import type { Message, NetAddr, ReceiveInfo, ReceiveOptions, UnixAddr } from "./types.ts";
import { checkBusyPoll, PacketSocketBase } from "./_internal/packet_socket.ts";
import { FfiRecords } from "./_internal/ffi_records.ts";
import type { RecordEngine } from "./_internal/record_engine.ts";
import {
  checkBoolean,
  checkFds,
  checkObject,
  checkOptionalInteger,
  checkSignal,
} from "./_checks.ts";
import { checkBuffer } from "./ffi/buffers.ts";
import { closedError, describeAddress, errnoError, withContext } from "./ffi/errors.ts";
import {
  checkInterfaceName,
  interfaceIndex,
  noSuchInterface,
  requireInterface,
} from "./ffi/interfaces.ts";
import {
  NO_CHECK,
  peerPermit,
  type Permit,
  requireNet,
  requirePermit,
  requireUnix,
} from "./ffi/permissions.ts";
import { DestinationCache } from "./_internal/destinations.ts";
import { applyBufferSizes, checkBufferSizes } from "./_internal/buffer_sizes.ts";
import {
  checkInteger,
  checkPort,
  checkUnixPath,
  decodeInet,
  decodeUnix,
  encodeInet,
  encodeUnix,
  ipFamily,
  parseIPv4,
  parseIPv6,
} from "./ffi/sockaddr.ts";
import type { BpfProgram } from "./bpf.ts";
import { getOptionOn } from "./ffi/options.ts";
import { FdSocket, type FdSocketOptions } from "./ffi/socket.ts";
import { type DescribedFd, registerAdopter } from "./_internal/adopt.ts";
import {
  attachReusePortProgram,
  checkReceiveInfo,
  enableReceiveInfo,
  needsFfiBackend,
} from "./_internal/options.ts";

/** Which implementation serves a {@linkcode DatagramSocket}. */
export type DatagramBackend = "builtin" | "ffi";

/**
 * Options of a UDP socket for {@linkcode listenDatagram}.
 *
 * Options marked "FFI backend" make the automatic choice pick the FFI engine,
 * and are refused with `backend: "builtin"`.
 *
 * @example A UDP socket on every IPv4 interface, port 5353
 * ```ts
 * import type { UdpDatagramOptions } from "@bsd/sockets/datagram";
 *
 * const options: UdpDatagramOptions = { port: 5353, reuseAddress: true };
 * ```
 */
export interface UdpDatagramOptions {
  /**
   * The IP address to bind: an IPv4 or IPv6 literal, or `"localhost"` (which
   * means `"127.0.0.1"`). Defaults to `"0.0.0.0"`, every IPv4 interface, as
   * `Deno.listenDatagram` does. Names are not resolved.
   */
  hostname?: string;
  /** The port, 0 to 65535; `0` asks for any free port (see `localAddr`). */
  port: number;
  /** Sets `SO_REUSEADDR` before binding, so several sockets may share the port. */
  reuseAddress?: boolean;
  /**
   * Sets `SO_REUSEPORT` before binding: sockets of one user (in one process
   * or several) share the port and the kernel spreads datagrams over them by
   * a hash of their addresses, or as a program attached with
   * {@linkcode DatagramSocket.attachReusePortFilter} says. FFI backend.
   */
  reusePort?: boolean;
  /**
   * IPv6 only: `true` serves IPv6 alone, `false` IPv4 too (as mapped
   * addresses) on `"::"`; default: the system's (`net.ipv6.bindv6only`). FFI backend.
   */
  v6Only?: boolean;
  /**
   * Sends and receives through this interface only (`SO_BINDTODEVICE`, set
   * before binding), by name (`"eth0"`). FFI backend.
   */
  interface?: string;
  /**
   * Per-packet information every received {@linkcode Message} carries:
   * `"ttl"` (`ttl`, or `hopLimit` on IPv6), `"tos"` (`tos` or
   * `trafficClass`), `"destination"` (the address the datagram was sent to
   * and the interface it came in on) and `"timestamp"` (the kernel's receive
   * time). On an IPv6 socket the IPv6 forms are given, for IPv6 datagrams.
   * FFI backend.
   */
  receiveInfo?: readonly ReceiveInfo[];
  /**
   * Whether sending to a broadcast address is allowed (`SO_BROADCAST`).
   * Defaults to `true`, as Deno's built-in sets it; `false` needs the FFI backend.
   */
  broadcast?: boolean;
  /**
   * Whether multicast this socket sends is also delivered to members on this
   * host (`IP_MULTICAST_LOOP`). Defaults to `true`, the kernel's default.
   */
  multicastLoopback?: boolean;
  /**
   * The TTL (IPv6: hop limit) of multicast sent, 0 to 255; the kernel's default is 1. FFI backend.
   */
  multicastTtl?: number;
  /** The interface multicast is sent on, by name (`"lo"`) or index. FFI backend. */
  multicastInterface?: string | number;
  /**
   * The receive buffer in bytes (`SO_RCVBUF`). As root, sizes over
   * `net.core.rmem_max` are granted too (`SO_RCVBUFFORCE`). FFI backend.
   */
  receiveBufferSize?: number;
  /** The send buffer in bytes (`SO_SNDBUF`, `SO_SNDBUFFORCE` as root). FFI backend. */
  sendBufferSize?: number;
  /**
   * Microseconds a receive that finds no record keeps trying before it waits, 0
   * to 10,000; default 0. A waiting receive is woken through one of Deno's pool
   * threads, a hand-off that costs more than the reply itself on loopback; a
   * spinning one takes a reply that lands within the budget at once, but holds
   * the JS thread (no timers, no other I/O) for up to this long per receive. It
   * yields its CPU between tries, so a peer on the same CPU still runs. FFI
   * backend.
   */
  busyPoll?: number;
  /** Forces a backend; by default the built-in when it can serve the options. */
  backend?: DatagramBackend;
}

/**
 * Options of a Unix datagram socket for {@linkcode listenDatagram}.
 *
 * @example A socket with no name of its own, to send notifications from
 * ```ts
 * import type { UnixDatagramOptions } from "@bsd/sockets/datagram";
 *
 * const options: UnixDatagramOptions = { path: "" };
 * ```
 */
export interface UnixDatagramOptions {
  /**
   * A filesystem path (at most 107 bytes), an abstract name (a leading
   * `"\0"`, at most 108 bytes), or `""`: no name chosen, the kernel then
   * assigns an abstract one (autobind) so replies can reach the socket. `""`
   * and abstract names holding characters above U+007F need the FFI backend.
   * Unix sockets take the FFI backend whenever `--allow-ffi` is granted: on
   * the built-in one a send while a receive is pending is `Busy`.
   *
   * A path that exists already, even a stale socket file, is refused with
   * `AddrInUse`; the socket removes its own file when it closes.
   */
  path: string;
  /** The receive buffer in bytes (`SO_RCVBUF`, `SO_RCVBUFFORCE` as root). FFI backend. */
  receiveBufferSize?: number;
  /** The send buffer in bytes, which bounds the largest record. FFI backend. */
  sendBufferSize?: number;
  /**
   * Microseconds a receive that finds no record keeps trying before it waits, 0
   * to 10,000; default 0. A waiting receive is woken through one of Deno's pool
   * threads, a hand-off that costs more than the reply itself on loopback; a
   * spinning one takes a reply that lands within the budget at once, but holds
   * the JS thread (no timers, no other I/O) for up to this long per receive. It
   * yields its CPU between tries, so a peer on the same CPU still runs. FFI
   * backend.
   */
  busyPoll?: number;
  /**
   * `true`: the kernel attaches the sender's process id, user and group
   * (`SCM_CREDENTIALS`, which it checks) to every datagram this socket
   * receives, and every message has `credentials`. FFI backend.
   */
  passCredentials?: boolean;
  /** Forces a backend; by default the built-in when it can serve the options. */
  backend?: DatagramBackend;
}

/**
 * Options for {@linkcode DatagramSocket.send}.
 *
 * @example Pass standard output along with a datagram
 * ```ts
 * import type { DatagramSendOptions } from "@bsd/sockets/datagram";
 *
 * const options: DatagramSendOptions = { fds: [1], signal: AbortSignal.timeout(1000) };
 * ```
 */
export interface DatagramSendOptions {
  /**
   * Descriptors to pass with the datagram (`SCM_RIGHTS`), at most 253: the
   * receiver gets its own copies. Unix datagram sockets on the FFI backend only.
   */
  fds?: number[];
  /** Stops waiting for room in the receiver's queue; a send that waited no longer sends nothing. */
  signal?: AbortSignal;
}

/**
 * Options of {@linkcode listenDatagram}: UDP (`port`) or Unix (`path`).
 *
 * @example Either kind
 * ```ts
 * import type { DatagramOptions } from "@bsd/sockets/datagram";
 *
 * const udp: DatagramOptions = { hostname: "::1", port: 0 };
 * const unix: DatagramOptions = { path: "/tmp/app.sock" };
 * ```
 */
export type DatagramOptions = UdpDatagramOptions | UnixDatagramOptions;

/**
 * One record for {@linkcode DatagramSocket.sendMany}.
 *
 * @example Two records to two peers
 * ```ts
 * import type { NetAddr } from "@bsd/sockets";
 * import type { OutgoingDatagram } from "@bsd/sockets/datagram";
 *
 * const a: NetAddr = { transport: "udp", hostname: "127.0.0.1", port: 5001 };
 * const b: NetAddr = { transport: "udp", hostname: "127.0.0.1", port: 5002 };
 * const batch: OutgoingDatagram<NetAddr>[] = [
 *   { data: new Uint8Array([1]), to: a },
 *   { data: new Uint8Array([2]), to: b },
 * ];
 * ```
 */
export interface OutgoingDatagram<A> {
  /** The record's bytes. */
  data: Uint8Array;
  /** Where it goes; omitted on a connected socket: to the peer. */
  to?: A;
}

/**
 * Where {@linkcode DatagramSocket.joinMulticast} joins a group.
 *
 * @example Join on the loopback interface
 * ```ts
 * import type { MulticastOptions } from "@bsd/sockets/datagram";
 *
 * const options: MulticastOptions = { interface: "lo" };
 * ```
 */
export interface MulticastOptions {
  /**
   * The interface, by name (`"eth0"`) or index; omitted, the kernel picks it
   * from the routing table. On the built-in backend an IPv4 group takes a
   * name (looked up with `Deno.networkInterfaces()`, which needs
   * `--allow-sys`) and an IPv6 group an index.
   */
  interface?: string | number;
}

/** The largest UDP payload: 65,535 less the IP and UDP headers. */
const UDP_LIMIT = { ipv4: 65507, ipv6: 65527 } as const;
/**
 * The built-in backend receives into one byte more than the largest record
 * it reports whole, so a longer record shows as truncated, never silently cut.
 * A UDP payload fits 64 KiB; a Unix record is bounded by its sender's buffer,
 * which without CAP_NET_ADMIN is at most twice `net.core.wmem_max`. Deno
 * receives straight into the buffer, so only the pages a record fills are
 * ever committed.
 */
const BUILTIN_RECORD_MAX: Record<Transport, number> = { udp: 65536, unixgram: 8 << 20 };
/** Destinations remembered per socket, each encoded once. */
const DESTINATION_CACHE_SIZE = 256;

type Transport = "udp" | "unixgram";

/** A destination as checked once: canonical address, sockaddr, label, payload limit. */
interface Destination<A> {
  addr: A;
  /** The sockaddr bytes (FFI backend). */
  sockaddr: Uint8Array | null;
  /** The address as Deno's built-in takes it, made on first use. */
  builtin?: BuiltinAddr;
  label: string;
  limit: number;
  /** Net or path permission to send there, on the FFI backend. */
  permit: Permit;
}

// The slice of the unstable built-in API used here, typed locally so this
// module type-checks and loads whether or not the runtime has it.
interface BuiltinAddr {
  transport: string;
  hostname?: string;
  port?: number;
  path?: string | null;
}
interface BuiltinMembership {
  leave(): Promise<void>;
  setLoopback(on: boolean): Promise<void>;
  setTTL?(ttl: number): Promise<void>;
}
interface BuiltinConn {
  readonly addr: BuiltinAddr;
  receive(p?: Uint8Array): Promise<[Uint8Array, BuiltinAddr]>;
  send(p: Uint8Array, addr: BuiltinAddr): Promise<number>;
  joinMulticastV4(address: string, networkInterface: string): Promise<BuiltinMembership>;
  joinMulticastV6(address: string, networkInterface: number): Promise<BuiltinMembership>;
  close(): void;
  ref?(): void;
  unref?(): void;
}
type ListenBuiltin = (options: Record<string, unknown>) => BuiltinConn;

function builtinListen(): ListenBuiltin | undefined {
  const fn = (Deno as unknown as { listenDatagram?: ListenBuiltin }).listenDatagram;
  return typeof fn === "function" ? fn : undefined;
}

/**
 * Opens a datagram socket: UDP when `options` has a `port`, Unix datagram
 * when it has a `path`.
 *
 * The backend is Deno's built-in `Deno.listenDatagram` when the runtime has
 * it (`--unstable-net`) and the options need nothing it lacks; otherwise the
 * FFI engine (`--allow-ffi`). See {@linkcode UdpDatagramOptions} for the
 * options that need the FFI engine.
 *
 * Requires `--allow-net` for a UDP address; for a Unix path `--allow-read`,
 * `--allow-write` and `--allow-net` (`unix:<path>` suffices); for an abstract
 * name unscoped `--allow-net`; plus `--allow-ffi` on the FFI backend.
 *
 * @param options Where to bind, socket options, and optionally the backend.
 * @returns The bound socket.
 * @throws {TypeError} For a wrong shape, a hostname that is not an IP address,
 * or a NUL inside a filesystem path — before any system call.
 * @throws {RangeError} For a port outside 0–65535 or a path over 107 bytes
 * (108 for an abstract name) — before any system call.
 * @throws {Deno.errors.NotSupported} When `backend: "builtin"` is asked and
 * the runtime lacks it (no `--unstable-net`) or an option needs the FFI engine.
 * @throws {Deno.errors.NotCapable} When a permission is missing.
 * @throws {Deno.errors.NotFound} When `multicastInterface` names no
 * interface, before the socket is made.
 * @throws {Deno.errors.AddrInUse} When the address is taken (or the path exists).
 *
 * @example A Unix datagram server and an unnamed client that gets a reply
 * ```ts
 * import { listenDatagram } from "@bsd/sockets/datagram";
 *
 * const dir = Deno.makeTempDirSync();
 * using server = listenDatagram({ path: `${dir}/server.sock` });
 * using client = listenDatagram({ path: "", backend: "ffi" }); // autobound name
 * await client.send(new TextEncoder().encode("hello"), server.localAddr);
 * const request = await server.receive();
 * await server.send(new TextEncoder().encode("hi"), request!.from!);
 * const reply = await client.receive();
 * console.log(new TextDecoder().decode(reply!.data)); // "hi"
 * ```
 */
export function listenDatagram(options: UdpDatagramOptions): DatagramSocket<NetAddr>;
/**
 * Opens a Unix datagram socket on a path, an abstract name, or (`path: ""`)
 * a name the kernel assigns. See the UDP overload for backends and permissions.
 *
 * @param options The path, socket options, and optionally the backend.
 * @returns The bound socket.
 * @throws {RangeError} For a path over 107 bytes (108 for an abstract name).
 * @throws {Deno.errors.AddrInUse} When something exists at the path already.
 *
 * @example A socket on a path
 * ```ts
 * import { listenDatagram } from "@bsd/sockets/datagram";
 *
 * using sock = listenDatagram({ path: `${Deno.makeTempDirSync()}/app.sock` });
 * console.log(sock.localAddr.transport); // "unixgram"
 * ```
 */
export function listenDatagram(options: UnixDatagramOptions): DatagramSocket<UnixAddr>;
/**
 * Opens a UDP or Unix datagram socket, decided by the options at run time.
 *
 * @param options `port` for UDP, `path` for Unix.
 * @returns The bound socket.
 * @throws {TypeError} When both or neither of `port` and `path` are given.
 *
 * @example Either kind
 * ```ts
 * import { type DatagramOptions, listenDatagram } from "@bsd/sockets/datagram";
 *
 * const options: DatagramOptions = { hostname: "127.0.0.1", port: 0 };
 * using sock = listenDatagram(options);
 * console.log(sock.localAddr.transport); // "udp"
 * ```
 */
export function listenDatagram(options: DatagramOptions): DatagramSocket;
export function listenDatagram(options: DatagramOptions): DatagramSocket {
  checkObject("listenDatagram: options", options);
  const hasPath = "path" in options && options.path !== undefined;
  const hasPort = "port" in options && options.port !== undefined;
  if (hasPath === hasPort) {
    throw new TypeError(
      "listenDatagram: give either port (UDP) or path (Unix datagram), " +
        (hasPath ? "not both" : "neither was given"),
    );
  }
  return hasPath
    ? openUnix(options as UnixDatagramOptions)
    : openUdp(options as UdpDatagramOptions);
}

/**
 * A pair of connected Unix datagram sockets (`socketpair(AF_UNIX,
 * SOCK_DGRAM)`): what one sends, the other receives, with descriptors and
 * all. Neither end has a name; each end's `remoteAddr` is the other (`path:
 * ""`), so `write(p)` and `send(data)` need no destination.
 *
 * Unlike a seqpacket pair, an end is not told when the other closes (Linux
 * gives a datagram socket no end of stream): its receive keeps waiting,
 * while a send to the closed end fails: `ConnectionRefused` the first time,
 * `NotConnected` after that (the kernel has dropped the connection).
 *
 * Requires `--allow-ffi` only: no name is bound, none is reached.
 *
 * @returns The two ends, on the FFI backend.
 * @throws {Deno.errors.NotCapable} Without `--allow-ffi`.
 *
 * @example Records both ways
 * ```ts
 * import { datagramPair } from "@bsd/sockets/datagram";
 *
 * const [left, right] = datagramPair();
 * await left.write(new Uint8Array([1]));
 * await right.write(new Uint8Array([2, 2]));
 * console.log((await right.receive())?.data); // Uint8Array(1) [ 1 ]
 * console.log((await left.receive())?.data); // Uint8Array(2) [ 2, 2 ]
 * left.close();
 * right.close();
 * ```
 */
export function datagramPair(): [DatagramSocket<UnixAddr>, DatagramSocket<UnixAddr>] {
  const [a, b] = FdSocket.pair<UnixAddr>("datagram", unixEngineOptions("", false));
  const unnamed = (): UnixAddr => ({ transport: "unixgram", path: "" });
  return [
    makeSocket<UnixAddr>(a, unnamed(), null, null, unnamed()),
    makeSocket<UnixAddr>(b, unnamed(), null, null, unnamed()),
  ];
}

function checkBackend(backend: unknown): DatagramBackend | undefined {
  if (backend === undefined || backend === "builtin" || backend === "ffi") return backend;
  throw new TypeError(
    `listenDatagram: backend must be "builtin" or "ffi", got ${JSON.stringify(backend)}`,
  );
}

/**
 * Picks the backend. `lacking` names what the options ask that the built-in
 * cannot give, first reason first; `preferFfi` picks the FFI engine whenever
 * `--allow-ffi` is granted, for a kind of socket the built-in serves poorly.
 */
function chooseBackend(
  asked: DatagramBackend | undefined,
  lacking: string[],
  preferFfi = false,
): DatagramBackend {
  if (asked === "ffi") return "ffi";
  const builtin = builtinListen() !== undefined;
  if (asked === "builtin") {
    if (!builtin) {
      throw new Deno.errors.NotSupported(
        "listenDatagram: the built-in backend is Deno.listenDatagram, which needs the " +
          '--unstable-net flag; run with it, or use backend: "ffi"',
      );
    }
    if (lacking.length > 0) {
      throw new Deno.errors.NotSupported(
        `listenDatagram: the built-in backend cannot give ${lacking[0]}; use backend: "ffi"`,
      );
    }
    return "builtin";
  }
  if (preferFfi && Deno.permissions.querySync({ name: "ffi" }).state === "granted") return "ffi";
  return builtin && lacking.length === 0 ? "builtin" : "ffi";
}

function openUdp(o: UdpDatagramOptions): DatagramSocket<NetAddr> {
  const asked = checkBackend(o.backend);
  const hostname = o.hostname ?? "0.0.0.0";
  const family = ipFamily(hostname);
  const port = checkPort(o.port, "listenDatagram");
  const reuseAddress = checkBoolean("listenDatagram: reuseAddress", o.reuseAddress) ?? false;
  const broadcast = checkBoolean("listenDatagram: broadcast", o.broadcast) ?? true;
  const loopback = checkBoolean("listenDatagram: multicastLoopback", o.multicastLoopback) ?? true;
  const ttl = checkOptionalInteger("multicastTtl", o.multicastTtl, 0, 255);
  const multicastInterface = o.multicastInterface === undefined
    ? undefined
    : checkInterface("listenDatagram: multicastInterface", o.multicastInterface);
  const bufferSizes = checkBufferSizes("listenDatagram", o);
  const busyPoll = checkBusyPoll("listenDatagram", o.busyPoll);
  const reusePort = checkBoolean("listenDatagram: reusePort", o.reusePort);
  const v6Only = checkBoolean("listenDatagram: v6Only", o.v6Only);
  if (v6Only !== undefined && family !== "ipv6") {
    throw new TypeError(`listenDatagram: v6Only applies to an IPv6 hostname, not ${hostname}`);
  }
  const device = o.interface === undefined
    ? undefined
    : checkInterfaceName(o.interface, "listenDatagram: interface");
  const info = checkReceiveInfo("listenDatagram: receiveInfo", o.receiveInfo);
  // What Deno.listenDatagram cannot do, in the order an error should name it.
  const lacking: string[] = [];
  if (info !== undefined) lacking.push("receiveInfo");
  if (reusePort !== undefined) lacking.push("reusePort");
  if (v6Only !== undefined) lacking.push("v6Only");
  if (device !== undefined) lacking.push("interface");
  if (!broadcast) lacking.push("broadcast: false (it always allows broadcast)");
  if (ttl !== undefined) lacking.push("multicastTtl");
  if (multicastInterface !== undefined) lacking.push("multicastInterface");
  if (bufferSizes.receive !== undefined) lacking.push("receiveBufferSize");
  if (bufferSizes.send !== undefined) lacking.push("sendBufferSize");
  if (busyPoll) lacking.push("busyPoll");
  if (/%[^0-9]/.test(hostname)) lacking.push("an IPv6 zone given by interface name");
  const backend = chooseBackend(asked, lacking);
  const label = describeAddress({ hostname, port });
  requireNet(hostname, port);

  if (backend === "builtin") {
    const sockaddr = encodeInet(hostname, port);
    const canonical = decodeInet(sockaddr, sockaddr.length, "udp");
    let conn: BuiltinConn;
    try {
      conn = builtinListen()!({
        transport: "udp",
        hostname: canonical.hostname,
        port,
        reuseAddress,
        loopback,
      });
    } catch (err) {
      throw withContext(err, "bind", label);
    }
    const local = fromBuiltin(conn.addr, "udp") as NetAddr;
    return makeSocket<NetAddr>(
      new BuiltinEngine<NetAddr>(conn, "udp", describeAddress(local)),
      local,
      family,
      null,
    );
  }

  const address = encodeInet(hostname, port, interfaceIndex);
  const multicastIndex = multicastInterface === undefined
    ? undefined
    : resolveInterface(multicastInterface, `listenDatagram ${label}`);
  const sock = FdSocket.open<NetAddr>(family, "datagram", 0, {
    label,
    decode: (name, length) => decodeInet(name, length, "udp"),
  });
  try {
    if (reuseAddress) sock.setOption("reuseAddress", true);
    if (reusePort) sock.setOption("reusePort", true);
    if (v6Only !== undefined) sock.setOption("ipv6Only", v6Only);
    if (device !== undefined) sock.setOption("bindToDevice", device);
    if (info !== undefined) enableReceiveInfo(sock, family, info);
    sock.setOption("broadcast", broadcast);
    setMulticastLoop(sock, family, loopback);
    if (ttl !== undefined) setMulticastTtl(sock, family, ttl);
    if (multicastIndex !== undefined) {
      if (family === "ipv4") sock.setOption("multicastInterface", multicastIndex);
      else sock.setOption("ipv6MulticastInterface", multicastIndex);
    }
    applyBufferSizes(sock, bufferSizes);
    if (busyPoll !== undefined) sock.setBusyPoll(busyPoll);
    sock.bind(address, label);
    const local = sock.localAddress((name, length) => decodeInet(name, length, "udp"));
    sock.label = describeAddress(local);
    return makeSocket<NetAddr>(sock, local, family, null);
  } catch (err) {
    sock.close();
    throw err;
  }
}

function openUnix(o: UnixDatagramOptions): DatagramSocket<UnixAddr> {
  const asked = checkBackend(o.backend);
  const path = o.path;
  const address = encodeUnix(path, true, "listenDatagram");
  const bufferSizes = checkBufferSizes("listenDatagram", o);
  const busyPoll = checkBusyPoll("listenDatagram", o.busyPoll);
  const passCredentials = checkBoolean("listenDatagram: passCredentials", o.passCredentials);
  const lacking: string[] = [];
  if (path === "") lacking.push('path: "" (a socket with a kernel-assigned name)');
  // Deno's built-in writes names as UTF-8; an abstract name is a byte string.
  // deno-lint-ignore no-control-regex
  if (path.startsWith("\0") && /[^\x00-\x7f]/.test(path)) {
    lacking.push("an abstract name with characters above U+007F");
  }
  if (bufferSizes.receive !== undefined) lacking.push("receiveBufferSize");
  if (bufferSizes.send !== undefined) lacking.push("sendBufferSize");
  if (busyPoll) lacking.push("busyPoll");
  if (passCredentials) lacking.push("passCredentials");
  // Deno's built-in Unix datagram socket refuses a send while a receive is
  // pending ("Busy"), which breaks the usual receive-and-reply patterns.
  const backend = chooseBackend(asked, lacking, true);
  const label = describeAddress({ path });
  requireUnix(path);

  let socket: DatagramSocket<UnixAddr>;
  if (backend === "builtin") {
    let conn: BuiltinConn;
    try {
      conn = builtinListen()!({ transport: "unixpacket", path });
    } catch (err) {
      throw withContext(err, "bind", label);
    }
    const local = { transport: "unixgram", path } satisfies UnixAddr;
    socket = makeSocket<UnixAddr>(
      new BuiltinEngine<UnixAddr>(conn, "unixgram", label),
      local,
      null,
      ownSocketFile(path),
    );
  } else {
    const sock = FdSocket.open<UnixAddr>(
      "unix",
      "datagram",
      0,
      unixEngineOptions(
        label,
        passCredentials ?? false,
      ),
    );
    try {
      if (passCredentials) sock.setOption("passCredentials", true);
      applyBufferSizes(sock, bufferSizes);
      if (busyPoll !== undefined) sock.setBusyPoll(busyPoll);
      sock.bind(address, label);
      const local = path === ""
        ? sock.localAddress((name, length) => decodeUnix(name, length, "unixgram"))
        : { transport: "unixgram", path } satisfies UnixAddr;
      sock.label = describeAddress(local);
      socket = makeSocket<UnixAddr>(sock, local, null, ownSocketFile(path));
    } catch (err) {
      sock.close();
      throw err;
    }
  }
  return socket;
}

/**
 * How the engine serves a Unix datagram socket: senders decoded, descriptors
 * received (so they reach the caller instead of being closed by the kernel),
 * and credentials when the socket asked for them.
 */
function unixEngineOptions(label: string, credentials: boolean): FdSocketOptions<UnixAddr> {
  return {
    label,
    decode: decodeSender,
    unix: true,
    control: credentials ? "fds+credentials" : "fds",
  };
}

/** The fromFd part of this module: Unix datagram and UDP descriptors. */
registerAdopter({
  matches: (d) =>
    d.kind === "datagram" &&
    (d.family === "unix" ||
      ((d.family === "ipv4" || d.family === "ipv6") && d.protocol === UDP_PROTOCOL)),
  adopt: (d) => d.family === "unix" ? adoptUnix(d) : adoptUdp(d),
});

/** IPPROTO_UDP, as `SO_PROTOCOL` reports a UDP socket. */
const UDP_PROTOCOL = 17;

function adoptUnix(d: DescribedFd): DatagramSocket<UnixAddr> {
  const decode = (name: Uint8Array, length: number) => decodeUnix(name, length, "unixgram");
  const local = FdSocket.nameOf(d.fd, "getsockname", decode)!;
  const peer = FdSocket.nameOf(d.fd, "getpeername", decode);
  requireUnix(local.path);
  if (peer !== null) requireUnix(peer.path);
  const label = describeAddress(local);
  // Read before take(): nothing after it may fail and leave the fd changed.
  const passCredentials = getOptionOn(d.fd, label, "passCredentials");
  d.take();
  const sock = new FdSocket<UnixAddr>(d.fd, unixEngineOptions(label, false));
  if (passCredentials) sock.setControl("fds+credentials");
  return makeSocket<UnixAddr>(sock, local, null, null, peer);
}

function adoptUdp(d: DescribedFd): DatagramSocket<NetAddr> {
  const decode = (name: Uint8Array, length: number) => decodeInet(name, length, "udp");
  const local = FdSocket.nameOf(d.fd, "getsockname", decode)!;
  const peer = FdSocket.nameOf(d.fd, "getpeername", decode);
  requireNet(local.hostname, local.port);
  if (peer !== null) requireNet(peer.hostname, peer.port);
  d.take();
  const sock = new FdSocket<NetAddr>(d.fd, { label: describeAddress(local), decode });
  return makeSocket<NetAddr>(sock, local, d.family as "ipv4" | "ipv6", null, peer);
}

/** The sender of a Unix datagram; `null` when it has no name. */
function decodeSender(name: Uint8Array, length: number): UnixAddr | null {
  const addr = decodeUnix(name, length, "unixgram");
  return addr.path === "" ? null : addr;
}

function checkInterface(what: string, value: unknown): string | number {
  if (typeof value === "number") return checkInteger(what, value, 0, 0x7fffffff);
  if (typeof value === "string" && value !== "") return value;
  throw new TypeError(`${what} must be an interface name or index, got ${JSON.stringify(value)}`);
}

/** The interface's index; 0 stays 0, the kernel's choice. */
function resolveInterface(value: string | number, what: string): number {
  return value === 0 ? 0 : requireInterface(value, what);
}

function setMulticastLoop(sock: FdSocket<NetAddr>, family: "ipv4" | "ipv6", on: boolean): void {
  if (family === "ipv4") sock.setOption("multicastLoop", on);
  else sock.setOption("ipv6MulticastLoop", on);
}

function setMulticastTtl(sock: FdSocket<NetAddr>, family: "ipv4" | "ipv6", ttl: number): void {
  if (family === "ipv4") sock.setOption("multicastTtl", ttl);
  else sock.setOption("ipv6MulticastHops", ttl);
}

/** Converts an address from Deno's built-in to this package's shape; `null` for no name. */
function fromBuiltin(addr: BuiltinAddr, transport: Transport): NetAddr | UnixAddr | null {
  if (transport === "udp") {
    return { transport: "udp", hostname: addr.hostname!, port: addr.port! };
  }
  const path = addr.path ?? "";
  return path === "" ? null : { transport: "unixgram", path };
}

function sameAddress(a: NetAddr | UnixAddr | null, b: NetAddr | UnixAddr): boolean {
  if (a === null) return false;
  if ("path" in a) return "path" in b && a.path === b.path;
  return "port" in b && a.port === b.port && a.hostname === b.hostname;
}

/** How listenDatagram reaches the private constructor. */
let makeSocket: <A extends NetAddr | UnixAddr>(
  engine: FdSocket<A> | BuiltinEngine<A>,
  local: A,
  family: "ipv4" | "ipv6" | null,
  owned: OwnedSocketFile | null,
  peer?: A | null,
) => DatagramSocket<A>;

/**
 * A datagram socket: UDP or Unix datagram, served by Deno's built-in or by
 * the FFI engine (see {@linkcode DatagramSocket.backend}).
 *
 * Each `send` is one record, never split; a receive returns one record, cut
 * to `maxSize` with `truncated: true` when it was longer. Get one from
 * {@linkcode listenDatagram}.
 *
 * @typeParam A `NetAddr` for UDP, `UnixAddr` for Unix datagrams.
 *
 * @example Iterate over what arrives until the socket closes
 * ```ts
 * import { listenDatagram } from "@bsd/sockets/datagram";
 *
 * using sock = listenDatagram({ hostname: "127.0.0.1", port: 0 });
 * setTimeout(() => sock.close(), 10);
 * for await (const message of sock) console.log(message.data.length, message.from);
 * ```
 */
export class DatagramSocket<A extends NetAddr | UnixAddr = NetAddr | UnixAddr>
  extends PacketSocketBase<A> {
  readonly #fd: FdSocket<A> | null;
  readonly #builtin: BuiltinEngine<A> | null;
  readonly #local: A;
  readonly #label: string;
  readonly #sendWhat: string;
  readonly #transport: Transport;
  readonly #family: "ipv4" | "ipv6" | null;
  readonly #owned: OwnedSocketFile | null;
  readonly #destinations: DestinationCache<Destination<A>>;
  #peer: Destination<A> | null = null;
  #closed = false;

  static {
    makeSocket = (engine, local, family, owned, peer) =>
      new DatagramSocket(engine as never, local, family, owned, peer ?? null);
  }

  private constructor(
    engine: FdSocket<A> | BuiltinEngine<A>,
    local: A,
    family: "ipv4" | "ipv6" | null,
    owned: OwnedSocketFile | null,
    peer: A | null,
  ) {
    super(
      engine instanceof FdSocket
        ? new FfiRecords(engine, { family: family ?? "unix", kind: "datagram" })
        : new BuiltinRecords(engine, describeAddress(local)),
    );
    this.#fd = engine instanceof FdSocket ? engine : null;
    this.#builtin = engine instanceof BuiltinEngine ? engine : null;
    this.#local = local;
    this.#label = describeAddress(local);
    this.#sendWhat = `send ${this.#label}`;
    this.#transport = "path" in local ? "unixgram" : "udp";
    this.#family = family;
    this.#owned = owned;
    // A peer the kernel already holds (a socketpair end, an adopted
    // descriptor): sends without `to` go to it, as after connect().
    if (peer !== null) {
      this.#peer = {
        addr: peer,
        sockaddr: null,
        label: describeAddress(peer),
        limit: "path" in peer ? Infinity : UDP_LIMIT[family ?? "ipv4"],
        permit: this.#permitFor(peer),
      };
    }
    this.#destinations = new DestinationCache<Destination<A>>({
      key: (to) => this.#key(to as A),
      make: (to) => this.#makeDestination(to as A),
    }, DESTINATION_CACHE_SIZE);
  }

  /** Which implementation serves this socket: `"builtin"` or `"ffi"`. */
  override get backend(): DatagramBackend {
    return this.#fd ? "ffi" : "builtin";
  }

  /**
   * The socket's descriptor on the FFI backend, `null` on the built-in one
   * and after `close()`. The socket keeps owning it: pass it on
   * (`send(data, to, { fds: [sock.fd] })`), never close it yourself.
   *
   * @example Look at the descriptor
   * ```ts
   * import { listenDatagram } from "@bsd/sockets/datagram";
   *
   * using sock = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
   * console.log(typeof sock.fd); // "number"
   * ```
   */
  override get fd(): number | null {
    return this.#fd !== null && !this.#fd.closed ? this.#fd.fd : null;
  }

  /**
   * FFI backend, TCP and UDP: steers the port's reuse-port group with a
   * classic BPF program (`SO_ATTACH_REUSEPORT_CBPF`). The kernel runs it on
   * each datagram and hands that to the group member whose index (in the order
   * the members bound, from 0) the program returns; an index past the group
   * falls back to the hash. For UDP the program sees the payload
   * (`BPF.NET_OFF + n` reaches the IP and UDP headers); for TCP, the SYN's
   * headers through `BPF.NET_OFF`. One program serves the whole group.
   *
   * @param program The program, checked with `validateFilter` first.
   * @throws {TypeError} For a program of the wrong shape.
   * @throws {RangeError} For an invalid program.
   * @throws {Deno.errors.NotSupported} On the built-in backend or a Unix socket.
   * @throws {Deno.errors.BadResource} Once closed.
   *
   * @example Even source ports to member 0, odd to member 1
   * ```ts ignore
   * import { BPF, bpfStatement } from "@bsd/sockets/raw";
   * import { listenDatagram } from "@bsd/sockets/datagram";
   *
   * using a = listenDatagram({ hostname: "127.0.0.1", port: 5300, reusePort: true });
   * using b = listenDatagram({ hostname: "127.0.0.1", port: 5300, reusePort: true });
   * a.attachReusePortFilter([
   *   bpfStatement(BPF.LD | BPF.H | BPF.ABS, BPF.NET_OFF + 20), // IPv4 without options
   *   bpfStatement(BPF.ALU | BPF.AND | BPF.K, 1),
   *   bpfStatement(BPF.RET | BPF.A, 0),
   * ]);
   * ```
   */
  attachReusePortFilter(program: BpfProgram): void {
    attachReusePortProgram(
      this.#fd,
      { family: this.#family ?? "unix", kind: "datagram" },
      this.#label,
      program,
    );
  }

  /**
   * The address this socket is bound to: with the real port when `port: 0`
   * was asked, and the kernel-assigned abstract name when `path: ""` was.
   */
  get localAddr(): A {
    return this.#local;
  }

  /** The peer set by {@linkcode DatagramSocket.connect}, or `null`. */
  get remoteAddr(): A | null {
    return this.#peer?.addr ?? null;
  }

  /**
   * Sends `data` as one datagram to `to`, or to the connected peer when `to`
   * is omitted. Waits while the receiver's queue is full (Unix) or the send
   * buffer is; never sends part of a record.
   *
   * Each send needs `--allow-net` (or the Unix path permissions) for its
   * destination, the connected peer's when `to` is omitted; Deno's built-in
   * checks every send itself, and the FFI backend checks a destination on
   * its first send and again after any `Deno.permissions.revoke`, so on both
   * a revoked permission takes effect on the next send.
   *
   * @param data The record, 0 bytes or more. A UDP record may be at most
   * 65,507 bytes to an IPv4 address and 65,527 to an IPv6 one.
   * @param to The destination; omitted (or `undefined`) on a connected socket.
   * @param options `fds` passes descriptors with the datagram (Unix, FFI
   * backend); `signal` stops waiting for room.
   * @returns The number of bytes sent: `data.length`.
   * @throws {RangeError} When a UDP record is over the limit (nothing is
   * sent), or for more than 253 descriptors or a negative one.
   * @throws {TypeError} For a buffer that is not a fixed, unshared Uint8Array,
   * a destination or options of the wrong shape, or `fds` on a UDP socket.
   * @throws {Deno.errors.NotSupported} For `fds` on the built-in backend.
   * @throws {Deno.errors.NotConnected} When `to` is omitted and the socket is
   * not connected: the answer every socket type gives a send with no destination.
   * @throws {Deno.errors.NotCapable} Without the permission for the destination.
   * @throws {Deno.errors.BadResource} When the socket is or gets closed, or
   * a descriptor in `fds` is not open.
   * @throws {Deno.errors.ConnectionRefused} (Unix) When the peer of a
   * connected socket (the other end of a {@linkcode datagramPair}) has closed.
   *
   * @example Send to a peer
   * ```ts
   * import { listenDatagram } from "@bsd/sockets/datagram";
   *
   * using a = listenDatagram({ hostname: "127.0.0.1", port: 0 });
   * using b = listenDatagram({ hostname: "127.0.0.1", port: 0 });
   * const n = await a.send(new Uint8Array([1, 2, 3]), b.localAddr);
   * console.log(n); // 3
   * ```
   *
   * @example Pass a descriptor to the other end of a pair
   * ```ts
   * import { datagramPair } from "@bsd/sockets/datagram";
   * import { closeFds } from "@bsd/sockets/seqpacket";
   *
   * const [a, b] = datagramPair();
   * await a.send(new TextEncoder().encode("my stdout"), undefined, { fds: [1] });
   * const message = await b.receive();
   * console.log(message?.fds?.length); // 1: a new descriptor for the same stdout
   * closeFds(message?.fds ?? []);
   * a.close();
   * b.close();
   * ```
   */
  send(data: Uint8Array, to?: A, options?: DatagramSendOptions): Promise<number> {
    let destination: Destination<A>;
    let checked: { fds?: number[]; signal?: AbortSignal } | undefined;
    try {
      checkBuffer(data, this.#sendWhat);
      destination = to === undefined ? this.#connected("send") : this.#destination(to, "send");
      if (data.length > destination.limit) throw this.#tooLong(data.length, destination);
      if (options !== undefined) checked = this.#sendOptions(options);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.#fd) {
      const sockaddr = to === undefined ? null : destination.sockaddr;
      return this.#fd.send(data, sockaddr, {
        label: destination.label,
        fds: checked?.fds,
        signal: checked?.signal,
      });
    }
    return this.#builtin!.send(data, destination, checked?.signal);
  }

  /** Checks send's options before any system call. */
  #sendOptions(options: DatagramSendOptions): { fds?: number[]; signal?: AbortSignal } {
    checkObject(`${this.#sendWhat}: options`, options);
    const fds = checkFds(this.#sendWhat, options.fds);
    const signal = checkSignal(this.#sendWhat, options.signal);
    if (fds !== undefined && fds.length > 0) {
      if (this.#transport === "udp") {
        throw new TypeError(`${this.#sendWhat}: fds: only Unix sockets carry descriptors`);
      }
      if (this.#fd === null) {
        throw new Deno.errors.NotSupported(
          `${this.#sendWhat}: the built-in backend cannot pass descriptors; ` +
            `open the socket with backend: "ffi"`,
        );
      }
    }
    return { fds, signal };
  }

  /**
   * Sends several datagrams, in order. On the FFI backend they go in batches
   * of up to 64 per `sendmmsg` call; on the built-in, one send each.
   *
   * Every record is checked before the first is sent, so a record over the
   * UDP limit or a bad destination sends nothing.
   *
   * @param records The datagrams and their destinations.
   * @param options `signal` stops waiting for room; records already sent stay sent.
   * @returns The number of records sent: `records.length`.
   * @throws {RangeError} When a UDP record is over the limit: nothing is sent.
   * @throws {TypeError} For a wrong shape, as {@linkcode DatagramSocket.send}.
   * @throws {Deno.errors.NotConnected} When a record has no `to` and the socket is not connected.
   * @throws {Deno.errors.BadResource} When the socket is or gets closed.
   *
   * @example Send a burst
   * ```ts
   * import { listenDatagram } from "@bsd/sockets/datagram";
   *
   * using a = listenDatagram({ hostname: "127.0.0.1", port: 0 });
   * using b = listenDatagram({ hostname: "127.0.0.1", port: 0 });
   * const burst = Array.from({ length: 10 }, (_, i) => ({
   *   data: new Uint8Array([i]),
   *   to: b.localAddr,
   * }));
   * console.log(await a.sendMany(burst)); // 10
   * ```
   */
  async sendMany(
    records: readonly OutgoingDatagram<A>[],
    options?: { signal?: AbortSignal },
  ): Promise<number> {
    if (!Array.isArray(records)) {
      throw new TypeError(`sendMany ${this.#label}: records must be an array`);
    }
    const signal = checkSignal(`sendMany ${this.#label}`, options?.signal);
    const checked: { data: Uint8Array; to: Uint8Array | null; destination: Destination<A> }[] = [];
    for (const record of records) {
      if (typeof record !== "object" || record === null) {
        throw new TypeError(`sendMany ${this.#label}: each record must be { data, to? }`);
      }
      checkBuffer(record.data, `sendMany ${this.#label}`);
      const destination = record.to === undefined
        ? this.#connected("sendMany")
        : this.#destination(record.to, "sendMany");
      if (record.data.length > destination.limit) {
        throw this.#tooLong(record.data.length, destination);
      }
      checked.push({
        data: record.data,
        to: record.to === undefined ? null : destination.sockaddr,
        destination,
      });
    }
    if (this.#fd) {
      if (checked.length === 0) return 0;
      return await this.#fd.sendMany(checked, signal);
    }
    for (const { data, destination } of checked) {
      signal?.throwIfAborted();
      await this.#builtin!.send(data, destination);
    }
    return checked.length;
  }

  /**
   * Receives one datagram. Resolves `null` once the socket is closed.
   *
   * A record longer than `maxSize` (default 65,536) comes back cut, with
   * `truncated: true`, and only then, whatever earlier receives asked for.
   * The built-in backend carries Unix records up to 8 MiB (longer ones come
   * back cut, with `truncated: true`); the FFI backend carries any record a
   * sender without `CAP_NET_ADMIN` can send. `from` is the sender, `null` for
   * a Unix sender with no name; on a connected socket it is the peer.
   *
   * @param options `signal` aborts the wait (rejecting with its reason; no
   * record is consumed), `maxSize` caps the bytes returned.
   * @returns The message, or `null` after `close()`.
   * @throws {RangeError} For a `maxSize` out of range.
   * @throws {Deno.errors.ConnectionRefused} On a connected FFI socket, after
   * the peer's host answered an earlier datagram with "port unreachable".
   *
   * @example Receive with a deadline
   * ```ts
   * import { listenDatagram } from "@bsd/sockets/datagram";
   *
   * using sock = listenDatagram({ hostname: "127.0.0.1", port: 0 });
   * try {
   *   await sock.receive({ signal: AbortSignal.timeout(10), maxSize: 1500 });
   * } catch (err) {
   *   console.log((err as Error).name); // "TimeoutError"
   * }
   * ```
   */
  override receive(options?: ReceiveOptions): Promise<Message<A> | null> {
    return super.receive(options);
  }

  /**
   * Sends `p` as one datagram to the connected peer.
   *
   * @param p The record.
   * @returns The number of bytes sent.
   * @throws {Deno.errors.NotConnected} When the socket is not connected:
   * call {@linkcode DatagramSocket.connect} first, or use `send(data, to)`.
   * @throws {Deno.errors.NotCapable} When the permission for the peer was revoked.
   * @throws {RangeError} When a UDP record is over the limit.
   *
   * @example Write to the connected peer
   * ```ts
   * import { listenDatagram } from "@bsd/sockets/datagram";
   *
   * using a = listenDatagram({ hostname: "127.0.0.1", port: 0 });
   * using b = listenDatagram({ hostname: "127.0.0.1", port: 0 });
   * await a.connect(b.localAddr);
   * await a.write(new TextEncoder().encode("hi"));
   * console.log((await b.receive())?.data.length); // 2
   * ```
   */
  override write(p: Uint8Array): Promise<number> {
    if (this.#peer === null && !this.#closed) {
      return Promise.reject(this.#notConnected("write"));
    }
    return this.send(p);
  }

  /**
   * Sets the default destination: afterwards `send(data)` and `write(p)` go
   * to `to`, and only datagrams from `to` are received. Calling it again
   * switches peers.
   *
   * On the FFI backend this is the kernel's `connect`: datagrams from others
   * are dropped by the kernel (a Unix sender other than the peer gets
   * `PermissionDenied`), and a UDP peer's "port unreachable" comes back as
   * `ConnectionRefused` on the next send or receive. On the built-in backend
   * this class drops other senders' datagrams as they arrive. Either way,
   * datagrams queued before the call may still be delivered.
   *
   * @param to The peer.
   * @throws {TypeError} For a destination of the wrong shape.
   * @throws {Deno.errors.ConnectionRefused} (FFI, Unix) When nothing is bound at the path.
   * @throws {Deno.errors.NotFound} (FFI, Unix) When the path does not exist.
   *
   * @example Talk to one peer only
   * ```ts
   * import { listenDatagram } from "@bsd/sockets/datagram";
   *
   * using a = listenDatagram({ hostname: "127.0.0.1", port: 0 });
   * using b = listenDatagram({ hostname: "127.0.0.1", port: 0 });
   * await a.connect(b.localAddr);
   * console.log(a.remoteAddr?.port === b.localAddr.port); // true
   * ```
   */
  async connect(to: A): Promise<void> {
    const destination = this.#destination(to, "connect");
    if (this.#fd) {
      await this.#fd.connect(destination.sockaddr!, destination.label);
    } else {
      if (this.#closed) throw closedError("connect", destination.label);
      this.#builtin!.peer = destination.addr;
    }
    this.#peer = destination;
  }

  /**
   * Joins a multicast group, so datagrams sent to it (on this socket's port)
   * are received. UDP only.
   *
   * @param group An IPv4 (`224.0.0.0/4`) or IPv6 (`ff00::/8`) group of this socket's family.
   * @param options The interface to join on; by default the kernel's choice.
   * @throws {TypeError} When `group` is not a multicast address of this socket's family.
   * @throws {Deno.errors.NotFound} When no interface has the given name or
   * index (or, on the built-in backend, the named one has no IPv4 address),
   * before any system call.
   * @throws {Deno.errors.NotSupported} On a Unix socket, or for an interface
   * form the built-in backend cannot take (see {@linkcode MulticastOptions}).
   *
   * @example Join a group on the loopback interface
   * ```ts ignore
   * import { listenDatagram } from "@bsd/sockets/datagram";
   *
   * using sock = listenDatagram({ port: 5007, reuseAddress: true });
   * await sock.joinMulticast("239.255.0.1", { interface: "lo" });
   * ```
   */
  async joinMulticast(group: string, options?: MulticastOptions): Promise<void> {
    await this.#membership("joinMulticast", group, options, true);
  }

  /**
   * Leaves a group joined with {@linkcode DatagramSocket.joinMulticast}, on
   * the same interface.
   *
   * @param group The group.
   * @param options The interface it was joined on.
   * @throws {Deno.errors.NotFound} (built-in backend) When the group was not joined here.
   * @throws {Deno.errors.AddrNotAvailable} (FFI backend) When the group was not joined.
   *
   * @example Join, then leave
   * ```ts ignore
   * import { listenDatagram } from "@bsd/sockets/datagram";
   *
   * using sock = listenDatagram({ port: 5007, reuseAddress: true });
   * await sock.joinMulticast("239.255.0.1", { interface: "lo" });
   * await sock.leaveMulticast("239.255.0.1", { interface: "lo" });
   * ```
   */
  async leaveMulticast(group: string, options?: MulticastOptions): Promise<void> {
    await this.#membership("leaveMulticast", group, options, false);
  }

  async #membership(
    call: string,
    group: string,
    options: MulticastOptions | undefined,
    join: boolean,
  ): Promise<void> {
    const family = this.#udpFamily(call);
    const what = `${call} ${JSON.stringify(String(group))}`;
    const bytes = multicastGroup(group, family, what);
    if (options !== undefined) checkObject(`${what}: options`, options);
    const iface = options?.interface === undefined
      ? undefined
      : checkInterface(`${what}: interface`, options.interface);
    if (this.#closed) throw closedError(call, this.#label);
    if (this.#builtin) {
      await this.#builtin.membership(group, family, iface, join, what);
      return;
    }
    const ifindex = iface === undefined ? 0 : resolveInterface(iface, what);
    const membership = { group: bytes, ifindex };
    try {
      if (family === "ipv4") {
        this.#fd!.setOption(join ? "addMembership" : "dropMembership", membership);
      } else this.#fd!.setOption(join ? "ipv6JoinGroup" : "ipv6LeaveGroup", membership);
    } catch (err) {
      const errno = (err as { errno?: unknown }).errno;
      throw typeof errno === "number" ? errnoError(errno, call, JSON.stringify(group)) : err;
    }
  }

  /**
   * Sets the TTL (IPv6: hop limit) of the multicast datagrams this socket
   * sends. The built-in backend can set it only for IPv4, and only once the
   * socket has joined a group; open with `multicastTtl` or `backend: "ffi"` otherwise.
   *
   * Synchronous, as every setter that is one `setsockopt` is, on the FFI
   * backend; the built-in backend can only set it through Deno's async
   * membership call and returns its promise. `await` works on both, and bad
   * input throws at once on both.
   *
   * @param ttl 0 to 255.
   * @returns Nothing on the FFI backend; on the built-in one, a promise that
   * settles once it is set.
   * @throws {RangeError} For a TTL out of range.
   * @throws {Deno.errors.NotSupported} On a Unix socket, or where the built-in
   * backend cannot (there as a rejection).
   *
   * @example Let multicast cross one router
   * ```ts
   * import { listenDatagram } from "@bsd/sockets/datagram";
   *
   * using sock = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
   * sock.setMulticastTtl(2); // `await` it on the built-in backend
   * ```
   */
  setMulticastTtl(ttl: number): void | Promise<void> {
    const family = this.#udpFamily("setMulticastTtl");
    checkInteger("multicast TTL", ttl, 0, 255);
    if (this.#closed) throw closedError("setMulticastTtl", this.#label);
    if (this.#builtin) return this.#builtin.setTtl(ttl, family);
    setMulticastTtl(this.#fd as FdSocket<NetAddr>, family, ttl);
  }

  /**
   * Sets whether multicast this socket sends is also delivered to members on
   * this host. The built-in backend can change it only once the socket has
   * joined a group; open with `multicastLoopback` otherwise.
   *
   * Synchronous on the FFI backend and a promise on the built-in one, as
   * {@linkcode DatagramSocket.setMulticastTtl} is.
   *
   * @param on `true` to loop multicast back (the default), `false` not to.
   * @returns Nothing on the FFI backend; on the built-in one, a promise that
   * settles once it is set.
   * @throws {TypeError} When `on` is not a boolean.
   * @throws {Deno.errors.NotSupported} On a Unix socket, or where the built-in
   * backend cannot (there as a rejection).
   *
   * @example Do not hear your own multicast
   * ```ts
   * import { listenDatagram } from "@bsd/sockets/datagram";
   *
   * using sock = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
   * sock.setMulticastLoopback(false);
   * ```
   */
  setMulticastLoopback(on: boolean): void | Promise<void> {
    const family = this.#udpFamily("setMulticastLoopback");
    if (typeof on !== "boolean") {
      throw new TypeError(`setMulticastLoopback: on must be a boolean, got ${typeof on}`);
    }
    if (this.#closed) throw closedError("setMulticastLoopback", this.#label);
    if (this.#builtin) return this.#builtin.setLoopback(on);
    setMulticastLoop(this.#fd as FdSocket<NetAddr>, family, on);
  }

  /**
   * Allows or forbids sending to broadcast addresses (`SO_BROADCAST`). The
   * built-in backend always allows it, so only `true` is accepted there.
   *
   * @param on Whether broadcast is allowed.
   * @throws {Deno.errors.NotSupported} On a Unix socket, or `false` on the built-in backend.
   *
   * @example Forbid broadcast
   * ```ts
   * import { listenDatagram } from "@bsd/sockets/datagram";
   *
   * using sock = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
   * sock.setBroadcast(false);
   * ```
   */
  setBroadcast(on: boolean): void {
    this.#udpFamily("setBroadcast");
    if (typeof on !== "boolean") {
      throw new TypeError(`setBroadcast: on must be a boolean, got ${typeof on}`);
    }
    if (this.#closed) throw closedError("setBroadcast", this.#label);
    if (this.#builtin) {
      if (!on) {
        throw new Deno.errors.NotSupported(
          `setBroadcast ${this.#label}: the built-in backend always allows broadcast; ` +
            `open the socket with broadcast: false or backend: "ffi"`,
        );
      }
      return;
    }
    this.#fd!.setOption("broadcast", on);
  }

  /**
   * Lets a pending receive keep the process alive again (the default).
   *
   * @example Undo an unref
   * ```ts
   * import { listenDatagram } from "@bsd/sockets/datagram";
   *
   * using sock = listenDatagram({ hostname: "127.0.0.1", port: 0 });
   * sock.unref();
   * sock.ref();
   * ```
   */
  override ref(): void {
    if (this.#fd) this.#fd.ref();
    else this.#builtin!.ref(true);
  }

  /**
   * Lets the process exit even while a receive is pending on this socket.
   *
   * @example A background listener that does not hold the program open
   * ```ts
   * import { listenDatagram } from "@bsd/sockets/datagram";
   *
   * const sock = listenDatagram({ hostname: "127.0.0.1", port: 0 });
   * sock.unref();
   * sock.receive().then((m) => console.log(m?.data.length));
   * sock.close();
   * ```
   */
  override unref(): void {
    if (this.#fd) this.#fd.unref();
    else this.#builtin!.ref(false);
  }

  /**
   * Closes the socket. A pending receive resolves `null`, a pending send
   * rejects with `BadResource`; a Unix socket removes its socket file if it
   * is still the one it created. Calling it again does nothing.
   *
   * @example Close twice
   * ```ts
   * import { listenDatagram } from "@bsd/sockets/datagram";
   *
   * const sock = listenDatagram({ hostname: "127.0.0.1", port: 0 });
   * sock.close();
   * sock.close(); // no-op
   * ```
   */
  override close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#fd) this.#fd.close();
    else this.#builtin!.close();
    removeOwnSocketFile(this.#owned);
  }

  #udpFamily(call: string): "ipv4" | "ipv6" {
    if (this.#family === null) {
      throw new Deno.errors.NotSupported(
        `${call} ${this.#label}: a Unix socket has no ${
          call === "setBroadcast" ? "broadcast" : "multicast"
        }`,
      );
    }
    return this.#family;
  }

  #connected(call: string): Destination<A> {
    if (this.#peer === null) {
      if (this.#closed) throw closedError(call, this.#label);
      throw this.#notConnected(call);
    }
    requirePermit(this.#peer.permit);
    return this.#peer;
  }

  #notConnected(call: string): Error {
    return new Deno.errors.NotConnected(
      `${call} ${this.#label}: socket is not connected; call connect(to) first, ` +
        `or give the destination: send(data, to)`,
    );
  }

  #tooLong(size: number, destination: Destination<A>): RangeError {
    const family = destination.limit === UDP_LIMIT.ipv4 ? "IPv4" : "IPv6";
    return new RangeError(
      `send ${destination.label}: a datagram of ${size} bytes is over the UDP limit of ` +
        `${destination.limit} bytes over ${family}; nothing was sent`,
    );
  }

  /** Checks `to`: shape and encoding once per destination, permission as the policy asks. */
  #destination(to: A, call: string): Destination<A> {
    if (typeof to !== "object" || to === null) {
      throw new TypeError(
        `${call} ${this.#label}: the destination must be an address object, got ${
          to === null ? "null" : typeof to
        }`,
      );
    }
    this.#call = call;
    return this.#destinations.resolve(to);
  }

  /** The call whose destination is being checked, for the messages of #makeDestination. */
  #call = "send";

  // Only well-typed fields make a key, so a port of "80" cannot reach the
  // entry checked for 80.
  #key(to: A): string {
    const { hostname, port, path } = to as Partial<NetAddr & UnixAddr>;
    return this.#transport === "udp"
      ? (typeof hostname === "string" && typeof port === "number" ? `${hostname}\n${port}` : "")
      : (typeof path === "string" ? path : "");
  }

  #makeDestination(to: A): Destination<A> {
    return (this.#transport === "udp"
      ? this.#udpDestination(to as NetAddr, this.#call)
      : this.#unixDestination(to as UnixAddr, this.#call)) as Destination<A>;
  }

  /** Deno's built-in checks every send itself; on FFI this class checks as it would. */
  #permitFor(to: A): Permit {
    return this.#fd === null ? NO_CHECK : peerPermit(to as NetAddr | UnixAddr);
  }

  #udpDestination(to: NetAddr, call: string): Destination<NetAddr> {
    if (to.transport !== undefined && to.transport !== "udp") {
      throw new TypeError(
        `${call} ${this.#label}: the destination must be a UDP address, got transport ${
          JSON.stringify(to.transport)
        }`,
      );
    }
    if (typeof to.hostname !== "string") {
      throw new TypeError(`${call} ${this.#label}: the destination needs a hostname`);
    }
    const family = ipFamily(to.hostname);
    const port = checkPort(to.port);
    const ffi = this.#fd !== null;
    const sockaddr = encodeInet(to.hostname, port, ffi ? interfaceIndex : undefined);
    const addr = decodeInet(sockaddr, sockaddr.length, "udp");
    return {
      addr,
      sockaddr,
      label: describeAddress(addr),
      limit: UDP_LIMIT[family],
      permit: this.#permitFor({ transport: "udp", hostname: to.hostname, port } as A),
    };
  }

  #unixDestination(to: UnixAddr, call: string): Destination<UnixAddr> {
    if (to.transport !== undefined && to.transport !== "unixgram") {
      throw new TypeError(
        `${call} ${this.#label}: the destination must be a Unix datagram address, got ` +
          `transport ${JSON.stringify(to.transport)}`,
      );
    }
    if (typeof to.path !== "string" || to.path === "") {
      throw new TypeError(
        `${call} ${this.#label}: the destination needs a path; an unnamed socket cannot be sent to`,
      );
    }
    // Checked (and on FFI encoded) once.
    const sockaddr = this.#fd ? encodeUnix(to.path, false, call) : null;
    if (sockaddr === null) checkUnixPath(to.path, false, call);
    const addr: UnixAddr = { transport: "unixgram", path: to.path };
    return {
      addr,
      sockaddr,
      label: describeAddress(addr),
      limit: Infinity,
      permit: this.#permitFor(addr as A),
    };
  }
}

function multicastGroup(group: unknown, family: "ipv4" | "ipv6", what: string): Uint8Array {
  if (typeof group !== "string") {
    throw new TypeError(`${what}: the group must be an IP address string`);
  }
  if (family === "ipv4") {
    const bytes = parseIPv4(group);
    if (bytes[0] < 224 || bytes[0] > 239) {
      throw new TypeError(`${what}: not an IPv4 multicast address (224.0.0.0/4)`);
    }
    return bytes;
  }
  if (!group.includes(":")) {
    throw new TypeError(`${what}: this IPv6 socket needs an IPv6 group (ff00::/8)`);
  }
  const { bytes } = parseIPv6(group);
  if (bytes[0] !== 0xff) throw new TypeError(`${what}: not an IPv6 multicast address (ff00::/8)`);
  return bytes;
}

interface Waiter<A> {
  maxSize: number;
  resolve(message: Message<A> | null): void;
  reject(err: unknown): void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/**
 * The built-in backend: one `Deno.DatagramConn`. One receive is in flight
 * while anyone waits; what it brings goes to the oldest waiter, or is kept
 * for the next receive when every waiter gave up, so an aborted receive
 * never loses a record. A receive left in flight that way holds the process
 * open only while someone waits on a ref'd socket.
 */
class BuiltinEngine<A extends NetAddr | UnixAddr> {
  readonly #conn: BuiltinConn;
  readonly #transport: Transport;
  readonly #label: string;
  readonly #buffer: Uint8Array;
  readonly #recordMax: number;
  /** Records (or receive errors) that came after their receive was aborted. */
  readonly #inbox: (Message<A> | Error)[] = [];
  readonly #waiters: Waiter<A>[] = [];
  readonly #memberships = new Map<string, BuiltinMembership>();
  #pumping = false;
  #inFlight = false;
  #closed = false;
  #userRef = true;
  #connRefed = true;
  /** Set by connect(): datagrams from anyone else are dropped. */
  peer: A | null = null;

  constructor(conn: BuiltinConn, transport: Transport, label: string) {
    this.#conn = conn;
    this.#transport = transport;
    this.#label = label;
    this.#recordMax = BUILTIN_RECORD_MAX[transport];
    this.#buffer = new Uint8Array(this.#recordMax + 1);
    this.#refresh();
  }

  receive(maxSize: number, signal: AbortSignal | undefined): Promise<Message<A> | null> {
    if (this.#closed) return Promise.resolve(null);
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#inbox.length > 0 && this.#waiters.length === 0) {
      const next = this.#inbox.shift()!;
      return next instanceof Error ? Promise.reject(next) : Promise.resolve(cut(next, maxSize));
    }
    if (signal === undefined && this.peer === null && !this.#pumping) return this.#direct(maxSize);
    return new Promise((resolve, reject) => {
      const waiter: Waiter<A> = { maxSize, resolve, reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          const i = this.#waiters.indexOf(waiter);
          if (i < 0) return;
          this.#waiters.splice(i, 1);
          this.#refresh();
          reject(signal.reason);
        };
        signal.addEventListener("abort", waiter.onAbort, { once: true });
      }
      this.#waiters.push(waiter);
      this.#refresh();
      this.#pump();
    });
  }

  /**
   * One receive, then every record that is already there: those kept after
   * their receive was aborted, then (UDP) those Deno's receive hands over at
   * once (it completes within a few microtasks when the kernel holds a record).
   * A receive that does not complete at once stays in flight, and what it
   * brings is kept for the next receive, so nothing waits for a second record
   * and nothing is lost.
   */
  async receiveMany(
    max: number,
    maxSize: number,
    signal: AbortSignal | undefined,
  ): Promise<Message<A>[] | null> {
    const first = await this.receive(maxSize, signal);
    if (first === null) return null;
    const batch = [first];
    while (batch.length < max && this.#waiters.length === 0) {
      const next = this.#inbox[0];
      if (next === undefined || next instanceof Error) break;
      this.#inbox.shift();
      batch.push(cut(next, maxSize));
    }
    // Not on Unix: a receive left in flight there would make the next send Busy.
    while (
      this.#transport === "udp" && batch.length < max && this.#inbox.length === 0 &&
      this.#waiters.length === 0 && !this.#pumping && !this.#closed
    ) {
      const next = await this.#receiveQueued();
      if (next === undefined) break;
      if (next instanceof Error) {
        this.#inbox.push(next);
        break;
      }
      if (next !== null) batch.push(cut(next, maxSize));
    }
    return batch;
  }

  /** Bounds the microtasks a queued record takes to come out of Deno's receive. */
  static readonly #QUEUED_TURNS = 8;

  /**
   * A record the kernel already holds, `null` for one a connected socket
   * drops (or a receive ended by close), an Error, or undefined when none
   * came at once: the receive then stays in flight for the next caller.
   */
  async #receiveQueued(): Promise<Message<A> | Error | null | undefined> {
    this.#pumping = true;
    this.#inFlight = true;
    this.#refresh();
    let settled = false;
    let value: Message<A> | Error | null = null;
    const pending = this.#conn.receive(this.#buffer).then(
      ([view, addr]): Message<A> | null => {
        const from = fromBuiltin(addr, this.#transport) as A | null;
        if (this.peer !== null && !sameAddress(from, this.peer)) return null;
        return this.#message(view, from);
      },
      (err): Error | null =>
        this.#closed ? null : withContext(err, "recvmsg", this.#label) as Error,
    ).then((r) => {
      settled = true;
      value = r;
      this.#pumping = false;
      this.#inFlight = false;
      this.#refresh();
      return r;
    });
    for (let i = 0; i < BuiltinEngine.#QUEUED_TURNS && !settled; i++) await null;
    if (settled) return value;
    pending.then((r) => {
      if (this.#closed) return;
      if (r !== null) {
        const waiter = this.#waiters.shift();
        if (waiter === undefined) this.#inbox.push(r);
        else {
          waiter.signal?.removeEventListener("abort", waiter.onAbort!);
          if (r instanceof Error) waiter.reject(r);
          else waiter.resolve(cut(r, waiter.maxSize));
        }
      }
      if (this.#waiters.length > 0) this.#pump();
    });
    return undefined;
  }

  /**
   * The common case without the queue: a receive nobody can abort and no
   * peer to filter for takes the record Deno brings, whatever it is. Later
   * receives queue behind it as waiters.
   */
  #direct(maxSize: number): Promise<Message<A> | null> {
    this.#pumping = true;
    this.#inFlight = true;
    return this.#conn.receive(this.#buffer).then(
      ([view, addr]): Message<A> => {
        const message = this.#message(view, fromBuiltin(addr, this.#transport) as A | null);
        this.#settled();
        return cut(message, maxSize);
      },
      (err): null => {
        this.#settled();
        if (this.#closed) return null;
        throw withContext(err, "recvmsg", this.#label);
      },
    );
  }

  #settled(): void {
    this.#pumping = false;
    this.#inFlight = false;
    if (this.#waiters.length > 0) this.#pump();
  }

  /** A record from the shared buffer, copied out before the next receive may reuse it. */
  #message(view: Uint8Array, from: A | null): Message<A> {
    return {
      data: view.slice(0, this.#recordMax),
      from,
      truncated: view.length > this.#recordMax,
    };
  }

  /**
   * Keeps one receive in flight while someone waits, and no longer: reading
   * ahead would add a receive's turn to the round trip of every request and
   * its reply, and Deno's Unix datagram socket refuses a send while a
   * receive is pending.
   */
  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (!this.#closed && this.#waiters.length > 0) {
        let result: Message<A> | Error;
        this.#inFlight = true;
        try {
          const [view, addr] = await this.#conn.receive(this.#buffer);
          const from = fromBuiltin(addr, this.#transport) as A | null;
          if (this.peer !== null && !sameAddress(from, this.peer)) continue;
          result = this.#message(view, from);
        } catch (err) {
          if (this.#closed) return;
          result = withContext(err, "recvmsg", this.#label) as Error;
        } finally {
          this.#inFlight = false;
          if (!this.#connRefed) this.#refresh();
        }
        const waiter = this.#waiters.shift();
        if (waiter === undefined) {
          this.#inbox.push(result);
          continue;
        }
        waiter.signal?.removeEventListener("abort", waiter.onAbort!);
        if (result instanceof Error) waiter.reject(result);
        else waiter.resolve(cut(result, waiter.maxSize));
      }
    } finally {
      this.#pumping = false;
    }
  }

  /**
   * Sends one record; a `signal` can stop it only before it starts, as Deno's send cannot be called
   * off.
   */
  send(data: Uint8Array, to: Destination<A>, signal?: AbortSignal): Promise<number> {
    const label = to.label;
    if (this.#closed) return Promise.reject(closedError("send", label));
    if (signal?.aborted) return Promise.reject(signal.reason);
    const { addr } = to;
    to.builtin ??= "path" in addr
      ? { transport: "unixpacket", path: addr.path }
      : { transport: "udp", hostname: addr.hostname, port: addr.port };
    return this.#conn.send(data, to.builtin).catch((err) => {
      if (this.#closed) throw closedError("send", label);
      if (err instanceof Deno.errors.Busy && this.#transport === "unixgram") {
        throw new Deno.errors.Busy(
          `send ${label}: Deno's built-in Unix datagram socket cannot send while a receive ` +
            `is pending on it; open the socket with backend: "ffi"`,
          { cause: err },
        );
      }
      throw withContext(err, "send", label);
    });
  }

  async membership(
    group: string,
    family: "ipv4" | "ipv6",
    iface: string | number | undefined,
    join: boolean,
    what: string,
  ): Promise<void> {
    const key = `${group}%${iface ?? ""}`;
    if (!join) {
      const membership = this.#memberships.get(key);
      if (!membership) {
        throw new Deno.errors.NotFound(`${what}: this socket has not joined that group there`);
      }
      await membership.leave().catch((err) => {
        throw withContext(err, "leaveMulticast", JSON.stringify(group));
      });
      this.#memberships.delete(key);
      return;
    }
    let membership: BuiltinMembership;
    try {
      membership = family === "ipv4"
        ? await this.#conn.joinMulticastV4(group, builtinInterfaceV4(iface, what))
        : await this.#conn.joinMulticastV6(group, builtinInterfaceV6(iface, what));
    } catch (err) {
      throw withContext(err, "joinMulticast", JSON.stringify(group));
    }
    this.#memberships.set(key, membership);
  }

  async setTtl(ttl: number, family: "ipv4" | "ipv6"): Promise<void> {
    const membership = family === "ipv4" ? this.#memberships.values().next().value : undefined;
    if (!membership?.setTTL) {
      throw new Deno.errors.NotSupported(
        `setMulticastTtl ${this.#label}: the built-in backend sets it only for IPv4, after ` +
          `joinMulticast(); open the socket with multicastTtl or backend: "ffi"`,
      );
    }
    await membership.setTTL(ttl);
  }

  async setLoopback(on: boolean): Promise<void> {
    const membership = this.#memberships.values().next().value;
    if (!membership) {
      throw new Deno.errors.NotSupported(
        `setMulticastLoopback ${this.#label}: the built-in backend changes it only after ` +
          `joinMulticast(); open the socket with multicastLoopback or backend: "ffi"`,
      );
    }
    await membership.setLoopback(on);
  }

  ref(on: boolean): void {
    this.#userRef = on;
    this.#refresh();
  }

  /** A receive in flight holds the process only for a ref'd socket that someone waits on. */
  #refresh(): void {
    const want = this.#userRef && (this.#waiters.length > 0 || !this.#inFlight);
    if (want === this.#connRefed || this.#closed) return;
    this.#connRefed = want;
    if (want) this.#conn.ref?.();
    else this.#conn.unref?.();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Closed through the Deno object already.
    }
    this.#inbox.length = 0;
    for (const waiter of this.#waiters.splice(0)) {
      waiter.signal?.removeEventListener("abort", waiter.onAbort!);
      waiter.resolve(null);
    }
  }
}

// Temporary, until the datagram port (issue 11) makes the built-in engine a
// RecordEngine itself: what PacketSocketBase needs of it.
class BuiltinRecords<A extends NetAddr | UnixAddr> implements RecordEngine<A> {
  readonly backend = "builtin";
  readonly fd = null;
  readonly options = null;
  readonly #engine: BuiltinEngine<A>;
  readonly label: string;
  #closed = false;

  constructor(engine: BuiltinEngine<A>, label: string) {
    this.#engine = engine;
    this.label = label;
  }

  get closed(): boolean {
    return this.#closed;
  }

  receive(maxSize: number, signal: AbortSignal | undefined, peek: boolean): Promise<
    Message<A> | null
  > {
    if (peek) return Promise.reject(needsFfiBackend("receive", this.label));
    return this.#engine.receive(maxSize, signal);
  }

  receiveMany(max: number, maxSize: number, signal: AbortSignal | undefined): Promise<
    Message<A>[] | null
  > {
    return this.#engine.receiveMany(max, maxSize, signal);
  }

  async receiveInto(p: Uint8Array, signal: AbortSignal | undefined): Promise<number | null> {
    const message = await this.#engine.receive(p.length, signal);
    if (message === null) return null;
    p.set(message.data);
    return message.data.length;
  }

  ref(): void {
    this.#engine.ref(true);
  }

  unref(): void {
    this.#engine.ref(false);
  }

  close(): void {
    this.#closed = true;
    this.#engine.close();
  }
}

function cut<A>(message: Message<A>, maxSize: number): Message<A> {
  if (message.data.length <= maxSize) return message;
  return { data: message.data.subarray(0, maxSize), from: message.from, truncated: true };
}

function builtinInterfaceV4(iface: string | number | undefined, what: string): string {
  if (iface === undefined) return "0.0.0.0";
  if (typeof iface === "number") {
    throw new Deno.errors.NotSupported(
      `${what}: the built-in backend takes an IPv4 group's interface by name, not index; ` +
        `give the name or use backend: "ffi"`,
    );
  }
  const named = Deno.networkInterfaces().filter((i) => i.name === iface);
  if (named.length === 0) throw noSuchInterface(what, iface);
  const found = named.find((i) => i.family === "IPv4");
  if (!found) {
    throw new Deno.errors.NotFound(
      `${what}: network interface ${JSON.stringify(iface)} has no IPv4 address`,
    );
  }
  return found.address;
}

function builtinInterfaceV6(iface: string | number | undefined, what: string): number {
  if (iface === undefined) return 0;
  if (typeof iface === "string") {
    throw new Deno.errors.NotSupported(
      `${what}: the built-in backend takes an IPv6 group's interface by index, not name; ` +
        `give the index or use backend: "ffi"`,
    );
  }
  return iface;
}
