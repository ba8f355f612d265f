// The sockaddr codecs and IP address text. Arguments arrive checked (the one
// argument-check module is _internal/checks.ts); what is parsed here (address
// text, kernel-filled names) is refused when malformed. Pure: importing this
// file loads no native code.
//
// Layouts are Linux's, on which x86_64 and aarch64 agree. Ports, IP addresses
// and the EtherType are in network order; `sa_family`, `sin6_scope_id`,
// `sll_ifindex` and `sll_hatype` are in host order. Encoders return exactly the
// bytes to pass, so the socklen to pass with them is their `length`. Decoders
// read through a DataView cut to `len`, so no input can make them read past
// what the kernel filled.

import type { IpAddr, LinkAddr, NetAddr, UnixAddr } from "../types.ts";
import {
  AF_INET,
  AF_INET6,
  AF_NETLINK,
  AF_PACKET,
  AF_UNIX,
  HOST_LITTLE_ENDIAN,
} from "./constants.ts";
import { SOCKADDR_IN, SOCKADDR_IN6, SOCKADDR_LL, SOCKADDR_NL, SOCKADDR_UN } from "./structs.ts";

const encoder = new TextEncoder();
// ignoreBOM: a path may begin with U+FEFF, which is part of its name.
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

/** The size of `sll_addr`. */
/** `sll_pkttype` numbers (PACKET_HOST … PACKET_OUTGOING) are the indexes. */
export const PACKET_TYPES: readonly LinkAddr["packetType"][] = [
  "host",
  "broadcast",
  "multicast",
  "otherhost",
  "outgoing",
];
const LOCALHOST_V4 = "127.0.0.1";

/**
 * The bytes of a Unix socket name. A filesystem path is UTF-8. An abstract
 * name is a byte string, as Linux treats it: each character is one byte
 * (U+0000–U+00FF), so `"\0a\0\xff"` round-trips exactly; a character above
 * U+00FF in an abstract name is a `TypeError`.
 */
export function encodeUnixName(path: string): Uint8Array {
  if (!path.startsWith("\0")) return encoder.encode(path);
  const bytes = new Uint8Array(path.length);
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c > 0xff) {
      throw new TypeError(
        `abstract socket name must hold only characters U+0000-U+00FF (one byte each), ` +
          `got U+${c.toString(16).toUpperCase().padStart(4, "0")} in ${JSON.stringify(path)}`,
      );
    }
    bytes[i] = c;
  }
  return bytes;
}

// ---------------------------------------------------------------------------
// IP address text

/**
 * Parses dotted-quad IPv4 text into its 4 bytes.
 *
 * Exactly four decimal numbers 0–255. A number with a leading zero
 * (`"01.2.3.4"`) is refused, as glibc's `inet_pton` and Deno refuse it,
 * because `inet_aton` would read it as octal and the two readings differ.
 *
 * @throws {TypeError} naming the text when it is not such an address.
 */
export function parseIPv4(text: string): Uint8Array {
  if (typeof text !== "string") {
    throw new TypeError(`IPv4 address must be a string, got ${typeof text}`);
  }
  const bytes = ipv4Bytes(text);
  if (typeof bytes === "string") {
    throw new TypeError(`invalid IPv4 address ${JSON.stringify(text)}: ${bytes}`);
  }
  return bytes;
}

/** The 4 bytes of `text`, or why it is not an IPv4 address. */
function ipv4Bytes(text: string): Uint8Array | string {
  const parts = text.split(".");
  if (parts.length !== 4) return "expected 4 decimal numbers separated by dots";
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i];
    if (!/^[0-9]{1,3}$/.test(part)) {
      return `${JSON.stringify(part)} is not a decimal number of 1 to 3 digits`;
    }
    if (part.length > 1 && part[0] === "0") {
      return `${part} has a leading zero, which some parsers read as octal`;
    }
    const n = Number(part);
    if (n > 255) return `${n} is over 255`;
    out[i] = n;
  }
  return out;
}

/**
 * Parses IPv6 text (RFC 4291 section 2.2, with an optional RFC 4007 zone after
 * `%`) into its 16 bytes and the zone as written (`"3"`, `"lo"`).
 *
 * Accepts one `::`, groups of 1–4 hex digits in either case, and dotted-quad
 * IPv4 in the last 32 bits (`"::ffff:1.2.3.4"`). Brackets are not accepted.
 *
 * @throws {TypeError} naming the text when it is not such an address.
 */
export function parseIPv6(text: string): { bytes: Uint8Array; zone?: string } {
  if (typeof text !== "string") {
    throw new TypeError(`IPv6 address must be a string, got ${typeof text}`);
  }
  const fail = (why: string): never => {
    throw new TypeError(`invalid IPv6 address ${JSON.stringify(text)}: ${why}`);
  };
  let addr = text;
  let zone: string | undefined;
  const percent = text.indexOf("%");
  if (percent >= 0) {
    addr = text.slice(0, percent);
    zone = text.slice(percent + 1);
    if (zone === "") fail("the zone after % is empty");
  }
  const gap = addr.indexOf("::");
  if (gap >= 0 && addr.indexOf("::", gap + 2) >= 0) fail(`"::" may appear only once`);
  const head = gap < 0 ? addr : addr.slice(0, gap);
  const tail = gap < 0 ? "" : addr.slice(gap + 2);
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === "" ? [] : tail.split(":");
  // Only the group that ends the text may be dotted-quad IPv4.
  const front = groupWords(headGroups, gap < 0, fail);
  const back = groupWords(tailGroups, true, fail);
  const count = front.length + back.length;
  if (gap < 0 && count !== 8) fail(`expected 8 groups, got ${count}`);
  if (gap >= 0 && count > 7) fail(`"::" stands for at least one group, but ${count} are given`);
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  front.forEach((w, i) => view.setUint16(2 * i, w));
  back.forEach((w, i) => view.setUint16(2 * (8 - back.length + i), w));
  return zone === undefined ? { bytes } : { bytes, zone };
}

/** The 16-bit words of IPv6 groups; the last may be IPv4 when `endsText`. */
function groupWords(groups: string[], endsText: boolean, fail: (why: string) => never): number[] {
  const words: number[] = [];
  for (let i = 0; i < groups.length; i++) {
    const group = groups[i];
    if (endsText && i === groups.length - 1 && group.includes(".")) {
      const v4 = ipv4Bytes(group);
      if (typeof v4 === "string") return fail(`embedded IPv4 ${JSON.stringify(group)}: ${v4}`);
      words.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
    } else if (/^[0-9a-fA-F]{1,4}$/.test(group)) {
      words.push(parseInt(group, 16));
    } else {
      fail(`${JSON.stringify(group)} is not a group of 1 to 4 hex digits`);
    }
  }
  return words;
}

/**
 * Dotted-quad text of 4 bytes.
 *
 * @throws {RangeError} when `bytes` is not 4 bytes long.
 */
export function formatIPv4(bytes: Uint8Array): string {
  checkAddressBytes("IPv4", bytes, 4);
  return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
}

/**
 * Canonical IPv6 text of 16 bytes (RFC 5952): lower-case hex without leading
 * zeros; the longest run of two or more zero groups, the first of equals,
 * becomes `::`; an IPv4-mapped address ends in dotted quad
 * (`"::ffff:1.2.3.4"`). A non-zero `scopeId` is appended as `%N`.
 *
 * @throws {RangeError} when `bytes` is not 16 bytes long.
 */
export function formatIPv6(bytes: Uint8Array, scopeId = 0): string {
  checkAddressBytes("IPv6", bytes, 16);
  const zone = scopeId === 0 ? "" : `%${scopeId}`;
  let mapped = bytes[10] === 0xff && bytes[11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) mapped = bytes[i] === 0;
  if (mapped) return `::ffff:${formatIPv4(bytes.subarray(12))}${zone}`;
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((bytes[i] << 8) | bytes[i + 1]);
  let bestStart = -1;
  let bestLength = 1; // a single zero group is never compressed
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = (ws: number[]): string => ws.map((w) => w.toString(16)).join(":");
  if (bestStart < 0) return hex(words) + zone;
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLength))}${zone}`;
}

function checkAddressBytes(family: string, bytes: Uint8Array, size: number): void {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`${family} address must be a Uint8Array, got ${typeof bytes}`);
  }
  if (bytes.length !== size) {
    throw new RangeError(`${family} address must be ${size} bytes, got ${bytes.length}`);
  }
}

/** A parsed host: the family, the address bytes and the IPv6 zone if any. */
interface Host {
  family: "ipv4" | "ipv6";
  bytes: Uint8Array;
  zone?: string;
}

function parseHost(hostname: string): Host {
  if (typeof hostname !== "string") {
    throw new TypeError(`hostname must be a string, got ${typeof hostname}`);
  }
  // A colon can only be IPv6, and digits and dots only IPv4, so those get the
  // parser's precise reason; anything else is a name, which is not resolved.
  if (hostname.includes(":")) return { family: "ipv6", ...parseIPv6(hostname) };
  if (hostname === "localhost") return { family: "ipv4", bytes: parseIPv4(LOCALHOST_V4) };
  if (/^[0-9.]+$/.test(hostname)) return { family: "ipv4", bytes: parseIPv4(hostname) };
  throw new TypeError(`hostname must be an IP address, got ${JSON.stringify(hostname)}`);
}

/**
 * The family of an IP address literal. `"localhost"` counts as `"127.0.0.1"`;
 * any other name is refused, since the FFI engine does no DNS.
 *
 * @throws {TypeError} naming the hostname when it is not an IP address.
 */
export function ipFamily(hostname: string): "ipv4" | "ipv6" {
  return parseHost(hostname).family;
}

// ---------------------------------------------------------------------------
// Encoders

/** A zeroed sockaddr of `size` bytes with its family set. */
function newSockaddr(size: number, family: number): [Uint8Array, DataView] {
  const buf = new Uint8Array(size);
  const view = new DataView(buf.buffer);
  // Every sockaddr begins with its family.
  view.setUint16(SOCKADDR_IN.family, family, HOST_LITTLE_ENDIAN);
  return [buf, view];
}

/**
 * The `sockaddr_in` (16 B) or `sockaddr_in6` (28 B) for `hostname` and `port`.
 * Raw sockets pass port 0. An IPv6 zone that is a number is the scope id as
 * is; a zone that names an interface is turned into its index by
 * `resolveZone` (the engine passes `if_nametoindex`).
 *
 * @throws {TypeError} for a hostname that is not an IP address, a non-integer
 * port, or a zone name that cannot be resolved here.
 * @throws {Deno.errors.NotFound} for a zone that names no interface, naming it:
 * the answer every socket type gives an unknown interface.
 * @throws {RangeError} for a numeric zone over 2^32-1 (the port was checked with `checkPort`).
 */
export function encodeInet(
  hostname: string,
  port: number,
  resolveZone?: (name: string) => number,
): Uint8Array {
  const host = parseHost(hostname);
  if (host.family === "ipv4") {
    const [buf, view] = newSockaddr(SOCKADDR_IN.size, AF_INET);
    view.setUint16(SOCKADDR_IN.port, port);
    buf.set(host.bytes, SOCKADDR_IN.addr);
    return buf;
  }
  const [buf, view] = newSockaddr(SOCKADDR_IN6.size, AF_INET6);
  view.setUint16(SOCKADDR_IN6.port, port);
  buf.set(host.bytes, SOCKADDR_IN6.addr);
  if (host.zone !== undefined) {
    const scopeId = zoneIndex(host.zone, hostname, resolveZone);
    view.setUint32(SOCKADDR_IN6.scopeId, scopeId, HOST_LITTLE_ENDIAN);
  }
  return buf;
}

function zoneIndex(
  zone: string,
  hostname: string,
  resolveZone: ((name: string) => number) | undefined,
): number {
  if (/^[0-9]+$/.test(zone)) {
    const index = Number(zone);
    if (index > 0xffffffff) {
      throw new RangeError(
        `zone index ${zone} in ${JSON.stringify(hostname)} is over the limit of 4294967295`,
      );
    }
    return index;
  }
  if (resolveZone === undefined) {
    throw new TypeError(
      `zone ${JSON.stringify(zone)} in ${JSON.stringify(hostname)} names an interface, ` +
        `and no interface lookup is available here; give its index instead`,
    );
  }
  const index = resolveZone(zone);
  if (!Number.isInteger(index) || index <= 0 || index > 0xffffffff) {
    throw new Deno.errors.NotFound(
      `zone ${JSON.stringify(zone)} in ${JSON.stringify(hostname)}: no such network interface`,
    );
  }
  return index;
}

/**
 * The `sockaddr_un` for `path`: 2 + the path's bytes + a terminating NUL for a
 * filesystem path; 2 + the name's bytes (its leading NUL included, no
 * terminator) for an abstract name; just the family (2 bytes, which asks
 * `bind` to autobind) for `""`.
 *
 * The path was checked with `checkUnixPath` (_internal/checks.ts).
 *
 * @throws {TypeError} for a character above U+00FF in an abstract name.
 */
export function encodeUnix(path: string): Uint8Array {
  const name = encodeUnixName(path);
  const terminator = name.length > 0 && name[0] !== 0 ? 1 : 0;
  const [buf] = newSockaddr(SOCKADDR_UN.path + name.length + terminator, AF_UNIX);
  buf.set(name, SOCKADDR_UN.path);
  return buf;
}

/**
 * The `sockaddr_ll` (20 B) for a link-layer address whose fields were checked
 * with `checkLinkAddress` (_internal/checks.ts). `protocol` is the EtherType
 * in host order; `packetType` defaults to `"host"`, `hatype` to 0 and
 * `address` to none (the kernel ignores all three when sending).
 */
export function encodeLink(o: {
  ifindex: number;
  protocol: number;
  address?: Uint8Array;
  packetType?: LinkAddr["packetType"];
  hatype?: number;
}): Uint8Array {
  const address = o.address ?? new Uint8Array(0);
  const [buf, view] = newSockaddr(SOCKADDR_LL.size, AF_PACKET);
  view.setUint16(SOCKADDR_LL.protocol, o.protocol);
  view.setInt32(SOCKADDR_LL.ifindex, o.ifindex, HOST_LITTLE_ENDIAN);
  view.setUint16(SOCKADDR_LL.hatype, o.hatype ?? 0, HOST_LITTLE_ENDIAN);
  buf[SOCKADDR_LL.pkttype] = PACKET_TYPES.indexOf(o.packetType ?? "host");
  buf[SOCKADDR_LL.halen] = address.length;
  buf.set(address, SOCKADDR_LL.addr);
  return buf;
}

/**
 * A `sockaddr_nl`: the port id (`pid`, 0 for the kernel or, when binding, for
 * "assign one") and the multicast group bit mask, both in host order.
 *
 * Both were checked to be integers in 0–2^32-1.
 */
export function encodeNetlink(pid: number, groups: number): Uint8Array {
  const [buf, view] = newSockaddr(SOCKADDR_NL.size, AF_NETLINK);
  view.setUint32(SOCKADDR_NL.pid, pid, HOST_LITTLE_ENDIAN);
  view.setUint32(SOCKADDR_NL.groups, groups, HOST_LITTLE_ENDIAN);
  return buf;
}

// ---------------------------------------------------------------------------
// Decoders. `buf` is what the kernel filled and `len` the socklen it returned.
// The engine should receive into a 128-byte (sockaddr_storage) buffer: the
// kernel reports the full length even when it copied less.

/** A view of the first `len` bytes of `buf`, after checking both. */
function sockaddrView(buf: Uint8Array, len: number): DataView {
  if (!(buf instanceof Uint8Array)) {
    throw new TypeError(`sockaddr must be a Uint8Array, got ${typeof buf}`);
  }
  if (!Number.isInteger(len)) throw new TypeError(`sockaddr length must be an integer, got ${len}`);
  if (len < 0 || len > buf.length) {
    throw new RangeError(`sockaddr length must be between 0 and ${buf.length}, got ${len}`);
  }
  return new DataView(buf.buffer, buf.byteOffset, len);
}

function readFamily(view: DataView, expected: string): number {
  if (view.byteLength < 2) {
    throw new RangeError(
      `sockaddr length ${view.byteLength} is too short to hold an address family, ` +
        `expected ${expected}`,
    );
  }
  return view.getUint16(SOCKADDR_IN.family, HOST_LITTLE_ENDIAN);
}

function wrongFamily(family: number, expected: string): TypeError {
  return new TypeError(`expected an ${expected} sockaddr, got address family ${family}`);
}

function needLength(view: DataView, struct: string, size: number): void {
  if (view.byteLength < size) {
    throw new RangeError(
      `${struct} needs ${size} bytes, got a sockaddr length of ${view.byteLength}`,
    );
  }
}

function decodeHostPort(buf: Uint8Array, len: number): { hostname: string; port: number } {
  const view = sockaddrView(buf, len);
  const expected = "AF_INET or AF_INET6";
  const family = readFamily(view, expected);
  if (family === AF_INET) {
    needLength(view, "sockaddr_in", SOCKADDR_IN.size);
    const addr = buf.subarray(SOCKADDR_IN.addr, SOCKADDR_IN.addr + 4);
    return { hostname: formatIPv4(addr), port: view.getUint16(SOCKADDR_IN.port) };
  }
  if (family === AF_INET6) {
    needLength(view, "sockaddr_in6", SOCKADDR_IN6.size);
    const scopeId = view.getUint32(SOCKADDR_IN6.scopeId, HOST_LITTLE_ENDIAN);
    const addr = buf.subarray(SOCKADDR_IN6.addr, SOCKADDR_IN6.addr + 16);
    return { hostname: formatIPv6(addr, scopeId), port: view.getUint16(SOCKADDR_IN6.port) };
  }
  throw wrongFamily(family, expected);
}

/**
 * The TCP/UDP address in a `sockaddr_in` or `sockaddr_in6`. An IPv6 scope id
 * becomes a numeric zone (`"fe80::1%2"`); the flow label is dropped.
 *
 * @throws {TypeError} for another address family.
 * @throws {RangeError} when `len` is out of `0..buf.length` or too short.
 */
export function decodeInet(buf: Uint8Array, len: number, transport: "tcp" | "udp"): NetAddr {
  const { hostname, port } = decodeHostPort(buf, len);
  return { transport, hostname, port };
}

/**
 * The raw-socket address in a `sockaddr_in` or `sockaddr_in6`; the port field
 * (the protocol, on raw sockets) is ignored.
 *
 * @throws {TypeError} for another address family.
 * @throws {RangeError} when `len` is out of `0..buf.length` or too short.
 */
export function decodeIp(buf: Uint8Array, len: number): IpAddr {
  return { transport: "ip", hostname: decodeHostPort(buf, len).hostname };
}

/**
 * The Unix address in a `sockaddr_un`: `""` for an unnamed socket (`len` 0 or
 * 2); `"\0"` followed by one character per byte for an abstract name (the
 * inverse of {@linkcode encodeUnixName}); otherwise the UTF-8 path up to the
 * first NUL.
 *
 * @throws {TypeError} for another address family, or a path that is not UTF-8.
 * @throws {RangeError} when `len` is 1, over 111, or out of `0..buf.length`.
 */
export function decodeUnix(
  buf: Uint8Array,
  len: number,
  transport: UnixAddr["transport"],
): UnixAddr {
  const view = sockaddrView(buf, len);
  if (len === 0) return { transport, path: "" };
  const family = readFamily(view, "AF_UNIX");
  if (family !== AF_UNIX) throw wrongFamily(family, "AF_UNIX");
  // The kernel counts the NUL after a 108-byte path, one past the struct.
  if (len > SOCKADDR_UN.size + 1) {
    throw new RangeError(
      `sockaddr_un length must be at most ${SOCKADDR_UN.size + 1}, got ${len}`,
    );
  }
  if (len === SOCKADDR_UN.path) return { transport, path: "" };
  if (buf[SOCKADDR_UN.path] === 0) {
    if (len > SOCKADDR_UN.size) {
      throw new RangeError(
        `an abstract sockaddr_un is at most ${SOCKADDR_UN.size} bytes, got a length of ${len}`,
      );
    }
    return {
      transport,
      path: "\0" + String.fromCharCode(...buf.subarray(SOCKADDR_UN.path + 1, len)),
    };
  }
  let bytes = buf.subarray(SOCKADDR_UN.path, Math.min(len, SOCKADDR_UN.size));
  const nul = bytes.indexOf(0);
  if (nul >= 0) bytes = bytes.subarray(0, nul);
  const path = utf8.decode(bytes);
  // A path that is not UTF-8 has no faithful string form, and the lossy one
  // would name another file. Checked without a fatal decoder: its exception
  // costs more than this on the rare path that holds U+FFFD.
  if (path.includes("\uFFFD") && !sameBytes(encoder.encode(path), bytes)) {
    throw new TypeError(`socket path is not valid UTF-8: ${JSON.stringify(path)}`);
  }
  return { transport, path };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The link-layer address in a `sockaddr_ll`, without the interface name (the
 * engine adds it). `len` may be as short as 12 + `sll_halen`, as
 * `getsockname` reports it, and a hardware address may exceed 8 bytes when
 * `len` covers it.
 *
 * @throws {TypeError} for another address family.
 * @throws {RangeError} when `len` does not cover the address, for a negative
 * ifindex, for a packet type other than host…outgoing, or when `len` is out of
 * `0..buf.length`.
 */
export function decodeLink(buf: Uint8Array, len: number): Omit<LinkAddr, "interface"> {
  const view = sockaddrView(buf, len);
  const family = readFamily(view, "AF_PACKET");
  if (family !== AF_PACKET) throw wrongFamily(family, "AF_PACKET");
  needLength(view, "sockaddr_ll", SOCKADDR_LL.addr);
  const halen = buf[SOCKADDR_LL.halen];
  if (SOCKADDR_LL.addr + halen > len) {
    throw new RangeError(
      `sockaddr_ll hardware address of ${halen} bytes runs past the sockaddr length of ${len}`,
    );
  }
  const ifindex = view.getInt32(SOCKADDR_LL.ifindex, HOST_LITTLE_ENDIAN);
  if (ifindex < 0) throw new RangeError(`sockaddr_ll ifindex must not be negative, got ${ifindex}`);
  const pkttype = buf[SOCKADDR_LL.pkttype];
  const packetType = PACKET_TYPES[pkttype] as LinkAddr["packetType"] | undefined;
  if (packetType === undefined) {
    throw new RangeError(
      `sockaddr_ll packet type must be 0 to ${PACKET_TYPES.length - 1}, got ${pkttype}`,
    );
  }
  return {
    transport: "packet",
    ifindex,
    protocol: view.getUint16(SOCKADDR_LL.protocol),
    address: buf.slice(SOCKADDR_LL.addr, SOCKADDR_LL.addr + halen),
    packetType,
  };
}

/**
 * The port id and group mask in a `sockaddr_nl`.
 *
 * @throws {TypeError} for another address family.
 * @throws {RangeError} when `len` is out of `0..buf.length` or too short.
 */
export function decodeNetlink(buf: Uint8Array, len: number): { pid: number; groups: number } {
  const view = sockaddrView(buf, len);
  const family = readFamily(view, "AF_NETLINK");
  if (family !== AF_NETLINK) throw wrongFamily(family, "AF_NETLINK");
  needLength(view, "sockaddr_nl", SOCKADDR_NL.size);
  return {
    pid: view.getUint32(SOCKADDR_NL.pid, HOST_LITTLE_ENDIAN),
    groups: view.getUint32(SOCKADDR_NL.groups, HOST_LITTLE_ENDIAN),
  };
}
