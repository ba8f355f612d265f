// Network interfaces by name and by index: if_nametoindex and if_indextoname,
// and the error an unknown interface gives. The name arrives checked
// (`checkInterfaceName` in _internal/checks.ts).

import { IFNAMSIZ } from "./constants.ts";
import { libc } from "./libc.ts";

const encoder = new TextEncoder();

/** The index of the interface called `name` (`if_nametoindex`), or 0 when there is none. */
export function interfaceIndex(name: string): number {
  return libc().if_nametoindex(encoder.encode(`${name}\0`));
}

const nameBuffer = new Uint8Array(IFNAMSIZ);

/** The name of interface `index` (`if_indextoname`), or `null` when there is none. */
export function interfaceName(index: number): string | null {
  if (!Number.isInteger(index) || index <= 0 || index > 0xffffffff) return null;
  nameBuffer.fill(0);
  if (libc().if_indextoname(index, nameBuffer) === null) return null;
  const end = nameBuffer.indexOf(0);
  return new TextDecoder().decode(nameBuffer.subarray(0, end < 0 ? IFNAMSIZ : end));
}

/** The error for an interface that does not exist, naming it: the one answer every type gives. */
export function noSuchInterface(call: string, iface: string | number): Error {
  const name = typeof iface === "string" ? JSON.stringify(iface) : `index ${iface}`;
  return new Deno.errors.NotFound(`${call} ${name}: no such network interface`);
}

/**
 * The index of the interface `iface` names (a name, or an index that exists).
 *
 * @param iface An interface name, checked by {@linkcode checkInterfaceName}, or an index.
 * @param call The call, for the message.
 * @throws {Deno.errors.NotFound} When no such interface exists.
 */
export function requireInterface(iface: string | number, call: string): number {
  const index = typeof iface === "number"
    ? (interfaceName(iface) === null ? 0 : iface)
    : interfaceIndex(iface);
  if (index === 0) throw noSuchInterface(call, iface);
  return index;
}
