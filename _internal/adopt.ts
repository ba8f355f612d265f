// How fromFd (fd.ts) finds the class for a descriptor without importing every
// socket module's private constructor: each module registers an adopter for
// the kinds of descriptor it owns, and fd.ts asks the first one that matches.
// Private to the package.

/**
 * A descriptor as the kernel describes it (`SO_DOMAIN`, `SO_TYPE`, `SO_PROTOCOL`, `SO_ACCEPTCONN`).
 */
export interface DescribedFd {
  /** The descriptor, open and not owned by any live socket of this module. */
  readonly fd: number;
  readonly family: "unix" | "ipv4" | "ipv6" | "packet" | "netlink";
  readonly kind: "stream" | "datagram" | "seqpacket" | "raw";
  /** `SO_PROTOCOL` as the kernel reports it (for packet sockets, in network byte order). */
  readonly protocol: number;
  /** `SO_ACCEPTCONN`: a listening stream or seqpacket socket. */
  readonly listening: boolean;
  /**
   * Takes ownership: sets `O_NONBLOCK` and `FD_CLOEXEC`. An adopter calls it
   * once every check has passed (addresses read, permissions granted) and
   * right before it builds the socket object, so a failed adoption leaves
   * the descriptor untouched.
   */
  take(): void;
}

/** One socket module's part of fromFd. */
export interface Adopter {
  /** Whether this adopter owns descriptors like `d`. */
  matches(d: DescribedFd): boolean;
  /**
   * Builds the socket object that owns `d.fd`. Throws (before `d.take()`)
   * when the descriptor cannot be adopted; the descriptor is then left open.
   */
  adopt(d: DescribedFd): unknown;
}

const adopters: Adopter[] = [];

/** Registers a module's adopter; called once at module load. */
export function registerAdopter(adopter: Adopter): void {
  adopters.push(adopter);
}

/** The adopter for `d`, or undefined when no module handles it. */
export function adopterFor(d: DescribedFd): Adopter | undefined {
  return adopters.find((a) => a.matches(d));
}
