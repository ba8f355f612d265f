// Ancillary data (control messages), encoded and parsed in one place: the
// descriptors of SCM_RIGHTS, the credentials of SCM_CREDENTIALS, and the
// per-packet information the receive-info options ask for.

import {
  IP_PKTINFO,
  IP_TOS,
  IP_TTL,
  IPV6_HOPLIMIT,
  IPV6_PKTINFO,
  IPV6_TCLASS,
  SCM_CREDENTIALS,
  SCM_MAX_FD,
  SCM_RIGHTS,
  SCM_TIMESTAMPNS,
  SOL_IP,
  SOL_IPV6,
  SOL_SOCKET,
} from "./constants.ts";
import type { Message } from "../types.ts";
import { formatIPv4, formatIPv6 } from "./sockaddr.ts";
import {
  cmsgAlign,
  CMSGHDR,
  cmsgLen,
  cmsgSpace,
  type Credentials,
  decodeUcred,
  IN6_PKTINFO,
  IN_PKTINFO,
  TIMESPEC,
  UCRED,
} from "./structs.ts";

/**
 * The ancillary data receives ask for: descriptors, descriptors and
 * credentials (Unix), or per-packet information (IP: TTL, TOS,
 * destination, timestamp, as the receive-info options turned on).
 */
export type Control = "fds" | "fds+credentials" | "info";

/** Room for credentials and the most descriptors one message can carry. */
export const CONTROL_SIZE = cmsgSpace(UCRED.size) + cmsgSpace(SCM_MAX_FD * 4);

/** What a received record may carry once receive info was asked for. */
export type PacketInfo = Pick<
  Message<unknown>,
  "ttl" | "hopLimit" | "tos" | "trafficClass" | "destination" | "timestamp"
>;

/** What control data adds to a received record. */
export interface ControlData extends PacketInfo {
  fds?: number[];
  credentials?: Credentials;
}

/**
 * Parses the `length` bytes of control data at `base` of `v` (at most
 * {@linkcode CONTROL_SIZE}) into `into`: descriptors always (they are open
 * and must be closed by someone), credentials and packet information only
 * where `control` asked for them.
 */
export function parseControl(
  v: DataView,
  base: number,
  length: number,
  control: Control | undefined,
  into: ControlData,
): void {
  const end = base + Math.min(length, CONTROL_SIZE);
  let off = base;
  while (off + CMSGHDR.size <= end) {
    // cmsg_len is a size_t; a high half other than 0 is malformed.
    const cmsgLength = v.getUint32(off + CMSGHDR.len + 4, true) === 0
      ? v.getUint32(off + CMSGHDR.len, true)
      : 0;
    if (cmsgLength < CMSGHDR.size || off + cmsgLength > end) break;
    const level = v.getInt32(off + CMSGHDR.level, true);
    const type = v.getInt32(off + CMSGHDR.type, true);
    const body = off + CMSGHDR.data;
    if (level === SOL_SOCKET && type === SCM_RIGHTS) {
      const count = (cmsgLength - CMSGHDR.data) / 4;
      into.fds ??= [];
      for (let i = 0; i < count; i++) into.fds.push(v.getInt32(body + i * 4, true));
    } else if (level === SOL_SOCKET && type === SCM_CREDENTIALS && control === "fds+credentials") {
      into.credentials = decodeUcred(v, body);
    } else if (control === "info") decodeInfo(v, level, type, body, into);
    off += cmsgAlign(cmsgLength);
  }
}

/** Whether the `length` bytes of control data at the start of `v` begin with credentials. */
export function startsWithCredentials(v: DataView, length: number): boolean {
  if (length < cmsgLen(UCRED.size)) return false;
  return v.getInt32(CMSGHDR.level, true) === SOL_SOCKET &&
    v.getInt32(CMSGHDR.type, true) === SCM_CREDENTIALS;
}

/** A control buffer holding one `SCM_RIGHTS` message that carries `fds`. */
export function encodeRights(fds: readonly number[]): Uint8Array {
  const control = new Uint8Array(cmsgSpace(fds.length * 4));
  const v = new DataView(control.buffer);
  v.setBigUint64(CMSGHDR.len, BigInt(cmsgLen(fds.length * 4)), true);
  v.setInt32(CMSGHDR.level, SOL_SOCKET, true);
  v.setInt32(CMSGHDR.type, SCM_RIGHTS, true);
  for (let i = 0; i < fds.length; i++) v.setInt32(CMSGHDR.data + i * 4, fds[i], true);
  return control;
}

/**
 * Decodes one control message of the receive-info kinds into `into`; false
 * for a message of another kind. `body` is the offset of its data in `v`.
 */
export function decodeInfo(
  v: DataView,
  level: number,
  type: number,
  body: number,
  into: PacketInfo,
): boolean {
  const bytes = (offset: number, n: number) =>
    new Uint8Array(v.buffer, v.byteOffset + body + offset, n);
  if (level === SOL_IP) {
    // IP_TTL is an int; IP_TOS a single byte.
    if (type === IP_TTL) into.ttl = v.getInt32(body, true);
    else if (type === IP_TOS) into.tos = v.getUint8(body);
    else if (type === IP_PKTINFO) {
      into.destination = {
        address: formatIPv4(bytes(IN_PKTINFO.addr, 4)),
        ifindex: v.getInt32(body + IN_PKTINFO.ifindex, true),
      };
    } else return false;
    return true;
  }
  if (level === SOL_IPV6) {
    if (type === IPV6_HOPLIMIT) into.hopLimit = v.getInt32(body, true);
    else if (type === IPV6_TCLASS) into.trafficClass = v.getInt32(body, true);
    else if (type === IPV6_PKTINFO) {
      into.destination = {
        address: formatIPv6(bytes(IN6_PKTINFO.addr, 16)),
        ifindex: v.getInt32(body + IN6_PKTINFO.ifindex, true),
      };
    } else return false;
    return true;
  }
  if (level === SOL_SOCKET && type === SCM_TIMESTAMPNS) {
    into.timestamp = v.getBigInt64(body + TIMESPEC.sec, true) * 1_000_000_000n +
      v.getBigInt64(body + TIMESPEC.nsec, true);
    return true;
  }
  return false;
}
