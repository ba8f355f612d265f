// The one abortable wait queue: every operation that must wait for its turn
// (a receive on an FFI socket, an accept on a listener, a receive on the
// built-in datagram engine) parks here, so ordering, abort and close behave
// the same whatever moves the bytes. Pure: no native code. Private.

/**
 * What an attempt answers: the result, an `Error` to reject with, or
 * `undefined` for "not now" (nothing ready yet, EAGAIN).
 */
export type Attempt<T> = () => T | Error | undefined;

interface Parked {
  /** Tries the operation: true once it settled. */
  attempt(): boolean;
  /** Settles it because the queue closed. */
  closed(): void;
  /** Removes the abort listener. */
  cleanup?: () => void;
}

/**
 * A first-in, first-out queue of parked operations. An operation settles only
 * from the head, so a later one never jumps an earlier one; an aborted one
 * leaves the queue and rejects with its signal's reason; `close()` settles
 * every one that is left.
 */
export class WaitQueue {
  readonly #parked: Parked[] = [];
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
    return this.#parked.length;
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
    if (this.#parked.length === 0) {
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
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const settle = (r: T | Error): void => r instanceof Error ? reject(r) : resolve(r);
      const parked: Parked = {
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
          if (!this.#remove(parked)) return;
          this.#changed();
          reject(signal.reason);
        };
        signal.addEventListener("abort", abort, { once: true });
        parked.cleanup = () => signal.removeEventListener("abort", abort);
      }
      this.#parked.push(parked);
      try {
        this.#changed();
      } catch (err) {
        this.#remove(parked);
        parked.cleanup?.();
        reject(err);
      }
    });
  }

  /**
   * Settles waiting operations from the head for as long as each can
   * proceed; stops at the first that cannot. Returns how many settled.
   */
  run(): number {
    const parked = this.#parked;
    let settled = 0;
    while (parked.length > 0) {
      // Out of the queue while it runs, so a close() it causes does not settle it twice.
      const head = parked.shift()!;
      const epoch = this.#epoch;
      if (head.attempt()) {
        head.cleanup?.();
        settled++;
        continue;
      }
      if (epoch !== this.#epoch) {
        head.cleanup?.();
        head.closed();
      } else parked.unshift(head);
      break;
    }
    return settled;
  }

  /** Settles every waiting operation as closed, in order, and empties the queue. */
  close(): void {
    this.#epoch++;
    for (const parked of this.#parked.splice(0)) {
      parked.cleanup?.();
      parked.closed();
    }
  }

  #remove(parked: Parked): boolean {
    const i = this.#parked.indexOf(parked);
    if (i < 0) return false;
    this.#parked.splice(i, 1);
    return true;
  }
}
