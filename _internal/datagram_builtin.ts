// The built-in datagram engine: one Deno.DatagramConn (`Deno.listenDatagram`,
// which exists only under --unstable-net) as a DatagramEngine. What it
// cannot do is declared here and nowhere else: `builtinCannot` for what
// listenDatagram's options ask, and its methods' NotSupported errors, which
// name `backend: "ffi"`, for what a socket asks later. Private to the package.

import type { Message, NetAddr, UnixAddr } from "../types.ts";
import { closedError, describeAddress, withContext } from "../ffi/errors.ts";
import { noSuchInterface } from "../ffi/interfaces.ts";
import { NO_CHECK, type Permit } from "../ffi/permissions.ts";
import { decodeInet, encodeInet } from "../ffi/sockaddr.ts";
import { WaitQueue } from "../ffi/wait_queue.ts";
import type {
  DatagramEngine,
  Destination,
  MembershipChange,
  OutgoingRecord,
  Transport,
  UdpSetup,
  UnixSetup,
} from "./datagram_engine.ts";
import { needsFfiBackend } from "./options.ts";

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

/** Whether the runtime has the built-in engine (`--unstable-net`). */
export function builtinAvailable(): boolean {
  return builtinListen() !== undefined;
}

/** What the built-in engine cannot give a UDP socket, in the order an error names it. */
const UDP_CANNOT: readonly [string, (s: UdpSetup) => boolean][] = [
  ["receiveInfo", (s) => s.receiveInfo !== undefined],
  ["reusePort", (s) => s.reusePort !== undefined],
  ["v6Only", (s) => s.v6Only !== undefined],
  ["interface", (s) => s.device !== undefined],
  ["broadcast: false (it always allows broadcast)", (s) => !s.broadcast],
  ["multicastTtl", (s) => s.multicastTtl !== undefined],
  ["multicastInterface", (s) => s.multicastInterface !== undefined],
  ["receiveBufferSize", (s) => s.bufferSizes.receive !== undefined],
  ["sendBufferSize", (s) => s.bufferSizes.send !== undefined],
  ["busyPoll", (s) => !!s.busyPoll],
  ["an IPv6 zone given by interface name", (s) => /%[^0-9]/.test(s.hostname)],
];

/** What the built-in engine cannot give a Unix datagram socket, in the order an error names it. */
const UNIX_CANNOT: readonly [string, (s: UnixSetup) => boolean][] = [
  ['path: "" (a socket with a kernel-assigned name)', (s) => s.path === ""],
  // Deno's built-in writes names as UTF-8; an abstract name is a byte string.
  [
    "an abstract name with characters above U+007F",
    // deno-lint-ignore no-control-regex
    (s) => s.path.startsWith("\0") && /[^\x00-\x7f]/.test(s.path),
  ],
  ["receiveBufferSize", (s) => s.bufferSizes.receive !== undefined],
  ["sendBufferSize", (s) => s.bufferSizes.send !== undefined],
  ["busyPoll", (s) => !!s.busyPoll],
  ["passCredentials", (s) => !!s.passCredentials],
];

/**
 * The first thing `setup` asks that the built-in engine cannot give, or
 * undefined when it can serve the socket.
 */
export function builtinCannot(setup: UdpSetup | UnixSetup): string | undefined {
  if ("path" in setup) return UNIX_CANNOT.find(([, lacks]) => lacks(setup))?.[0];
  return UDP_CANNOT.find(([, lacks]) => lacks(setup))?.[0];
}

/** Opens a UDP socket on the built-in engine. */
export function openBuiltinUdp(setup: UdpSetup): BuiltinEngine<NetAddr> {
  const sockaddr = encodeInet(setup.hostname, setup.port);
  const canonical = decodeInet(sockaddr, sockaddr.length, "udp");
  let conn: BuiltinConn;
  try {
    conn = builtinListen()!({
      transport: "udp",
      hostname: canonical.hostname,
      port: setup.port,
      reuseAddress: setup.reuseAddress,
      loopback: setup.multicastLoopback,
    });
  } catch (err) {
    throw withContext(err, "bind", setup.label);
  }
  const local = fromBuiltin(conn.addr, "udp") as NetAddr;
  return new BuiltinEngine<NetAddr>(conn, local, setup.family);
}

/** Opens a Unix datagram socket on the built-in engine. */
export function openBuiltinUnix(setup: UnixSetup): BuiltinEngine<UnixAddr> {
  let conn: BuiltinConn;
  try {
    conn = builtinListen()!({ transport: "unixpacket", path: setup.path });
  } catch (err) {
    throw withContext(err, "bind", setup.label);
  }
  return new BuiltinEngine<UnixAddr>(conn, { transport: "unixgram", path: setup.path }, null);
}

/**
 * The built-in backend receives into one byte more than the largest record
 * it reports whole, so a longer record shows as truncated, never silently cut.
 * A UDP payload fits 64 KiB; a Unix record is bounded by its sender's buffer,
 * which without CAP_NET_ADMIN is at most twice `net.core.wmem_max`. Deno
 * receives straight into the buffer, so only the pages a record fills are
 * ever committed.
 */
const BUILTIN_RECORD_MAX: Record<Transport, number> = { udp: 65536, unixgram: 8 << 20 };

/**
 * The built-in engine. One receive is in flight while anyone waits; what it
 * brings goes to the oldest receive parked in the wait queue, or is kept for
 * the next receive when every one gave up, so an aborted receive never loses
 * a record. A receive left in flight that way holds the process open only
 * while someone waits on a ref'd socket.
 */
export class BuiltinEngine<A extends NetAddr | UnixAddr> implements DatagramEngine<A> {
  readonly backend = "builtin";
  readonly fd = null;
  /** Deno's datagram socket takes no socket options. */
  readonly options = null;
  readonly resolveZone = undefined;
  readonly label: string;
  readonly local: A;
  readonly family: "ipv4" | "ipv6" | null;
  readonly #conn: BuiltinConn;
  readonly #transport: Transport;
  readonly #buffer: Uint8Array;
  readonly #recordMax: number;
  /** Records (or receive errors) that came after their receive was aborted. */
  readonly #inbox: (Message<A> | Error)[] = [];
  readonly #queue = new WaitQueue(() => this.#refresh());
  readonly #memberships = new Map<string, BuiltinMembership>();
  #pumping = false;
  #inFlight = false;
  #closed = false;
  #userRef = true;
  #connRefed = true;
  /** Set by connect(): datagrams from anyone else are dropped. */
  #peer: A | null = null;

  constructor(conn: BuiltinConn, local: A, family: "ipv4" | "ipv6" | null) {
    this.#conn = conn;
    this.local = local;
    this.family = family;
    this.#transport = "path" in local ? "unixgram" : "udp";
    this.label = describeAddress(local);
    this.#recordMax = BUILTIN_RECORD_MAX[this.#transport];
    this.#buffer = new Uint8Array(this.#recordMax + 1);
    this.#refresh();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Deno checks every send itself. */
  permitFor(): Permit {
    return NO_CHECK;
  }

  receive(
    maxSize: number,
    signal: AbortSignal | undefined,
    peek: boolean,
  ): Promise<Message<A> | null> {
    if (peek) return Promise.reject(needsFfiBackend("receive", this.label));
    if (this.#closed) return Promise.resolve(null);
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#queue.length === 0) {
      const next = this.#inbox.shift();
      if (next !== undefined) {
        return next instanceof Error ? Promise.reject(next) : Promise.resolve(cut(next, maxSize));
      }
      if (signal === undefined && this.#peer === null && !this.#pumping) {
        return this.#direct(maxSize);
      }
    }
    const parked = this.#queue.park(signal, () => this.#fromInbox(maxSize), () => null);
    this.#pump();
    return parked;
  }

  async receiveInto(p: Uint8Array, signal: AbortSignal | undefined): Promise<number | null> {
    const message = await this.receive(p.length, signal, false);
    if (message === null) return null;
    p.set(message.data);
    return message.data.length;
  }

  #fromInbox(maxSize: number): Message<A> | Error | undefined {
    const next = this.#inbox.shift();
    return next === undefined || next instanceof Error ? next : cut(next, maxSize);
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
    const first = await this.receive(maxSize, signal, false);
    if (first === null) return null;
    const batch = [first];
    while (batch.length < max && this.#queue.length === 0) {
      const next = this.#inbox[0];
      if (next === undefined || next instanceof Error) break;
      this.#inbox.shift();
      batch.push(cut(next, maxSize));
    }
    // Not on Unix: a receive left in flight there would make the next send Busy.
    while (
      this.#transport === "udp" && batch.length < max && this.#inbox.length === 0 &&
      this.#queue.length === 0 && !this.#pumping && !this.#closed
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
        if (this.#peer !== null && !sameAddress(from, this.#peer)) return null;
        return this.#message(view, from);
      },
      (err): Error | null => this.#closed ? null : withContext(err, "recvmsg", this.label) as Error,
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
        this.#inbox.push(r);
        this.#queue.run();
      }
      if (this.#queue.length > 0) this.#pump();
    });
    return undefined;
  }

  /**
   * The common case without the queue: a receive nobody can abort and no
   * peer to filter for takes the record Deno brings, whatever it is. Later
   * receives park in the queue behind it.
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
        throw withContext(err, "recvmsg", this.label);
      },
    );
  }

  #settled(): void {
    this.#pumping = false;
    this.#inFlight = false;
    if (this.#queue.length > 0) this.#pump();
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
      while (!this.#closed && this.#queue.length > 0) {
        let result: Message<A> | Error;
        this.#inFlight = true;
        try {
          const [view, addr] = await this.#conn.receive(this.#buffer);
          const from = fromBuiltin(addr, this.#transport) as A | null;
          if (this.#peer !== null && !sameAddress(from, this.#peer)) continue;
          result = this.#message(view, from);
        } catch (err) {
          if (this.#closed) return;
          result = withContext(err, "recvmsg", this.label) as Error;
        } finally {
          this.#inFlight = false;
          if (!this.#connRefed) this.#refresh();
        }
        // Kept when every receive gave up meanwhile, for the next one.
        this.#inbox.push(result);
        this.#queue.run();
      }
    } finally {
      this.#pumping = false;
    }
  }

  /**
   * Sends one record; a `signal` can stop it only before it starts, as Deno's send cannot be called
   * off.
   */
  send(
    data: Uint8Array,
    to: Destination<A>,
    fds: number[] | undefined,
    signal: AbortSignal | undefined,
  ): Promise<number> {
    if (fds !== undefined && fds.length > 0) {
      return Promise.reject(
        new Deno.errors.NotSupported(
          `send ${this.label}: the built-in backend cannot pass descriptors; ` +
            `open the socket with backend: "ffi"`,
        ),
      );
    }
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

  /** One send per record: Deno has no batch send. */
  async sendMany(
    records: readonly OutgoingRecord<A>[],
    signal: AbortSignal | undefined,
  ): Promise<number> {
    for (const { data, destination } of records) {
      signal?.throwIfAborted();
      await this.send(data, destination, undefined, undefined);
    }
    return records.length;
  }

  /** Emulated: the peer's datagrams are the only ones received from now on. */
  connect(to: Destination<A>): Promise<void> {
    if (this.#closed) return Promise.reject(closedError("connect", to.label));
    this.#peer = to.addr;
    return Promise.resolve();
  }

  async membership(change: MembershipChange): Promise<void> {
    const { group, iface, what } = change;
    const key = `${group}%${iface ?? ""}`;
    if (!change.join) {
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
      membership = this.family === "ipv4"
        ? await this.#conn.joinMulticastV4(group, builtinInterfaceV4(iface, what))
        : await this.#conn.joinMulticastV6(group, builtinInterfaceV6(iface, what));
    } catch (err) {
      throw withContext(err, "joinMulticast", JSON.stringify(group));
    }
    this.#memberships.set(key, membership);
  }

  /** Deno sets it only through a membership, and only for IPv4. */
  async setMulticastTtl(ttl: number): Promise<void> {
    const membership = this.family === "ipv4" ? this.#memberships.values().next().value : undefined;
    if (!membership?.setTTL) {
      throw new Deno.errors.NotSupported(
        `setMulticastTtl ${this.label}: the built-in backend sets it only for IPv4, after ` +
          `joinMulticast(); open the socket with multicastTtl or backend: "ffi"`,
      );
    }
    await membership.setTTL(ttl);
  }

  /** Deno changes it only through a membership. */
  async setMulticastLoopback(on: boolean): Promise<void> {
    const membership = this.#memberships.values().next().value;
    if (!membership) {
      throw new Deno.errors.NotSupported(
        `setMulticastLoopback ${this.label}: the built-in backend changes it only after ` +
          `joinMulticast(); open the socket with multicastLoopback or backend: "ffi"`,
      );
    }
    await membership.setLoopback(on);
  }

  /** Deno always allows broadcast. */
  setBroadcast(on: boolean): void {
    if (!on) {
      throw new Deno.errors.NotSupported(
        `setBroadcast ${this.label}: the built-in backend always allows broadcast; ` +
          `open the socket with broadcast: false or backend: "ffi"`,
      );
    }
  }

  ref(): void {
    this.#userRef = true;
    this.#refresh();
  }

  unref(): void {
    this.#userRef = false;
    this.#refresh();
  }

  /** A receive in flight holds the process only for a ref'd socket that someone waits on. */
  #refresh(): void {
    const want = this.#userRef && (this.#queue.length > 0 || !this.#inFlight);
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
    this.#queue.close();
  }
}

function cut<A>(message: Message<A>, maxSize: number): Message<A> {
  if (message.data.length <= maxSize) return message;
  return { data: message.data.subarray(0, maxSize), from: message.from, truncated: true };
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
