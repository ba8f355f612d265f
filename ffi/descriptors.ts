// What the kernel says a descriptor is, and the descriptor-level calls that
// fromFd and the journal need: fcntl flags, getsockopt reads of ints, sealed
// memfds and the monotonic clock. Every call is synchronous, errno read at once.

import {
  AF_INET,
  AF_INET6,
  AF_NETLINK,
  AF_PACKET,
  AF_UNIX,
  CLOCK_MONOTONIC,
  F_ADD_SEALS,
  F_GETFD,
  F_GETFL,
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  F_SEAL_WRITE,
  F_SETFD,
  F_SETFL,
  FD_CLOEXEC,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  O_NONBLOCK,
  SO_ACCEPTCONN,
  SO_DOMAIN,
  SO_PROTOCOL,
  SO_TYPE,
  SOCK_DGRAM,
  SOCK_RAW,
  SOCK_SEQPACKET,
  SOCK_STREAM,
  SOL_SOCKET,
} from "./constants.ts";
import { errnoError } from "./errors.ts";
import { errno, libc } from "./libc.ts";
import { TIMESPEC } from "./structs.ts";

/** A socket's family and type by the names the modules above use. */
export interface SocketDescription {
  /** The family's name, or `null` for one the module has no name for (then `domain` tells it). */
  family: "unix" | "ipv4" | "ipv6" | "packet" | "netlink" | null;
  kind: "stream" | "datagram" | "seqpacket" | "raw" | null;
  /** `SO_DOMAIN` and `SO_TYPE` as numbers, for messages about unnamed ones. */
  domain: number;
  type: number;
  protocol: number;
  listening: boolean;
}

const FAMILY_NAMES = new Map<number, SocketDescription["family"]>([
  [AF_UNIX, "unix"],
  [AF_INET, "ipv4"],
  [AF_INET6, "ipv6"],
  [AF_PACKET, "packet"],
  [AF_NETLINK, "netlink"],
]);
const KIND_NAMES = new Map<number, SocketDescription["kind"]>([
  [SOCK_STREAM, "stream"],
  [SOCK_DGRAM, "datagram"],
  [SOCK_SEQPACKET, "seqpacket"],
  [SOCK_RAW, "raw"],
]);

const intOut = new Uint8Array(4);
const intOutView = new DataView(intOut.buffer);
const lengthOut = new Uint8Array(4);
const lengthOutView = new DataView(lengthOut.buffer);

/** `getsockopt(fd, SOL_SOCKET, name)` read as an int; throws the call's error naming `fd N`. */
function socketInt(fd: number, name: number): number {
  lengthOutView.setUint32(0, 4, true);
  if (libc().getsockopt(fd, SOL_SOCKET, name, intOut, lengthOut) < 0) {
    throw errnoError(errno(), "getsockopt", `fd ${fd}`);
  }
  return intOutView.getInt32(0, true);
}

/**
 * Whether `fd` is open (`fcntl(F_GETFD)`); `BadResource` naming it when not.
 * Reads only: the descriptor is left as it was.
 */
export function checkOpen(fd: number): void {
  if (libc().fcntl(fd, F_GETFD, 0) < 0) throw errnoError(errno(), "fcntl", `fd ${fd}`);
}

/**
 * The kernel's description of socket `fd`: `SO_DOMAIN`, `SO_TYPE`,
 * `SO_PROTOCOL`, `SO_ACCEPTCONN`. A descriptor that is not a socket throws
 * `SocketError` with code `ENOTSOCK`. Reads only.
 */
export function describeSocket(fd: number): SocketDescription {
  const domain = socketInt(fd, SO_DOMAIN);
  const type = socketInt(fd, SO_TYPE);
  return {
    family: FAMILY_NAMES.get(domain) ?? null,
    kind: KIND_NAMES.get(type) ?? null,
    domain,
    type,
    protocol: socketInt(fd, SO_PROTOCOL),
    listening: socketInt(fd, SO_ACCEPTCONN) !== 0,
  };
}

/** Sets `O_NONBLOCK` and `FD_CLOEXEC` on `fd`, as a socket the engine opened has them. */
export function makeNonblockingCloexec(fd: number): void {
  const c = libc();
  const fl = c.fcntl(fd, F_GETFL, 0);
  if (fl < 0 || c.fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
    throw errnoError(errno(), "fcntl", `fd ${fd}`);
  }
  const fdFlags = c.fcntl(fd, F_GETFD, 0);
  if (fdFlags < 0 || c.fcntl(fd, F_SETFD, fdFlags | FD_CLOEXEC) < 0) {
    throw errnoError(errno(), "fcntl", `fd ${fd}`);
  }
}

/**
 * A memfd holding `data`, sealed against every change (shrink, grow, write,
 * more seals), close-on-exec: what journald accepts as an entry passed by
 * descriptor. The caller closes it.
 */
export function sealedMemfd(name: string, data: Uint8Array): number {
  const c = libc();
  const fd = c.memfd_create(new TextEncoder().encode(`${name}\0`), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) throw errnoError(errno(), "memfd_create", JSON.stringify(name));
  try {
    let off = 0;
    while (off < data.length) {
      const rest = data.subarray(off);
      const n = c.write(fd, rest, BigInt(rest.length));
      if (n < 0) throw errnoError(errno(), "write", JSON.stringify(name));
      off += n;
    }
    const seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
    if (c.fcntl(fd, F_ADD_SEALS, seals) < 0) {
      throw errnoError(errno(), "fcntl F_ADD_SEALS", JSON.stringify(name));
    }
  } catch (err) {
    c.close(fd);
    throw err;
  }
  return fd;
}

/** `CLOCK_MONOTONIC` in microseconds, the clock systemd's `MONOTONIC_USEC` is read on. */
export function monotonicMicroseconds(): bigint {
  const ts = new Uint8Array(TIMESPEC.size);
  if (libc().clock_gettime(CLOCK_MONOTONIC, ts) < 0) throw errnoError(errno(), "clock_gettime");
  const v = new DataView(ts.buffer);
  return v.getBigInt64(TIMESPEC.sec, true) * 1_000_000n +
    v.getBigInt64(TIMESPEC.nsec, true) / 1000n;
}
