// setOption/getOption/tcpInfo as every FFI-backed class exposes them: the
// public name checked against the socket's family and type, the value
// checked, then the engine's option set or read. Private to the package.

import {
  INFO_NAMES,
  infoOptions,
  optionValueRule,
  readTcpInfo,
  resolveOption,
  type Shape,
  where,
} from "../ffi/options.ts";
import { checkInteger, checkInterfaceName } from "./checks.ts";
import type { ReceiveInfo, SocketOptionName, SocketOptions, TcpInfo } from "../types.ts";
import { closedError } from "../ffi/errors.ts";
import type { FdSocket } from "../ffi/socket.ts";
import { encodeFilter } from "../ffi/filter.ts";
import { type BpfProgram, validateFilter } from "../bpf.ts";

/**
 * `value` when it fits public option `name` (resolved already).
 *
 * @throws {TypeError} For a value of the wrong type.
 * @throws {RangeError} For a number out of the option's range.
 */
function checkOptionValue(
  name: SocketOptionName,
  value: unknown,
  call: string,
  label: string,
): SocketOptions[SocketOptionName] {
  const rule = optionValueRule(name);
  const what = `${where(call, label)}: ${name}`;
  if (rule.type === "boolean") {
    if (typeof value !== "boolean") throw new TypeError(`${what} must be a boolean`);
    return value;
  }
  // "" unbinds; anything else must be able to name an interface.
  if (rule.type === "interface") return value === "" ? value : checkInterfaceName(what, value);
  return checkInteger(what, value, rule.min, rule.max);
}

/** The error for an FFI-only call on the built-in backend. */
export function needsFfiBackend(call: string, label: string): Deno.errors.NotSupported {
  return new Deno.errors.NotSupported(
    `${call} ${label}: not supported on the built-in backend; open the socket with backend: "ffi"`,
  );
}

/**
 * Sets public option `name` on `sock` (null: the built-in backend), checked
 * before any system call.
 */
export function setSocketOption<K extends SocketOptionName>(
  sock: FdSocket<unknown> | null,
  shape: Shape,
  label: string,
  name: K,
  value: SocketOptions[K],
): void {
  const call = "setOption";
  if (sock === null) throw needsFfiBackend(call, label);
  const option = resolveOption(name, shape, call, label);
  checkOptionValue(name, value, call, label);
  if (sock.closed) throw closedError(call, label);
  if (option === "receiveBufferSize") sock.setBufferSize("receive", value as number);
  else if (option === "sendBufferSize") sock.setBufferSize("send", value as number);
  else sock.setOption(option, value as never);
}

/** Reads public option `name` of `sock` (null: the built-in backend). */
export function getSocketOption<K extends SocketOptionName>(
  sock: FdSocket<unknown> | null,
  shape: Shape,
  label: string,
  name: K,
): SocketOptions[K] {
  const call = "getOption";
  if (sock === null) throw needsFfiBackend(call, label);
  const option = resolveOption(name, shape, call, label, true);
  if (sock.closed) throw closedError(call, label);
  return sock.getOption(option) as SocketOptions[K];
}

/** `TCP_INFO` of a TCP connection's socket (null: the built-in backend). */
export function tcpInfoOf(sock: FdSocket<unknown> | null, label: string): TcpInfo {
  const call = "tcpInfo";
  if (sock === null) throw needsFfiBackend(call, label);
  if (sock.closed) throw closedError(call, label);
  return readTcpInfo(sock.fd, label);
}

/**
 * Attaches `program` (checked first) as the reuse-port group's steering
 * program: its return value is the index of the group member that gets the
 * datagram or connection (`SO_ATTACH_REUSEPORT_CBPF`).
 */
export function attachReusePortProgram(
  sock: FdSocket<unknown> | null,
  shape: Shape,
  label: string,
  program: BpfProgram,
): void {
  const call = "attachReusePortFilter";
  if (sock === null) throw needsFfiBackend(call, label);
  if (shape.family !== "ipv4" && shape.family !== "ipv6") {
    throw new Deno.errors.NotSupported(`${call} ${label}: reuse-port groups are TCP and UDP only`);
  }
  validateFilter(program);
  if (sock.closed) throw closedError(call, label);
  sock.setOption("attachReusePortFilter", encodeFilter(program));
}

/** `receiveInfo` checked: undefined, or the kinds asked for, each once. */
export function checkReceiveInfo(what: string, value: unknown): ReceiveInfo[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw new TypeError(`${what} must be an array of names`);
  for (const name of value) {
    if (!INFO_NAMES.includes(name)) {
      throw new TypeError(
        `${what}: ${JSON.stringify(name)} is not one of ${
          INFO_NAMES.map((n) => `"${n}"`).join(", ")
        }`,
      );
    }
  }
  return [...new Set(value as ReceiveInfo[])];
}

/** Turns on the options that make the kernel attach `names` to every record, and parses them. */
export function enableReceiveInfo(
  sock: FdSocket<unknown>,
  family: "ipv4" | "ipv6",
  names: readonly ReceiveInfo[],
): void {
  if (names.length === 0) return;
  for (const option of infoOptions(names, family)) sock.setOption(option, true);
  sock.setControl("info");
}
