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

import {
  type OwnedSocketFile,
  ownSocketFile,
  removeOwnSocketFile,
} from "./_internal/socket_file.ts";
import type { NetAddr, ReceiveInfo, UnixAddr } from "./types.ts";
import { checkBusyPoll, PacketSocketBase } from "./_internal/packet_socket.ts";
import {
  checkBoolean,
  checkBuffer,
  checkFds,
  checkInteger,
  checkInterfaceName,
  checkObject,
  checkOptionalInteger,
  checkPort,
  checkSignal,
  checkUnixPath,
} from "./_internal/checks.ts";
import { closedError, describeAddress } from "./ffi/errors.ts";
import { requireNet, requirePermit, requireUnix } from "./ffi/permissions.ts";
import { decodeInet, encodeInet, encodeUnix, ipFamily } from "./ffi/sockaddr.ts";
import type { BpfProgram } from "./bpf.ts";
import { registerAdopter } from "./_internal/adopt.ts";
import { checkBufferSizes } from "./_internal/buffer_sizes.ts";
import type {
  DatagramEngine,
  Destination,
  OutgoingRecord,
  Transport,
  UdpSetup,
  UnixSetup,
} from "./_internal/datagram_engine.ts";
import {
  builtinAvailable,
  builtinCannot,
  openBuiltinUdp,
  openBuiltinUnix,
} from "./_internal/datagram_builtin.ts";
import {
  type AdoptedDatagram,
  adoptFfiDatagram,
  ffiDatagramPair,
  openFfiUdp,
  openFfiUnix,
} from "./_internal/datagram_ffi.ts";
import { DestinationCache } from "./_internal/destinations.ts";
import { checkInterface, multicastGroup } from "./_internal/multicast.ts";
import { attachReusePortProgram, checkReceiveInfo } from "./_internal/options.ts";
import { notConnected } from "./_internal/socket_errors.ts";

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
/** Destinations remembered per socket, each encoded once. */
const DESTINATION_CACHE_SIZE = 256;

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
  const [a, b] = ffiDatagramPair();
  return [
    new DatagramSocket(a, { transport: "unixgram", path: "" }),
    new DatagramSocket(b, { transport: "unixgram", path: "" }),
  ];
}

function checkBackend(backend: unknown): DatagramBackend | undefined {
  if (backend === undefined || backend === "builtin" || backend === "ffi") return backend;
  throw new TypeError(
    `listenDatagram: backend must be "builtin" or "ffi", got ${JSON.stringify(backend)}`,
  );
}

/**
 * Picks the backend from what the built-in engine declares it cannot give
 * `setup`; `preferFfi` picks the FFI engine whenever `--allow-ffi` is
 * granted, for a kind of socket the built-in serves poorly.
 */
function chooseBackend(
  asked: DatagramBackend | undefined,
  setup: UdpSetup | UnixSetup,
  preferFfi = false,
): DatagramBackend {
  if (asked === "ffi") return "ffi";
  const builtin = builtinAvailable();
  const lacking = builtinCannot(setup);
  if (asked === "builtin") {
    if (!builtin) {
      throw new Deno.errors.NotSupported(
        "listenDatagram: the built-in backend is Deno.listenDatagram, which needs the " +
          '--unstable-net flag; run with it, or use backend: "ffi"',
      );
    }
    if (lacking !== undefined) {
      throw new Deno.errors.NotSupported(
        `listenDatagram: the built-in backend cannot give ${lacking}; use backend: "ffi"`,
      );
    }
    return "builtin";
  }
  if (preferFfi && Deno.permissions.querySync({ name: "ffi" }).state === "granted") return "ffi";
  return builtin && lacking === undefined ? "builtin" : "ffi";
}

function openUdp(o: UdpDatagramOptions): DatagramSocket<NetAddr> {
  const asked = checkBackend(o.backend);
  const hostname = o.hostname ?? "0.0.0.0";
  const family = ipFamily(hostname);
  const port = checkPort("listenDatagram: port", o.port);
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
    : checkInterfaceName("listenDatagram: interface", o.interface);
  const receiveInfo = checkReceiveInfo("listenDatagram: receiveInfo", o.receiveInfo);
  const setup: UdpSetup = {
    hostname,
    family,
    port,
    label: describeAddress({ hostname, port }),
    reuseAddress,
    broadcast,
    multicastLoopback: loopback,
    multicastTtl: ttl,
    multicastInterface,
    bufferSizes,
    busyPoll,
    reusePort,
    v6Only,
    device,
    receiveInfo,
  };
  const backend = chooseBackend(asked, setup);
  requireNet(hostname, port);
  return new DatagramSocket(backend === "builtin" ? openBuiltinUdp(setup) : openFfiUdp(setup));
}

function openUnix(o: UnixDatagramOptions): DatagramSocket<UnixAddr> {
  const asked = checkBackend(o.backend);
  const path = o.path;
  checkUnixPath("listenDatagram", path, true);
  const address = encodeUnix(path);
  const setup: UnixSetup = {
    path,
    address,
    label: describeAddress({ path }),
    bufferSizes: checkBufferSizes("listenDatagram", o),
    busyPoll: checkBusyPoll("listenDatagram", o.busyPoll),
    passCredentials: checkBoolean("listenDatagram: passCredentials", o.passCredentials),
  };
  // Deno's built-in Unix datagram socket refuses a send while a receive is
  // pending ("Busy"), which breaks the usual receive-and-reply patterns.
  const backend = chooseBackend(asked, setup, true);
  requireUnix(path);
  const engine = backend === "builtin" ? openBuiltinUnix(setup) : openFfiUnix(setup);
  return new DatagramSocket(engine, null, ownSocketFile(path));
}

/** IPPROTO_UDP, as `SO_PROTOCOL` reports a UDP socket. */
const UDP_PROTOCOL = 17;

/** The fromFd part of this module: Unix datagram and UDP descriptors. */
registerAdopter({
  matches: (d) =>
    d.kind === "datagram" &&
    (d.family === "unix" ||
      ((d.family === "ipv4" || d.family === "ipv6") && d.protocol === UDP_PROTOCOL)),
  adopt: (d) => {
    const { engine, peer } = adoptFfiDatagram(d) as AdoptedDatagram<NetAddr | UnixAddr>;
    return new DatagramSocket(engine, peer);
  },
});

/**
 * A datagram socket: UDP or Unix datagram, served by Deno's built-in or by
 * the FFI engine (see {@linkcode DatagramSocket.backend}).
 *
 * Each `send` is one record, never split; a receive returns one record, cut
 * to `maxSize` with `truncated: true` when it was longer, and only then,
 * whatever earlier receives asked for. The built-in backend carries Unix
 * records up to 8 MiB (longer ones come back cut, with `truncated: true`);
 * the FFI backend carries any record a sender without `CAP_NET_ADMIN` can
 * send. A message's `from` is the sender, `null` for a Unix sender with no
 * name; on a connected socket it is the peer. On a connected FFI socket a
 * receive rejects with `ConnectionRefused` after the peer's host answered an
 * earlier datagram with "port unreachable". Get one from
 * {@linkcode listenDatagram}, {@linkcode datagramPair} or `fromFd`.
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
  readonly #engine: DatagramEngine<A>;
  readonly #local: A;
  readonly #label: string;
  readonly #sendWhat: string;
  readonly #transport: Transport;
  readonly #family: "ipv4" | "ipv6" | null;
  readonly #owned: OwnedSocketFile | null;
  readonly #destinations: DestinationCache<Destination<A>>;
  #peer: Destination<A> | null = null;

  /**
   * Not for users: get a socket from {@linkcode listenDatagram},
   * {@linkcode datagramPair} or `fromFd`, which make its engine.
   *
   * @param engine What moves the socket's records.
   * @param peer The peer the kernel already holds for it (a socketpair end,
   * an adopted descriptor), which sends without `to` go to.
   * @param owned The socket file it bound, removed when it closes.
   * @internal
   */
  constructor(
    engine: DatagramEngine<A>,
    peer: A | null = null,
    owned: OwnedSocketFile | null = null,
  ) {
    super(engine);
    this.#engine = engine;
    const local = engine.local;
    const family = engine.family;
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
        permit: engine.permitFor(peer),
      };
    }
    this.#destinations = new DestinationCache<Destination<A>>({
      key: (to) => this.#key(to as A),
      make: (to) => this.#makeDestination(to as A),
    }, DESTINATION_CACHE_SIZE);
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
      this.#engine.options?.socket ?? null,
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
      checkBuffer(this.#sendWhat, data);
      destination = to === undefined ? this.#connected("send") : this.#destination(to, "send");
      if (data.length > destination.limit) throw this.#tooLong(data.length, destination);
      if (options !== undefined) checked = this.#sendOptions(options);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#engine.send(data, destination, checked?.fds, checked?.signal);
  }

  /** Checks send's options before any system call. */
  #sendOptions(options: DatagramSendOptions): { fds?: number[]; signal?: AbortSignal } {
    checkObject(`${this.#sendWhat}: options`, options);
    const fds = checkFds(this.#sendWhat, options.fds);
    const signal = checkSignal(this.#sendWhat, options.signal);
    if (fds !== undefined && fds.length > 0 && this.#transport === "udp") {
      throw new TypeError(`${this.#sendWhat}: fds: only Unix sockets carry descriptors`);
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
    const checked: OutgoingRecord<A>[] = [];
    for (const record of records) {
      if (typeof record !== "object" || record === null) {
        throw new TypeError(`sendMany ${this.#label}: each record must be { data, to? }`);
      }
      checkBuffer(`sendMany ${this.#label}`, record.data);
      const destination = record.to === undefined
        ? this.#connected("sendMany")
        : this.#destination(record.to, "sendMany");
      if (record.data.length > destination.limit) {
        throw this.#tooLong(record.data.length, destination);
      }
      checked.push({ data: record.data, to: destination.sockaddr, destination });
    }
    return await this.#engine.sendMany(checked, signal);
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
    await this.#engine.connect(destination);
    // The kernel (or the engine) holds the peer now: sends to it name no address.
    this.#peer = { ...destination, sockaddr: null };
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
    if (this.#engine.closed) throw closedError(call, this.#label);
    await this.#engine.membership({ join, group, bytes, iface, what });
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
    this.#udpFamily("setMulticastTtl");
    checkInteger("multicast TTL", ttl, 0, 255);
    if (this.#engine.closed) throw closedError("setMulticastTtl", this.#label);
    return this.#engine.setMulticastTtl(ttl);
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
    this.#udpFamily("setMulticastLoopback");
    if (typeof on !== "boolean") {
      throw new TypeError(`setMulticastLoopback: on must be a boolean, got ${typeof on}`);
    }
    if (this.#engine.closed) throw closedError("setMulticastLoopback", this.#label);
    return this.#engine.setMulticastLoopback(on);
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
    if (this.#engine.closed) throw closedError("setBroadcast", this.#label);
    this.#engine.setBroadcast(on);
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
    if (this.#engine.closed) return;
    super.close();
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
      if (this.#engine.closed) throw closedError(call, this.#label);
      throw notConnected(
        call,
        this.#label,
        "call connect(to) first, or give the destination: send(data, to)",
      );
    }
    requirePermit(this.#peer.permit);
    return this.#peer;
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
    const port = checkPort("port", to.port);
    const sockaddr = encodeInet(to.hostname, port, this.#engine.resolveZone);
    const addr = decodeInet(sockaddr, sockaddr.length, "udp");
    return {
      addr,
      sockaddr,
      label: describeAddress(addr),
      limit: UDP_LIMIT[family],
      permit: this.#engine.permitFor({ transport: "udp", hostname: to.hostname, port }),
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
    checkUnixPath(call, to.path);
    const sockaddr = encodeUnix(to.path);
    const addr: UnixAddr = { transport: "unixgram", path: to.path };
    return {
      addr,
      sockaddr,
      label: describeAddress(addr),
      limit: Infinity,
      permit: this.#engine.permitFor(addr),
    };
  }
}
