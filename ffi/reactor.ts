// The readiness engine: one epoll instance per isolate.
//
// A socket joins the epoll set the first time an operation on it waits.
// Every operation first tries its system call synchronously; only on EAGAIN
// does it park a waiter, in the same synchronous step, so a wait always
// follows a try that found nothing.
//
// Registration (edge, the default): a socket joins edge-triggered for
// readable (EPOLLIN | EPOLLRDHUP) and stays so: the kernel reports each
// arrival after the try that found nothing, so a wait needs no epoll_ctl.
// EPOLLOUT is added only while a writer waits (every record the peer takes
// would report it otherwise). An event that finds nothing waiting disarms
// the socket (a record a try-first call picks up would otherwise wake the
// engine each time); its next wait arms it again, and arming checks
// readiness, so nothing that arrived meanwhile is missed. Events carry the
// descriptor and a stamp, never a BigInt (see Watch). With "oneshot",
// a socket is armed one-shot for what waits, one EPOLL_CTL_MOD per wait.
//
// Waiting with "uring" (the default, where it works): an io_uring doorbell
// (uring.ts) rings on the JS thread when the set has events, and the engine
// drains it with epoll_wait(…, 0). The doorbell is unref'd while no ref'd
// socket waits. Waiting on the pool (the fallback, or asked for):
// `nonblocking: true` epoll_wait calls run on Deno's blocking pool; each
// result wakes every ready socket it lists at once.
//
// Lifetime on the pool: an in-flight epoll_wait keeps the process alive only
// while some waiter belongs to a ref'd socket. Deno exposes no public way to
// unref an FFI promise, so the engine uses the runtime's op-promise
// ref/unref when present, and then keeps two waits in flight, unref'd when
// idle (see #keep). Without it, one wait runs only while something waits,
// and an eventfd wakes it so the engine can stop it when nothing does; a
// pending operation on an unref'd socket then still keeps the process alive.
//
// BSD_SOCKETS_ENGINE (read where --allow-env grants it) picks the paths for
// tests and benchmarks: "uring", "pool", "oneshot", comma-separated.

import {
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  EINTR,
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLL_CTL_MOD,
  EPOLL_EVENT_DATA_OFFSET,
  EPOLL_EVENT_SIZE,
  EPOLLERR,
  EPOLLET,
  EPOLLHUP,
  EPOLLIN,
  EPOLLONESHOT,
  EPOLLOUT,
  EPOLLRDHUP,
} from "./constants.ts";
import { errnoError } from "./errors.ts";
import { errno, libc } from "./libc.ts";
import { Doorbell } from "./uring.ts";

/** What the engine calls back when a registered socket becomes ready. */
export interface ReadyHandler {
  /** Called with whether the socket may be read from and written to now. */
  onReady(readable: boolean, writable: boolean): void;
}

/** How the engine waits and registers sockets (see the top of this file). */
export interface ReactorOptions {
  /**
   * "uring" (the default): the io_uring doorbell where it works, else the
   * pool; "pool": the pool.
   */
  wait?: "uring" | "pool";
  /** "edge": registered once, edge-triggered; "oneshot": re-armed per wait. */
  registration?: "edge" | "oneshot";
}

const MAX_EVENTS = 256;
/** One in-flight `epoll_wait` and the buffer it fills. */
interface Lane {
  events: Uint8Array;
  view: DataView;
  wait: Promise<number> | null;
  refed: boolean;
}
/** The wake eventfd's stamp; no socket's token has it. */
const WAKE_STAMP = 0;
/** What an edge-registered socket is watched for while something waits on it. */
const EDGE_READ = (EPOLLIN | EPOLLRDHUP | EPOLLET) >>> 0;
/** An edge-registered socket that nothing waits on: only errors and hang-ups, once. */
const EDGE_OFF = EPOLLET >>> 0;

/**
 * A socket the engine knows of: registered in the set (fd >= 0), waited on,
 * or both; one object per socket. Its epoll data is the descriptor and the
 * low 32 bits of its token (the stamp), so an event finds it by descriptor
 * without a map or a BigInt, and a late event for a closed socket, whose
 * descriptor a new socket may have, does not match the new one's stamp.
 */
interface Watch {
  /** The descriptor while it is in the set, else -1. */
  fd: number;
  readonly token: number;
  readonly stamp: number;
  /** Edge: the interest it is registered with. */
  events: number;
  handler: ReadyHandler | null;
  /** Whether operations are parked on it, and whether they are ref'd. */
  waiting: boolean;
  refed: boolean;
}

/** The low 32 bits of a token, which its epoll data carries. */
function stampOf(token: number): number {
  return token % 2 ** 32;
}

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

/** The options BSD_SOCKETS_ENGINE asks for, where the environment may be read. */
function fromEnvironment(): ReactorOptions {
  const variable = "BSD_SOCKETS_ENGINE";
  if (Deno.permissions.querySync({ name: "env", variable }).state !== "granted") return {};
  const words = (Deno.env.get(variable) ?? "").split(",").map((w) => w.trim());
  return {
    wait: words.includes("uring") ? "uring" : words.includes("pool") ? "pool" : undefined,
    registration: words.includes("oneshot") ? "oneshot" : undefined,
  };
}

/** The process-wide (per isolate) readiness engine. Created on first use. */
export class Reactor {
  readonly #epfd: number;
  readonly #wakefd: number;
  readonly #core = opCore();
  readonly #edge: boolean;
  #bell: Doorbell | null = null;
  /**
   * On the pool, with ref/unref at hand, two waits stay in flight, unref'd
   * while nothing waits: when one returns, the other is already parked in
   * the kernel, so the next event does not wait for a pool thread to be
   * handed new work (a visible share of a loopback round trip). Without it,
   * one wait runs only while something waits, so an idle program can exit.
   */
  readonly #keep = this.#core !== undefined;
  readonly #lanes: Lane[] = Array.from({ length: this.#keep ? 2 : 1 }, () => {
    const events = new Uint8Array(MAX_EVENTS * EPOLL_EVENT_SIZE);
    return { events, view: new DataView(events.buffer), wait: null, refed: true };
  });
  readonly #ctl = new Uint8Array(EPOLL_EVENT_SIZE);
  readonly #ctlView = new DataView(this.#ctl.buffer);
  readonly #eight = new Uint8Array(8);
  /**
   * Registered or waiting sockets by token. A socket's handler is held only
   * while something waits on it: the engine's only strong references.
   */
  readonly #watches = new Map<number, Watch>();
  /** Registered sockets by descriptor, for the events. */
  readonly #byFd: (Watch | undefined)[] = [];
  #waitingCount = 0;
  /** The doorbell's event buffer (the pool's lanes have their own). */
  #drained: Uint8Array | null = null;
  #refedWaiting = 0;
  #nextToken = 1;
  #dispatching = false;
  #events = 0;
  #controls = 0;

  constructor(options: ReactorOptions = {}) {
    const c = libc();
    this.#edge = options.registration !== "oneshot";
    this.#epfd = c.epoll_create1(EPOLL_CLOEXEC);
    if (this.#epfd < 0) throw errnoError(errno(), "epoll_create1");
    this.#wakefd = c.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (this.#wakefd < 0) {
      const e = errno();
      c.close(this.#epfd);
      throw errnoError(e, "eventfd");
    }
    this.#control(EPOLL_CTL_ADD, this.#wakefd, WAKE_STAMP, EPOLLIN);
    if (options.wait !== "pool") {
      this.#bell = Doorbell.open(this.#epfd, () => this.#drain(), () => {
        this.#bell = null;
        this.#update();
      });
    }
  }

  /** How this engine waits: "uring" once its doorbell works, else "pool". */
  get waitPath(): "uring" | "pool" {
    return this.#bell ? "uring" : "pool";
  }

  /** How this engine registers sockets. */
  get registration(): "edge" | "oneshot" {
    return this.#edge ? "edge" : "oneshot";
  }

  /** A fresh token to register a socket with. Tokens are never reused, so a
   * late event for a closed socket can never reach the fd's next owner. */
  token(): number {
    let token = this.#nextToken++;
    if (stampOf(token) === WAKE_STAMP) token = this.#nextToken++;
    return token;
  }

  /**
   * Adds `fd` to the epoll set (`add`) or changes what it waits for:
   * readable, writable or both (neither: nothing waits). One-shot: armed for
   * one event, which disarms it again. Edge: a change costs an epoll_ctl
   * only when a writer starts or stops waiting, or after an event found
   * nothing waiting. The kernel checks readiness as it arms, so an event
   * that is already due is reported.
   */
  arm(fd: number, token: number, readable: boolean, writable: boolean, add: boolean): void {
    if (add) {
      const events = this.#edge
        ? (writable ? (EDGE_READ | EPOLLOUT) >>> 0 : EDGE_READ)
        : this.#oneShot(readable, writable);
      this.#control(EPOLL_CTL_ADD, fd, stampOf(token), events);
      const w = this.#watchOf(token);
      w.fd = fd;
      w.events = events;
      while (this.#byFd.length <= fd) this.#byFd.push(undefined);
      this.#byFd[fd] = w;
      return;
    }
    if (!this.#edge) {
      this.#control(EPOLL_CTL_MOD, fd, stampOf(token), this.#oneShot(readable, writable));
      return;
    }
    // Nothing waits any more: left as it is until an event finds it so.
    if (!readable && !writable) return;
    const events = writable ? (EDGE_READ | EPOLLOUT) >>> 0 : EDGE_READ;
    const w = this.#byFd[fd];
    if (w === undefined || w.token !== token || w.events === events) return;
    this.#control(EPOLL_CTL_MOD, fd, w.stamp, events);
    w.events = events;
  }

  #oneShot(readable: boolean, writable: boolean): number {
    const events = (readable ? EPOLLIN | EPOLLRDHUP : 0) | (writable ? EPOLLOUT : 0);
    return (events | EPOLLONESHOT) >>> 0;
  }

  /** The watch of `token`, made if it has none. */
  #watchOf(token: number): Watch {
    let w = this.#watches.get(token);
    if (w === undefined) {
      w = {
        fd: -1,
        token,
        stamp: stampOf(token),
        events: 0,
        handler: null,
        waiting: false,
        refed: false,
      };
      this.#watches.set(token, w);
    }
    return w;
  }

  /** Takes `fd` out of the epoll set. */
  unwatch(fd: number): void {
    libc().epoll_ctl(this.#epfd, EPOLL_CTL_DEL, fd, this.#ctl);
    this.#controls++;
    const w = this.#byFd[fd];
    if (w === undefined) return;
    this.#byFd[fd] = undefined;
    w.fd = -1;
    if (!w.waiting) this.#watches.delete(w.token);
  }

  /** Marks `token` as having parked operations; starts the wait if needed. */
  busy(token: number, handler: ReadyHandler, refed: boolean): void {
    const w = this.#watchOf(token);
    w.handler = handler;
    if (!w.waiting) {
      w.waiting = true;
      w.refed = refed;
      this.#waitingCount++;
      if (refed) this.#refedWaiting++;
    } else if (w.refed !== refed) {
      w.refed = refed;
      this.#refedWaiting += refed ? 1 : -1;
    }
    this.#update();
  }

  /** Marks `token` as having no parked operation. */
  idle(token: number): void {
    const w = this.#watches.get(token);
    if (w === undefined || !w.waiting) return;
    w.waiting = false;
    w.handler = null;
    this.#waitingCount--;
    if (w.refed) this.#refedWaiting--;
    if (w.fd < 0) this.#watches.delete(token);
    this.#update();
  }

  /** Socket events the waits have reported so far (for tests and diagnostics). */
  get eventCount(): number {
    return this.#events;
  }

  /** Sockets the engine keeps a watch for: registered or waited on (for leak tests). */
  get watchCount(): number {
    return this.#watches.size;
  }

  /** epoll_ctl calls made so far (for tests and diagnostics). */
  get controlCount(): number {
    return this.#controls;
  }

  #control(op: number, fd: number, stamp: number, events: number): void {
    if (this.#ctlCall(op, fd, stamp, events) < 0) throw errnoError(errno(), "epoll_ctl");
  }

  #ctlCall(op: number, fd: number, stamp: number, events: number): number {
    this.#controls++;
    const v = this.#ctlView;
    v.setUint32(0, events, true);
    v.setInt32(EPOLL_EVENT_DATA_OFFSET, fd, true);
    v.setUint32(EPOLL_EVENT_DATA_OFFSET + 4, stamp, true);
    return libc().epoll_ctl(this.#epfd, op, fd, this.#ctl);
  }

  /** Starts, refs, unrefs or wakes the waits so they match the waiters. */
  #update(): void {
    const wantRef = this.#refedWaiting > 0;
    if (this.#bell) {
      if (wantRef) this.#bell.ref();
      else this.#bell.unref();
      return;
    }
    for (const lane of this.#lanes) {
      if (lane.wait === null) {
        if (this.#waitingCount > 0 && !this.#dispatching) this.#start(lane);
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
      this.#deliver(lane.view, n);
    } finally {
      this.#dispatching = false;
    }
    if (this.#bell) return;
    for (const l of this.#lanes) {
      if (l.wait === null && (this.#waitingCount > 0 || this.#keep)) this.#start(l);
    }
  }

  /** The doorbell rang: takes every event the set has, without waiting. */
  #drain(): void {
    this.#drained ??= new Uint8Array(MAX_EVENTS * EPOLL_EVENT_SIZE);
    const view = new DataView(this.#drained.buffer);
    // Bounded: a full buffer means more may be ready, EINTR that none was taken.
    for (let tries = 0; tries < 1000; tries++) {
      const n = libc().epoll_wait_now(this.#epfd, this.#drained, MAX_EVENTS, 0);
      if (n < 0 && errno() === EINTR) continue;
      this.#deliver(view, n);
      if (n < MAX_EVENTS) return;
    }
  }

  #deliver(view: DataView, n: number): void {
    // On the pool, epoll_wait fails only with EINTR (a signal on the pool
    // thread): n < 0 delivers nothing.
    for (let i = 0; i < n; i++) {
      const base = i * EPOLL_EVENT_SIZE;
      const events = view.getUint32(base, true);
      const fd = view.getInt32(base + EPOLL_EVENT_DATA_OFFSET, true);
      const stamp = view.getUint32(base + EPOLL_EVENT_DATA_OFFSET + 4, true);
      if (stamp === WAKE_STAMP) {
        libc().read(this.#wakefd, this.#eight, 8n);
        continue;
      }
      this.#events++;
      const w = this.#byFd[fd];
      // A late event of a socket closed since: its descriptor is another's now, or no one's.
      if (w === undefined || w.stamp !== stamp) continue;
      if (!w.waiting) {
        if (this.#edge) this.#disarm(w);
        continue;
      }
      const readable = (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) !== 0;
      const writable = (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) !== 0;
      w.handler!.onReady(readable, writable);
    }
  }

  /**
   * An event found nothing waiting on `w`: quiet it until something does.
   * Should the call fail, the socket only stays armed (and the next event
   * finds it so again); the other events of this batch still go out.
   */
  #disarm(w: Watch): void {
    if (w.events === EDGE_OFF) return;
    if (this.#ctlCall(EPOLL_CTL_MOD, w.fd, w.stamp, EDGE_OFF) === 0) w.events = EDGE_OFF;
  }
}

let reactor: Reactor | undefined;
let chosen: ReactorOptions | undefined;

/**
 * Chooses how the engine of this isolate waits and registers sockets, before
 * it is created (for tests and benchmarks; BSD_SOCKETS_ENGINE does the same
 * from outside). Throws once the engine exists.
 */
export function configureReactor(options: ReactorOptions): void {
  if (reactor) throw new Error("configureReactor: the engine is already running");
  chosen = options;
}

/** The engine of this isolate, created (and libc opened) on first use. */
export function theReactor(): Reactor {
  return reactor ??= new Reactor({ ...fromEnvironment(), ...chosen });
}
