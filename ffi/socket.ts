// FdSocket: one O_NONBLOCK descriptor driven by the readiness engine. The one
// place that calls socket, bind, listen, accept4, connect, sendto, sendmsg,
// sendmmsg, recvmmsg and shutdown; an operation that meets EAGAIN parks in the
// socket's reader or writer WaitQueue until the engine reports it ready.
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
  MSG_CMSG_CLOEXEC,
  MSG_CTRUNC,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  MSG_PEEK,
  MSG_TRUNC,
  SHUT_RD,
  SHUT_RDWR,
  SHUT_WR,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCK_RAW,
  SOCK_SEQPACKET,
  SOCK_STREAM,
} from "./constants.ts";
import { Arena, arenaFor } from "./arena.ts";
import { BatchSize } from "./batch.ts";
import { type Control, type ControlData, encodeRights, startsWithCredentials } from "./control.ts";
import { closedError, confirmed, errnoError, ONE_SHOT_ERRNOS, reconfirmed } from "./errors.ts";
import { pointerOf, withPinned } from "./buffers.ts";
import { closeFds, closeOwned, disown, own, type Owned } from "./ledger.ts";
import {
  type Family,
  getOptionOn,
  type Kind,
  type OptionValue,
  type OptionValues,
  type ReadOnlyOptionValues,
  setOptionOn,
} from "./options.ts";
import { errno, libc } from "./libc.ts";
import { ReactorPipe } from "./reactor_pipe.ts";
import { StreamPipe } from "./stream_pipe.ts";
import { theReactor } from "./reactor.ts";
import { cmsgSpace, IOVEC, MMSGHDR, MSGHDR, SOCKADDR_STORAGE, UCRED } from "./structs.ts";
import { type Attempt, type Retrier, WaitQueue } from "./wait_queue.ts";

export type { Family, Kind } from "./options.ts";
export type { Credentials } from "./structs.ts";
export type { Control } from "./control.ts";
// FdSocket's users close the descriptors records bring, and fromFd asks the ledger.
export { closeFds, isOwnedFd, openSocketCount } from "./ledger.ts";

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
export interface Received<A> extends ControlData {
  data: Uint8Array;
  from: A | null;
  truncated: boolean;
  /** The kernel had more control data than fit (`MSG_CTRUNC`); descriptors may be missing. */
  controlTruncated?: boolean;
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

/** What the ledger keeps of an FdSocket: all its close needs, but not the socket. */
interface Held extends Owned {
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
  closeOwned(held.fd);
  held.releaseSource?.();
}

/**
 * The header of {@linkcode FdSocket.receiveInto}'s direct path on a socket
 * whose 0-byte receive needs credentials to be told from end of stream: no
 * name, one iovec pointed at the caller's buffer, and room for credentials
 * only, so descriptors are dropped by the kernel. Sockets that need no
 * control data read with a plain recv.
 */
const DIRECT_CONTROL_SIZE = cmsgSpace(UCRED.size);
const directControl = new Uint8Array(DIRECT_CONTROL_SIZE);
const directControlView = new DataView(directControl.buffer);
const directIov = new Uint8Array(IOVEC.size);
const directIovView = new DataView(directIov.buffer);
const directHeader = new Uint8Array(MSGHDR.size);
const directView = new DataView(directHeader.buffer);
let directReady = false;
/**
 * The buffer the direct iovec points at, and the length it had then: a read
 * loop passes the same buffer each time, and its address (a BigInt through
 * the runtime) need not be asked again. Holds on to that one buffer.
 */
let directTarget: Uint8Array | undefined;
let directTargetLength = 0;

/** Points the direct header at its iovec and control buffer (on first use: FFI may be denied). */
function readyDirect(): void {
  if (directReady) return;
  directView.setBigUint64(MSGHDR.iov, pointerOf(directIov), true);
  directView.setBigUint64(MSGHDR.iovlen, 1n, true);
  directView.setBigUint64(MSGHDR.control, pointerOf(directControl), true);
  directReady = true;
}

/** Points the direct iovec at `p`, unless it points there already. */
function pointDirectAt(p: Uint8Array): void {
  // A buffer detached since has length 0, so it is pointed at again (at nothing).
  if (p === directTarget && p.length === directTargetLength) return;
  directIovView.setBigUint64(IOVEC.base, pointerOf(p), true);
  directIovView.setBigUint64(IOVEC.len, BigInt(p.length), true);
  directTarget = p;
  directTargetLength = p.length;
}

/** Whether the control data the direct header received holds credentials. */
function directHasCredentials(): boolean {
  return startsWithCredentials(directControlView, directView.getUint32(MSGHDR.controllen, true));
}

/**
 * A length as a size_t argument (a bigint: a number there is the runtime's
 * slow path), converted again only when it changes: a loop passes the same
 * length each time. Receives and sends keep one each, as their lengths differ.
 */
class SizeT {
  #length = 0;
  #value = 0n;

  /** `length` as a size_t. */
  of(length: number): bigint {
    if (length !== this.#length) {
      this.#length = length;
      this.#value = BigInt(length);
    }
    return this.#value;
  }
}

const receiveSize = new SizeT();
const sendSize = new SizeT();

const SEND_FLAGS = MSG_NOSIGNAL | MSG_DONTWAIT;
const scratchLen = new Uint8Array(4);
const scratchLenView = new DataView(scratchLen.buffer);
const scratchName = new Uint8Array(SOCKADDR_STORAGE.size);
const scratchMsg = new Uint8Array(MSGHDR.size);
const scratchMsgView = new DataView(scratchMsg.buffer);
const scratchIov = new Uint8Array(IOVEC.size);
const scratchIovView = new DataView(scratchIov.buffer);

/**
 * Records shorter than this that are copied out of the arena together share
 * one new buffer, up to {@linkcode CHUNK_BYTES} of them; a longer one gets its own.
 */
const SHARED_BELOW = 4096;
const CHUNK_BYTES = 65536;

/**
 * Gives the records of `records` (views into the arena) bytes of their own:
 * one allocation per run of short records, each record a view of its part,
 * instead of one per record (a small ArrayBuffer costs far more than the
 * bytes it holds; for long records the bytes dominate, and sharing measured
 * slower). A record that outlives its neighbours keeps at most
 * {@linkcode CHUNK_BYTES} alive.
 */
function ownBytes(records: Received<unknown>[]): void {
  let i = 0;
  while (i < records.length) {
    let total = records[i].data.length, j = i + 1;
    if (total < SHARED_BELOW) {
      while (j < records.length) {
        const length = records[j].data.length;
        if (length >= SHARED_BELOW || total + length > CHUNK_BYTES) break;
        total += length;
        j++;
      }
    }
    if (j === i + 1) {
      records[i].data = records[i].data.slice();
      i = j;
      continue;
    }
    const chunk = new Uint8Array(total);
    for (let off = 0; i < j; i++) {
      const data = records[i].data;
      chunk.set(data, off);
      records[i].data = chunk.subarray(off, off += data.length);
    }
  }
}

/** `r`, cut to `maxSize` bytes (and marked truncated) when longer. */
function cut<A>(r: Received<A>, maxSize: number): Received<A> {
  if (r.data.length > maxSize) {
    r.data = r.data.subarray(0, maxSize);
    r.truncated = true;
  }
  return r;
}

/** What a parked receive settles with once its socket closes: one function for all. */
function closedNull(): null {
  return null;
}

/**
 * An attempt's answer as a promise: the one promise a call that did not
 * have to wait allocates.
 */
function settled<T>(r: T | Error): Promise<T> {
  return r instanceof Error ? Promise.reject(r) : Promise.resolve(r);
}

/** The parked operations an FdSocket retries itself (see {@linkcode FdSocket.retry}). */
const RECEIVE = 1, RECEIVE_INTO = 2;

/** A nonblocking socket descriptor on the readiness engine. */
export class FdSocket<A = unknown> implements Retrier {
  readonly #fd: number;
  readonly #token: number;
  readonly #held: Held;
  // One callback for both queues: a socket holds one closure, not two.
  readonly #readers: WaitQueue;
  readonly #writers: WaitQueue;
  readonly #inbox: Received<A>[];
  readonly #decode?: (name: Uint8Array, length: number) => A | null;
  readonly #zero: ZeroMeans;
  #control: Control | undefined;
  /** The adaptive batch size, made on the first batch-capable fill (most sockets never batch). */
  #batch: BatchSize | undefined;
  readonly #batchMax: number;
  readonly #unix: boolean;
  /** The busy-poll budget in milliseconds (see {@linkcode FdSocket.setBusyPoll}). */
  #busyPoll = 0;
  #source: RecordSource<A> | undefined;
  #label: string;
  #refed = true;
  #eof = false;
  /**
   * The inbox's records are views into the shared arena (a read(p) fill),
   * copied out by #materialise before anything else fills that arena.
   */
  #lazy = false;
  /** Lent to the arena with such views; made the first time (most sockets never lend). */
  #materialiser: (() => void) | undefined;
  /** The last fill found the queue empty after its records (see #takeQueued). */
  #drained = false;
  /** An error met while a batch was being completed, for the next receive. */
  #deferred: Error | undefined;
  /**
   * What the socket last asked the reactor for: 1 readable, 2 writable; 0
   * after an event (which may have disarmed a one-shot registration).
   */
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
    this.#batchMax = Math.max(1, Math.min(32, options.batch ?? 32));
    const changed = () => this.#waitersChanged();
    this.#readers = new WaitQueue(changed);
    this.#writers = new WaitQueue(changed);
    this.#unix = options.unix ?? false;
    const reactor = theReactor();
    this.#token = reactor.token();
    this.#inbox = [];
    this.#held = { fd, token: this.#token, closed: false, inbox: this.#inbox, registered: false };
    own(this, this.#held, release);
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
    scratchLenView.setUint32(0, SOCKADDR_STORAGE.size, true);
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
      const retried = this.#writers.park(signal, (): true | Error | undefined => {
        const again = this.#connectOnce(addr);
        if (again === 0) return true;
        return again === EAGAIN ? undefined : errnoError(again, "connect", label);
      }, () => closedError("connect", label));
      return retried.then(() => {});
    }
    if (e !== EINPROGRESS && e !== EINTR) return Promise.reject(errnoError(e, "connect", label));
    const connected = this.#writers.park(signal, (): true | Error | undefined => {
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
    scratchLenView.setUint32(0, SOCKADDR_STORAGE.size, true);
    return libc().getpeername(this.#fd, scratchName, scratchLen) === 0;
  }

  /** `accept4`, waiting for a connection; `wrap` adopts the new descriptor. */
  accept<T>(wrap: (fd: number) => T, signal?: AbortSignal): Promise<T> {
    if (this.closed) return Promise.reject(closedError("accept", this.#label));
    if (signal?.aborted) return Promise.reject(signal.reason);
    return this.#readers.tryOrPark(signal, (): T | Error | undefined => {
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
    // Tried at once, as tryOrPark would, but the closures are built only to wait.
    if (this.#writers.length === 0) {
      const r = this.#sendOnce(data, to, fds, label);
      if (r !== undefined) return settled(r);
    }
    return this.#writers.park(
      signal,
      () => this.#sendOnce(data, to, fds, label),
      () => closedError("send", label),
    );
  }

  /** One try of {@linkcode FdSocket.send}. */
  #sendOnce(
    data: Uint8Array,
    to: Uint8Array | null,
    fds: number[] | undefined,
    label: string,
  ): number | Error | undefined {
    const n = fds && fds.length > 0 ? this.#sendmsg(data, to, fds) : this.#sendto(data, to);
    return this.#sent(n, data, label);
  }

  /** A send call's result as an attempt takes it: the count, an error, or undefined to wait. */
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
    const c = libc(),
      fd = this.#fd,
      length = sendSize.of(data.length),
      toLength = to ? to.length : 0;
    const n = c.sendto(fd, data, length, SEND_FLAGS, to, toLength);
    return n >= 0 ? n : reconfirmed(() => c.sendto(fd, data, length, SEND_FLAGS, to, toLength));
  }

  /** sendmsg with one SCM_RIGHTS message; returns the count sent, or -errno. */
  #sendmsg(data: Uint8Array, to: Uint8Array | null, fds: number[]): number {
    const control = encodeRights(fds);
    return withPinned([control], () => this.#sendmsgWith(data, to, control));
  }

  #sendmsgWith(data: Uint8Array, to: Uint8Array | null, control: Uint8Array): number {
    scratchIovView.setBigUint64(IOVEC.base, pointerOf(data), true);
    scratchIovView.setBigUint64(IOVEC.len, BigInt(data.length), true);
    const m = scratchMsgView;
    m.setBigUint64(MSGHDR.name, to ? pointerOf(to) : 0n, true);
    m.setUint32(MSGHDR.namelen, to ? to.length : 0, true);
    m.setBigUint64(MSGHDR.iov, pointerOf(scratchIov), true);
    m.setBigUint64(MSGHDR.iovlen, 1n, true);
    m.setBigUint64(MSGHDR.control, pointerOf(control), true);
    m.setBigUint64(MSGHDR.controllen, BigInt(control.length), true);
    m.setInt32(MSGHDR.flags, 0, true);
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
    return this.#writers.tryOrPark(
      signal,
      () => this.#sent(attempt(), records[done]?.data, this.#label),
      () => closedError("sendmmsg", this.#label),
    );
  }

  #sendmmsg(records: readonly { data: Uint8Array; to: Uint8Array | null }[], from: number): number {
    const count = Math.min(records.length - from, 64);
    const headers = new Uint8Array(count * MMSGHDR.size);
    const iovecs = new Uint8Array(count * IOVEC.size);
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
      const v = i * IOVEC.size;
      iv.setBigUint64(v + IOVEC.base, pointerOf(data), true);
      iv.setBigUint64(v + IOVEC.len, BigInt(data.length), true);
      const h = i * MMSGHDR.size + MMSGHDR.hdr;
      hv.setBigUint64(h + MSGHDR.name, to ? pointerOf(to) : 0n, true);
      hv.setUint32(h + MSGHDR.namelen, to ? to.length : 0, true);
      hv.setBigUint64(h + MSGHDR.iov, iovBase + BigInt(v), true);
      hv.setBigUint64(h + MSGHDR.iovlen, 1n, true);
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
    if (this.#readers.length === 0) {
      const r = this.#busyPoll > 0 ? this.#takeSpinning(maxSize) : this.#take(maxSize);
      if (r !== undefined) return settled(r);
    }
    return this.#readers.parkOp(signal, this, RECEIVE, maxSize, closedNull);
  }

  /**
   * The wait queue's retry of a parked receive (`op` RECEIVE, `arg` the
   * maxSize) or read(p) (RECEIVE_INTO, `arg` p): a pending receive holds no
   * closure. Not for other callers.
   */
  retry(op: number, arg: unknown): unknown {
    return op === RECEIVE ? this.#take(arg as number) : this.#takeInto(arg as Uint8Array);
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
    if (this.#readers.length === 0) {
      const r = this.#takeInto(p);
      if (r !== undefined) return settled(r);
    }
    return this.#readers.parkOp(signal, this, RECEIVE_INTO, p, closedNull);
  }

  #takeInto(p: Uint8Array): number | null | Error | undefined {
    if (this.#deferred || this.#inbox.length > 0 || this.#eof || (this.#batch?.size ?? 1) > 1) {
      // Read ahead as views into the arena: copied once, into p, not first into a record.
      const r = this.#take(p.length, undefined, true);
      if (r === undefined || r === null || r instanceof Error) return r;
      closeFds(r.fds);
      p.set(r.data);
      return r.data.length;
    }
    const n = this.#zero === "record" ? this.#recvInto(p) : this.#recvmsgInto(p);
    if (n < 0) {
      return -n === EAGAIN || -n === EINTR ? undefined : errnoError(-n, "recvmsg", this.#label);
    }
    // A single record: the adaptive batch size decides when to try a batch again.
    this.#batchSize().next(1, 1);
    if (n === 0 && this.#zero !== "record" && !directHasCredentials()) {
      this.#eof = true;
      return null;
    }
    return Math.min(n, p.length);
  }

  /**
   * One `recv` into `p`: where a 0-byte receive is a record, nothing of the
   * header is needed, and without a control buffer the kernel closes any
   * descriptors that came. Returns the count or -errno.
   */
  #recvInto(p: Uint8Array): number {
    const c = libc(), fd = this.#fd, length = receiveSize.of(p.length);
    const n = c.recv(fd, p, length, MSG_DONTWAIT);
    return n >= 0 ? n : reconfirmed(() => c.recv(fd, p, length, MSG_DONTWAIT));
  }

  /** One `recvmsg` into `p` with room for credentials (see `directHeader`); the count or -errno. */
  #recvmsgInto(p: Uint8Array): number {
    readyDirect();
    pointDirectAt(p);
    const v = directView;
    v.setUint32(MSGHDR.controllen, DIRECT_CONTROL_SIZE, true);
    v.setUint32(MSGHDR.flags, 0, true);
    // p is the caller's and alive through this synchronous call; the rest is module-held.
    const c = libc(), fd = this.#fd;
    const n = c.recvmsg(fd, directHeader, MSG_DONTWAIT);
    return n >= 0 ? n : reconfirmed(() => c.recvmsg(fd, directHeader, MSG_DONTWAIT));
  }

  /**
   * Receives a batch: waits for the first record, then adds every record
   * already queued, up to `max`, without waiting again. Resolves `null`
   * exactly where {@linkcode FdSocket.receive} would.
   */
  receiveMany(max: number, maxSize: number, signal?: AbortSignal): Promise<Received<A>[] | null> {
    if (this.closed || (this.#eof && this.#inbox.length === 0)) return Promise.resolve(null);
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#readers.length === 0) {
      const r = this.#takeBatch(max, maxSize, this.#busyPoll > 0);
      if (r !== undefined) return settled(r);
    }
    return this.#readers.park(signal, () => this.#takeBatch(max, maxSize, false), closedNull);
  }

  /** One try of {@linkcode FdSocket.receiveMany}; `spin` busy-polls for the first record. */
  #takeBatch(
    max: number,
    maxSize: number,
    spin: boolean,
  ): Received<A>[] | null | Error | undefined {
    // Whether the queue was empty is only known of the fill this attempt makes.
    this.#drained = false;
    const first = spin ? this.#takeSpinning(maxSize) : this.#take(maxSize, max);
    return first === undefined || first === null || first instanceof Error
      ? first
      : this.#takeQueued([first], max, maxSize);
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
      const r = this.#shift(maxSize, false);
      if (r instanceof Error) {
        this.#deferred = r;
        break;
      }
      batch.push(r);
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
   * `view`: the caller copies the record's bytes out before it returns
   * (read(p)), so a record read ahead may be a view into the arena.
   */
  #take(maxSize: number, want?: number, view = false): Received<A> | null | Error | undefined {
    if (this.#deferred) {
      const err = this.#deferred;
      this.#deferred = undefined;
      return err;
    }
    if (this.#inbox.length === 0) {
      if (this.#eof) return null;
      const e = this.#fill(maxSize, want, view);
      if (e !== 0) {
        return e === EAGAIN || e === EINTR ? undefined : errnoError(e, "recvmsg", this.#label);
      }
      if (this.#inbox.length === 0) return this.#eof ? null : undefined;
    }
    return this.#shift(maxSize, view);
  }

  #batchSize(): BatchSize {
    return this.#batch ??= new BatchSize(this.#batchMax);
  }

  /** Copies records read ahead as views out of the arena (see #lazy). */
  #materialise(): void {
    if (!this.#lazy) return;
    this.#lazy = false;
    ownBytes(this.#inbox);
  }

  /**
   * The inbox's first record, cut to `maxSize`; a copy unless `view` allows a
   * view. An Error instead when the caller detached (transferred) the buffer
   * this record shares with one delivered before it (see ownBytes): its bytes
   * are gone, and saying so beats handing back an empty record.
   */
  #shift(maxSize: number, view: boolean): Received<A> | Error {
    const r = cut(this.#inbox.shift()!, maxSize);
    if (this.#lazy) {
      if (!view) r.data = r.data.slice();
      if (this.#inbox.length === 0) this.#lazy = false;
    }
    if ((r.data.buffer as ArrayBuffer).detached) {
      return new Deno.errors.InvalidData(
        `${this.#label === "" ? "receive" : `receive ${this.#label}`}: a record read ahead was ` +
          "lost: the buffer it shared with an earlier record's data was transferred (copy " +
          "data with slice() before transferring data.buffer)",
      );
    }
    return r;
  }

  /**
   * Reads up to a batch of records into the inbox; returns 0 or errno.
   * `want` asks for that many; otherwise the adaptive batch size applies.
   * `view`: the records may stay in the arena as views (see #materialise).
   */
  #fill(maxSize: number, want?: number, view = false): number {
    this.#drained = false;
    if (this.#source) return this.#source.fill(this.#inbox);
    const arena = arenaFor(maxSize, this.#unix);
    const vlen = Math.min(arena.slots, want ?? this.#batch?.size ?? 1);
    // Only sockets that asked for ancillary data (Unix descriptors or
    // credentials, IP receive info) ask for control data. Elsewhere a zero
    // control length makes the kernel drop descriptors (closing them)
    // instead of installing them where nobody would close them.
    const wantControl = this.#control !== undefined;
    arena.prepare(vlen, wantControl);
    // AF_PACKET refuses MSG_CMSG_CLOEXEC with EINVAL, so it goes only with control data.
    const flags = wantControl ? MSG_DONTWAIT | MSG_CMSG_CLOEXEC : MSG_DONTWAIT;
    const c = libc(), fd = this.#fd, headers = arena.headers;
    let n = c.recvmmsg(fd, headers, vlen, flags, null);
    if (n < 0) n = reconfirmed(() => c.recvmmsg(fd, headers, vlen, flags, null));
    if (n < 0) return -n;
    arena.filled(n);
    // A short batch emptied the queue: a batch that wants more need not ask again.
    this.#drained = n < vlen;
    if (want === undefined) this.#batchSize().next(vlen, n);
    for (let i = 0; i < n; i++) {
      const len = arena.length(i);
      const flags = arena.flags(i);
      const controlLength = arena.controlLength(i);
      const start = i * arena.slotSize, end = start + Math.min(len, arena.slotSize);
      const r: Received<A> = {
        data: arena.data.subarray(start, end),
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
        const nameLength = arena.nameLength(i);
        r.from = nameLength === 0 ? null : this.#decodeFrom(arena, i, nameLength);
      }
      this.#inbox.push(r);
    }
    // prepare() copied out any views left in the arena; these stay views until the next.
    if (!view) ownBytes(this.#inbox);
    else if (this.#inbox.length > 0) {
      this.#lazy = true;
      arena.lend(this.#materialiser ??= () => this.#materialise());
    }
    return 0;
  }

  /**
   * The sender's address, or `null` when the kernel reports one the public
   * types cannot name (a non-UTF-8 path, PACKET_LOOPBACK): the record itself
   * is never dropped over its address.
   */
  #decodeFrom(arena: Arena, slot: number, length: number): A | null {
    const last = this.#lastSender;
    if (last !== undefined && arena.sameName(slot, length, last.name)) {
      return last.from === null ? null : { ...last.from };
    }
    const name = arena.name(slot);
    const from = this.#decodeName(name, length);
    // Only an address of plain values can be handed out again as a shallow copy.
    if (from === null || Object.values(from as object).every((v) => typeof v !== "object")) {
      this.#lastSender = { name: name.slice(0, length), from: from && { ...from } };
    }
    return from;
  }

  /**
   * The last sender decoded, kept so that a run of records from one sender
   * (the usual case) decodes its address once: a copy is handed out each time.
   */
  #lastSender: { name: Uint8Array; from: A | null } | undefined;

  /** The socket's decoder applied to `name`, `null` where it cannot name it (see #decodeFrom). */
  #decodeName(name: Uint8Array, length: number): A | null {
    try {
      return this.#decode ? this.#decode(name, length) : null;
    } catch {
      return null;
    }
  }

  #parseControl(arena: Arena, slot: number, length: number, r: Received<A>): void {
    arena.parseControl(slot, length, this.#control, r);
  }

  /** Called by the engine: runs the parked operations that can now proceed. */
  onReady(readable: boolean, writable: boolean): void {
    // A one-shot registration is disarmed by its event; asking again is free
    // for an edge-triggered one (the reactor knows which it keeps).
    this.#armed = 0;
    if (readable) this.#readers.run();
    if (writable) {
      const settled = this.#writers.run();
      // Ready but still EAGAIN (an unconnected Unix datagram sender whose
      // receiver is full is always "writable"): retry on a growing timer
      // instead of spinning on the engine.
      if (this.#writers.length > 0 && settled === 0) this.#scheduleWriteRetry();
      else this.#writeBackoff = 0;
    }
    this.#waitersChanged();
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
   * Tells the reactor whether this socket waits, and for what: into the
   * epoll set the first time something waits, and it stays there, since
   * leaving and joining again cost two calls per wait. What asking again
   * costs is the reactor's business: nothing for its edge-triggered
   * registration unless writability is wanted or no longer wanted, one
   * `EPOLL_CTL_MOD` for a one-shot one. A socket still armed with nothing
   * waiting (its waiter was aborted) says so, because the reactor drops
   * events for sockets that do not wait.
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
    disown(this.#held);
    clearTimeout(this.#writeRetryTimer);
    release(this.#held);
    this.#readers.close();
    this.#writers.close();
    this.#pipe?.close();
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
    const pipe = this.#pipe;
    if (pipe && pipe.aheadLength > 0 && pipe.waiting === 0) {
      return Promise.resolve(pipe.takeAhead(p));
    }
    const attempt = this.#readAttempt(p);
    if (this.#readers.length > 0 || (pipe && pipe.waiting > 0)) {
      return this.#parkRead(p, signal, attempt);
    }
    const r = attempt();
    if (r !== undefined) return r instanceof Error ? Promise.reject(r) : Promise.resolve(r);
    return this.#parkRead(p, signal, attempt);
  }

  /** One try of `read(2)` into `p`. */
  #readAttempt(p: Uint8Array): Attempt<number | null> {
    return () => {
      const n = confirmed(() => libc().read(this.#fd, p, BigInt(p.length)));
      if (n >= 0) return n === 0 ? null : n;
      return -n === EAGAIN || -n === EINTR ? undefined : errnoError(-n, "read", this.#label);
    };
  }

  /** The socket's reads and writes on the runtime's reactor, once opened; null without one. */
  #pipe: StreamPipe | null | undefined;

  /** Parks a stream read: on the runtime's reactor where it offers one, else on the engine. */
  #parkRead(
    p: Uint8Array,
    signal: AbortSignal | undefined,
    attempt: Attempt<number | null>,
  ): Promise<number | null> {
    const pipe = this.#streamPipe();
    if (pipe === null || this.#readers.length > 0) {
      return this.#readers.park(signal, attempt, closedNull);
    }
    return pipe.read(p, signal);
  }

  /** The socket's pipe on the runtime's reactor, opened on first use; null without one. */
  #streamPipe(): StreamPipe | null {
    if (this.#pipe === undefined) {
      const reader = ReactorPipe.open(this.#fd);
      this.#held.reader = reader;
      if (!this.#refed) reader?.unref();
      this.#pipe = reader && new StreamPipe(reader, this);
    }
    return this.#pipe;
  }

  /**
   * Writes all of `data`, waiting for room as needed; `fds` ride with the
   * first byte the kernel takes (Linux attaches them to that first skb).
   * Resolves with `data.length`.
   */
  sendAll(data: Uint8Array, fds: number[] | undefined, call: string): Promise<number> {
    if (this.closed) return Promise.reject(closedError(call, this.#label));
    // A write still finishing on the reactor goes first.
    const tail = this.#pipe?.writeTail ?? null;
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
    if (this.#writers.length > 0) return this.#writers.park(undefined, attempt, onClose);
    const r = attempt();
    if (r !== undefined) return r instanceof Error ? Promise.reject(r) : Promise.resolve(r);
    const pipe = rights === undefined ? this.#streamPipe() : null;
    if (pipe === null) return this.#writers.park(undefined, attempt, onClose);
    return pipe.write(data.subarray(done), data.length, call);
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
    // Reads parked on the reactor go first, on the engine's queue.
    if (this.#pipe && this.#pipe.waiting > 0) {
      this.#pipe.moveTo((p, signal) =>
        this.#readers.park(signal, this.#readAttempt(p), closedNull)
      );
    }
    return this.#readers.tryOrPark(signal, () => this.#takeStream(maxSize), closedNull);
  }

  /** A one-slot arena of the size the last stream receive asked for. */
  #streamArena: Arena | undefined;

  #takeStream(maxSize: number): Received<A> | null | Error | undefined {
    const pipe = this.#pipe;
    if (pipe && pipe.aheadLength > 0) {
      // Bytes a read(p) on the reactor read ahead: their descriptors, if any, are gone.
      const data = new Uint8Array(Math.min(maxSize, pipe.aheadLength));
      pipe.takeAhead(data);
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
    const len = arena.length(0);
    const r: Received<A> = { data: arena.data.slice(0, len), from: null, truncated: false };
    const controlLength = arena.controlLength(0);
    if (controlLength > 0) this.#parseControl(arena, 0, controlLength, r);
    if ((arena.flags(0) & MSG_CTRUNC) !== 0) r.controlTruncated = true;
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
    scratchLenView.setUint32(0, SOCKADDR_STORAGE.size, true);
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
    return this.#readers.tryOrPark(signal, () => this.#peekOnce(maxSize), closedNull);
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
      this.#materialise();
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
    // With MSG_TRUNC the kernel reports the record's full length.
    const len = arena.length(0);
    const r: Received<A> = {
      data: arena.data.slice(0, Math.min(len, arena.slotSize, maxSize)),
      from: null,
      truncated: false,
      recordLength: len,
    };
    r.truncated = len > r.data.length;
    const controlLength = arena.controlLength(0);
    if (controlLength > 0) this.#parseControl(arena, 0, controlLength, r);
    closeFds(r.fds);
    delete r.fds;
    if (len === 0 && this.#zero === "eof-without-credentials" && !r.credentials) return null;
    if (this.#decode) {
      const nameLength = arena.nameLength(0);
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
    return this.#readers.tryOrPark(signal, (): Uint8Array | null | Error | undefined => {
      if (this.#streamArena?.slotSize !== maxSize) this.#streamArena = new Arena(1, maxSize);
      const arena = this.#streamArena;
      // No control buffer: the kernel then keeps descriptors with the bytes.
      arena.prepare(1, false);
      const failed = this.#peekInto(arena, MSG_PEEK);
      if (failed !== true) return failed;
      const len = arena.length(0);
      return len === 0 ? null : arena.data.slice(0, len);
    }, closedNull);
  }

  #check(call: string, label = this.#label): void {
    if (this.closed) throw closedError(call, label);
  }
}
