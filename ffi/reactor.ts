// The readiness engine: one epoll instance per isolate.
//
// A socket joins the epoll set the first time an operation on it waits, and
// is armed one-shot for what waits. Every operation first tries its system
// call synchronously; only on EAGAIN does it park a waiter and arm the
// socket, in the same synchronous step; arming checks readiness, so nothing
// that arrived between the try and the wait is missed. An event disarms the
// socket; it stays in the set, disarmed, while nothing waits, so each later
// wait costs one EPOLL_CTL_MOD (leaving and rejoining cost an ADD and a DEL
// per wait). The kernel still calls a disarmed entry's wake-up callback for
// each record it queues, which returns at once; the engine is never woken
// for records a try-first call picks up.
// `nonblocking: true` epoll_wait calls (the only ones) run on Deno's blocking
// pool; each result wakes every ready socket it lists at once.
//
// Lifetime: an in-flight epoll_wait keeps the process alive only while some
// waiter belongs to a ref'd socket. Deno exposes no public way to unref an FFI
// promise, so the engine uses the runtime's op-promise ref/unref when present,
// and then keeps two waits in flight, unref'd when idle (see #keep). Without
// it, one wait runs only while something waits, and an eventfd wakes it so
// the engine can stop it when nothing does; a pending operation on an
// unref'd socket then still keeps the process alive.

import {
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLL_CTL_MOD,
  EPOLL_EVENT_DATA_OFFSET,
  EPOLL_EVENT_SIZE,
  EPOLLERR,
  EPOLLHUP,
  EPOLLIN,
  EPOLLONESHOT,
  EPOLLOUT,
  EPOLLRDHUP,
} from "./constants.ts";
import { errnoError } from "./errors.ts";
import { errno, libc } from "./libc.ts";

/** What the engine calls back when a registered socket becomes ready. */
export interface ReadyHandler {
  /** Called with whether the socket may be read from and written to now. */
  onReady(readable: boolean, writable: boolean): void;
}

const MAX_EVENTS = 256;
/** One in-flight `epoll_wait` and the buffer it fills. */
interface Lane {
  events: Uint8Array;
  view: DataView;
  wait: Promise<number> | null;
  refed: boolean;
}
const WAKE_TOKEN = 0;

interface OpCore {
  refOpPromise(p: Promise<unknown>): void;
  unrefOpPromise(p: Promise<unknown>): void;
}

function opCore(): OpCore | undefined {
  // deno-lint-ignore no-explicit-any
  const internal = (Deno as any)[(Deno as any).internal];
  const core = internal?.core;
  if (typeof core?.refOpPromise === "function" && typeof core?.unrefOpPromise === "function") {
    return core as OpCore;
  }
  return undefined;
}

/** The process-wide (per isolate) readiness engine. Created on first use. */
export class Reactor {
  readonly #epfd: number;
  readonly #wakefd: number;
  readonly #core = opCore();
  /**
   * With ref/unref at hand, two waits stay in flight, unref'd while nothing
   * waits: when one returns, the other is already parked in the kernel, so
   * the next event does not wait for a pool thread to be handed new work
   * (a visible share of a loopback round trip). Without it, one wait runs
   * only while something waits, so an idle
   * program can exit.
   */
  readonly #keep = this.#core !== undefined;
  readonly #lanes: Lane[] = Array.from({ length: this.#keep ? 2 : 1 }, () => {
    const events = new Uint8Array(MAX_EVENTS * EPOLL_EVENT_SIZE);
    return { events, view: new DataView(events.buffer), wait: null, refed: true };
  });
  readonly #ctl = new Uint8Array(EPOLL_EVENT_SIZE);
  readonly #ctlView = new DataView(this.#ctl.buffer);
  readonly #eight = new Uint8Array(8);
  /** Sockets with at least one parked operation, by token: the engine's only strong references. */
  readonly #waiting = new Map<number, { handler: ReadyHandler; refed: boolean }>();
  #refedWaiting = 0;
  #nextToken = 1;
  #dispatching = false;
  #events = 0;

  constructor() {
    const c = libc();
    this.#epfd = c.epoll_create1(EPOLL_CLOEXEC);
    if (this.#epfd < 0) throw errnoError(errno(), "epoll_create1");
    this.#wakefd = c.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (this.#wakefd < 0) {
      const e = errno();
      c.close(this.#epfd);
      throw errnoError(e, "eventfd");
    }
    this.#control(EPOLL_CTL_ADD, this.#wakefd, WAKE_TOKEN, EPOLLIN);
  }

  /** A fresh token to register a socket with. Tokens are never reused, so a
   * late event for a closed socket can never reach the fd's next owner. */
  token(): number {
    return this.#nextToken++;
  }

  /**
   * Adds `fd` to the epoll set (`add`) or changes its interest, armed for one
   * event: readable, writable or both (neither: disarmed). The kernel checks readiness as it
   * arms, so an event that is already due is reported, and it disarms the
   * socket again as it reports one.
   */
  arm(fd: number, token: number, readable: boolean, writable: boolean, add: boolean): void {
    const events = (readable ? EPOLLIN | EPOLLRDHUP : 0) | (writable ? EPOLLOUT : 0);
    this.#control(add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, token, (events | EPOLLONESHOT) >>> 0);
  }

  /** Takes `fd` out of the epoll set. */
  unwatch(fd: number): void {
    libc().epoll_ctl(this.#epfd, EPOLL_CTL_DEL, fd, this.#ctl);
  }

  /** Marks `token` as having parked operations; starts the wait if needed. */
  busy(token: number, handler: ReadyHandler, refed: boolean): void {
    const entry = this.#waiting.get(token);
    if (entry) {
      if (entry.refed !== refed) {
        entry.refed = refed;
        this.#refedWaiting += refed ? 1 : -1;
      }
    } else {
      this.#waiting.set(token, { handler, refed });
      if (refed) this.#refedWaiting++;
    }
    this.#update();
  }

  /** Marks `token` as having no parked operation. */
  idle(token: number): void {
    const entry = this.#waiting.get(token);
    if (!entry) return;
    this.#waiting.delete(token);
    if (entry.refed) this.#refedWaiting--;
    this.#update();
  }

  /** Socket events the waits have reported so far (for tests and diagnostics). */
  get eventCount(): number {
    return this.#events;
  }

  #control(op: number, fd: number, token: number, events: number): void {
    this.#ctlView.setUint32(0, events, true);
    this.#ctlView.setBigUint64(EPOLL_EVENT_DATA_OFFSET, BigInt(token), true);
    if (libc().epoll_ctl(this.#epfd, op, fd, this.#ctl) < 0) {
      throw errnoError(errno(), "epoll_ctl");
    }
  }

  /** Starts, refs, unrefs or wakes the waits so they match the waiters. */
  #update(): void {
    const wantRef = this.#refedWaiting > 0;
    for (const lane of this.#lanes) {
      if (lane.wait === null) {
        if (this.#waiting.size > 0 && !this.#dispatching) this.#start(lane);
        continue;
      }
      if (wantRef === lane.refed) continue;
      if (this.#core) {
        if (wantRef) this.#core.refOpPromise(lane.wait);
        else this.#core.unrefOpPromise(lane.wait);
        lane.refed = wantRef;
      } else if (!wantRef) this.#wake();
    }
  }

  #wake(): void {
    new DataView(this.#eight.buffer).setBigUint64(0, 1n, true);
    libc().write(this.#wakefd, this.#eight, 8n);
  }

  #start(lane: Lane): void {
    const wait = libc().epoll_wait(this.#epfd, lane.events, MAX_EVENTS, -1);
    lane.wait = wait;
    lane.refed = true;
    if (this.#refedWaiting === 0 && this.#core) {
      this.#core.unrefOpPromise(wait);
      lane.refed = false;
    }
    wait.then((n) => this.#dispatch(lane, n));
  }

  #dispatch(lane: Lane, n: number): void {
    lane.wait = null;
    this.#dispatching = true;
    try {
      this.#deliver(lane, n);
    } finally {
      this.#dispatching = false;
    }
    for (const l of this.#lanes) {
      if (l.wait === null && (this.#waiting.size > 0 || this.#keep)) this.#start(l);
    }
  }

  #deliver(lane: Lane, n: number): void {
    // epoll_wait fails only with EINTR here (a signal on the pool thread): n < 0 delivers nothing.
    for (let i = 0; i < n; i++) {
      const base = i * EPOLL_EVENT_SIZE;
      const events = lane.view.getUint32(base, true);
      const token = Number(lane.view.getBigUint64(base + EPOLL_EVENT_DATA_OFFSET, true));
      if (token === WAKE_TOKEN) {
        libc().read(this.#wakefd, this.#eight, 8n);
        continue;
      }
      this.#events++;
      const entry = this.#waiting.get(token);
      if (!entry) continue;
      const readable = (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) !== 0;
      const writable = (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) !== 0;
      entry.handler.onReady(readable, writable);
    }
  }
}

let reactor: Reactor | undefined;

/** The engine of this isolate, created (and libc opened) on first use. */
export function theReactor(): Reactor {
  return reactor ??= new Reactor();
}
