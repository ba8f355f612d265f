// The io_uring doorbell: tells the JS thread that the engine's epoll set has
// events, through Deno's own reactor instead of a blocking-pool thread.
//
// One multishot POLL_ADD watches the epoll descriptor; the ring signals a
// registered eventfd when it has work, and a Node-compatibility `Pipe`
// (reactor_pipe.ts) reads that eventfd on the JS thread, where the engine
// then drains the set with `epoll_wait(…, 0)`. Nothing waits on a thread of
// its own, and a wake-up costs one switch into the JS thread.
//
// The ring is set up with DEFER_TASKRUN: its work runs only when the JS
// thread asks for it (io_uring_enter with GETEVENTS), and the kernel
// signals the eventfd directly when such work is queued. Without it the
// kernel would queue the work onto the JS thread with a signal-like
// notification, which makes whatever the thread sleeps in (an epoll_wait of
// its own, say) return EINTR. DEFER_TASKRUN needs Linux 6.1 (multishot poll
// 5.13): older kernels, seccomp profiles that forbid io_uring,
// `kernel.io_uring_disabled` and runtimes without the `Pipe` all make
// `Doorbell.open` return null, and the engine waits on the pool instead.

import {
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  EINTR,
  IORING_CQ_EVENTFD_DISABLED,
  IORING_CQE_F_MORE,
  IORING_ENTER_GETEVENTS,
  IORING_FEAT_SINGLE_MMAP,
  IORING_OFF_SQ_RING,
  IORING_OFF_SQES,
  IORING_OP_POLL_ADD,
  IORING_POLL_ADD_MULTI,
  IORING_REGISTER_EVENTFD,
  IORING_SETUP_DEFER_TASKRUN,
  IORING_SETUP_SINGLE_ISSUER,
  IORING_SETUP_TASKRUN_FLAG,
  IORING_SQ_TASKRUN,
  MAP_POPULATE,
  MAP_SHARED,
  POLLIN,
  PROT_READ,
  PROT_WRITE,
  SIZEOF_IO_URING_CQE,
  SIZEOF_IO_URING_PARAMS,
  SIZEOF_IO_URING_SQE,
  SYS_IO_URING_ENTER,
  SYS_IO_URING_REGISTER,
  SYS_IO_URING_SETUP,
} from "./constants.ts";
import { errno, libc } from "./libc.ts";
import { openPipe, type PipeHandle } from "./reactor_pipe.ts";

/** Offsets of fields in `struct io_uring_params`, its `sq_off` and its `cq_off`. */
const PARAMS = {
  sqEntries: 0,
  cqEntries: 4,
  flags: 8,
  features: 20,
  sqTail: 44,
  sqMask: 48,
  sqFlags: 56,
  sqArray: 64,
  cqHead: 80,
  cqTail: 84,
  cqMask: 88,
  cqes: 100,
  cqFlags: 104,
} as const;
/** Where the fields the doorbell uses lie in the mapped rings, as the kernel reports them. */
interface RingOffsets {
  sqTail: number;
  sqMask: number;
  sqFlags: number;
  sqArray: number;
  cqHead: number;
  cqTail: number;
  cqMask: number;
  cqes: number;
  cqFlags: number;
}
const ENTRIES = 4;
const MAP_FAILED = 0xffffffffffffffffn;
const POLL_TOKEN = 1n;
/** How many failed polls in a row the doorbell re-arms before giving up. */
const MAX_REARMS = 8;

/**
 * Rings `ring` on the JS thread whenever the epoll descriptor it watches has
 * events. Lives as long as the isolate; `ref` decides whether it keeps the
 * process alive.
 */
export class Doorbell {
  readonly #ringFd: number;
  readonly #rings: DataView;
  /** The same mapping as 32-bit words, for the flags both sides change. */
  readonly #flags: Uint32Array;
  readonly #sqes: DataView;
  readonly #off: RingOffsets;
  readonly #epfd: number;
  readonly #ring: () => void;
  readonly #failed: () => void;
  #pipe: PipeHandle | null = null;
  #refed = true;
  #rearms = 0;
  #dead = false;

  /**
   * A doorbell on `epfd`, or null where the kernel, its configuration or
   * the runtime offers none (nothing is left open then). `ring` is called
   * after events may have arrived; `failed` once, if the ring stops
   * working later (the engine then waits on the pool).
   */
  static open(epfd: number, ring: () => void, failed: () => void): Doorbell | null {
    const c = libc();
    const params = new Uint8Array(SIZEOF_IO_URING_PARAMS);
    const pv = new DataView(params.buffer);
    pv.setUint32(
      PARAMS.flags,
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
      true,
    );
    const fd = c.io_uring_setup(SYS_IO_URING_SETUP, ENTRIES, params);
    if (fd < 0) return null;
    const u32 = (o: number): number => pv.getUint32(o, true);
    const undo: (() => void)[] = [() => c.close(fd)];
    const fail = (): null => {
      for (const u of undo.reverse()) u();
      return null;
    };
    if ((u32(PARAMS.features) & IORING_FEAT_SINGLE_MMAP) === 0) return fail();
    const map = (size: number, offset: bigint): DataView | null => {
      const prot = PROT_READ | PROT_WRITE, flags = MAP_SHARED | MAP_POPULATE;
      const p = c.mmap(null, BigInt(size), prot, flags, fd, offset);
      if (p === null || BigInt(Deno.UnsafePointer.value(p)) === MAP_FAILED) return null;
      undo.push(() => c.munmap(p, BigInt(size)));
      return new DataView(Deno.UnsafePointerView.getArrayBuffer(p, size));
    };
    const off: RingOffsets = {
      sqTail: u32(PARAMS.sqTail),
      sqMask: u32(PARAMS.sqMask),
      sqFlags: u32(PARAMS.sqFlags),
      sqArray: u32(PARAMS.sqArray),
      cqHead: u32(PARAMS.cqHead),
      cqTail: u32(PARAMS.cqTail),
      cqMask: u32(PARAMS.cqMask),
      cqes: u32(PARAMS.cqes),
      cqFlags: u32(PARAMS.cqFlags),
    };
    const rings = map(
      Math.max(
        off.sqArray + u32(PARAMS.sqEntries) * 4,
        off.cqes + u32(PARAMS.cqEntries) * SIZEOF_IO_URING_CQE,
      ),
      IORING_OFF_SQ_RING,
    );
    const sqes = rings && map(u32(PARAMS.sqEntries) * SIZEOF_IO_URING_SQE, IORING_OFF_SQES);
    if (!rings || !sqes) return fail();
    const efd = c.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) return fail();
    undo.push(() => c.close(efd));
    const arg = new Int32Array([efd]);
    if (c.io_uring_register(SYS_IO_URING_REGISTER, fd, IORING_REGISTER_EVENTFD, arg, 1) < 0) {
      return fail();
    }
    const bell = new Doorbell(fd, rings, sqes, off, epfd, ring, failed);
    if (!bell.#arm()) return fail();
    const pipe = openPipe(efd);
    if (pipe === null) return fail();
    // The Pipe owns the eventfd now and closes it itself.
    undo.pop();
    bell.#pipe = pipe;
    pipe.useUserBuffer(new Uint8Array(8));
    pipe.onread = () => bell.#onRing();
    if (pipe.readStart() !== 0) {
      pipe.onread = null;
      pipe.close();
      return fail();
    }
    bell.unref();
    return bell;
  }

  private constructor(
    fd: number,
    rings: DataView,
    sqes: DataView,
    off: RingOffsets,
    epfd: number,
    ring: () => void,
    failed: () => void,
  ) {
    this.#ringFd = fd;
    this.#rings = rings;
    this.#flags = new Uint32Array(rings.buffer, 0, rings.byteLength >> 2);
    this.#sqes = sqes;
    this.#off = off;
    this.#epfd = epfd;
    this.#ring = ring;
    this.#failed = failed;
  }

  /** Lets the doorbell keep the process alive (while something waits). */
  ref(): void {
    if (this.#refed || this.#dead) return;
    this.#refed = true;
    this.#pipe!.ref();
  }

  /** Lets the process exit although the doorbell still listens. */
  unref(): void {
    if (!this.#refed || this.#dead) return;
    this.#refed = false;
    this.#pipe!.unref();
  }

  /** Queues and submits the multishot poll on the epoll descriptor. */
  #arm(): boolean {
    const r = this.#rings, o = this.#off, q = this.#sqes;
    const tail = r.getUint32(o.sqTail, true);
    const index = tail & r.getUint32(o.sqMask, true);
    const base = index * SIZEOF_IO_URING_SQE;
    for (let i = 0; i < SIZEOF_IO_URING_SQE; i += 8) q.setBigUint64(base + i, 0n);
    q.setUint8(base, IORING_OP_POLL_ADD);
    q.setInt32(base + 4, this.#epfd, true);
    q.setUint32(base + 24, IORING_POLL_ADD_MULTI, true);
    q.setUint32(base + 28, POLLIN, true);
    q.setBigUint64(base + 32, POLL_TOKEN, true);
    r.setUint32(o.sqArray + index * 4, index, true);
    // The kernel reads the tail inside io_uring_enter (no SQPOLL thread), so
    // the system call orders these stores before it.
    r.setUint32(o.sqTail, (tail + 1) >>> 0, true);
    return libc().io_uring_enter(SYS_IO_URING_ENTER, this.#ringFd, 1, 0, 0, null, 0n) === 1;
  }

  /**
   * Runs the ring's queued poll work, which posts its completions, with the
   * eventfd muted: the completions it posts would ring it once more for
   * nothing. Work queued while muted rang nothing either, so it is run in
   * turn; the kernel signals again only for work queued while none is, so
   * work left queued would silence the doorbell. False if running it fails.
   *
   * Unmuting and then looking for queued work is one half of a handshake
   * whose other half is the kernel's (flag the work, then read whether the
   * eventfd is muted): each side stores, then loads what the other stored.
   * A plain store may sit in the CPU's store buffer past a later load, and
   * then both sides miss each other: no signal, and work left queued. The
   * unmute is therefore an atomic read-modify-write, a full barrier.
   */
  #runWork(): boolean {
    const f = this.#flags, cq = this.#off.cqFlags >> 2, sq = this.#off.sqFlags >> 2;
    for (let i = 0; i < 4; i++) {
      Atomics.or(f, cq, IORING_CQ_EVENTFD_DISABLED);
      const rc = libc().io_uring_enter(
        SYS_IO_URING_ENTER,
        this.#ringFd,
        0,
        0,
        IORING_ENTER_GETEVENTS,
        null,
        0n,
      );
      const e = errno();
      Atomics.and(f, cq, ~IORING_CQ_EVENTFD_DISABLED);
      if (rc < 0 && e !== EINTR) return false;
      // Set again: queued since the call began, maybe while muted.
      if ((Atomics.load(f, sq) & IORING_SQ_TASKRUN) === 0) return true;
    }
    // A flood keeps queueing: come back on a later turn rather than hold the thread.
    const timer = setTimeout(() => this.#onRing(), 0);
    Deno.unrefTimer(timer);
    return true;
  }

  #onRing(): void {
    if (this.#dead) return;
    const r = this.#rings, o = this.#off;
    // The eventfd is signalled when poll work is queued (IORING_SQ_TASKRUN
    // is set first); a ring for work an earlier ring already ran finds
    // neither work nor a completion and costs nothing.
    let work = (Atomics.load(this.#flags, o.sqFlags >> 2) & IORING_SQ_TASKRUN) !== 0;
    if (work && !this.#runWork()) return this.#die();
    let head = r.getUint32(o.cqHead, true);
    const tail = r.getUint32(o.cqTail, true);
    let ended = false, failed = false;
    for (; head !== tail; head = (head + 1) >>> 0) {
      work = true;
      const cqe = o.cqes + (head & r.getUint32(o.cqMask, true)) * SIZEOF_IO_URING_CQE;
      if ((r.getUint32(cqe + 12, true) & IORING_CQE_F_MORE) === 0) ended = true;
      if (r.getInt32(cqe + 8, true) < 0) failed = true;
    }
    r.setUint32(o.cqHead, head, true);
    // A multishot poll also ends without failing, when its completions
    // overflow the ring; one that keeps failing makes the ring useless.
    this.#rearms = failed ? this.#rearms + 1 : 0;
    if (ended && (this.#rearms > MAX_REARMS || !this.#arm())) return this.#die();
    if (work) this.#ring();
  }

  /** Gives up: the engine takes over with its pool wait and drains what came meanwhile. */
  #die(): void {
    this.#dead = true;
    const pipe = this.#pipe!;
    pipe.onread = null;
    try {
      this.#failed();
      this.#ring();
    } finally {
      // Closed on a later turn: this runs inside the pipe's own read callback.
      queueMicrotask(() => pipe.close());
    }
  }
}
