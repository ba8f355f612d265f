// FdSocket: one O_NONBLOCK descriptor driven by the readiness engine. The one
// place that calls socket, bind, listen, accept4, connect, sendto, sendmsg,
// sendmmsg, recvmmsg, getsockopt, setsockopt, shutdown and close.
//
// Every call here is synchronous and runs on the JS thread, so errno is read
// right after it and no call is ever parked on a descriptor in another thread:
// close() can therefore deregister, settle the waiters and close the
// descriptor at once, and no stale call can touch the number's next owner.

import {
  AF_INET,
  AF_INET6,
  AF_NETLINK,
  AF_PACKET,
  AF_UNIX,
  EAGAIN,
  EALREADY,
  ECONNABORTED,
  EINPROGRESS,
  EINTR,
  EISCONN,
  EMSGSIZE,
  ENOTCONN,
  ERRNO,
  MSG_CMSG_CLOEXEC,
  MSG_CTRUNC,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  MSG_PEEK,
  MSG_TRUNC,
  SCM_CREDENTIALS,
  SCM_MAX_FD,
  SCM_RIGHTS,
  SHUT_RD,
  SHUT_RDWR,
  SHUT_WR,
  SIZEOF_CMSGHDR,
  SIZEOF_IOVEC,
  SIZEOF_MMSGHDR,
  SIZEOF_MSGHDR,
  SIZEOF_SOCKADDR_STORAGE,
  SIZEOF_UCRED,
  SO_SNDBUF,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCK_RAW,
  SOCK_SEQPACKET,
  SOCK_STREAM,
  SOL_SOCKET,
} from "./constants.ts";
import { closedError, errnoError } from "./errors.ts";
import { pointerOf, withPinned } from "./buffers.ts";
import {
  type Credentials,
  decodeInfo,
  decodeUcred,
  type Family,
  getOptionOn,
  type Kind,
  type OptionValue,
  type OptionValues,
  type PacketInfo,
  type ReadOnlyOptionValues,
  setOptionOn,
} from "./options.ts";
import { errno, libc } from "./libc.ts";
import { ReactorPipe } from "./reactor_pipe.ts";
import { theReactor } from "./reactor.ts";

export type { Credentials, Family, Kind } from "./options.ts";

const FAMILY: Record<Family, number> = {
  unix: AF_UNIX,
  ipv4: AF_INET,
  ipv6: AF_INET6,
  packet: AF_PACKET,
  netlink: AF_NETLINK,
};
const KIND: Record<Kind, number> = {
  stream: SOCK_STREAM,
  datagram: SOCK_DGRAM,
  seqpacket: SOCK_SEQPACKET,
  raw: SOCK_RAW,
};

/** One record as the engine received it. */
export interface Received<A> extends PacketInfo {
  data: Uint8Array;
  from: A | null;
  truncated: boolean;
  fds?: number[];
  /** The kernel had more control data than fit (`MSG_CTRUNC`); descriptors may be missing. */
  controlTruncated?: boolean;
  credentials?: Credentials;
  /** A peek's record: its full length, also past the bytes returned. */
  recordLength?: number;
}

/**
 * A receive path that replaces recvmmsg: AF_PACKET's memory-mapped ring,
 * which the kernel fills without a system call per record.
 */
export interface RecordSource<A> {
  /** Moves ready records into `inbox`; returns 0, or EAGAIN when none was ready. */
  fill(inbox: Received<A>[]): number;
  /** Frees what the source holds; called once, after the descriptor is closed. */
  release(): void;
}

/** How a receive of 0 bytes is read. */
export type ZeroMeans =
  /** Datagram, raw and packet sockets: an empty record. */
  | "record"
  /** Seqpacket with SO_PASSCRED: a record if it carries credentials, end of stream if not. */
  | "eof-without-credentials";

/** How an FdSocket describes itself and decodes what it receives. */
export interface FdSocketOptions<A> {
  /** The address quoted in error messages, already formatted. */
  label: string;
  /** Decodes a sender's sockaddr; `null` means unnamed. Omitted: `from` is always `null`. */
  decode?: (name: Uint8Array, length: number) => A | null;
  /** What a 0-byte receive means. Default `"record"`. */
  zero?: ZeroMeans;
  /** The most records one recvmmsg may take. Default 32; 1 turns batching off. */
  batch?: number;
  /** An AF_UNIX socket, whose records may be far longer than 64 KiB (see arenaFor). */
  unix?: boolean;
  /**
   * The ancillary data receives ask for: descriptors (`SCM_RIGHTS`), or those
   * and credentials (`SCM_CREDENTIALS`). Without it the kernel closes
   * descriptors sent to the socket. Default: both where `zero` needs
   * credentials, none elsewhere.
   */
  control?: Control;
}

/**
 * The ancillary data receives ask for: descriptors, descriptors and
 * credentials (Unix), or per-packet information (IP: TTL, TOS,
 * destination, timestamp, as the receive-info options turned on).
 */
export type Control = "fds" | "fds+credentials" | "info";

// ---------------------------------------------------------------------------
// Receive arena: recvmmsg slots built once, their pointers computed once.

/**
 * A read-ahead slot holds any IP record whole: a UDP payload, a raw IPv4
 * packet and a raw IPv6 payload are at most 65,535 bytes, and a link-layer
 * frame adds its header to an IPv6 packet of that size.
 */
const SLOT_SIZE = 65536 + 256;
/** The virtual memory the Unix arena may take; the kernel commits only the pages records touch. */
const UNIX_ARENA_BYTES = 128 << 20;
/** The most single-record reads between two tries of a batch of two. */
const MAX_PROBE_AFTER = 64;
const CMSG_ALIGN = (n: number): number => (n + 7) & ~7;
const CMSG_SPACE = (n: number): number => SIZEOF_CMSGHDR + CMSG_ALIGN(n);
/** Room for credentials and the most descriptors one message can carry. */
const CONTROL_SIZE = CMSG_SPACE(SIZEOF_UCRED) + CMSG_SPACE(SCM_MAX_FD * 4);

class Arena {
  readonly slots: number;
  readonly slotSize: number;
  readonly data: Uint8Array;
  readonly names: Uint8Array;
  readonly control: Uint8Array;
  readonly headers: Uint8Array;
  readonly headersView: DataView;
  readonly controlView: DataView;
  readonly #iovecs: Uint8Array;

  constructor(slots: number, slotSize: number) {
    this.slots = slots;
    this.slotSize = slotSize;
    this.data = new Uint8Array(slots * slotSize);
    this.names = new Uint8Array(slots * SIZEOF_SOCKADDR_STORAGE);
    this.control = new Uint8Array(slots * CONTROL_SIZE);
    this.controlView = new DataView(this.control.buffer);
    this.#iovecs = new Uint8Array(slots * SIZEOF_IOVEC);
    this.headers = new Uint8Array(slots * SIZEOF_MMSGHDR);
    this.headersView = new DataView(this.headers.buffer);
    const iov = new DataView(this.#iovecs.buffer);
    const data = pointerOf(this.data), names = pointerOf(this.names);
    const control = pointerOf(this.control), iovecs = pointerOf(this.#iovecs);
    for (let i = 0; i < slots; i++) {
      iov.setBigUint64(i * SIZEOF_IOVEC, data + BigInt(i * slotSize), true);
      iov.setBigUint64(i * SIZEOF_IOVEC + 8, BigInt(slotSize), true);
      const h = i * SIZEOF_MMSGHDR;
      this.headersView.setBigUint64(h, names + BigInt(i * SIZEOF_SOCKADDR_STORAGE), true);
      this.headersView.setBigUint64(h + 16, iovecs + BigInt(i * SIZEOF_IOVEC), true);
      this.headersView.setBigUint64(h + 24, 1n, true);
      this.headersView.setBigUint64(h + 32, control + BigInt(i * CONTROL_SIZE), true);
    }
  }

  /** Slots whose in/out lengths the kernel rewrote in the last call. */
  #dirty = 0;
  /** The control length every clean slot holds. */
  #controlLength = -1;

  /**
   * Resets the in/out lengths before a call of `n` slots. Only the slots the
   * last call filled were rewritten by the kernel, so only those are reset,
   * unless the control length changes (another kind of socket uses the arena).
   */
  prepare(n: number, wantControl: boolean): void {
    const v = this.headersView;
    const controlLength = wantControl ? CONTROL_SIZE : 0;
    const upto = controlLength === this.#controlLength ? Math.min(this.#dirty, n) : this.slots;
    for (let i = 0; i < upto; i++) {
      const h = i * SIZEOF_MMSGHDR;
      v.setUint32(h + 8, SIZEOF_SOCKADDR_STORAGE, true);
      v.setUint32(h + 40, controlLength, true);
      v.setUint32(h + 44, 0, true);
    }
    this.#controlLength = controlLength;
    // Slots past `n` that an earlier, wider call filled are still dirty.
    if (upto === this.slots || this.#dirty <= n) this.#dirty = 0;
  }

  /** Records how many slots the call that followed `prepare` filled. */
  filled(n: number): void {
    this.#dirty = Math.max(this.#dirty, n);
  }
}

let sharedArena: Arena | undefined;
let unixArena: Arena | undefined;
const bigArenas = new Map<number, Arena>();

let unixRecordMax: number | undefined;

/**
 * The largest record a Unix socket can be sent by a sender without
 * CAP_NET_ADMIN: the sender's buffer bounds it, and no buffer set with
 * SO_SNDBUF passes twice `net.core.wmem_max`. Asked once of a socket of our
 * own, set past that ceiling (so no file is read).
 */
function largestUnixRecord(): number {
  if (unixRecordMax !== undefined) return unixRecordMax;
  const c = libc();
  let bytes = 0;
  const fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    const value = new Uint8Array(4);
    new DataView(value.buffer).setInt32(0, 0x3fffffff, true);
    if (c.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, value, 4) === 0) {
      scratchLenView.setUint32(0, 4, true);
      if (c.getsockopt(fd, SOL_SOCKET, SO_SNDBUF, value, scratchLen) === 0) {
        bytes = new DataView(value.buffer).getInt32(0, true);
      }
    }
    c.close(fd);
  }
  return unixRecordMax = Math.max(SLOT_SIZE, bytes);
}

/**
 * The arena a receive of at most `maxSize` bytes reads into. Its slots past
 * the first hold records read ahead for later receives, whose `maxSize` is
 * not known yet, so each slot must hold any record whole: IP records fit
 * 64 KiB; Unix records can be as long as the sender's buffer, so the Unix
 * arena's slots are that large (virtual memory, committed only where written).
 */
function arenaFor(maxSize: number, unix: boolean): Arena {
  if (unix) {
    const slotSize = largestUnixRecord();
    if (maxSize <= slotSize) {
      const slots = Math.max(2, Math.min(32, Math.floor(UNIX_ARENA_BYTES / slotSize)));
      return unixArena ??= new Arena(slots, slotSize);
    }
  } else if (maxSize <= SLOT_SIZE) return sharedArena ??= new Arena(32, SLOT_SIZE);
  // A receive larger than a slot reads one record into a buffer of its own
  // size; the last few sizes are kept so a loop of large receives allocates once.
  let arena = bigArenas.get(maxSize);
  if (!arena) {
    if (bigArenas.size >= 4) bigArenas.delete(bigArenas.keys().next().value!);
    arena = new Arena(1, maxSize);
    bigArenas.set(maxSize, arena);
  }
  return arena;
}

// ---------------------------------------------------------------------------
// The fd ledger and the finalizer for sockets dropped unclosed.

let openCount = 0;
/** The descriptors live sockets own, so fromFd can refuse to adopt one twice. */
const ownedFds = new Set<number>();

/** How many descriptors the engine holds open for sockets (for leak tests). */
export function openSocketCount(): number {
  return openCount;
}

/** Whether a live socket of this module owns `fd`. */
export function isOwnedFd(fd: number): boolean {
  return ownedFds.has(fd);
}

interface Held {
  fd: number;
  token: number;
  closed: boolean;
  inbox: Received<unknown>[];
  /** Frees what a record source holds (a mapped ring), once the fd is closed. */
  releaseSource?: () => void;
  /** Whether the descriptor is in the engine's epoll set (only while something waits). */
  registered: boolean;
  /** The stream's pipe on the runtime's reactor, once one was opened. */
  reader?: ReactorPipe | null;
}

function release(held: Held): void {
  held.closed = true;
  const reactor = theReactor();
  if (held.registered) reactor.unwatch(held.fd);
  reactor.idle(held.token);
  held.reader?.close();
  for (const r of held.inbox) closeFds(r.fds);
  held.inbox.length = 0;
  ownedFds.delete(held.fd);
  libc().close(held.fd);
  held.releaseSource?.();
  openCount--;
}

const finalizer = new FinalizationRegistry<Held>((held) => {
  if (!held.closed) release(held);
});

/** Closes received descriptors nobody will see. */
export function closeFds(fds: number[] | undefined): void {
  if (!fds) return;
  for (const fd of fds) libc().close(fd);
}

// ---------------------------------------------------------------------------

/** A stream read parked on the runtime's reactor. */
interface ReactorRead {
  p: Uint8Array;
  signal: AbortSignal | undefined;
  resolve(n: number | null): void;
  reject(err: Error): void;
  cleanup?: () => void;
}

/**
 * The most a reactor read asks for: a larger `p` gets what one read(2)
 * returns anyway, and the reader's buffer stays this size at most.
 */
const REACTOR_READ_MAX = 1 << 16;

/**
 * The one-record header of {@linkcode FdSocket.receiveInto}'s direct path:
 * no name, one iovec (pointed at the caller's buffer per call), and room
 * for credentials only, so descriptors are dropped by the kernel.
 */
const DIRECT_CONTROL_SIZE = CMSG_SPACE(SIZEOF_UCRED);
const directControl = new Uint8Array(DIRECT_CONTROL_SIZE);
const directControlView = new DataView(directControl.buffer);
const directIov = new Uint8Array(SIZEOF_IOVEC);
const directIovView = new DataView(directIov.buffer);
const directHeader = new Uint8Array(SIZEOF_MMSGHDR);
const directView = new DataView(directHeader.buffer);
let directReady = false;

/** Points the direct header at its iovec and control buffer (on first use: FFI may be denied). */
function readyDirect(): void {
  if (directReady) return;
  directView.setBigUint64(16, pointerOf(directIov), true);
  directView.setBigUint64(24, 1n, true);
  directView.setBigUint64(32, pointerOf(directControl), true);
  directReady = true;
}

/** Whether the direct header's control data of `length` bytes holds credentials. */
function hasCredentials(length: number): boolean {
  if (length < SIZEOF_CMSGHDR + SIZEOF_UCRED) return false;
  const v = directControlView;
  return v.getInt32(8, true) === SOL_SOCKET && v.getInt32(12, true) === SCM_CREDENTIALS;
}

interface Waiter {
  /** Tries the call: true once settled, false on EAGAIN. */
  attempt(): boolean;
  /** Settles the waiter because the socket closed. */
  closed(): void;
  /** Removes the abort listener. */
  cleanup?: () => void;
}

const SEND_FLAGS = MSG_NOSIGNAL | MSG_DONTWAIT;
const scratchLen = new Uint8Array(4);
const scratchLenView = new DataView(scratchLen.buffer);
const scratchName = new Uint8Array(SIZEOF_SOCKADDR_STORAGE);
const scratchMsg = new Uint8Array(SIZEOF_MSGHDR);
const scratchMsgView = new DataView(scratchMsg.buffer);
const scratchIov = new Uint8Array(SIZEOF_IOVEC);
const scratchIovView = new DataView(scratchIov.buffer);

/**
 * Errors the kernel reports once and clears (`sk_err`: a reset, an ICMP
 * error): calling again would lose them, so they are never confirmed.
 */
const ONE_SHOT_ERRNOS = new Set(
  ["EPIPE", "EPROTO", "ENETUNREACH", "ECONNRESET", "ETIMEDOUT", "ECONNREFUSED", "EHOSTUNREACH"]
    .map((name) => ERRNO[name][0]),
);

/**
 * Runs a data call and returns its result, or -errno. errno is read right
 * after the call, yet the runtime may run code of its own in between (a GC
 * step, an interrupt) that leaves another errno behind: a recvmmsg that had
 * found nothing was once seen "failing" with ENOENT. A failed call has done
 * nothing, so a failure other than EAGAIN/EINTR and the one-shot errors is
 * confirmed by calling again: a real error repeats, a misread one does not.
 */
export function confirmed(call: () => number): number {
  const n = call();
  if (n >= 0) return n;
  const first = errno();
  if (first === EAGAIN || first === EINTR || ONE_SHOT_ERRNOS.has(first)) return -first;
  const again = call();
  return again >= 0 ? again : -errno();
}

/** `r`, cut to `maxSize` bytes (and marked truncated) when longer. */
function cut<A>(r: Received<A>, maxSize: number): Received<A> {
  if (r.data.length > maxSize) {
    r.data = r.data.subarray(0, maxSize);
    r.truncated = true;
  }
  return r;
}

/** A nonblocking socket descriptor on the readiness engine. */
export class FdSocket<A = unknown> {
  readonly #fd: number;
  readonly #token: number;
  readonly #held: Held;
  readonly #readers: Waiter[] = [];
  readonly #writers: Waiter[] = [];
  readonly #inbox: Received<A>[];
  readonly #decode?: (name: Uint8Array, length: number) => A | null;
  readonly #zero: ZeroMeans;
  #control: Control | undefined;
  readonly #batch: number;
  readonly #unix: boolean;
  #vlen = 1;
  /** The busy-poll budget in milliseconds (see {@linkcode FdSocket.setBusyPoll}). */
  #busyPoll = 0;
  /** Full single-record reads before the next batch of two is tried. */
  #probeAfter = 1;
  #singles = 0;
  #source: RecordSource<A> | undefined;
  #label: string;
  #refed = true;
  #eof = false;
  /** The last fill found the queue empty after its records (see #takeQueued). */
  #drained = false;
  /** An error met while a batch was being completed, for the next receive. */
  #deferred: Error | undefined;
  /** What the socket is armed for: 1 readable, 2 writable; 0 after an event disarmed it. */
  #armed = 0;
  #writeRetryTimer: ReturnType<typeof setTimeout> | undefined;
  #writeBackoff = 0;

  /** Opens a new socket: `socket(family, kind | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol)`. */
  static open<A>(
    family: Family,
    kind: Kind,
    protocol: number,
    options: FdSocketOptions<A>,
  ): FdSocket<A> {
    const fd = libc().socket(FAMILY[family], KIND[kind] | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
    if (fd < 0) throw errnoError(errno(), "socket", options.label);
    return new FdSocket(fd, { ...options, unix: family === "unix" });
  }

  /** A connected pair: `socketpair(AF_UNIX, kind, 0)`. */
  static pair<A>(kind: Kind, options: FdSocketOptions<A>): [FdSocket<A>, FdSocket<A>] {
    const fds = new Int32Array(2);
    const rc = libc().socketpair(AF_UNIX, KIND[kind] | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds);
    if (rc < 0) throw errnoError(errno(), "socketpair");
    const unix = { ...options, unix: true };
    return [new FdSocket(fds[0], unix), new FdSocket(fds[1], unix)];
  }

  /** Adopts an open nonblocking, close-on-exec descriptor. */
  constructor(fd: number, options: FdSocketOptions<A>) {
    this.#fd = fd;
    this.#label = options.label;
    this.#decode = options.decode;
    this.#zero = options.zero ?? "record";
    this.#control = options.control ??
      (this.#zero === "eof-without-credentials" ? "fds+credentials" : undefined);
    this.#batch = Math.max(1, Math.min(32, options.batch ?? 32));
    this.#unix = options.unix ?? false;
    const reactor = theReactor();
    this.#token = reactor.token();
    this.#inbox = [];
    this.#held = { fd, token: this.#token, closed: false, inbox: this.#inbox, registered: false };
    openCount++;
    ownedFds.add(fd);
    finalizer.register(this, this.#held, this.#held);
  }

  /** The address quoted in this socket's error messages. */
  get label(): string {
    return this.#label;
  }
  set label(value: string) {
    this.#label = value;
  }

  /** The descriptor (it stays a number after close: check `closed`). */
  get fd(): number {
    return this.#fd;
  }

  /** Whether close() has run. */
  get closed(): boolean {
    return this.#held.closed;
  }

  /**
   * Changes the ancillary data receives ask for (see
   * {@linkcode FdSocketOptions.control}): an adopted descriptor's options
   * are known only once it is open.
   */
  setControl(control: Control | undefined): void {
    this.#control = control;
  }

  /** `bind(fd, addr)`. */
  bind(addr: Uint8Array, label: string = this.#label): void {
    this.#check("bind", label);
    if (libc().bind(this.#fd, addr, addr.length) < 0) throw errnoError(errno(), "bind", label);
  }

  /** `listen(fd, backlog)`. */
  listen(backlog = 4096): void {
    this.#check("listen");
    if (libc().listen(this.#fd, backlog) < 0) throw errnoError(errno(), "listen", this.#label);
  }

  /** `shutdown(fd, how)`; ENOTCONN (the peer is already gone) is not an error. */
  shutdown(how: "read" | "write" | "both"): void {
    this.#check("shutdown");
    const rc = libc().shutdown(
      this.#fd,
      how === "read" ? SHUT_RD : how === "write" ? SHUT_WR : SHUT_RDWR,
    );
    if (rc < 0) {
      const e = errno();
      if (e !== ENOTCONN) throw errnoError(e, "shutdown", this.#label);
    }
  }

  /**
   * Receives through `make(fd)`'s source from now on instead of recvmmsg;
   * the source is released when the socket closes. Call before any receive.
   */
  useSource(
    make: (fd: number, decode: (name: Uint8Array, length: number) => A | null) => RecordSource<A>,
  ): void {
    this.#check("mmap");
    const source = make(this.#fd, (name, length) => this.#decodeName(name, length));
    this.#source = source;
    this.#held.releaseSource = () => source.release();
  }

  /** Sets one of the engine's socket options (ffi/options.ts). */
  setOption<K extends keyof OptionValues>(name: K, value: OptionValues[K]): void {
    this.#check("setsockopt");
    setOptionOn(this.#fd, this.#label, name, value);
  }

  /**
   * Sets the receive or send buffer: `SO_RCVBUFFORCE`/`SO_SNDBUFFORCE` where
   * allowed (CAP_NET_ADMIN passes the sysctl ceiling), otherwise
   * `SO_RCVBUF`/`SO_SNDBUF`, which the kernel caps at `net.core.*mem_max`.
   */
  setBufferSize(direction: "receive" | "send", bytes: number): void {
    const receive = direction === "receive";
    try {
      this.setOption(receive ? "receiveBufferSizeForce" : "sendBufferSizeForce", bytes);
    } catch (err) {
      if (!(err instanceof Deno.errors.PermissionDenied)) throw err;
      this.setOption(receive ? "receiveBufferSize" : "sendBufferSize", bytes);
    }
  }

  /** Reads one of the engine's socket options (ffi/options.ts). */
  getOption<K extends keyof OptionValues | keyof ReadOnlyOptionValues>(name: K): OptionValue<K> {
    this.#check("getsockopt");
    return getOptionOn(this.#fd, this.#label, name);
  }

  /** `getsockname`, decoded. */
  localAddress<T = A>(decode: (name: Uint8Array, length: number) => T): T {
    return this.#name("getsockname", decode);
  }

  /** `getpeername`, decoded. */
  peerAddress<T = A>(decode: (name: Uint8Array, length: number) => T): T {
    return this.#name("getpeername", decode);
  }

  #name<T>(
    call: "getsockname" | "getpeername",
    decode: (name: Uint8Array, length: number) => T,
  ): T {
    this.#check(call);
    scratchLenView.setUint32(0, SIZEOF_SOCKADDR_STORAGE, true);
    if (libc()[call](this.#fd, scratchName, scratchLen) < 0) {
      throw errnoError(errno(), call, this.#label);
    }
    return decode(scratchName, scratchLenView.getUint32(0, true));
  }

  /**
   * `connect`, completed through the engine: EINPROGRESS waits for
   * writability and reads SO_ERROR; EAGAIN (a Unix listener's full backlog)
   * waits as a parked writer and tries again.
   */
  connect(addr: Uint8Array, label: string = this.#label, signal?: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(closedError("connect", label));
    if (signal?.aborted) return Promise.reject(signal.reason);
    const e = this.#connectOnce(addr);
    if (e === 0) return Promise.resolve();
    if (e === EAGAIN) {
      // A Unix listener's full backlog. The socket reports ready at once, so
      // the parked attempt retries on the engine's growing write-retry timer.
      const retried = this.#park(this.#writers, signal, (): true | Error | undefined => {
        const again = this.#connectOnce(addr);
        if (again === 0) return true;
        return again === EAGAIN ? undefined : errnoError(again, "connect", label);
      }, () => closedError("connect", label));
      return retried.then(() => {});
    }
    if (e !== EINPROGRESS && e !== EINTR) return Promise.reject(errnoError(e, "connect", label));
    const connected = this.#park(this.#writers, signal, (): true | Error | undefined => {
      const err = this.getOption("error");
      // 0 before the handshake ended is a spurious wake-up: still in progress.
      if (err === 0) return this.#peerKnown() ? true : undefined;
      return errnoError(err, "connect", label);
    }, () => closedError("connect", label));
    return connected.then(() => {});
  }

  /**
   * One `connect` call: 0, or the errno, confirmed as in `confirmed()`. A
   * second call after a misread EINPROGRESS says EALREADY, or EISCONN if the
   * handshake already ended.
   */
  #connectOnce(addr: Uint8Array): number {
    const call = (): number => libc().connect(this.#fd, addr, addr.length);
    if (call() === 0) return 0;
    const first = errno();
    if (first === EAGAIN || first === EINPROGRESS || first === EINTR) return first;
    if (ONE_SHOT_ERRNOS.has(first)) return first;
    if (call() === 0) return 0;
    const second = errno();
    if (second === EISCONN) return 0;
    return second === EALREADY ? EINPROGRESS : second;
  }

  #peerKnown(): boolean {
    scratchLenView.setUint32(0, SIZEOF_SOCKADDR_STORAGE, true);
    return libc().getpeername(this.#fd, scratchName, scratchLen) === 0;
  }

  /** `accept4`, waiting for a connection; `wrap` adopts the new descriptor. */
  accept<T>(wrap: (fd: number) => T, signal?: AbortSignal): Promise<T> {
    if (this.closed) return Promise.reject(closedError("accept", this.#label));
    if (signal?.aborted) return Promise.reject(signal.reason);
    return this.#tryOrPark(this.#readers, signal, (): T | Error | undefined => {
      const fd = confirmed(() =>
        libc().accept4(this.#fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC)
      );
      if (fd < 0) {
        const e = -fd;
        if (e === EAGAIN || e === EINTR || e === ECONNABORTED /* try the next */) return undefined;
        return errnoError(e, "accept", this.#label);
      }
      try {
        return wrap(fd);
      } catch (err) {
        libc().close(fd);
        return err instanceof Error ? err : new Error(String(err));
      }
    }, () => closedError("accept", this.#label));
  }

  /**
   * Sends one record: `sendto` (or `sendmsg` when descriptors go with it).
   * Waits for room when the socket's queue is full; never sends in part.
   */
  send(
    data: Uint8Array,
    to: Uint8Array | null,
    options?: { fds?: number[]; signal?: AbortSignal; label?: string },
  ): Promise<number> {
    const label = options?.label ?? this.#label;
    if (this.closed) return Promise.reject(closedError("send", label));
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const fds = options?.fds;
    return this.#tryOrPark(
      this.#writers,
      signal,
      () =>
        this.#sent(
          fds && fds.length > 0 ? this.#sendmsg(data, to, fds) : this.#sendto(data, to),
          data,
          label,
        ),
      () => closedError("send", label),
    );
  }

  /** A send call's result as #tryOrPark takes it: the count, an error, or undefined to wait. */
  #sent(n: number, data: Uint8Array, label: string): number | Error | undefined {
    if (n >= 0) return n;
    const e = -n;
    if (e === EAGAIN || e === EINTR) return undefined;
    const err = errnoError(e, "send", label);
    if (e === EMSGSIZE) err.message += ` (${data.length} bytes)`;
    return err;
  }

  /** Returns the count sent, or -errno. */
  #sendto(data: Uint8Array, to: Uint8Array | null): number {
    const length = BigInt(data.length), toLength = to ? to.length : 0;
    return confirmed(() => libc().sendto(this.#fd, data, length, SEND_FLAGS, to, toLength));
  }

  /** sendmsg with one SCM_RIGHTS message; returns the count sent, or -errno. */
  #sendmsg(data: Uint8Array, to: Uint8Array | null, fds: number[]): number {
    const control = new Uint8Array(CMSG_SPACE(fds.length * 4));
    return withPinned([control], () => this.#sendmsgWith(data, to, fds, control));
  }

  #sendmsgWith(
    data: Uint8Array,
    to: Uint8Array | null,
    fds: number[],
    control: Uint8Array,
  ): number {
    const cv = new DataView(control.buffer);
    cv.setBigUint64(0, BigInt(SIZEOF_CMSGHDR + fds.length * 4), true);
    cv.setInt32(8, SOL_SOCKET, true);
    cv.setInt32(12, SCM_RIGHTS, true);
    for (let i = 0; i < fds.length; i++) cv.setInt32(SIZEOF_CMSGHDR + i * 4, fds[i], true);
    scratchIovView.setBigUint64(0, pointerOf(data), true);
    scratchIovView.setBigUint64(8, BigInt(data.length), true);
    const m = scratchMsgView;
    m.setBigUint64(0, to ? pointerOf(to) : 0n, true);
    m.setUint32(8, to ? to.length : 0, true);
    m.setBigUint64(16, pointerOf(scratchIov), true);
    m.setBigUint64(24, 1n, true);
    m.setBigUint64(32, pointerOf(control), true);
    m.setBigUint64(40, BigInt(control.length), true);
    m.setInt32(48, 0, true);
    // data and to are held by the pending send; control is pinned.
    return confirmed(() => libc().sendmsg(this.#fd, scratchMsg, SEND_FLAGS));
  }

  /**
   * Sends several records with one `sendmmsg` where the kernel takes them,
   * waiting for room as needed. Resolves with the number of records sent.
   */
  sendMany(
    records: readonly { data: Uint8Array; to: Uint8Array | null }[],
    signal?: AbortSignal,
  ): Promise<number> {
    if (this.closed) return Promise.reject(closedError("sendmmsg", this.#label));
    if (signal?.aborted) return Promise.reject(signal.reason);
    let done = 0;
    const attempt = (): number => {
      while (done < records.length) {
        const n = this.#sendmmsg(records, done);
        if (n < 0) return n;
        done += n;
      }
      return done;
    };
    return this.#tryOrPark(
      this.#writers,
      signal,
      () => this.#sent(attempt(), records[done]?.data, this.#label),
      () => closedError("sendmmsg", this.#label),
    );
  }

  #sendmmsg(records: readonly { data: Uint8Array; to: Uint8Array | null }[], from: number): number {
    const count = Math.min(records.length - from, 64);
    const headers = new Uint8Array(count * SIZEOF_MMSGHDR);
    const iovecs = new Uint8Array(count * SIZEOF_IOVEC);
    return withPinned([iovecs], () => this.#sendmmsgWith(records, from, count, headers, iovecs));
  }

  #sendmmsgWith(
    records: readonly { data: Uint8Array; to: Uint8Array | null }[],
    from: number,
    count: number,
    headers: Uint8Array,
    iovecs: Uint8Array,
  ): number {
    const hv = new DataView(headers.buffer), iv = new DataView(iovecs.buffer);
    const iovBase = pointerOf(iovecs);
    for (let i = 0; i < count; i++) {
      const { data, to } = records[from + i];
      iv.setBigUint64(i * SIZEOF_IOVEC, pointerOf(data), true);
      iv.setBigUint64(i * SIZEOF_IOVEC + 8, BigInt(data.length), true);
      const h = i * SIZEOF_MMSGHDR;
      hv.setBigUint64(h, to ? pointerOf(to) : 0n, true);
      hv.setUint32(h + 8, to ? to.length : 0, true);
      hv.setBigUint64(h + 16, iovBase + BigInt(i * SIZEOF_IOVEC), true);
      hv.setBigUint64(h + 24, 1n, true);
    }
    // The records are held by the pending send, headers is the call's own
    // argument, iovecs is pinned.
    return confirmed(() => libc().sendmmsg(this.#fd, headers, count, SEND_FLAGS));
  }

  /**
   * Receives one record of at most `maxSize` bytes. Resolves `null` at end of
   * stream or once closed. Records read ahead by a batch wait in an inbox.
   */
  receive(maxSize: number, signal?: AbortSignal): Promise<Received<A> | null> {
    if (this.closed || (this.#eof && this.#inbox.length === 0)) return Promise.resolve(null);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return this.#tryOrPark(
      this.#readers,
      signal,
      () => this.#take(maxSize),
      () => null,
      this.#busyPoll > 0 ? () => this.#takeSpinning(maxSize) : undefined,
    );
  }

  /**
   * Receives one record into `p`, cut to `p.length`, as `read(p)` does:
   * straight into `p` when nothing waits in the inbox and single records
   * are what the socket gets (no intermediate buffer, no allocation), else
   * through the inbox. Descriptors that came with it are closed (the kernel
   * drops them on the direct path); only a 0-byte record's credentials are
   * looked at, to tell it from end of stream. Resolves with the bytes
   * copied, `null` where {@linkcode FdSocket.receive} would.
   */
  receiveInto(p: Uint8Array, signal?: AbortSignal): Promise<number | null> {
    if (p.length === 0 || this.#source || this.#busyPoll > 0) {
      return this.receive(p.length, signal).then((r) => {
        if (r === null) return null;
        closeFds(r.fds);
        p.set(r.data);
        return r.data.length;
      });
    }
    if (this.closed || (this.#eof && this.#inbox.length === 0)) return Promise.resolve(null);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return this.#tryOrPark(this.#readers, signal, () => this.#takeInto(p), () => null);
  }

  #takeInto(p: Uint8Array): number | null | Error | undefined {
    if (this.#deferred || this.#inbox.length > 0 || this.#eof || this.#vlen > 1) {
      const r = this.#take(p.length);
      if (r === undefined || r === null || r instanceof Error) return r;
      closeFds(r.fds);
      p.set(r.data);
      return r.data.length;
    }
    const credentials = this.#zero === "eof-without-credentials";
    readyDirect();
    const v = directView;
    directIovView.setBigUint64(0, pointerOf(p), true);
    directIovView.setBigUint64(8, BigInt(p.length), true);
    v.setUint32(40, credentials ? DIRECT_CONTROL_SIZE : 0, true);
    v.setUint32(48, 0, true);
    // p is the caller's and alive through this synchronous call; the rest is module-held.
    const n = confirmed(() => libc().recvmmsg(this.#fd, directHeader, 1, MSG_DONTWAIT, null));
    if (n < 0) {
      return -n === EAGAIN || -n === EINTR ? undefined : errnoError(-n, "recvmsg", this.#label);
    }
    if (n === 0) return undefined;
    // A single record: the adaptive batch size decides when to try a batch again.
    this.#nextBatch(1, 1);
    const len = Math.min(v.getUint32(56, true), p.length);
    if (len === 0 && credentials && !hasCredentials(v.getUint32(40, true))) {
      this.#eof = true;
      return null;
    }
    return len;
  }

  /**
   * Receives a batch: waits for the first record, then adds every record
   * already queued, up to `max`, without waiting again. Resolves `null`
   * exactly where {@linkcode FdSocket.receive} would.
   */
  receiveMany(max: number, maxSize: number, signal?: AbortSignal): Promise<Received<A>[] | null> {
    if (this.closed || (this.#eof && this.#inbox.length === 0)) return Promise.resolve(null);
    if (signal?.aborted) return Promise.reject(signal.reason);
    const attempt = (): Received<A>[] | null | Error | undefined => {
      // Whether the queue was empty is only known of the fill this attempt makes.
      this.#drained = false;
      const first = this.#take(maxSize, max);
      return first === undefined || first === null || first instanceof Error
        ? first
        : this.#takeQueued([first], max, maxSize);
    };
    const first = this.#busyPoll > 0
      ? (): Received<A>[] | null | Error | undefined => {
        this.#drained = false;
        const r = this.#takeSpinning(maxSize);
        return r === undefined || r === null || r instanceof Error
          ? r
          : this.#takeQueued([r], max, maxSize);
      }
      : attempt;
    return this.#tryOrPark(this.#readers, signal, attempt, () => null, first);
  }

  /**
   * Adds to `batch` the records queued now, up to `max`, without waiting. An
   * error met after the first record is kept for the next receive, so a
   * one-shot error (a refused datagram) is not lost.
   */
  #takeQueued(batch: Received<A>[], max: number, maxSize: number): Received<A>[] {
    while (batch.length < max) {
      if (this.#inbox.length === 0) {
        if (this.#eof || this.#drained) break;
        const e = this.#fill(maxSize, max - batch.length);
        if (e !== 0) {
          if (e !== EAGAIN && e !== EINTR) this.#deferred = errnoError(e, "recvmsg", this.#label);
          break;
        }
        if (this.#inbox.length === 0) break;
      }
      batch.push(cut(this.#inbox.shift()!, maxSize));
    }
    return batch;
  }

  /**
   * Sets the microseconds a receive that finds nothing keeps trying on the JS thread
   * before it parks (0: it parks at once). Spinning spares the wake-up of a
   * parked receive, which passes through one of Deno's pool threads and
   * costs more than a loopback reply, but holds the JS thread
   * (timers and other I/O wait) for up to this long per receive.
   */
  setBusyPoll(microseconds: number): void {
    this.#busyPoll = microseconds / 1000;
  }

  /**
   * `#take`, tried again until a record comes or the busy-poll budget is
   * spent. Between tries the thread yields its CPU, so a peer that shares it
   * gets to run and answer (without the yield, a peer pinned to the same
   * CPU waits for the spin to end before it can reply).
   */
  #takeSpinning(maxSize: number): Received<A> | null | Error | undefined {
    let r = this.#take(maxSize);
    if (r !== undefined) return r;
    const c = libc();
    const end = performance.now() + this.#busyPoll;
    do {
      c.sched_yield();
      r = this.#take(maxSize);
    } while (r === undefined && performance.now() < end);
    return r;
  }

  /**
   * The next record, `null` at end of stream, an Error, or undefined on
   * EAGAIN. `want`, when given, is how many records the caller takes now
   * (receiveMany), which sizes the batch instead of the adaptive guess.
   */
  #take(maxSize: number, want?: number): Received<A> | null | Error | undefined {
    if (this.#deferred) {
      const err = this.#deferred;
      this.#deferred = undefined;
      return err;
    }
    if (this.#inbox.length === 0) {
      if (this.#eof) return null;
      const e = this.#fill(maxSize, want);
      if (e !== 0) {
        return e === EAGAIN || e === EINTR ? undefined : errnoError(e, "recvmsg", this.#label);
      }
      if (this.#inbox.length === 0) return this.#eof ? null : undefined;
    }
    return cut(this.#inbox.shift()!, maxSize);
  }

  /**
   * Reads up to a batch of records into the inbox; returns 0 or errno.
   * `want` asks for that many; otherwise the adaptive batch size applies.
   */
  #fill(maxSize: number, want?: number): number {
    this.#drained = false;
    if (this.#source) return this.#source.fill(this.#inbox);
    const arena = arenaFor(maxSize, this.#unix);
    const vlen = Math.min(arena.slots, want ?? this.#vlen);
    // Only sockets that asked for ancillary data (Unix descriptors or
    // credentials, IP receive info) ask for control data. Elsewhere a zero control length makes the kernel drop
    // descriptors (closing them) instead of installing them where nobody
    // would close them.
    const wantControl = this.#control !== undefined;
    arena.prepare(vlen, wantControl);
    // AF_PACKET refuses MSG_CMSG_CLOEXEC with EINVAL, so it goes only with control data.
    const flags = wantControl ? MSG_DONTWAIT | MSG_CMSG_CLOEXEC : MSG_DONTWAIT;
    const n = confirmed(() => libc().recvmmsg(this.#fd, arena.headers, vlen, flags, null));
    if (n < 0) return -n;
    arena.filled(n);
    // A short batch emptied the queue: a batch that wants more need not ask again.
    this.#drained = n < vlen;
    if (want === undefined) this.#nextBatch(vlen, n);
    const hv = arena.headersView;
    for (let i = 0; i < n; i++) {
      const h = i * SIZEOF_MMSGHDR;
      const len = hv.getUint32(h + 56, true);
      const flags = hv.getInt32(h + 48, true);
      // msg_controllen is a size_t, but never above CONTROL_SIZE.
      const controlLength = hv.getUint32(h + 40, true);
      const r: Received<A> = {
        data: arena.data.slice(
          i * arena.slotSize,
          i * arena.slotSize + Math.min(len, arena.slotSize),
        ),
        from: null,
        truncated: (flags & MSG_TRUNC) !== 0,
      };
      if (controlLength > 0) this.#parseControl(arena, i, controlLength, r);
      if ((flags & MSG_CTRUNC) !== 0) r.controlTruncated = true;
      if (len === 0 && this.#zero === "eof-without-credentials" && !r.credentials) {
        // End of stream. recvmmsg fills every remaining slot the same way.
        closeFds(r.fds);
        this.#eof = true;
        break;
      }
      if (this.#decode) {
        const nameLength = hv.getUint32(h + 8, true);
        r.from = nameLength === 0 ? null : this.#decodeFrom(arena, i, nameLength);
      }
      this.#inbox.push(r);
    }
    return 0;
  }

  /**
   * Sizes the next batch: as many as came last time, twice as many after a
   * full one, so a flooded socket ramps up to the full batch in a few calls.
   * After single records it asks for two only now and then, and less often
   * each time the second slot comes back empty: a request-reply socket
   * reads one record per call, and an empty second slot costs the kernel
   * another attempt on every call that asks for it.
   */
  #nextBatch(asked: number, got: number): void {
    if (got === asked && asked > 1) {
      this.#vlen = Math.min(this.#batch, asked * 2);
      this.#probeAfter = 1;
    } else if (got === asked) {
      if (++this.#singles >= this.#probeAfter) {
        this.#singles = 0;
        this.#vlen = Math.min(this.#batch, 2);
      }
    } else {
      if (asked === 2) this.#probeAfter = Math.min(MAX_PROBE_AFTER, this.#probeAfter * 2);
      this.#vlen = got;
    }
  }

  /**
   * The sender's address, or `null` when the kernel reports one the public
   * types cannot name (a non-UTF-8 path, PACKET_LOOPBACK): the record itself
   * is never dropped over its address.
   */
  #decodeFrom(arena: Arena, slot: number, length: number): A | null {
    const base = slot * SIZEOF_SOCKADDR_STORAGE;
    return this.#decodeName(arena.names.subarray(base, base + SIZEOF_SOCKADDR_STORAGE), length);
  }

  /** The socket's decoder applied to `name`, `null` where it cannot name it (see #decodeFrom). */
  #decodeName(name: Uint8Array, length: number): A | null {
    try {
      return this.#decode ? this.#decode(name, length) : null;
    } catch {
      return null;
    }
  }

  #parseControl(arena: Arena, slot: number, length: number, r: Received<A>): void {
    const v = arena.controlView;
    const base = slot * CONTROL_SIZE;
    const end = base + Math.min(length, CONTROL_SIZE);
    let off = base;
    while (off + SIZEOF_CMSGHDR <= end) {
      // cmsg_len is a size_t; a high half other than 0 is malformed.
      const cmsgLen = v.getUint32(off + 4, true) === 0 ? v.getUint32(off, true) : 0;
      if (cmsgLen < SIZEOF_CMSGHDR || off + cmsgLen > end) break;
      const level = v.getInt32(off + 8, true);
      const type = v.getInt32(off + 12, true);
      const body = off + SIZEOF_CMSGHDR;
      if (level === SOL_SOCKET && type === SCM_RIGHTS) {
        const count = (cmsgLen - SIZEOF_CMSGHDR) / 4;
        r.fds ??= [];
        for (let i = 0; i < count; i++) r.fds.push(v.getInt32(body + i * 4, true));
      } else if (
        level === SOL_SOCKET && type === SCM_CREDENTIALS && this.#control === "fds+credentials"
      ) {
        r.credentials = decodeUcred(v, body);
      } else if (this.#control === "info") decodeInfo(v, level, type, body, r);
      off += CMSG_ALIGN(cmsgLen);
    }
  }

  /**
   * Runs `attempt` at once, unless operations queued ahead of it wait (then
   * it would jump the queue), and parks it if it finds nothing to do.
   * `attempt` returns the result, an Error to reject with, or undefined for
   * "not now" (EAGAIN); `first`, if given, stands in for the first try.
   */
  #tryOrPark<T>(
    queue: Waiter[],
    signal: AbortSignal | undefined,
    attempt: () => T | Error | undefined,
    onClose: () => T | Error,
    first: () => T | Error | undefined = attempt,
  ): Promise<T> {
    if (queue.length === 0) {
      const r = first();
      if (r !== undefined) return r instanceof Error ? Promise.reject(r) : Promise.resolve(r);
    }
    return this.#park(queue, signal, attempt, onClose);
  }

  /** Parks a waiter (and wires its abort) until `attempt` finds something to do. */
  #park<T>(
    queue: Waiter[],
    signal: AbortSignal | undefined,
    attempt: () => T | Error | undefined,
    onClose: () => T | Error,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const settle = (r: T | Error): void => r instanceof Error ? reject(r) : resolve(r);
      const waiter: Waiter = {
        attempt: () => {
          const r = attempt();
          if (r === undefined) return false;
          settle(r);
          return true;
        },
        closed: () => settle(onClose()),
      };
      if (signal) {
        const abort = (): void => {
          const i = queue.indexOf(waiter);
          if (i < 0) return;
          queue.splice(i, 1);
          this.#waitersChanged();
          reject(signal.reason);
        };
        signal.addEventListener("abort", abort, { once: true });
        waiter.cleanup = () => signal.removeEventListener("abort", abort);
      }
      queue.push(waiter);
      try {
        this.#waitersChanged();
      } catch (err) {
        // The engine could not watch the socket (epoll_ctl: out of memory,
        // or the user's limit of watches): this operation fails, nothing else.
        queue.splice(queue.indexOf(waiter), 1);
        waiter.cleanup?.();
        reject(err);
      }
    });
  }

  /** Called by the engine: runs the parked operations that can now proceed. */
  onReady(readable: boolean, writable: boolean): void {
    // The event disarmed the socket; #waitersChanged arms it again for what still waits.
    this.#armed = 0;
    if (readable) this.#run(this.#readers);
    if (writable) {
      const before = this.#writers.length;
      this.#run(this.#writers);
      // Ready but still EAGAIN (an unconnected Unix datagram sender whose
      // receiver is full is always "writable"): retry on a growing timer
      // instead of spinning on the engine.
      if (this.#writers.length > 0 && this.#writers.length === before) this.#scheduleWriteRetry();
      else this.#writeBackoff = 0;
    }
    this.#waitersChanged();
  }

  #run(queue: Waiter[]): void {
    while (queue.length > 0) {
      const w = queue[0];
      if (!w.attempt()) break;
      queue.shift();
      w.cleanup?.();
    }
  }

  #scheduleWriteRetry(): void {
    if (this.#writeRetryTimer !== undefined) return;
    this.#writeBackoff = Math.min(Math.max(1, this.#writeBackoff * 2), 20);
    this.#writeRetryTimer = setTimeout(() => {
      this.#writeRetryTimer = undefined;
      if (!this.closed) this.onReady(false, true);
    }, this.#writeBackoff);
    if (!this.#refed) Deno.unrefTimer(this.#writeRetryTimer!);
  }

  /**
   * Tells the engine whether this socket waits, and arms it for what it
   * waits on: into the epoll set the first time something waits, re-armed
   * (one `EPOLL_CTL_MOD`) each time after. Once nothing waits it stays in
   * the set: an event has disarmed it (one-shot), and leaving and joining
   * again cost two calls per wait where re-arming costs one. A socket still
   * armed with nothing waiting (its waiter was aborted) is disarmed: the
   * engine drops events for sockets that do not wait, so this one would
   * never learn that its event had disarmed it.
   */
  #waitersChanged(): void {
    if (this.closed) return;
    const reactor = theReactor();
    // Writers waiting out a retry timer are not armed for: "writable" would
    // come back at once and spin the engine.
    const writers = this.#writers.length > 0 && this.#writeRetryTimer === undefined;
    const want = (this.#readers.length > 0 ? 1 : 0) | (writers ? 2 : 0);
    const held = this.#held;
    if (want === 0) {
      if (this.#armed !== 0 && held.registered) {
        reactor.arm(this.#fd, this.#token, false, false, false);
      }
      this.#armed = 0;
    } else if (want !== this.#armed || !held.registered) {
      reactor.arm(this.#fd, this.#token, (want & 1) !== 0, (want & 2) !== 0, !held.registered);
      held.registered = true;
      this.#armed = want;
    }
    if (this.#readers.length > 0 || this.#writers.length > 0) {
      reactor.busy(this.#token, this, this.#refed);
    } else reactor.idle(this.#token);
  }

  /** Lets pending operations keep the process alive (the default). */
  ref(): void {
    this.#refed = true;
    this.#held.reader?.ref();
    this.#waitersChanged();
  }

  /** Lets the process exit even while operations are pending. */
  unref(): void {
    this.#refed = false;
    this.#held.reader?.unref();
    if (this.#writeRetryTimer !== undefined) Deno.unrefTimer(this.#writeRetryTimer);
    this.#waitersChanged();
  }

  /**
   * Closes the socket once: deregisters it, settles every parked operation
   * (receives with `null`, the rest with BadResource), closes descriptors
   * still waiting in the inbox, then closes the descriptor.
   */
  close(): void {
    if (this.#held.closed) return;
    finalizer.unregister(this.#held);
    clearTimeout(this.#writeRetryTimer);
    release(this.#held);
    for (const queue of [this.#readers, this.#writers]) {
      for (const w of queue.splice(0)) {
        w.cleanup?.();
        w.closed();
      }
    }
    this.#ahead = null;
    this.#writeClosed?.();
    for (const read of this.#reactorReads.splice(0)) {
      read.cleanup?.();
      read.resolve(null);
    }
  }

  // -------------------------------------------------------------------------
  // Byte streams (SOCK_STREAM): bytes go straight between the caller's buffer
  // and the kernel; the record inbox is not used.

  /**
   * Reads up to `p.length` (at least 1) bytes into `p` with `read(2)`.
   * Resolves `null` at end of stream or once closed. Descriptors that came
   * with the bytes are closed by the kernel, as for recv(2) without control.
   */
  readInto(p: Uint8Array, signal?: AbortSignal): Promise<number | null> {
    if (this.closed) return Promise.resolve(null);
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#ahead !== null && this.#reactorReads.length === 0) {
      return Promise.resolve(this.#takeAhead(p));
    }
    const attempt = this.#readAttempt(p);
    if (this.#readers.length > 0 || this.#reactorReads.length > 0) {
      return this.#parkRead(p, signal, attempt);
    }
    const r = attempt();
    if (r !== undefined) return r instanceof Error ? Promise.reject(r) : Promise.resolve(r);
    return this.#parkRead(p, signal, attempt);
  }

  /** One try of `read(2)` into `p`, as #tryOrPark takes it. */
  #readAttempt(p: Uint8Array): () => number | null | Error | undefined {
    return () => {
      const n = confirmed(() => libc().read(this.#fd, p, BigInt(p.length)));
      if (n >= 0) return n === 0 ? null : n;
      return -n === EAGAIN || -n === EINTR ? undefined : errnoError(-n, "read", this.#label);
    };
  }

  /**
   * Moves the reads parked on the reactor to the engine's queue, in order,
   * so that a receive() asked after them is served after them.
   */
  #moveReactorReads(): void {
    this.#held.reader?.cancel();
    for (const read of this.#reactorReads.splice(0)) {
      read.cleanup?.();
      this.#park(this.#readers, read.signal, this.#readAttempt(read.p), () => null)
        .then(read.resolve, read.reject);
    }
  }

  /** Bytes the reactor's reader read past what its reader asked for. */
  #ahead: Uint8Array | null = null;
  /** Reads parked on the runtime's reactor, oldest first. */
  readonly #reactorReads: ReactorRead[] = [];

  /** Copies what was read ahead into `p`. */
  #takeAhead(p: Uint8Array): number {
    const ahead = this.#ahead!;
    const n = Math.min(p.length, ahead.length);
    p.set(ahead.subarray(0, n));
    this.#ahead = n === ahead.length ? null : ahead.subarray(n);
    return n;
  }

  /** Parks a stream read: on the runtime's reactor where it offers one, else on the engine. */
  #parkRead(
    p: Uint8Array,
    signal: AbortSignal | undefined,
    attempt: () => number | null | Error | undefined,
  ): Promise<number | null> {
    const reader = this.#reactorPipe();
    if (reader === null || this.#readers.length > 0) {
      return this.#park(this.#readers, signal, attempt, () => null);
    }
    return new Promise<number | null>((resolve, reject) => {
      const read: ReactorRead = { p, signal, resolve, reject };
      if (signal) {
        const abort = (): void => {
          const i = this.#reactorReads.indexOf(read);
          if (i < 0) return;
          this.#reactorReads.splice(i, 1);
          if (i === 0) {
            reader.cancel();
            this.#nextReactorRead();
          }
          reject(signal.reason);
        };
        signal.addEventListener("abort", abort, { once: true });
        read.cleanup = () => signal.removeEventListener("abort", abort);
      }
      this.#reactorReads.push(read);
      if (this.#reactorReads.length === 1) this.#nextReactorRead();
    });
  }

  /** The socket's pipe on the runtime's reactor, opened on first use; null without one. */
  #reactorPipe(): ReactorPipe | null {
    if (this.#held.reader === undefined) {
      this.#held.reader = ReactorPipe.open(this.#fd);
      if (!this.#refed) this.#held.reader?.unref();
    }
    return this.#held.reader;
  }

  /** Starts the reactor read for the oldest parked read, if any. */
  #nextReactorRead(): void {
    const reader = this.#held.reader;
    if (this.closed || !reader || reader.reading || this.#reactorReads.length === 0) return;
    const size = Math.min(this.#reactorReads[0].p.length, REACTOR_READ_MAX);
    reader.read(size, (n) => this.#reactorReadDone(reader, n));
  }

  #reactorReadDone(reader: ReactorPipe, n: number): void {
    if (this.closed) return;
    const queue = this.#reactorReads;
    if (n > 0) {
      // The read was sized for the oldest parked read, so it takes all of it.
      const bytes = reader.buffer.subarray(0, n);
      const first = queue.shift();
      if (first && first.p.length >= n) {
        first.p.set(bytes);
        first.cleanup?.();
        first.resolve(n);
      } else {
        if (first) queue.unshift(first);
        this.#ahead = bytes.slice();
      }
    }
    while (queue.length > 0 && (this.#ahead !== null || n <= 0)) {
      const read = queue.shift()!;
      read.cleanup?.();
      if (this.#ahead !== null) read.resolve(this.#takeAhead(read.p));
      else if (n === 0) read.resolve(null);
      else {
        read.reject(errnoError(-n, "read", this.#label));
        break;
      }
    }
    this.#nextReactorRead();
  }
  /**
   * Writes all of `data`, waiting for room as needed; `fds` ride with the
   * first byte the kernel takes (Linux attaches them to that first skb).
   * Resolves with `data.length`.
   */
  sendAll(data: Uint8Array, fds: number[] | undefined, call: string): Promise<number> {
    if (this.closed) return Promise.reject(closedError(call, this.#label));
    // A write still finishing on the reactor goes first.
    const tail = this.#writeTail;
    if (tail !== null) return tail.then(() => this.sendAll(data, fds, call));
    let done = 0;
    let rights = fds !== undefined && fds.length > 0 ? fds : undefined;
    const attempt = (): number | Error | undefined => {
      while (done < data.length) {
        const rest = done === 0 ? data : data.subarray(done);
        const n = rights ? this.#sendmsg(rest, null, rights) : this.#sendto(rest, null);
        if (n < 0) {
          return -n === EAGAIN || -n === EINTR ? undefined : errnoError(-n, call, this.#label);
        }
        if (n > 0) rights = undefined;
        done += n;
      }
      return done;
    };
    const onClose = () => closedError(call, this.#label);
    if (this.#writers.length > 0) return this.#park(this.#writers, undefined, attempt, onClose);
    const r = attempt();
    if (r !== undefined) return r instanceof Error ? Promise.reject(r) : Promise.resolve(r);
    const pipe = rights === undefined ? this.#reactorPipe() : null;
    if (pipe === null) return this.#park(this.#writers, undefined, attempt, onClose);
    return this.#writeOnReactor(pipe, data.subarray(done), data.length, call);
  }

  /** The end of the write the reactor is finishing, which later writes wait for. */
  #writeTail: Promise<unknown> | null = null;
  /** Settles the reactor's write as closed. */
  #writeClosed: (() => void) | null = null;

  /** Hands the rest of a write to the reactor; resolves with `total` once it is all sent. */
  #writeOnReactor(
    pipe: ReactorPipe,
    rest: Uint8Array,
    total: number,
    call: string,
  ): Promise<number> {
    let tail: Promise<unknown> | null = null;
    const written = new Promise<number>((resolve, reject) => {
      const settle = (err: Error | null): void => {
        this.#writeClosed = null;
        if (this.#writeTail === tail) this.#writeTail = null;
        if (err) reject(err);
        else resolve(total);
      };
      this.#writeClosed = () => settle(closedError(call, this.#label));
      pipe.write(rest, (status) => {
        if (this.closed) return;
        settle(status < 0 ? errnoError(-status, call, this.#label) : null);
      });
    });
    // Later writes follow this one whether it succeeds or fails.
    if (this.#writeClosed !== null) this.#writeTail = tail = written.then(() => {}, () => {});
    return written;
  }

  /**
   * Receives up to `maxSize` (at least 1) bytes with their control data
   * (descriptors installed close-on-exec). Linux ends such a receive right
   * after the bytes that carried descriptors, so they never come with bytes
   * of a later write. Resolves `null` at end of stream or once closed.
   */
  receiveStream(maxSize: number, signal?: AbortSignal): Promise<Received<A> | null> {
    if (this.closed) return Promise.resolve(null);
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#reactorReads.length > 0) this.#moveReactorReads();
    return this.#tryOrPark(this.#readers, signal, () => this.#takeStream(maxSize), () => null);
  }

  /** A one-slot arena of the size the last stream receive asked for. */
  #streamArena: Arena | undefined;

  #takeStream(maxSize: number): Received<A> | null | Error | undefined {
    if (this.#ahead !== null) {
      // Bytes a read(p) on the reactor read ahead: their descriptors, if any, are gone.
      const data = new Uint8Array(Math.min(maxSize, this.#ahead.length));
      this.#takeAhead(data);
      return { data, from: null, truncated: false };
    }
    if (this.#streamArena?.slotSize !== maxSize) this.#streamArena = new Arena(1, maxSize);
    const arena = this.#streamArena;
    arena.prepare(1, true);
    const flags = MSG_DONTWAIT | MSG_CMSG_CLOEXEC;
    const n = confirmed(() => libc().recvmmsg(this.#fd, arena.headers, 1, flags, null));
    if (n < 0) {
      return -n === EAGAIN || -n === EINTR ? undefined : errnoError(-n, "recvmsg", this.#label);
    }
    arena.filled(n);
    const hv = arena.headersView;
    const len = hv.getUint32(56, true);
    const r: Received<A> = { data: arena.data.slice(0, len), from: null, truncated: false };
    const controlLength = hv.getUint32(40, true);
    if (controlLength > 0) this.#parseControl(arena, 0, controlLength, r);
    if ((hv.getInt32(48, true) & MSG_CTRUNC) !== 0) r.controlTruncated = true;
    if (len > 0) return r;
    closeFds(r.fds);
    return null;
  }

  /** `bind(fd, addr)` on a descriptor no FdSocket owns yet (fromFd's adopters). */
  static bindFd(fd: number, addr: Uint8Array, label: string): void {
    if (libc().bind(fd, addr, addr.length) < 0) throw errnoError(errno(), "bind", label);
  }

  /**
   * `getsockname`/`getpeername` of a descriptor no socket owns yet (for
   * fromFd), decoded; `null` when it has no peer (ENOTCONN).
   */
  static nameOf<T>(
    fd: number,
    call: "getsockname" | "getpeername",
    decode: (name: Uint8Array, length: number) => T,
  ): T | null {
    scratchLenView.setUint32(0, SIZEOF_SOCKADDR_STORAGE, true);
    if (libc()[call](fd, scratchName, scratchLen) < 0) {
      const e = errno();
      if (e === ENOTCONN) return null;
      throw errnoError(e, call, `fd ${fd}`);
    }
    return decode(scratchName, scratchLenView.getUint32(0, true));
  }

  // -------------------------------------------------------------------------
  // Peek: the next record or bytes, left in place for the next receive.

  /**
   * The next record without consuming it: a copy of the first record read
   * ahead, or one `recvmsg(MSG_PEEK | MSG_TRUNC)`, which reports the
   * record's full length (`recordLength`) even past `maxSize`. A peek
   * carries no descriptors (the kernel's duplicates are closed at once; the
   * receive that follows delivers the originals). Resolves `null` where
   * receive would.
   */
  peek(maxSize: number, signal?: AbortSignal): Promise<Received<A> | null> {
    if (this.closed || (this.#eof && this.#inbox.length === 0)) return Promise.resolve(null);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return this.#tryOrPark(this.#readers, signal, () => this.#peekOnce(maxSize), () => null);
  }

  #peekOnce(maxSize: number): Received<A> | null | Error | undefined {
    if (this.#deferred) return this.#deferred;
    if (this.#inbox.length === 0 && this.#source) {
      const e = this.#source.fill(this.#inbox);
      if (e !== 0) {
        return e === EAGAIN || e === EINTR ? undefined : errnoError(e, "recvmsg", this.#label);
      }
    }
    if (this.#inbox.length > 0) {
      const { fds: _held, ...first } = this.#inbox[0];
      const copy: Received<A> = { ...first, recordLength: first.data.length };
      return cut(copy, maxSize);
    }
    if (this.#eof) return null;
    const arena = arenaFor(maxSize, this.#unix);
    // Credentials tell a seqpacket's 0-byte record from its end.
    const wantControl = this.#control === "info" || this.#zero === "eof-without-credentials";
    arena.prepare(1, wantControl);
    const failed = this.#peekInto(
      arena,
      MSG_PEEK | MSG_TRUNC | (wantControl ? MSG_CMSG_CLOEXEC : 0),
    );
    if (failed !== true) return failed;
    const hv = arena.headersView;
    // With MSG_TRUNC the kernel reports the record's full length.
    const len = hv.getUint32(56, true);
    const r: Received<A> = {
      data: arena.data.slice(0, Math.min(len, arena.slotSize, maxSize)),
      from: null,
      truncated: false,
      recordLength: len,
    };
    r.truncated = len > r.data.length;
    const controlLength = hv.getUint32(40, true);
    if (controlLength > 0) this.#parseControl(arena, 0, controlLength, r);
    closeFds(r.fds);
    delete r.fds;
    if (len === 0 && this.#zero === "eof-without-credentials" && !r.credentials) return null;
    if (this.#decode) {
      const nameLength = hv.getUint32(8, true);
      r.from = nameLength === 0 ? null : this.#decodeFrom(arena, 0, nameLength);
    }
    return r;
  }

  /** One nonblocking recvmmsg of one slot: true, an Error, or undefined on EAGAIN. */
  #peekInto(arena: Arena, flags: number): true | Error | undefined {
    const all = MSG_DONTWAIT | flags;
    const n = confirmed(() => libc().recvmmsg(this.#fd, arena.headers, 1, all, null));
    if (n < 0) {
      return -n === EAGAIN || -n === EINTR ? undefined : errnoError(-n, "recvmsg", this.#label);
    }
    arena.filled(n);
    return true;
  }

  /**
   * Byte streams: up to `maxSize` bytes that are there, without consuming
   * them (`MSG_PEEK`). Resolves `null` at end of stream or once closed.
   */
  peekStream(maxSize: number, signal?: AbortSignal): Promise<Uint8Array | null> {
    if (this.closed) return Promise.resolve(null);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return this.#tryOrPark(this.#readers, signal, (): Uint8Array | null | Error | undefined => {
      if (this.#streamArena?.slotSize !== maxSize) this.#streamArena = new Arena(1, maxSize);
      const arena = this.#streamArena;
      // No control buffer: the kernel then keeps descriptors with the bytes.
      arena.prepare(1, false);
      const failed = this.#peekInto(arena, MSG_PEEK);
      if (failed !== true) return failed;
      const len = arena.headersView.getUint32(56, true);
      return len === 0 ? null : arena.data.slice(0, len);
    }, () => null);
  }

  #check(call: string, label = this.#label): void {
    if (this.closed) throw closedError(call, label);
  }
}
