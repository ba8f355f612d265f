// UDP multicast: a group and an interface checked as the caller gave them,
// and the socket options that join, leave and steer multicast on the FFI
// engine. Private to the package.

import { checkInteger } from "./checks.ts";
import { parseIPv4, parseIPv6 } from "../ffi/sockaddr.ts";
import { requireInterface } from "../ffi/interfaces.ts";
import { errnoError } from "../ffi/errors.ts";
import type { FdSocket } from "../ffi/socket.ts";

/**
 * The address bytes of `group`, a multicast group of `family`.
 *
 * @throws {TypeError} For anything but a multicast address of that family.
 */
export function multicastGroup(group: unknown, family: "ipv4" | "ipv6", what: string): Uint8Array {
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

/**
 * An interface as given: a name, or an index 0 to 2^31-1.
 *
 * @throws {TypeError} For anything else, an empty name included.
 */
export function checkInterface(what: string, value: unknown): string | number {
  if (typeof value === "number") return checkInteger(what, value, 0, 0x7fffffff);
  if (typeof value === "string" && value !== "") return value;
  throw new TypeError(`${what} must be an interface name or index, got ${JSON.stringify(value)}`);
}

/**
 * The index of the interface `value` names; 0 stays 0, the kernel's choice.
 *
 * @throws {Deno.errors.NotFound} When no such interface exists.
 */
export function resolveInterface(value: string | number, what: string): number {
  return value === 0 ? 0 : requireInterface(value, what);
}

/** Whether multicast `sock` sends is delivered to members on this host too. */
export function setMulticastLoop(
  sock: FdSocket<unknown>,
  family: "ipv4" | "ipv6",
  on: boolean,
): void {
  if (family === "ipv4") sock.setOption("multicastLoop", on);
  else sock.setOption("ipv6MulticastLoop", on);
}

/** The TTL (IPv6: hop limit) of the multicast `sock` sends. */
export function setMulticastTtl(
  sock: FdSocket<unknown>,
  family: "ipv4" | "ipv6",
  ttl: number,
): void {
  if (family === "ipv4") sock.setOption("multicastTtl", ttl);
  else sock.setOption("ipv6MulticastHops", ttl);
}

/** The interface, by index, that `sock` sends multicast on. */
export function setMulticastInterface(
  sock: FdSocket<unknown>,
  family: "ipv4" | "ipv6",
  ifindex: number,
): void {
  if (family === "ipv4") sock.setOption("multicastInterface", ifindex);
  else sock.setOption("ipv6MulticastInterface", ifindex);
}

/**
 * Joins or leaves `group` (its address `bytes`) on interface `ifindex` (0:
 * the kernel's choice). A failure names the group, as the call was given it.
 *
 * @throws {Deno.errors.AddrNotAvailable} When leaving a group not joined.
 */
export function setMembership(
  sock: FdSocket<unknown>,
  family: "ipv4" | "ipv6",
  join: boolean,
  membership: { group: Uint8Array; ifindex: number },
  call: string,
  group: string,
): void {
  try {
    if (family === "ipv4") sock.setOption(join ? "addMembership" : "dropMembership", membership);
    else sock.setOption(join ? "ipv6JoinGroup" : "ipv6LeaveGroup", membership);
  } catch (err) {
    const errno = (err as { errno?: unknown }).errno;
    throw typeof errno === "number" ? errnoError(errno, call, JSON.stringify(group)) : err;
  }
}
