// Link-layer sockets (AF_PACKET): `openPacket` and `LinkSocket`, which see
// and send whole frames on one interface. Public through `@bsd/sockets/raw`,
// which re-exports this file.

import { checkBusyPoll, PacketSocketBase } from "./_internal/packet_socket.ts";
import { FfiRecords } from "./_internal/ffi_records.ts";
import { explainDenied, notConnected } from "./_internal/socket_errors.ts";
import {
  checkBoolean,
  checkBuffer,
  checkInteger,
  checkInterfaceName,
  checkLinkAddress,
  checkObject,
  checkOptionalInteger,
  describeValue,
} from "./_internal/checks.ts";
import { type BpfProgram, validateFilter } from "./bpf.ts";
import { ETHER_TYPE_NUMBERS } from "./ffi/constants.ts";
import { describeAddress } from "./ffi/errors.ts";
import { encodeFilter } from "./ffi/filter.ts";
import { interfaceName, requireInterface } from "./ffi/interfaces.ts";
import { ringBlocks, useReceiveRing } from "./ffi/packet_ring.ts";
import { type Permit, permit, requireAnyNet, requirePermit } from "./ffi/permissions.ts";
import { checkBufferSizes } from "./_internal/buffer_sizes.ts";
import { decodeLink, encodeLink } from "./ffi/sockaddr.ts";
import { FdSocket } from "./ffi/socket.ts";
import { registerAdopter } from "./_internal/adopt.ts";
import type { LinkAddr } from "./types.ts";

/**
 * Options for {@linkcode openPacket}.
 *
 * @example IPv4 frames on eth0, cooked
 * ```ts
 * import type { PacketOptions } from "@bsd/sockets/raw";
 *
 * const options: PacketOptions = { interface: "eth0", protocol: "ipv4", cooked: true };
 * ```
 */
export interface PacketOptions {
  /** The interface to capture on and send through, such as `"eth0"`. */
  interface: string;
  /**
   * The EtherType to receive: `"all"` (the default, which includes frames
   * this host sends, as `packetType: "outgoing"`), `"ipv4"`, `"ipv6"`,
   * `"arp"`, or a number 1–65535.
   */
  protocol?: "all" | "ipv4" | "ipv6" | "arp" | number;
  /**
   * Receive and send the network-layer packet without the link-layer header
   * (`SOCK_DGRAM`); the kernel builds the header when sending, so a cooked
   * `send` needs a destination. Default `false`: whole frames (`SOCK_RAW`).
   */
  cooked?: boolean;
  /**
   * A BPF filter attached before the socket starts receiving, so it applies
   * from the very first frame (see {@linkcode LinkSocket.setFilter}).
   */
  filter?: BpfProgram;
  /**
   * Deliver each frame as soon as it arrives (as libpcap's immediate mode
   * does). By default frames are captured into a ring of memory shared with
   * the kernel and handed over in batches: a batch closes when its 1 MiB
   * block is full or 8 to 16 ms after its first frame. That costs no system
   * call and no wake-up per frame, which leaves the CPU to keep up with a
   * flood. Choose `immediate` when each frame's latency matters more.
   */
  immediate?: boolean;
  /**
   * Bytes of kernel memory where frames wait to be read: the ring's size
   * (whole MiB, default and minimum 4 MiB), or with `immediate` the socket's
   * receive buffer (`SO_RCVBUF`, where each frame also costs the kernel's
   * per-packet overhead; past `net.core.rmem_max` only with `CAP_NET_ADMIN`). A
   * burst longer than this is dropped and counted (see
   * {@linkcode LinkSocket.statistics}).
   */
  receiveBufferSize?: number;
  /**
   * The old name of {@linkcode PacketOptions.receiveBufferSize}, still taken.
   *
   * @deprecated Use `receiveBufferSize`, the name every socket type takes.
   */
  bufferSize?: number;
  /** The send buffer in bytes (`SO_SNDBUF`; past `net.core.wmem_max` only as root). */
  sendBufferSize?: number;
  /**
   * Microseconds a receive that finds no record keeps trying before it
   * waits, 0 to 10,000; default 0. A waiting receive is woken through one of
   * Deno's pool threads, a hand-off that costs more than the reply itself on
   * loopback; a spinning one takes a reply that lands within the budget at once, but holds the JS
   * thread (no timers, no other I/O) for up to this long per receive. It
   * yields its CPU between tries, so a peer on the same CPU still runs.
   * Frames from the ring come in batches anyway; this suits `immediate`.
   */
  busyPoll?: number;
}

/**
 * Opens an `AF_PACKET` socket on one interface: captures the frames of a
 * protocol that cross it, and sends frames through it.
 *
 * The socket is created listening to no protocol, gets its filter (if
 * `filter` is given), and only then is bound to the interface and protocol,
 * so it never sees a frame from another interface or one its filter would
 * have dropped. `from` on each message is the full {@linkcode LinkAddr}:
 * interface, index, EtherType, the sender's hardware address and the packet
 * type (`"outgoing"` for frames this host sent; a socket does not receive
 * the frames it sends itself, other sockets on the interface do).
 *
 * Frames are captured into a ring shared with the kernel and delivered in
 * batches, within 8 to 16 ms on a quiet link; `immediate: true` delivers each
 * frame at once, at a higher cost per frame (see {@linkcode PacketOptions}).
 *
 * Requires `--allow-ffi`, unscoped `--allow-net` (a packet socket sees and
 * reaches every host) and `CAP_NET_RAW`.
 *
 * @param options The interface, protocol, framing and filter.
 * @returns The open socket.
 * @throws {TypeError} For options of the wrong shape.
 * @throws {RangeError} For a protocol outside 1–65535, an interface name over
 * 15 bytes or an invalid filter (before any system call).
 * @throws {Deno.errors.NotCapable} Without `--allow-ffi` or `--allow-net`.
 * @throws {Deno.errors.PermissionDenied} Without `CAP_NET_RAW`, saying so.
 * @throws {Deno.errors.NotFound} When the interface does not exist.
 *
 * @example Capture one DNS packet on eth0
 * ```ts ignore
 * import { compileFilter, openPacket } from "@bsd/sockets/raw";
 *
 * using sock = openPacket({
 *   interface: "eth0",
 *   filter: compileFilter({ ipProtocol: "udp", port: 53 }, { link: "ethernet" }),
 * });
 * const message = await sock.receive();
 * console.log(message?.from?.address, message?.data.length);
 * ```
 */
export function openPacket(options: PacketOptions): LinkSocket {
  checkObject("openPacket: options", options);
  const name = checkInterfaceName("openPacket: interface", options.interface);
  const cooked = checkBoolean("openPacket: cooked", options.cooked) ?? false;
  const protocol = typeof options.protocol === "string"
    ? etherTypeByName(options.protocol)
    : checkInteger("openPacket: protocol", options.protocol ?? ETHER_TYPE_NUMBERS.all, 1, 0xffff);
  let filter: Uint8Array | undefined;
  if (options.filter !== undefined) {
    validateFilter(options.filter);
    filter = encodeFilter(options.filter);
  }
  const immediate = checkBoolean("openPacket: immediate", options.immediate) ?? false;
  const sizes = checkBufferSizes("openPacket", options);
  const oldSize = checkOptionalInteger("openPacket: bufferSize", options.bufferSize, 1, 2 ** 40);
  if (oldSize !== undefined && sizes.receive !== undefined) {
    throw new TypeError(
      "openPacket: give receiveBufferSize only; bufferSize is its deprecated old name",
    );
  }
  const receiveSize = sizes.receive ?? oldSize;
  const busyPoll = checkBusyPoll("openPacket", options.busyPoll);
  const label = describeAddress(name);
  requireAnyNet(`every host, for a packet socket on ${label}`);
  const ifindex = requireInterface(name, "openPacket");

  const decode = linkDecoder(ifindex, name);
  let sock: FdSocket<LinkAddr>;
  try {
    // Protocol 0: the socket receives nothing until bind names one.
    sock = FdSocket.open<LinkAddr>("packet", cooked ? "datagram" : "raw", 0, { label, decode });
  } catch (err) {
    throw explainDenied(err, "packet sockets need CAP_NET_RAW (run as root, or grant it)");
  }
  try {
    if (filter) sock.setOption("attachFilter", filter);
    if (!immediate) useReceiveRing(sock, ringBlocks(receiveSize));
    else if (receiveSize !== undefined) sock.setBufferSize("receive", receiveSize);
    if (sizes.send !== undefined) sock.setBufferSize("send", sizes.send);
    if (busyPoll !== undefined) sock.setBusyPoll(busyPoll);
    sock.bind(encodeLink({ ifindex, protocol }));
    return new LinkSocket(sock, sock.localAddress(decode), cooked);
  } catch (err) {
    sock.close();
    throw err;
  }
}

/** Decodes a `sockaddr_ll`, naming the interface (`name` for the bound one, known already). */
function linkDecoder(
  ifindex: number,
  name: string,
): (sockaddr: Uint8Array, length: number) => LinkAddr {
  return (sockaddr, length) => {
    const link = decodeLink(sockaddr, length) as LinkAddr;
    link.interface = link.ifindex === ifindex ? name : interfaceName(link.ifindex) ?? "";
    return link;
  };
}

function etherTypeByName(name: string): number {
  if (!Object.hasOwn(ETHER_TYPE_NUMBERS, name)) {
    throw new TypeError(
      `openPacket: protocol must be a number or one of ${
        Object.keys(ETHER_TYPE_NUMBERS).map((n) => JSON.stringify(n)).join(", ")
      }, got ${JSON.stringify(name)}`,
    );
  }
  return ETHER_TYPE_NUMBERS[name as keyof typeof ETHER_TYPE_NUMBERS];
}

/**
 * Counts from {@linkcode LinkSocket.statistics}.
 *
 * @example Report drops
 * ```ts
 * import type { PacketStatistics } from "@bsd/sockets/raw";
 *
 * function report(s: PacketStatistics): string {
 *   return `${s.received} received, ${s.dropped} dropped`;
 * }
 * ```
 */
export interface PacketStatistics {
  /** Frames that passed the filter and were queued to the socket. */
  received: number;
  /** Frames that passed the filter but were dropped: the receive queue was full. */
  dropped: number;
}

/**
 * An `AF_PACKET` socket bound to one interface, from {@linkcode openPacket}.
 *
 * Records are whole frames (or network-layer packets when cooked); `from` is
 * the frame's {@linkcode LinkAddr}. `send(frame)` puts a frame on the
 * interface as it is; `write(p)` is `send(p)`.
 *
 * @example Inject a broadcast frame
 * ```ts ignore
 * import { openPacket } from "@bsd/sockets/raw";
 *
 * using sock = openPacket({ interface: "veth0" });
 * const frame = new Uint8Array(60);
 * frame.fill(0xff, 0, 6); // destination: broadcast
 * frame.set(sock.localAddr.address, 6); // source: this interface
 * frame.set([0x88, 0xb5], 12); // EtherType: local experimental
 * await sock.send(frame);
 * ```
 */
export class LinkSocket extends PacketSocketBase<LinkAddr> {
  readonly #sock: FdSocket<LinkAddr>;
  readonly #local: LinkAddr;
  readonly #cooked: boolean;
  readonly #permit: Permit;

  /**
   * Not for users: {@linkcode openPacket} and `fromFd` build packet sockets.
   *
   * @param sock The bound socket, owned from then on.
   * @param local The interface it is bound to, as `localAddr` gives it.
   * @param cooked Whether it carries network-layer packets (`SOCK_DGRAM`).
   * @internal
   */
  constructor(sock: FdSocket<LinkAddr>, local: LinkAddr, cooked: boolean) {
    super(new FfiRecords(sock, { family: "packet", kind: cooked ? "datagram" : "raw" }));
    this.#sock = sock;
    this.#local = local;
    this.#cooked = cooked;
    this.#permit = permit(() =>
      requireAnyNet(`every host, for a packet socket on ${describeAddress(local.interface)}`)
    );
  }

  /** The interface this socket is bound to, with its hardware address and bound protocol. */
  get localAddr(): LinkAddr {
    return this.#local;
  }

  /**
   * Sends one frame (`sendto` with a `sockaddr_ll`). Without `to`, a whole
   * frame goes out on the bound interface as given. With `to`, its `ifindex`
   * (default: the bound one), `protocol` and `address` are used; a cooked
   * socket needs them to build the link-layer header. Never sends in part.
   *
   * Needs unscoped `--allow-net`, checked again after any
   * `Deno.permissions.revoke`, so a revoked permission takes effect on the next send.
   *
   * @param data The frame, link-layer header first unless cooked.
   * @param to Where to send: needed on cooked sockets.
   * @returns The number of bytes sent.
   * @throws {TypeError} For a buffer or address of the wrong shape.
   * @throws {Deno.errors.NotConnected} On a cooked socket when `to` is omitted:
   * a cooked socket has no destination of its own.
   * @throws {Deno.errors.NotCapable} Once unscoped net access is revoked.
   * @throws {RangeError} For an address field out of range.
   * @throws {Deno.errors.NotFound} When `to.ifindex` names no interface.
   * @throws {Deno.errors.BadResource} Once the socket is closed.
   * @throws {SocketError} `EMSGSIZE` for a frame over the interface's MTU.
   *
   * @example Send an IPv4 packet to a known MAC, cooked
   * ```ts ignore
   * import { openPacket } from "@bsd/sockets/raw";
   *
   * using sock = openPacket({ interface: "veth0", protocol: "ipv4", cooked: true });
   * const packet = new Uint8Array(20); // an IPv4 packet, built elsewhere
   * await sock.send(packet, { ...sock.localAddr, address: new Uint8Array([2, 0, 0, 0, 0, 1]) });
   * ```
   */
  send(data: Uint8Array, to?: LinkAddr): Promise<number> {
    try {
      checkBuffer(`send ${this.#sock.label}`, data);
      if (to === undefined) {
        if (this.#cooked && !this.#sock.closed) {
          throw notConnected(
            "send",
            this.#sock.label,
            "a cooked packet socket needs a destination (to.address and to.protocol) " +
              "to build the link-layer header",
          );
        }
        requirePermit(this.#permit);
        return this.#sock.send(data, null);
      }
      if (typeof to !== "object" || to === null) {
        throw new TypeError(
          `send ${this.#sock.label}: destination must be a LinkAddr, got ${describeValue(to)}`,
        );
      }
      const addr = encodeLink(checkLinkAddress(`send ${this.#sock.label}`, {
        ifindex: to.ifindex ?? this.#local.ifindex,
        protocol: to.protocol ?? this.#local.protocol,
        address: to.address,
      }));
      // Another interface than the bound one is looked up first, so that
      // one that does not exist gets the answer every type gives.
      if (to.ifindex !== undefined && to.ifindex !== this.#local.ifindex) {
        requireInterface(to.ifindex, "send");
      }
      requirePermit(this.#permit);
      return this.#sock.send(data, addr);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Attaches a classic BPF filter (`SO_ATTACH_FILTER`), replacing any other.
   * It sees the Ethernet header first (`compileFilter(match, { link:
   * "ethernet" })`), or the network header when cooked (`link: "cooked"`).
   * Frames already queued stay; pass `filter` to `openPacket` to filter from
   * the first frame.
   *
   * @param program The program, checked with `validateFilter` before the system call.
   * @throws {TypeError} For a program of the wrong shape.
   * @throws {RangeError} For an invalid program.
   * @throws {Deno.errors.BadResource} Once the socket is closed.
   *
   * @example Only UDP port 9999
   * ```ts ignore
   * import { compileFilter, openPacket } from "@bsd/sockets/raw";
   *
   * using sock = openPacket({ interface: "eth0" });
   * sock.setFilter(compileFilter({ ipProtocol: "udp", port: 9999 }, { link: "ethernet" }));
   * ```
   */
  setFilter(program: BpfProgram): void {
    validateFilter(program);
    this.#sock.setOption("attachFilter", encodeFilter(program));
  }

  /**
   * Frames received and dropped since the previous call, or since the socket
   * opened (`PACKET_STATISTICS`; reading resets the kernel's counters).
   *
   * @returns The counts.
   * @throws {Deno.errors.BadResource} Once the socket is closed.
   */
  statistics(): PacketStatistics {
    const { packets, drops } = this.#sock.getOption("packetStatistics");
    return { received: packets - drops, dropped: drops };
  }
}

// The fromFd part of this file: packet sockets become LinkSocket.
registerAdopter({
  matches: (d) => d.family === "packet" && (d.kind === "raw" || d.kind === "datagram"),
  adopt(d) {
    const bound = FdSocket.nameOf(d.fd, "getsockname", decodeLink)!;
    const name = interfaceName(bound.ifindex) ?? "";
    requireAnyNet(`every host, for a packet socket on ${describeAddress(name)}`);
    const decode = linkDecoder(bound.ifindex, name);
    const local = FdSocket.nameOf(d.fd, "getsockname", decode)!;
    d.take();
    const sock = new FdSocket<LinkAddr>(d.fd, { label: describeAddress(name), decode });
    return new LinkSocket(sock, local, d.kind === "datagram");
  },
});
