/**
 * Adopting a descriptor: {@linkcode fromFd} turns any socket descriptor this
 * process holds (inherited, received with `SCM_RIGHTS`, handed over by
 * systemd) into the matching socket object of this module.
 *
 * Linux only. Requires `--allow-ffi`, and the permission the module's own
 * constructors would ask for the socket's address.
 *
 * @example Adopt one end of a socket pair
 * ```ts ignore
 * import { fromFd } from "@bsd/sockets/fd";
 *
 * const socket = fromFd(3); // a descriptor inherited from the parent
 * console.log(socket.constructor.name);
 * socket.close();
 * ```
 *
 * @module
 */

// Each socket module registers its adopter when it loads: importing them here
// is what makes fromFd know every kind.
import "./stream.ts";
import "./datagram.ts";
import "./seqpacket.ts";
import "./raw.ts";
import "./netlink.ts";
import type { StreamConn, StreamListener } from "./stream.ts";
import type { DatagramSocket } from "./datagram.ts";
import type { SeqpacketConn, SeqpacketListener } from "./seqpacket.ts";
import type { LinkSocket, RawSocket } from "./raw.ts";
import type { NetlinkSocket } from "./netlink.ts";
import { adopterFor, type DescribedFd } from "./_internal/adopt.ts";
import { describeValue } from "./_internal/checks.ts";
import { checkOpen, describeSocket, makeNonblockingCloexec } from "./ffi/descriptors.ts";
import { isOwnedFd } from "./ffi/socket.ts";

/** What {@linkcode fromFd} may return: one class per kind of socket the module has. */
export type AdoptedSocket =
  | StreamConn
  | StreamListener
  | DatagramSocket
  | SeqpacketConn
  | SeqpacketListener
  | RawSocket
  | LinkSocket
  | NetlinkSocket;

const MAX_FD = 2 ** 31 - 1;

/**
 * Makes the socket object for an open socket descriptor, asking the kernel
 * what it is (`SO_DOMAIN`, `SO_TYPE`, `SO_PROTOCOL`, `SO_ACCEPTCONN`); its
 * addresses are read from the kernel too. The object is FFI-backed and owns
 * the descriptor from then on: it sets `O_NONBLOCK` and `FD_CLOEXEC`, and its
 * `close()` closes it. On every error the descriptor is left open and as it was.
 *
 * Requires `--allow-ffi`, and what the built-ins would ask to listen on or
 * connect to the socket's address: net access to an IP `host:port`; read and
 * write access to a Unix path and net access to `unix:<path>`; unscoped net
 * access for an abstract name. An unnamed Unix socket needs only `--allow-ffi`.
 *
 * @see {@link https://man7.org/linux/man-pages/man7/socket.7.html} (`SO_DOMAIN`, `SO_TYPE`)
 * @param fd The descriptor, an integer from 0 to 2^31-1.
 * @returns The socket object that now owns `fd`.
 * @throws {TypeError} When `fd` is not a number or not an integer (a string is never read as one).
 * @throws {RangeError} When `fd` is negative or above 2^31-1.
 * @throws {Deno.errors.BadResource} When `fd` is not open.
 * @throws {SocketError} With `code: "ENOTSOCK"` when `fd` is not a socket.
 * @throws {Deno.errors.Busy} When a live socket of this module already owns `fd`.
 * @throws {Deno.errors.NotConnected} For a stream socket neither listening nor connected.
 * @throws {Deno.errors.NotSupported} For a family and type the module has no class for.
 * @throws {Deno.errors.NotCapable} Without `--allow-ffi` or the address's permission.
 *
 * @example Adopt a listening socket systemd passed as descriptor 3
 * ```ts ignore
 * import { fromFd } from "@bsd/sockets";
 *
 * const listener = fromFd(3);
 * console.log(listener.constructor.name); // "StreamListener"
 * listener.close();
 * ```
 */
export function fromFd(fd: number): AdoptedSocket {
  if (typeof fd !== "number") {
    throw new TypeError(`fromFd: fd must be a number, got ${describeValue(fd)}`);
  }
  // -0 is descriptor 0, but Deno's FFI refuses -0 as an i32.
  if (fd === 0) fd = 0;
  if (!Number.isInteger(fd)) throw new TypeError(`fromFd: fd must be an integer, got ${fd}`);
  if (fd < 0 || fd > MAX_FD) {
    throw new RangeError(`fromFd: fd must be from 0 to ${MAX_FD}, got ${fd}`);
  }
  checkOpen(fd);
  if (isOwnedFd(fd)) {
    throw new Deno.errors.Busy(`fromFd fd ${fd}: a socket of this module already owns it`);
  }
  const d = describeSocket(fd);
  if (d.family === null || d.kind === null) {
    throw new Deno.errors.NotSupported(
      `fromFd fd ${fd}: no socket class for family ${d.family ?? d.domain}, ` +
        `type ${d.kind ?? d.type}`,
    );
  }
  let taken = false;
  const described: DescribedFd = {
    fd,
    family: d.family,
    kind: d.kind,
    protocol: d.protocol,
    listening: d.listening,
    take() {
      if (taken) return;
      makeNonblockingCloexec(fd);
      taken = true;
    },
  };
  const adopter = adopterFor(described);
  if (!adopter) {
    throw new Deno.errors.NotSupported(
      `fromFd fd ${fd}: no socket class for family ${d.family}, type ${d.kind}` +
        (d.listening ? " (listening)" : ""),
    );
  }
  return adopter.adopt(described) as AdoptedSocket;
}
