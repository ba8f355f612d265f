/**
 * Netlink: the kernel's own socket interface to the network. `openNetlink`
 * gives a packet socket (`AF_NETLINK`) with a request helper; on top of it,
 * `listLinks`, `listAddresses` and `listRoutes` read what `ip -j link`,
 * `ip -j addr` and `ip -j route` print, with the same field names and
 * values; `watchNetwork` yields link, address and route changes as they
 * happen; `listSockets` lists TCP, UDP and Unix sockets as `ss` shows them.
 *
 * Everything works in the calling process's network namespace and needs
 * `--allow-ffi`; reading needs no privilege. Linux only.
 *
 * @example The interfaces that are up, and the default routes
 * ```ts ignore
 * import { listLinks, listRoutes } from "@bsd/sockets/netlink";
 *
 * const up = (await listLinks()).filter((l) => l.flags.includes("UP"));
 * console.log(up.map((l) => `${l.ifname} ${l.address ?? ""}`));
 * const defaults = (await listRoutes()).filter((r) => r.dst === "default");
 * console.log(defaults.map((r) => `${r.gateway ?? "-"} via ${r.dev}`));
 * ```
 *
 * @module
 */

import { PacketSocketBase } from "./_internal/packet_socket.ts";
import { FfiRecords } from "./_internal/ffi_records.ts";
import {
  checkBuffer,
  checkInteger,
  checkInterfaceName,
  checkObject,
  checkOptionalInteger,
  checkSignal,
  describeValue,
} from "./_internal/checks.ts";
import { registerAdopter } from "./_internal/adopt.ts";
import {
  AnswerCollector,
  changeGroups,
  changeOf,
  consistentDump,
  decodeAddress,
  decodeInetSocket,
  decodeLink,
  decodeMessages,
  decodeRoute,
  decodeUnixSocket,
  diagRequest,
  DUMP_ATTEMPTS,
  dumpRequest,
  encodeMessage,
  linkIdentity,
  type LinkLookup,
  requestFlags,
  setLinkRequest,
} from "./_internal/netlink_codec.ts";
import { ERRNO, NETLINK_PROTOCOL_NUMBERS } from "./ffi/constants.ts";
import { closedError, describeAddress, errnoError } from "./ffi/errors.ts";
import { decodeNetlink, encodeNetlink } from "./ffi/sockaddr.ts";
import { applyBufferSizes, checkBufferSizes } from "./_internal/buffer_sizes.ts";
import { requireInterface } from "./ffi/interfaces.ts";
import { FdSocket } from "./ffi/socket.ts";
import type {
  Address,
  Link,
  NetlinkMessage,
  Route,
  SocketEntry,
} from "./_internal/netlink_codec.ts";

export type {
  Address,
  Link,
  NetlinkMessage,
  Route,
  RouteNexthop,
  SocketEntry,
} from "./_internal/netlink_codec.ts";

// ---------------------------------------------------------------------------
// Types

/**
 * A netlink socket address: the port id (`pid`; 0 is the kernel) and the
 * multicast groups as a bit mask (group N is bit N-1).
 *
 * @example The kernel's address
 * ```ts
 * import type { NetlinkAddr } from "@bsd/sockets/netlink";
 *
 * const kernel: NetlinkAddr = { transport: "netlink", pid: 0, groups: 0 };
 * ```
 */
export interface NetlinkAddr {
  /** Always `"netlink"`. */
  transport: "netlink";
  /** The port id: the kernel is 0, a socket gets one when it binds. */
  pid: number;
  /** The multicast groups, one bit each (group N is bit N-1). */
  groups: number;
}

/** The netlink protocols {@linkcode openNetlink} names. */
export type NetlinkProtocol = "route" | "uevent" | "sock_diag" | "generic";

/**
 * Options for {@linkcode openNetlink}.
 *
 * @example Subscribe to link changes (rtnetlink group 1)
 * ```ts
 * import type { NetlinkOptions } from "@bsd/sockets/netlink";
 *
 * const options: NetlinkOptions = { protocol: "route", groups: 1 };
 * ```
 */
export interface NetlinkOptions {
  /** The netlink family: a name, or its number (0 to 31). */
  protocol: NetlinkProtocol | number;
  /** Multicast groups to join at bind time, one bit each. Default 0. */
  groups?: number;
  /**
   * The receive buffer in bytes (`SO_RCVBUF`; past `net.core.rmem_max` only
   * as root): room for a burst of events before the kernel drops them.
   */
  receiveBufferSize?: number;
  /** The send buffer in bytes (`SO_SNDBUF`; past `net.core.wmem_max` only as root). */
  sendBufferSize?: number;
}

/**
 * A request for {@linkcode NetlinkSocket.request}.
 *
 * @example Dump every link (RTM_GETLINK is 18; an ifinfomsg is 16 bytes)
 * ```ts
 * import type { NetlinkRequest } from "@bsd/sockets/netlink";
 *
 * const request: NetlinkRequest = { type: 18, payload: new Uint8Array(16) };
 * ```
 */
export interface NetlinkRequest {
  /** `nlmsg_type`. */
  type: number;
  /** Flags besides the request, acknowledgement and dump flags, which `request` sets. Default 0. */
  flags?: number;
  /** The message after its header (a family's fixed struct, then attributes). */
  payload?: Uint8Array;
}

/**
 * Options for {@linkcode NetlinkSocket.request}.
 *
 * @example A dump cut after a second
 * ```ts
 * import type { NetlinkRequestOptions } from "@bsd/sockets/netlink";
 *
 * const options: NetlinkRequestOptions = { dump: true, timeout: 1000 };
 * ```
 */
export interface NetlinkRequestOptions {
  /** A dump (`NLM_F_DUMP`): collect every part until the kernel says done. Default false. */
  dump?: boolean;
  /** Aborts the request: it rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Milliseconds before the request fails with `TimedOut`. Default 10,000. */
  timeout?: number;
}

/**
 * Options for {@linkcode listRoutes}.
 *
 * @example Every IPv6 route of every table
 * ```ts
 * import type { ListRoutesOptions } from "@bsd/sockets/netlink";
 *
 * const options: ListRoutesOptions = { family: "inet6", table: "all" };
 * ```
 */
export interface ListRoutesOptions {
  /** Only this family. Default: both. */
  family?: "inet" | "inet6";
  /** The table: a name, a number (1 to 2^32-1) or `"all"`. Default `"main"`. */
  table?: number | "main" | "local" | "all";
  /** Aborts the dump. */
  signal?: AbortSignal;
}

/**
 * One change {@linkcode watchNetwork} reports.
 *
 * @example Describe a change
 * ```ts
 * import type { NetworkChange } from "@bsd/sockets/netlink";
 *
 * function describe(c: NetworkChange): string {
 *   if (c.type === "link") return `${c.change} link ${c.link.ifname} ${c.link.operstate}`;
 *   if (c.type === "address") return `${c.change} address ${c.address.local}`;
 *   return `${c.change} route ${c.route.dst}`;
 * }
 * ```
 */
export type NetworkChange =
  | { type: "link"; change: "new" | "delete"; link: Link }
  | { type: "address"; change: "new" | "delete"; address: Address }
  | { type: "route"; change: "new" | "delete"; route: Route };

/**
 * Options for {@linkcode watchNetwork}.
 *
 * @example Links only, for a minute
 * ```ts
 * import type { WatchOptions } from "@bsd/sockets/netlink";
 *
 * const options: WatchOptions = { types: ["link"], signal: AbortSignal.timeout(60_000) };
 * ```
 */
export interface WatchOptions {
  /** What to watch. Default: links, addresses and routes. */
  types?: ("link" | "address" | "route")[];
  /** Ends the iteration when aborted. */
  signal?: AbortSignal;
}

/**
 * Options for {@linkcode listSockets}.
 *
 * @example Every IPv4 TCP socket
 * ```ts
 * import type { ListSocketsOptions } from "@bsd/sockets/netlink";
 *
 * const options: ListSocketsOptions = { protocol: "tcp", family: "inet" };
 * ```
 */
export interface ListSocketsOptions {
  /** Which sockets. */
  protocol: "tcp" | "udp" | "unix";
  /** TCP and UDP only: one family. Default: both. */
  family?: "inet" | "inet6";
  /** Aborts the dump. */
  signal?: AbortSignal;
}

// ---------------------------------------------------------------------------
// openNetlink and NetlinkSocket

const KERNEL = encodeNetlink(0, 0);
const DEFAULT_TIMEOUT = 10_000;
/** Big enough for any record a dump sends (the kernel fills at most 32 KiB and a page). */
const RECORD_SIZE = 65536;

function decodeAddr(name: Uint8Array, length: number): NetlinkAddr {
  return { transport: "netlink", ...decodeNetlink(name, length) };
}

function protocolNumber(protocol: unknown): { number: number; name: string } {
  if (typeof protocol === "string") {
    if (Object.hasOwn(NETLINK_PROTOCOL_NUMBERS, protocol)) {
      return { number: NETLINK_PROTOCOL_NUMBERS[protocol as NetlinkProtocol], name: protocol };
    }
    const names = Object.keys(NETLINK_PROTOCOL_NUMBERS).map((n) => `"${n}"`).join(", ");
    throw new TypeError(
      `openNetlink: protocol must be one of ${names} or a number, got ` +
        describeValue(protocol),
    );
  }
  const number = checkInteger("openNetlink: protocol", protocol, 0, 31);
  return { number, name: String(number) };
}

/**
 * Opens a netlink socket of one protocol, bound to a port id the kernel
 * picks and to the multicast `groups` given (`socket(AF_NETLINK,
 * SOCK_RAW, protocol)`, then `bind`). The kernel's extended acknowledgements
 * are turned on, so errors carry its message.
 *
 * Requires `--allow-ffi`. Joining groups of some protocols needs
 * `CAP_NET_ADMIN`; rtnetlink's do not.
 *
 * @param options The protocol and the groups.
 * @returns The socket.
 * @throws {TypeError} For options of the wrong shape or an unknown protocol name.
 * @throws {RangeError} For a protocol number over 31 or groups outside 0 to 2^32-1.
 * @throws {Deno.errors.NotCapable} Without `--allow-ffi`.
 * @throws {Deno.errors.NotSupported} For a protocol the kernel lacks.
 * @see https://man7.org/linux/man-pages/man7/netlink.7.html
 *
 * @example Ask the kernel for every link, by hand
 * ```ts ignore
 * import { openNetlink } from "@bsd/sockets/netlink";
 *
 * using sock = openNetlink({ protocol: "route" });
 * const links = await sock.request({ type: 18, payload: new Uint8Array(16) }, { dump: true });
 * console.log(`${links.length} links`);
 * ```
 */
export function openNetlink(options: NetlinkOptions): NetlinkSocket {
  checkObject("openNetlink: options", options);
  const { number, name } = protocolNumber(options.protocol);
  const groups = checkOptionalInteger("openNetlink: groups", options.groups, 0, 0xffffffff) ?? 0;
  const sizes = checkBufferSizes("openNetlink", options);
  const label = describeAddress(`netlink/${name}`);
  const sock = FdSocket.open<NetlinkAddr>("netlink", "raw", number, { label, decode: decodeAddr });
  try {
    applyBufferSizes(sock, sizes);
    sock.setOption("netlinkExtendedAck", true);
    sock.setOption("netlinkCapAck", true);
    sock.bind(encodeNetlink(0, groups));
    return new NetlinkSocket(sock, number);
  } catch (err) {
    sock.close();
    throw err;
  }
}

/**
 * A netlink socket from {@linkcode openNetlink}: a packet socket whose
 * records are one or more netlink messages, plus {@linkcode
 * NetlinkSocket.request} to ask the kernel and collect its answer.
 * `write(p)` sends to the kernel. A receive rejects with `SocketError`
 * `ENOBUFS` when notifications were lost because the receive queue was full.
 *
 * @example Wait for the next link change
 * ```ts ignore
 * import { openNetlink } from "@bsd/sockets/netlink";
 *
 * using sock = openNetlink({ protocol: "route", groups: 1 });
 * const record = await sock.receive();
 * console.log(record?.data.length);
 * ```
 */
export class NetlinkSocket extends PacketSocketBase<NetlinkAddr> {
  readonly #sock: FdSocket<NetlinkAddr>;
  readonly #protocol: number;
  readonly #local: NetlinkAddr;
  #seq = 0;

  /**
   * Not for users: {@linkcode openNetlink} and `fromFd` build netlink sockets.
   *
   * @param sock The bound socket, owned from then on.
   * @param protocol Its netlink protocol number.
   * @internal
   */
  constructor(sock: FdSocket<NetlinkAddr>, protocol: number) {
    super(new FfiRecords(sock, { family: "netlink", kind: "raw" }));
    this.#sock = sock;
    this.#protocol = protocol;
    this.#local = sock.localAddress(decodeAddr);
  }

  /** The socket's port id and groups, as bound. */
  get localAddr(): NetlinkAddr {
    return this.#local;
  }

  /** The netlink protocol number (0 for route, 4 for sock_diag, …). */
  get protocol(): number {
    return this.#protocol;
  }

  /**
   * Sends one record (`sendto`), to the kernel unless `to` says otherwise.
   * The bytes go as they are: build messages with their headers, or use
   * {@linkcode NetlinkSocket.request}.
   *
   * @param data One or more netlink messages.
   * @param to The destination; default the kernel (pid 0, no groups).
   * @returns The number of bytes sent.
   * @throws {TypeError} For a buffer or address of the wrong shape.
   * @throws {Deno.errors.BadResource} Once the socket is closed.
   *
   * @example Send a hand-built message
   * ```ts ignore
   * import { openNetlink } from "@bsd/sockets/netlink";
   *
   * using sock = openNetlink({ protocol: "route" });
   * await sock.send(new Uint8Array(32));
   * ```
   */
  send(data: Uint8Array, to?: NetlinkAddr): Promise<number> {
    try {
      checkBuffer(`send ${this.#sock.label}`, data);
      if (to === undefined) return this.#sock.send(data, KERNEL);
      checkObject("send: to", to);
      if (to.transport !== "netlink") {
        throw new TypeError(
          `send: to must be a netlink address, got ${describeValue(to.transport)}`,
        );
      }
      const pid = checkInteger("send: to.pid", to.pid, 0, 0xffffffff);
      const groups = checkInteger("send: to.groups", to.groups, 0, 0xffffffff);
      return this.#sock.send(data, encodeNetlink(pid, groups));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Sends one request and collects its answer: numbers it (`nlmsg_seq`),
   * sets `NLM_F_REQUEST` and either `NLM_F_DUMP` (then every part until
   * the end of the dump) or `NLM_F_ACK` (then every message until the
   * acknowledgement). Messages that answer something else (other requests,
   * notifications of joined groups) are dropped.
   *
   * A dump the kernel flags interrupted (the table changed while it was
   * being sent, so parts may miss entries or repeat them) is never returned:
   * it is run again, up to 5 times in all, within the one `timeout`.
   *
   * @param message The type, extra flags and payload.
   * @param options `dump`, an abort `signal`, and a `timeout` in ms (default 10,000).
   * @returns The answer's messages, without the end-of-dump or acknowledgement.
   * @throws {TypeError} For a message or options of the wrong shape.
   * @throws {RangeError} For a type, flags or timeout out of range.
   * @throws {Deno.errors.TimedOut} When no complete answer came within `timeout`.
   * @throws {Deno.errors.Interrupted} When a dump was interrupted by changes
   * on each of its 5 runs.
   * @throws {Deno.errors.BadResource} Once the socket is closed.
   * @throws {SocketError} (or the matching `Deno.errors` class) for the
   * kernel's error answer: its errno, and the kernel's message in
   * parentheses when it sent one.
   *
   * @example Ask for one link by index (RTM_GETLINK is 18)
   * ```ts ignore
   * import { openNetlink } from "@bsd/sockets/netlink";
   *
   * using sock = openNetlink({ protocol: "route" });
   * const ifinfo = new Uint8Array(16);
   * new DataView(ifinfo.buffer).setInt32(4, 1, true); // ifi_index 1: lo
   * const [reply] = await sock.request({ type: 18, payload: ifinfo });
   * console.log(reply.type); // 16, RTM_NEWLINK
   * ```
   */
  async request(
    message: NetlinkRequest,
    options: NetlinkRequestOptions = {},
  ): Promise<NetlinkMessage[]> {
    checkObject("request: message", message);
    checkObject("request: options", options);
    const type = checkInteger("request: type", message.type, 0, 0xffff);
    const flags = checkInteger("request: flags", message.flags ?? 0, 0, 0xffff);
    const payload = message.payload ?? new Uint8Array(0);
    checkBuffer("request: payload", payload);
    const dump = options.dump ?? false;
    if (typeof dump !== "boolean") throw new TypeError("request: dump must be a boolean");
    const signal = checkSignal("request", options.signal);
    const timeout = checkInteger(
      "request: timeout",
      options.timeout ?? DEFAULT_TIMEOUT,
      1,
      2 ** 31 - 1,
    );
    const timer = AbortSignal.timeout(timeout);
    const both = signal ? AbortSignal.any([signal, timer]) : timer;
    const ask = () => this.#ask(type, requestFlags(flags, dump), payload, both);
    try {
      if (!dump) return (await ask()).messages;
      return await consistentDump(ask, () =>
        new Deno.errors.Interrupted(
          `request ${this.#sock.label}: the dump was interrupted by changes to what it ` +
            `lists on each of ${DUMP_ATTEMPTS} runs, so no consistent answer came`,
        ));
    } catch (err) {
      if (timer.aborted && !signal?.aborted) {
        throw new Deno.errors.TimedOut(
          `request ${this.#sock.label}: no complete answer within ${timeout} ms`,
        );
      }
      throw err;
    }
  }

  /** One request under a sequence number of its own, and its whole answer. */
  async #ask(
    type: number,
    flags: number,
    payload: Uint8Array,
    signal: AbortSignal,
  ): Promise<AnswerCollector> {
    this.#seq = (this.#seq % 0xffffffff) + 1;
    const seq = this.#seq;
    await this.#sock.send(encodeMessage({ type, flags, seq, payload }), KERNEL, { signal });
    return await this.#collect(seq, signal);
  }

  async #collect(seq: number, signal: AbortSignal): Promise<AnswerCollector> {
    const answer = new AnswerCollector();
    // A socket without groups receives nothing but answers, so a batch can
    // take records past this answer's end without losing anything.
    const batch = this.#local.groups === 0 ? 64 : 1;
    for (;;) {
      const records = await this.#sock.receiveMany(batch, RECORD_SIZE, signal);
      if (records === null) throw closedError("request", this.#sock.label);
      for (const m of records.flatMap((r) => this.#messages(r))) {
        if (m.seq !== seq || m.pid !== this.#local.pid) continue;
        const end = answer.add(m);
        if (end === null) continue;
        if (end.errno !== 0) {
          const err = errnoError(end.errno, "request", this.#sock.label);
          if (end.extack) err.message += ` (${end.extack})`;
          throw err;
        }
        return answer;
      }
    }
  }

  #messages(record: { data: Uint8Array; truncated: boolean }): NetlinkMessage[] {
    if (record.truncated) throw errnoError(ERRNO.EMSGSIZE[0], "request", this.#sock.label);
    return decodeMessages(record.data);
  }
}

registerAdopter({
  matches: (d) => d.family === "netlink",
  adopt(d) {
    const label = describeAddress(`netlink/${d.protocol}`);
    // A socket that never bound has no port id yet: bind it as openNetlink does.
    // Bound before take(): a failed bind leaves the descriptor as it was.
    const local = FdSocket.nameOf(d.fd, "getsockname", decodeAddr);
    if (local === null || local.pid === 0) {
      FdSocket.bindFd(d.fd, encodeNetlink(0, local?.groups ?? 0), label);
    }
    d.take();
    const sock = new FdSocket<NetlinkAddr>(d.fd, { label, decode: decodeAddr });
    return new NetlinkSocket(sock, d.protocol);
  },
});

// ---------------------------------------------------------------------------
// rtnetlink: links, addresses, routes

async function dump(
  protocol: NetlinkProtocol,
  request: { type: number; payload: Uint8Array },
  signal: AbortSignal | undefined,
  sock?: NetlinkSocket,
): Promise<NetlinkMessage[]> {
  if (sock !== undefined) return await sock.request(request, { dump: true, signal });
  using own = openNetlink({ protocol });
  return await own.request(request, { dump: true, signal });
}

function lookupOf(messages: NetlinkMessage[]): LinkLookup {
  const table = new Map<number, { name: string; up: boolean }>();
  for (const m of messages) {
    const { ifindex, name, up } = linkIdentity(m);
    table.set(ifindex, { name, up });
  }
  return (ifindex) => table.get(ifindex);
}

/** The links' names for decoding `what`, then `what` itself, over one socket. */
async function dumpNamed(
  what: "address" | "route",
  family: "inet" | "inet6" | "all",
  signal: AbortSignal | undefined,
): Promise<{ lookup: LinkLookup; messages: NetlinkMessage[] }> {
  using sock = openNetlink({ protocol: "route" });
  const lookup = lookupOf(await dump("route", dumpRequest("link", "all"), signal, sock));
  return { lookup, messages: await dump("route", dumpRequest(what, family), signal, sock) };
}

function checkListOptions(call: string, options: unknown): AbortSignal | undefined {
  if (options === undefined) return undefined;
  checkObject(`${call}: options`, options);
  return checkSignal(call, (options as { signal?: unknown }).signal);
}

/**
 * Every network interface, as `ip -j link` prints them (an `RTM_GETLINK` dump).
 *
 * Requires `--allow-ffi`.
 *
 * @param options An abort `signal`.
 * @returns The links in index order.
 * @throws {TypeError} For options of the wrong shape.
 * @throws {Deno.errors.Interrupted} When the table kept changing during the
 * dump: interrupted on each of 5 runs, so no consistent answer came.
 * @throws {Deno.errors.NotCapable} Without `--allow-ffi`.
 *
 * @example The names of the links that are up
 * ```ts ignore
 * import { listLinks } from "@bsd/sockets/netlink";
 *
 * const links = await listLinks();
 * console.log(links.filter((l) => l.flags.includes("UP")).map((l) => l.ifname));
 * ```
 */
export async function listLinks(options?: { signal?: AbortSignal }): Promise<Link[]> {
  const signal = checkListOptions("listLinks", options);
  const messages = await dump("route", dumpRequest("link", "all"), signal);
  const lookup = lookupOf(messages);
  return messages.map((m) => decodeLink(m, lookup));
}

/**
 * Every address of every interface, as `ip -j addr` prints them inside each
 * link's `addr_info`, flattened: each with its link's `ifindex` and `ifname`
 * (an `RTM_GETADDR` dump, IPv4 then IPv6).
 *
 * Requires `--allow-ffi`.
 *
 * @param options An abort `signal`.
 * @returns The addresses.
 * @throws {TypeError} For options of the wrong shape.
 * @throws {Deno.errors.Interrupted} When the table kept changing during the
 * dump: interrupted on each of 5 runs, so no consistent answer came.
 * @throws {Deno.errors.NotCapable} Without `--allow-ffi`.
 *
 * @example Every global address in CIDR form
 * ```ts ignore
 * import { listAddresses } from "@bsd/sockets/netlink";
 *
 * const global = (await listAddresses()).filter((a) => a.scope === "global");
 * console.log(global.map((a) => `${a.ifname} ${a.local}/${a.prefixlen}`));
 * ```
 */
export async function listAddresses(options?: { signal?: AbortSignal }): Promise<Address[]> {
  const signal = checkListOptions("listAddresses", options);
  const { lookup, messages } = await dumpNamed("address", "all", signal);
  return messages.map((m) => decodeAddress(m, lookup));
}

const TABLE_NUMBERS = { main: 254, local: 255 } as const;

/**
 * The routes of one table (default main) or of all, of both families or one,
 * as `ip -j route show table …` prints them (an `RTM_GETROUTE` dump; cached
 * clones left out, as ip leaves them out).
 *
 * Requires `--allow-ffi`.
 *
 * @param options `family`, `table` and an abort `signal`.
 * @returns The routes, IPv4 first.
 * @throws {TypeError} For options of the wrong shape or an unknown family or table name.
 * @throws {RangeError} For a table number out of range.
 * @throws {Deno.errors.Interrupted} When the table kept changing during the
 * dump: interrupted on each of 5 runs, so no consistent answer came.
 * @throws {Deno.errors.NotCapable} Without `--allow-ffi`.
 *
 * @example The default routes of both families
 * ```ts ignore
 * import { listRoutes } from "@bsd/sockets/netlink";
 *
 * const routes = await listRoutes();
 * console.log(routes.filter((r) => r.dst === "default"));
 * ```
 */
export async function listRoutes(options: ListRoutesOptions = {}): Promise<Route[]> {
  checkObject("listRoutes: options", options);
  const { family, table = "main" } = options;
  if (family !== undefined && family !== "inet" && family !== "inet6") {
    throw new TypeError(
      `listRoutes: family must be "inet" or "inet6", got ${describeValue(family)}`,
    );
  }
  let wanted: number | null;
  if (table === "all") wanted = null;
  else if (table === "main" || table === "local") wanted = TABLE_NUMBERS[table];
  else if (typeof table === "number") {
    wanted = checkInteger("listRoutes: table", table, 1, 0xffffffff);
  } else {
    throw new TypeError(
      `listRoutes: table must be "main", "local", "all" or a number, got ${describeValue(table)}`,
    );
  }
  const signal = checkSignal("listRoutes", options.signal);
  const { lookup, messages } = await dumpNamed("route", family ?? "all", signal);
  const out: Route[] = [];
  for (const m of messages) {
    const decoded = decodeRoute(m, lookup);
    if (decoded === null || (wanted !== null && decoded.table !== wanted)) continue;
    out.push(decoded.route);
  }
  return out;
}

/**
 * Sets a link up or down, as `ip link set NAME up|down` does (an
 * `RTM_SETLINK` changing only `IFF_UP`), and waits for the kernel's
 * acknowledgement. The one change this module makes.
 *
 * Requires `--allow-ffi` and `CAP_NET_ADMIN` in the network namespace.
 *
 * @param link The interface's name or index.
 * @param up `true` for up, `false` for down.
 * @throws {TypeError} For a name that cannot name an interface, or `up` not a boolean.
 * @throws {RangeError} For an index outside 1 to 2^31-1 or a name over 15 bytes.
 * @throws {Deno.errors.NotFound} When no interface has that name or index,
 * naming it, before the netlink socket is opened.
 * @throws {Deno.errors.PermissionDenied} Without `CAP_NET_ADMIN`.
 *
 * @example Take a link down and bring it back
 * ```ts ignore
 * import { setLinkUp } from "@bsd/sockets/netlink";
 *
 * await setLinkUp("veth0", false);
 * await setLinkUp("veth0", true);
 * ```
 */
export async function setLinkUp(link: string | number, up: boolean): Promise<void> {
  if (typeof up !== "boolean") throw new TypeError("setLinkUp: up must be a boolean");
  const checked = typeof link === "number"
    ? checkInteger("setLinkUp: link", link, 1, 0x7fffffff)
    : checkInterfaceName("setLinkUp: link", link);
  const ifindex = requireInterface(checked, "setLinkUp");
  using sock = openNetlink({ protocol: "route" });
  await sock.request(setLinkRequest(ifindex, up));
}

// ---------------------------------------------------------------------------
// Changes

/**
 * Watches link, address and route changes, decoded into the shapes
 * {@linkcode listLinks}, {@linkcode listAddresses} and {@linkcode listRoutes}
 * return, each with the kind of change (`"new"` also covers a change to an
 * existing link, as the kernel reports it). The subscription starts when
 * this function returns, so changes made after the call are seen even
 * before the first `next()`. Iteration ends when `signal` aborts or the
 * iterator is closed (`break`, `return()`, dispose).
 *
 * Requires `--allow-ffi`.
 *
 * @param options `types` to watch and an abort `signal`.
 * @returns An async iterator of changes, disposable.
 * @throws {TypeError} For options of the wrong shape or an unknown type.
 * @throws {Deno.errors.NotCapable} Without `--allow-ffi`.
 * @throws {SocketError} From the iterator: `ENOBUFS` when changes were lost
 * because they came faster than they were read.
 *
 * @example Print links going up and down for ten seconds
 * ```ts ignore
 * import { watchNetwork } from "@bsd/sockets/netlink";
 *
 * for await (const c of watchNetwork({ types: ["link"], signal: AbortSignal.timeout(10_000) })) {
 *   if (c.type === "link") console.log(c.link.ifname, c.link.operstate);
 * }
 * ```
 */
export function watchNetwork(
  options: WatchOptions = {},
): AsyncIterableIterator<NetworkChange> & Disposable {
  checkObject("watchNetwork: options", options);
  const types = options.types ?? ["link", "address", "route"];
  if (!Array.isArray(types) || types.length === 0) {
    throw new TypeError("watchNetwork: types must be a non-empty array");
  }
  for (const t of types) {
    if (t !== "link" && t !== "address" && t !== "route") {
      throw new TypeError(
        `watchNetwork: types must hold "link", "address" or "route", got ${describeValue(t)}`,
      );
    }
  }
  const signal = checkSignal("watchNetwork", options.signal);
  const sock = openNetlink({ protocol: "route", groups: changeGroups(types) });
  const stop = () => sock.close();
  signal?.addEventListener("abort", stop, { once: true });
  if (signal?.aborted) stop();
  const iterator = changes(sock, () => signal?.removeEventListener("abort", stop));
  return Object.assign(iterator, { [Symbol.dispose]: stop });
}

async function* changes(
  sock: NetlinkSocket,
  done: () => void,
): AsyncGenerator<NetworkChange> {
  try {
    const names = new Map<number, { name: string; up: boolean }>();
    const lookup: LinkLookup = (i) => names.get(i);
    if (sock.fd === null) return;
    for (const m of await dump("route", dumpRequest("link", "all"), undefined)) {
      const id = linkIdentity(m);
      names.set(id.ifindex, id);
    }
    for (;;) {
      const record = await sock.receive();
      if (record === null) return;
      for (const m of decodeMessages(record.data)) {
        const what = changeOf(m);
        if (what === null) continue;
        if (what.type === "link") {
          const id = linkIdentity(m);
          names.set(id.ifindex, id);
          yield { ...what, type: "link", link: decodeLink(m, lookup) };
        } else if (what.type === "address") {
          yield { ...what, type: "address", address: decodeAddress(m, lookup) };
        } else {
          const decoded = decodeRoute(m, lookup);
          if (decoded !== null) yield { ...what, type: "route", route: decoded.route };
        }
      }
    }
  } finally {
    done();
    sock.close();
  }
}

// ---------------------------------------------------------------------------
// Socket diagnostics

/**
 * Every TCP, UDP or Unix socket of this network namespace, in every state,
 * as `ss -tan`, `ss -uan` or `ss -xa` shows them (a `NETLINK_SOCK_DIAG` dump),
 * with each socket's inode and owner's uid.
 *
 * Requires `--allow-ffi`. Other users' sockets are listed too, as ss lists them.
 *
 * @param options The `protocol`, for TCP and UDP an optional `family`, and an abort `signal`.
 * @returns The sockets, IPv4 first for TCP and UDP.
 * @throws {TypeError} For options of the wrong shape or an unknown protocol or family.
 * @throws {Deno.errors.Interrupted} When the table kept changing during the
 * dump: interrupted on each of 5 runs, so no consistent answer came.
 * @throws {Deno.errors.NotCapable} Without `--allow-ffi`.
 *
 * @example The TCP ports listening
 * ```ts ignore
 * import { listSockets } from "@bsd/sockets/netlink";
 *
 * const listening = (await listSockets({ protocol: "tcp" })).filter((s) => s.state === "LISTEN");
 * console.log(listening.map((s) => `${s.localAddress}:${s.localPort}`));
 * ```
 */
export async function listSockets(options: ListSocketsOptions): Promise<SocketEntry[]> {
  checkObject("listSockets: options", options);
  const { protocol, family } = options;
  if (protocol !== "tcp" && protocol !== "udp" && protocol !== "unix") {
    throw new TypeError(
      `listSockets: protocol must be "tcp", "udp" or "unix", got ${describeValue(protocol)}`,
    );
  }
  if (family !== undefined && (protocol === "unix" || (family !== "inet" && family !== "inet6"))) {
    throw new TypeError(
      `listSockets: family must be "inet" or "inet6" for TCP and UDP, got ${describeValue(family)}`,
    );
  }
  const signal = checkSignal("listSockets", options.signal);
  if (protocol === "unix") {
    const entries = (await dump("sock_diag", diagRequest("unix", "inet"), signal))
      .map(decodeUnixSocket);
    const names = new Map(entries.map((e) => [e.inode, e.localAddress]));
    for (const e of entries) if (e.peerPort !== 0) e.peerAddress = names.get(e.peerPort) ?? "*";
    return entries;
  }
  const out: SocketEntry[] = [];
  for (const f of family ? [family] : ["inet", "inet6"] as const) {
    const messages = await dump("sock_diag", diagRequest(protocol, f), signal);
    for (const m of messages) out.push(decodeInetSocket(m, protocol));
  }
  return out;
}
