// The one abortable wait queue: every operation that must wait for its turn
// (a receive on an FFI socket, an accept on a listener, a receive on the
// built-in datagram engine) parks here, so ordering, abort and close behave
// the same whatever moves the bytes. Pure: no native code. Private.

/**
 * What an attempt answers: the result, an `Error` to reject with, or
 * `undefined` for "not now" (nothing ready yet, EAGAIN).
 */
export type Attempt<T> = () => T | Error | undefined;

/**
 * An owner that retries its parked operations itself, told which by an op
 * code and one argument (see {@linkcode WaitQueue.parkOp}): a parked
 * operation then holds no closure of its own.
 */
export interface Retrier {
  /** Tries operation `op` with `arg` once; answers as an {@linkcode Attempt} does. */
  retry(op: number, arg: unknown): unknown;
}

/**
 * One parked operation: its attempt, its settling functions and its place
 * in the queue, in one object. A receive that waits costs this, its promise
 * and the promise's two resolving functions, and nothing per wait besides
 * (no closures of the queue's own), which is what 10,000 pending receives
 * hold.
 */
class Waiter<T> {
  /** The next operation in the queue. */
  next: Waiter<unknown> | null = null;
  resolve!: (value: T) => void;
  reject!: (reason: unknown) => void;
  /** The abort listener, while there is one. */
  abort: (() => void) | null = null;
  /** The attempt, or the owner that retries operation `op` with `arg`. */
  readonly attempt: Attempt<T> | Retrier;
  readonly op: number;
  readonly arg: unknown;
  readonly onClose: () => T | Error;
  readonly signal: AbortSignal | undefined;

  constructor(
    attempt: Attempt<T> | Retrier,
    op: number,
    arg: unknown,
    onClose: () => T | Error,
    signal: AbortSignal | undefined,
  ) {
    this.attempt = attempt;
    this.op = op;
    this.arg = arg;
    this.onClose = onClose;
    this.signal = signal;
  }

  /** Tries the operation: true once it settled. */
  tryOnce(): boolean {
    const a = this.attempt;
    let r: T | Error | undefined;
    try {
      r = typeof a === "function" ? a() : a.retry(this.op, this.arg) as T | Error | undefined;
    } catch (err) {
      // Attempts return their errors; one that throws still settles its operation, and the
      // queue (and the reactor running it) goes on, rather than the promise never settling.
      r = err instanceof Error ? err : new Error(String(err));
    }
    if (r === undefined) return false;
    this.settle(r);
    return true;
  }

  settle(r: T | Error): void {
    if (r instanceof Error) this.reject(r);
    else this.resolve(r);
  }

  /** Removes the abort listener. */
  cleanup(): void {
    if (this.abort === null) return;
    this.signal!.removeEventListener("abort", this.abort);
    this.abort = null;
  }
}

/**
 * A first-in, first-out queue of parked operations. An operation settles only
 * from the head, so a later one never jumps an earlier one; an aborted one
 * leaves the queue and rejects with its signal's reason; `close()` settles
 * every one that is left. A list through the waiters: an empty queue holds
 * no array.
 */
export class WaitQueue {
  #head: Waiter<unknown> | null = null;
  #tail: Waiter<unknown> | null = null;
  #length = 0;
  readonly #changed: () => void;
  #epoch = 0;

  /**
   * @param changed Called whenever operations leave the queue other than by
   * `run()` settling them (an abort), and after each `park`, so the owner can
   * tell its engine whether anything still waits.
   */
  constructor(changed: () => void = () => {}) {
    this.#changed = changed;
  }

  /** How many operations wait. */
  get length(): number {
    return this.#length;
  }

  /**
   * Runs `attempt` at once unless operations wait ahead of it (then it would
   * jump the queue), and parks it if it finds nothing to do. `first`, if
   * given, stands in for the first try (a spinning receive, say).
   */
  tryOrPark<T>(
    signal: AbortSignal | undefined,
    attempt: Attempt<T>,
    onClose: () => T | Error,
    first: Attempt<T> = attempt,
  ): Promise<T> {
    if (this.#length === 0) {
      const r = first();
      if (r !== undefined) return r instanceof Error ? Promise.reject(r) : Promise.resolve(r);
    }
    return this.park(signal, attempt, onClose);
  }

  /**
   * Parks `attempt` until `run()` finds it can proceed, `signal` aborts it or
   * `close()` settles it with what `onClose` returns. When the owner's
   * `changed` callback throws (its engine could not watch the socket), this
   * operation fails with that error and nothing else is disturbed.
   */
  park<T>(
    signal: AbortSignal | undefined,
    attempt: Attempt<T>,
    onClose: () => T | Error,
  ): Promise<T> {
    return this.#park(signal, attempt, 0, undefined, onClose);
  }

  /**
   * {@linkcode WaitQueue.park} for an operation `owner` retries itself:
   * `owner.retry(op, arg)` is its attempt. The waiter then holds no closure
   * (what a pending receive costs, times the sockets that wait).
   */
  parkOp<T>(
    signal: AbortSignal | undefined,
    owner: Retrier,
    op: number,
    arg: unknown,
    onClose: () => T | Error,
  ): Promise<T> {
    return this.#park(signal, owner, op, arg, onClose);
  }

  #park<T>(
    signal: AbortSignal | undefined,
    attempt: Attempt<T> | Retrier,
    op: number,
    arg: unknown,
    onClose: () => T | Error,
  ): Promise<T> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const waiter = new Waiter<unknown>(attempt, op, arg, onClose, signal);
    const promise = new Promise<T>((resolve, reject) => {
      waiter.resolve = resolve as (value: unknown) => void;
      waiter.reject = reject;
    });
    if (signal) {
      waiter.abort = () => {
        waiter.abort = null;
        if (!this.#remove(waiter)) return;
        this.#changed();
        waiter.reject(signal.reason);
      };
      signal.addEventListener("abort", waiter.abort, { once: true });
    }
    this.#push(waiter);
    try {
      this.#changed();
    } catch (err) {
      this.#remove(waiter);
      waiter.cleanup();
      waiter.reject(err);
    }
    return promise;
  }

  /**
   * Settles waiting operations from the head for as long as each can
   * proceed; stops at the first that cannot. Returns how many settled.
   */
  run(): number {
    let settled = 0;
    while (this.#head !== null) {
      // Out of the queue while it runs, so a close() it causes does not settle it twice.
      const head = this.#head;
      this.#head = head.next;
      if (this.#head === null) this.#tail = null;
      head.next = null;
      this.#length--;
      const epoch = this.#epoch;
      if (head.tryOnce()) {
        head.cleanup();
        settled++;
        continue;
      }
      if (epoch !== this.#epoch) {
        head.cleanup();
        head.settle(head.onClose());
      } else this.#unshift(head);
      break;
    }
    return settled;
  }

  /** Settles every waiting operation as closed, in order, and empties the queue. */
  close(): void {
    this.#epoch++;
    let w = this.#head;
    this.#head = this.#tail = null;
    this.#length = 0;
    while (w !== null) {
      const next = w.next;
      w.next = null;
      w.cleanup();
      w.settle(w.onClose());
      w = next;
    }
  }

  #push(w: Waiter<unknown>): void {
    if (this.#tail === null) this.#head = w;
    else this.#tail.next = w;
    this.#tail = w;
    this.#length++;
  }

  #unshift(w: Waiter<unknown>): void {
    w.next = this.#head;
    this.#head = w;
    if (this.#tail === null) this.#tail = w;
    this.#length++;
  }

  #remove(w: Waiter<unknown>): boolean {
    let prev: Waiter<unknown> | null = null;
    for (let at = this.#head; at !== null; prev = at, at = at.next) {
      if (at !== w) continue;
      if (prev === null) this.#head = w.next;
      else prev.next = w.next;
      if (this.#tail === w) this.#tail = prev;
      w.next = null;
      this.#length--;
      return true;
    }
    return false;
  }
}
