// How many records a socket's next recvmmsg asks for: guessed from what the
// last calls got, so a flooded socket drains in few calls and a
// request-reply socket does not pay for slots that come back empty.

/** The most single-record reads between two tries of a batch of two. */
const MAX_PROBE_AFTER = 64;

/** The adaptive batch size of one socket. */
export class BatchSize {
  readonly #max: number;
  #size = 1;
  /** Full single-record reads before the next batch of two is tried. */
  #probeAfter = 1;
  #singles = 0;

  /** At most `max` records a call (1 turns batching off). */
  constructor(max: number) {
    this.#max = max;
  }

  /** How many records the next call asks for. */
  get size(): number {
    return this.#size;
  }

  /**
   * Sizes the next batch: as many as came last time, twice as many after a
   * full one, so a flooded socket ramps up to the full batch in a few calls.
   * After single records it asks for two only now and then, and less often
   * each time the second slot comes back empty: a request-reply socket
   * reads one record per call, and an empty second slot costs the kernel
   * another attempt on every call that asks for it.
   */
  next(asked: number, got: number): void {
    if (got === asked && asked > 1) {
      this.#size = Math.min(this.#max, asked * 2);
      this.#probeAfter = 1;
    } else if (got === asked) {
      if (++this.#singles >= this.#probeAfter) {
        this.#singles = 0;
        this.#size = Math.min(this.#max, 2);
      }
    } else {
      if (asked === 2) this.#probeAfter = Math.min(MAX_PROBE_AFTER, this.#probeAfter * 2);
      this.#size = got;
    }
  }
}
