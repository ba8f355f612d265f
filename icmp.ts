/**
 * ICMP and IPv4 header codecs for raw sockets: the Internet checksum, echo
 * request/reply messages (ping) for ICMPv4 and ICMPv6, any ICMP message's
 * fixed header, and the IPv4 header a raw IPv4 socket delivers before the
 * payload.
 *
 * Pure functions: no I/O, no permission, no native code. Decoders return views
 * into the bytes given (not copies), check every length before reading, and
 * throw `RangeError` for malformed input rather than return a wrong value.
 *
 * @example Build a ping and read the reply a raw IPv4 socket received
 * ```ts
 * import { decodeEcho, decodeIPv4Header, encodeEcho } from "@bsd/sockets/icmp";
 *
 * const request = encodeEcho({ id: 0x1234, sequence: 1, data: new Uint8Array([1, 2, 3]) });
 * // send `request` with a raw ICMP socket; it receives an IPv4 header, then the reply:
 * function onReceive(datagram: Uint8Array): void {
 *   const ip = decodeIPv4Header(datagram);
 *   const reply = decodeEcho(ip.payload); // null for other ICMP messages
 *   if (reply?.type === "reply" && reply.id === 0x1234 && reply.checksumValid) {
 *     console.log(`reply ${reply.sequence} from ${ip.source}, ttl ${ip.ttl}`);
 *   }
 * }
 * ```
 *
 * @module
 */

import { checkBuffer, checkInteger, checkObject } from "./_internal/checks.ts";
import { IPPROTO_ICMPV6 } from "./ffi/constants.ts";
import { formatIPv4, parseIPv6 } from "./ffi/sockaddr.ts";

const ECHO_TYPES = {
  ipv4: { request: 8, reply: 0 },
  ipv6: { request: 128, reply: 129 },
} as const;
/** The most echo data one IP datagram carries: 65,535 less the IP and ICMP headers. */
const MAX_ECHO_DATA = { ipv4: 65535 - 20 - 8, ipv6: 65535 - 8 } as const;

/**
 * The Internet checksum of RFC 1071: the ones' complement of the ones'
 * complement sum of `data` taken as big-endian 16-bit words, an odd last byte
 * padded with a zero byte.
 *
 * Checksumming a message that holds a correct checksum gives 0, which is how
 * a receiver checks one.
 *
 * @param data The bytes to sum.
 * @param initial A partial sum to start from, not complemented: for example
 * the sum of a pseudo-header's 16-bit words. 0 when not given.
 * @returns The checksum, 0 to 0xffff, ready to store big-endian.
 * @throws {TypeError} If `data` is not a Uint8Array over a plain ArrayBuffer,
 * or `initial` is not an integer.
 * @throws {RangeError} If `initial` is negative or over 0xffffffff.
 *
 * @example The example from RFC 1071
 * ```ts
 * import { checksum } from "@bsd/sockets/icmp";
 *
 * const sum = checksum(new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]));
 * console.log(sum.toString(16)); // "220d"
 * ```
 */
export function checksum(data: Uint8Array, initial = 0): number {
  checkBuffer("checksum", data);
  checkInteger("checksum: initial", initial, 0, 0xffffffff);
  return ~fold(sum16(data, initial)) & 0xffff;
}

function sum16(data: Uint8Array, sum: number): number {
  const end = data.length - 1;
  let i = 0;
  for (; i < end; i += 2) sum += (data[i] << 8) | data[i + 1];
  if (i === end) sum += data[i] << 8;
  return sum;
}

// Adds the carries back in; division, not shifts, since the sum may pass 2^32.
function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

/**
 * The IPv6 addresses an ICMPv6 checksum covers, through the pseudo-header of
 * RFC 8200 section 8.1.
 *
 * @example Loopback to loopback
 * ```ts
 * import type { IcmpAddresses } from "@bsd/sockets/icmp";
 *
 * const addresses: IcmpAddresses = { source: "::1", destination: "::1" };
 * ```
 */
export interface IcmpAddresses {
  /** The source IPv6 address, as text. */
  source: string;
  /** The destination IPv6 address, as text. */
  destination: string;
}

/**
 * What {@linkcode encodeEcho} builds.
 *
 * @example A second ICMPv6 echo request
 * ```ts
 * import type { EchoOptions } from "@bsd/sockets/icmp";
 *
 * const options: EchoOptions = { family: "ipv6", id: 7, sequence: 2 };
 * ```
 */
export interface EchoOptions extends Partial<IcmpAddresses> {
  /** ICMPv4 (types 8 and 0, the default) or ICMPv6 (types 128 and 129). */
  family?: "ipv4" | "ipv6";
  /** `"request"` (the default) or `"reply"`. */
  type?: "request" | "reply";
  /** The identifier, 0–65535, that matches replies to requests. */
  id: number;
  /** The sequence number, 0–65535. */
  sequence: number;
  /** The data to carry (echoed back by the peer); empty when not given. */
  data?: Uint8Array;
}

/**
 * Encodes an ICMP echo request or reply.
 *
 * For ICMPv4 the checksum is filled in. For ICMPv6 it is left 0 unless
 * `source` and `destination` are given: Linux computes the checksum of every
 * message sent on a raw ICMPv6 socket itself (it covers a pseudo-header with
 * both addresses, which the sender may not know before routing), so 0 is what
 * such a socket expects. Needs no permission.
 *
 * @param options The message: family, type, id, sequence and data.
 * @returns A new buffer with the 8-byte header and the data.
 * @throws {TypeError} For a wrong shape: `data` not a plain Uint8Array, an
 * unknown family or type, addresses with ICMPv4 or only one of them, or an
 * address that is not IPv6 text.
 * @throws {RangeError} For an id or sequence outside 0–65535, or data longer
 * than one datagram carries (65,507 bytes for ICMPv4, 65,527 for ICMPv6).
 *
 * @example An echo request with a payload
 * ```ts
 * import { encodeEcho } from "@bsd/sockets/icmp";
 *
 * const message = encodeEcho({ id: 1, sequence: 1, data: new TextEncoder().encode("hi") });
 * console.log(message.length); // 10
 * ```
 */
export function encodeEcho(options: EchoOptions): Uint8Array {
  checkObject("encodeEcho: options", options);
  const family = checkFamily(options.family, "encodeEcho");
  const type = options.type ?? "request";
  if (type !== "request" && type !== "reply") {
    throw new TypeError(
      `encodeEcho: type must be "request" or "reply", got ${JSON.stringify(type)}`,
    );
  }
  const id = checkInteger("encodeEcho: id", options.id, 0, 0xffff);
  const sequence = checkInteger("encodeEcho: sequence", options.sequence, 0, 0xffff);
  const data = options.data === undefined
    ? new Uint8Array(0)
    : checkBuffer("encodeEcho: data", options.data);
  if (data.length > MAX_ECHO_DATA[family]) {
    throw new RangeError(
      `encodeEcho: data is ${data.length} bytes, over the limit of ${MAX_ECHO_DATA[family]} for ${
        family === "ipv4" ? "ICMPv4" : "ICMPv6"
      }`,
    );
  }
  const pseudo = pseudoHeaderSum(options, family, 8 + data.length, "encodeEcho");
  const message = new Uint8Array(8 + data.length);
  const view = new DataView(message.buffer);
  message[0] = ECHO_TYPES[family][type];
  view.setUint16(4, id);
  view.setUint16(6, sequence);
  message.set(data, 8);
  // ICMPv6 sums a pseudo-header too; without the addresses the kernel fills it in.
  if (family === "ipv4" || pseudo !== null) view.setUint16(2, checksum(message, pseudo ?? 0));
  return message;
}

function checkFamily(family: unknown, where: string): "ipv4" | "ipv6" {
  if (family === undefined) return "ipv4";
  if (family === "ipv4" || family === "ipv6") return family;
  throw new TypeError(`${where}: family must be "ipv4" or "ipv6", got ${JSON.stringify(family)}`);
}

/**
 * The sum of the ICMPv6 pseudo-header's words, or null when no addresses
 * were given (and the checksum cannot be computed here).
 */
function pseudoHeaderSum(
  addresses: Partial<IcmpAddresses> | undefined,
  family: "ipv4" | "ipv6",
  length: number,
  where: string,
): number | null {
  if (addresses === undefined) return null;
  if (typeof addresses !== "object" || addresses === null) {
    throw new TypeError(`${where}: addresses must be an object, got ${String(addresses)}`);
  }
  const { source, destination } = addresses;
  if (source === undefined && destination === undefined) return null;
  if (family === "ipv4") {
    throw new TypeError(
      `${where}: source and destination are for ICMPv6; an ICMPv4 checksum covers no addresses`,
    );
  }
  if (source === undefined || destination === undefined) {
    throw new TypeError(`${where}: give both source and destination, or neither`);
  }
  let sum = sum16(parseIPv6(source).bytes, 0);
  sum = sum16(parseIPv6(destination).bytes, sum);
  return sum + Math.floor(length / 0x10000) + (length & 0xffff) + IPPROTO_ICMPV6;
}

/**
 * A decoded ICMP echo request or reply.
 *
 * @example Match a reply to its request
 * ```ts
 * import type { Echo } from "@bsd/sockets/icmp";
 *
 * function answers(reply: Echo, id: number, sequence: number): boolean {
 *   return reply.type === "reply" && reply.id === id && reply.sequence === sequence;
 * }
 * ```
 */
export interface Echo {
  /** Whether this is a request or a reply. */
  type: "request" | "reply";
  /** The identifier. */
  id: number;
  /** The sequence number. */
  sequence: number;
  /** The data after the 8-byte header: a view into the decoded bytes. */
  data: Uint8Array;
  /**
   * Whether the checksum is correct; `null` for ICMPv6 decoded without its
   * addresses, since its checksum covers them (Linux has already dropped
   * ICMPv6 messages with a bad checksum before a raw socket sees them).
   */
  checksumValid: boolean | null;
}

/**
 * Decodes an ICMP echo request or reply: the ICMP message itself, so for a raw
 * IPv4 socket first take the `payload` of {@linkcode decodeIPv4Header}.
 *
 * Another kind of ICMP message (an error, a router advertisement, …) gives
 * `null`, so a receive loop can skip it; {@linkcode decodeIcmp} reads any
 * kind. The code byte is not checked (RFC 792 and RFC 4443 set it to 0).
 *
 * @param bytes The ICMP message.
 * @param family `"ipv4"` (the default) or `"ipv6"`.
 * @param addresses For ICMPv6, the addresses whose pseudo-header the checksum
 * covers; without them `checksumValid` is `null`.
 * @returns The echo's type, id, sequence, data and checksum verdict, or
 * `null` when the message is not an echo request or reply.
 * @throws {TypeError} If `bytes` is not a plain Uint8Array, or for an unknown
 * family or a bad address.
 * @throws {RangeError} If `bytes` is under 8 bytes, which no ICMP message is.
 *
 * @example Round-trip an echo request
 * ```ts
 * import { decodeEcho, encodeEcho } from "@bsd/sockets/icmp";
 *
 * const echo = decodeEcho(encodeEcho({ id: 9, sequence: 3 }))!;
 * console.log(echo.type, echo.id, echo.sequence, echo.checksumValid); // request 9 3 true
 * ```
 */
export function decodeEcho(
  bytes: Uint8Array,
  family?: "ipv4" | "ipv6",
  addresses?: IcmpAddresses,
): Echo | null {
  const message = decodeMessage(bytes, family, addresses, "decodeEcho", 8);
  const types = ECHO_TYPES[message.family];
  let type: "request" | "reply";
  if (message.type === types.request) type = "request";
  else if (message.type === types.reply) type = "reply";
  else return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, 8);
  return {
    type,
    id: view.getUint16(4),
    sequence: view.getUint16(6),
    data: bytes.subarray(8),
    checksumValid: message.checksumValid,
  };
}

/**
 * The fixed part of any ICMP or ICMPv6 message.
 *
 * @example Tell an error from an echo
 * ```ts
 * import type { IcmpMessage } from "@bsd/sockets/icmp";
 *
 * function isUnreachable(m: IcmpMessage): boolean {
 *   return m.type === 3; // ICMPv4 destination unreachable
 * }
 * ```
 */
export interface IcmpMessage {
  /** The message type, such as 0 (echo reply), 3 (destination unreachable) or 128. */
  type: number;
  /** The code, which refines the type. */
  code: number;
  /** The checksum as carried. */
  checksum: number;
  /** Whether the checksum is correct; `null` for ICMPv6 decoded without its addresses. */
  checksumValid: boolean | null;
  /**
   * Everything after the 4-byte type, code and checksum: a view into the
   * decoded bytes. For an error message, 4 bytes of type-specific data, then
   * the start of the datagram that caused it.
   */
  body: Uint8Array;
}

/**
 * Decodes the type, code and checksum of any ICMP or ICMPv6 message, and
 * checks the checksum.
 *
 * @param bytes The ICMP message (for a raw IPv4 socket, the `payload` of
 * {@linkcode decodeIPv4Header}).
 * @param family `"ipv4"` (the default) or `"ipv6"`.
 * @param addresses For ICMPv6, the addresses whose pseudo-header the checksum
 * covers; without them `checksumValid` is `null`.
 * @returns The type, code, checksum, verdict and body.
 * @throws {TypeError} If `bytes` is not a plain Uint8Array, or for an unknown
 * family or a bad address.
 * @throws {RangeError} If `bytes` is under 4 bytes.
 *
 * @example Decode a port-unreachable error
 * ```ts
 * import { checksum, decodeIcmp } from "@bsd/sockets/icmp";
 *
 * const error = new Uint8Array(8);
 * error[0] = 3; // destination unreachable
 * error[1] = 3; // port unreachable
 * new DataView(error.buffer).setUint16(2, checksum(error));
 * const m = decodeIcmp(error);
 * console.log(m.type, m.code, m.checksumValid); // 3 3 true
 * ```
 */
export function decodeIcmp(
  bytes: Uint8Array,
  family?: "ipv4" | "ipv6",
  addresses?: IcmpAddresses,
): IcmpMessage {
  const { type, code, checksum, checksumValid } = decodeMessage(
    bytes,
    family,
    addresses,
    "decodeIcmp",
    4,
  );
  return { type, code, checksum, checksumValid, body: bytes.subarray(4) };
}

function decodeMessage(
  bytes: Uint8Array,
  family: unknown,
  addresses: IcmpAddresses | undefined,
  where: string,
  minimum: number,
): Omit<IcmpMessage, "body"> & { family: "ipv4" | "ipv6" } {
  checkBuffer(where, bytes);
  const fam = checkFamily(family, where);
  const pseudo = pseudoHeaderSum(addresses, fam, bytes.length, where);
  if (bytes.length < minimum) {
    throw new RangeError(
      `${where}: the message is ${bytes.length} bytes, under the minimum of ${minimum}`,
    );
  }
  const checksumValid = fam === "ipv4" || pseudo !== null
    ? checksum(bytes, pseudo ?? 0) === 0
    : null;
  return {
    family: fam,
    type: bytes[0],
    code: bytes[1],
    checksum: (bytes[2] << 8) | bytes[3],
    checksumValid,
  };
}

/**
 * A decoded IPv4 header (RFC 791), as a raw IPv4 socket receives it before
 * the payload.
 *
 * @example Skip fragments
 * ```ts
 * import type { IPv4Header } from "@bsd/sockets/icmp";
 *
 * function isFragment(h: IPv4Header): boolean {
 *   return (h.flags & 1) === 1 || h.fragmentOffset > 0;
 * }
 * ```
 */
export interface IPv4Header {
  /** Always 4. */
  version: number;
  /** The header length in bytes, options included: 20 to 60. */
  headerLength: number;
  /** The type-of-service byte (DSCP and ECN). */
  tos: number;
  /** The datagram length in bytes, header included, as the header states it. */
  totalLength: number;
  /** The identification, used to reassemble fragments. */
  id: number;
  /** The 3 flag bits: 4 reserved, 2 don't fragment, 1 more fragments. */
  flags: number;
  /** Where this fragment's data belongs in the datagram, in bytes (the field × 8). */
  fragmentOffset: number;
  /** The time to live. */
  ttl: number;
  /** The protocol of the payload: 1 ICMP, 6 TCP, 17 UDP, … */
  protocol: number;
  /** The header checksum as carried. */
  checksum: number;
  /** Whether the header checksum is correct. */
  checksumValid: boolean;
  /** The source address, dotted quad. */
  source: string;
  /** The destination address, dotted quad. */
  destination: string;
  /** The option bytes between the 20-byte header and the payload (often empty): a view. */
  options: Uint8Array;
  /** The datagram after the header, up to `totalLength`: a view. */
  payload: Uint8Array;
}

/**
 * Decodes the IPv4 header at the start of `bytes`, and finds the payload.
 *
 * The payload ends at the header's total length. Bytes past it (link-layer
 * padding of a short frame) are ignored. A buffer shorter than the total
 * length is a truncated read, since Linux hands raw sockets the whole
 * datagram: that is a `RangeError` naming both lengths, never a short payload.
 *
 * @param bytes The datagram, as a raw IPv4 socket or `AF_PACKET` cooked socket receives it.
 * @returns The header's fields, its options and the payload.
 * @throws {TypeError} If `bytes` is not a plain Uint8Array.
 * @throws {RangeError} If the version is not 4, the header length is under 20
 * or past the buffer, or the total length is under the header length or past
 * the buffer.
 *
 * @example A textbook header with a correct checksum
 * ```ts
 * import { decodeIPv4Header } from "@bsd/sockets/icmp";
 *
 * const datagram = new Uint8Array([
 *   0x45, 0x00, 0x00, 0x1c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x01, 0x20, 0x99,
 *   0x7f, 0x00, 0x00, 0x01, 0x7f, 0x00, 0x00, 0x01,
 *   0x08, 0x00, 0xf7, 0xfe, 0x00, 0x01, 0x00, 0x00,
 * ]);
 * const h = decodeIPv4Header(datagram);
 * console.log(h.source, h.protocol, h.checksumValid, h.payload.length); // 127.0.0.1 1 true 8
 * ```
 */
export function decodeIPv4Header(bytes: Uint8Array): IPv4Header {
  checkBuffer("decodeIPv4Header", bytes);
  if (bytes.length < 20) {
    throw new RangeError(
      `decodeIPv4Header: an IPv4 header needs at least 20 bytes, got ${bytes.length}`,
    );
  }
  const version = bytes[0] >> 4;
  if (version !== 4) {
    throw new RangeError(`decodeIPv4Header: IP version is ${version}, not 4`);
  }
  const headerLength = (bytes[0] & 0x0f) * 4;
  if (headerLength < 20) {
    throw new RangeError(
      `decodeIPv4Header: header length is ${headerLength} bytes, under the minimum of 20`,
    );
  }
  if (headerLength > bytes.length) {
    throw new RangeError(
      `decodeIPv4Header: header length is ${headerLength} bytes, past the ${bytes.length} received`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, headerLength);
  const totalLength = view.getUint16(2);
  if (totalLength < headerLength) {
    throw new RangeError(
      `decodeIPv4Header: total length ${totalLength} is under the header length ${headerLength}`,
    );
  }
  if (totalLength > bytes.length) {
    throw new RangeError(
      `decodeIPv4Header: total length is ${totalLength} bytes but only ${bytes.length} ` +
        `were received: the read was truncated`,
    );
  }
  const header = bytes.subarray(0, headerLength);
  const fragment = view.getUint16(6);
  return {
    version,
    headerLength,
    tos: bytes[1],
    totalLength,
    id: view.getUint16(4),
    flags: fragment >> 13,
    fragmentOffset: (fragment & 0x1fff) * 8,
    ttl: bytes[8],
    protocol: bytes[9],
    checksum: view.getUint16(10),
    checksumValid: checksum(header) === 0,
    source: formatIPv4(bytes.subarray(12, 16)),
    destination: formatIPv4(bytes.subarray(16, 20)),
    options: bytes.subarray(20, headerLength),
    payload: bytes.subarray(headerLength, totalLength),
  };
}
