// The readiness engine: one epoll instance per isolate.
//
// Sockets are registered edge-triggered. Every operation first tries its
// system call synchronously; only on EAGAIN does it park a waiter, in the same
// synchronous step, so no edge can fall between the try and the wait. One
// `nonblocking: true` epoll_wait runs on Deno's blocking pool while any waiter
// exists; its result wakes every ready socket at once.
//
// Lifetime: the in-flight epoll_wait keeps the process alive only while some
// waiter belongs to a ref'd socket. Deno exposes no public way to unref an FFI
// promise, so the engine uses the runtime's op-promise ref/unref when present;
// without it an eventfd wakes the wait and the engine stops it instead.

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
  EPOLLET,
  EPOLLHUP,
  EPOLLIN,
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
  readonly #events = new Uint8Array(MAX_EVENTS * EPOLL_EVENT_SIZE);
  readonly #eventsView = new DataView(this.#events.buffer);
  readonly #ctl = new Uint8Array(EPOLL_EVENT_SIZE);
  readonly #ctlView = new DataView(this.#ctl.buffer);
  readonly #eight = new Uint8Array(8);
  readonly #core = opCore();
  /** Sockets with at least one parked operation, by token: the engine's only strong references. */
  readonly #waiting = new Map<number, { handler: ReadyHandler; refed: boolean }>();
  #refedWaiting = 0;
  #wait: Promise<number> | null = null;
  #waitRefed = true;
  #nextToken = 1;
  #dispatching = false;

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

  /** Adds `fd` to the epoll set, edge-triggered for reading (and writing if asked). */
  add(fd: number, token: number, writable = false): void {
    this.#control(EPOLL_CTL_ADD, fd, token, this.#mask(writable));
  }

  /** Changes whether writability is watched: on only while a writer is parked. */
  watchWritable(fd: number, token: number, on: boolean): void {
    this.#control(EPOLL_CTL_MOD, fd, token, this.#mask(on));
  }

  /** Removes `fd` from the epoll set and forgets its waiters. */
  remove(fd: number, token: number): void {
    libc().epoll_ctl(this.#epfd, EPOLL_CTL_DEL, fd, this.#ctl);
    this.idle(token);
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

  /** Sockets with parked operations (for tests and diagnostics). */
  get waitingCount(): number {
    return this.#waiting.size;
  }

  #mask(writable: boolean): number {
    return (EPOLLIN | EPOLLRDHUP | EPOLLET | (writable ? EPOLLOUT : 0)) >>> 0;
  }

  #control(op: number, fd: number, token: number, events: number): void {
    this.#ctlView.setUint32(0, events, true);
    this.#ctlView.setBigUint64(EPOLL_EVENT_DATA_OFFSET, BigInt(token), true);
    if (libc().epoll_ctl(this.#epfd, op, fd, this.#ctl) < 0) {
      throw errnoError(errno(), "epoll_ctl");
    }
  }

  /** Starts, refs, unrefs or wakes the wait so it matches the waiters. */
  #update(): void {
    if (this.#wait === null) {
      // While dispatching, the events buffer is still being read: the
      // dispatcher restarts the wait itself when it is done.
      if (this.#waiting.size > 0 && !this.#dispatching) this.#start();
      return;
    }
    const wantRef = this.#refedWaiting > 0;
    if (wantRef === this.#waitRefed) return;
    if (this.#core) {
      if (wantRef) this.#core.refOpPromise(this.#wait);
      else this.#core.unrefOpPromise(this.#wait);
      this.#waitRefed = wantRef;
    } else if (!wantRef) {
      // Cannot unref: end the wait so an idle program may exit.
      this.#wake();
    }
  }

  #wake(): void {
    new DataView(this.#eight.buffer).setBigUint64(0, 1n, true);
    libc().write(this.#wakefd, this.#eight, 8n);
  }

  #start(): void {
    const wait = libc().epoll_wait(this.#epfd, this.#events, MAX_EVENTS, -1);
    this.#wait = wait;
    this.#waitRefed = true;
    if (this.#refedWaiting === 0) {
      if (this.#core) {
        this.#core.unrefOpPromise(wait);
        this.#waitRefed = false;
      }
    }
    wait.then((n) => this.#dispatch(n));
  }

  #dispatch(n: number): void {
    this.#wait = null;
    this.#dispatching = true;
    try {
      this.#deliver(n);
    } finally {
      this.#dispatching = false;
    }
    if (this.#waiting.size > 0) this.#start();
  }

  #deliver(n: number): void {
    // epoll_wait fails only with EINTR here (a signal on the pool thread): n < 0 delivers nothing.
    for (let i = 0; i < n; i++) {
      const base = i * EPOLL_EVENT_SIZE;
      const events = this.#eventsView.getUint32(base, true);
      const token = Number(this.#eventsView.getBigUint64(base + EPOLL_EVENT_DATA_OFFSET, true));
      if (token === WAKE_TOKEN) {
        libc().read(this.#wakefd, this.#eight, 8n);
        continue;
      }
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
