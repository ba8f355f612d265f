// The one accept loop, which every listener (stream on either engine,
// seqpacket) stands on: one engine accept in flight at a time, and only while
// someone waits; callers park in the WaitQueue and take results oldest
// first; a result nobody waits for any more (every waiter aborted) is kept
// for the next accept(). Private to the package.

import { WaitQueue } from "../ffi/wait_queue.ts";
import { closedError } from "../ffi/errors.ts";
import type { Backend } from "./record_engine.ts";

/** A listening socket's engine. */
export interface ListenerEngine<R extends { close(): void }> {
  readonly backend: Backend;
  /** The descriptor the engine owns; `null` on a built-in engine and once closed. */
  readonly fd: number | null;
  /**
   * The next connection. The loop calls it again only once the last call
   * settled; once the engine is closed it rejects (the loop ignores that).
   */
  accept(): Promise<R>;
  /** Lets a pending accept keep the process alive. */
  ref(): void;
  /** Lets the process exit while an accept is pending. */
  unref(): void;
  /** Idempotent. */
  close(): void;
}

/** Accepts connections from an engine and hands each to one caller, as `wrap` makes it. */
export class AcceptLoop<R extends { close(): void }, C extends { close(): void }> {
  readonly #engine: ListenerEngine<R>;
  readonly #wrap: (raw: R) => C;
  readonly #label: string;
  readonly #queue = new WaitQueue(() => this.#changed());
  /** Accepted connections (or failures) no waiter has taken yet. */
  readonly #ready: (C | Error)[] = [];
  #inflight = false;
  #closed = false;
  #userRef = true;
  readonly #take = (): C | Error | undefined => this.#ready.shift();
  readonly #onClose = (): Error => closedError("accept", this.#label);

  /**
   * @param engine The listener's engine, which the loop closes with itself.
   * @param wrap Makes the public object of what the engine accepted.
   * @param label How errors name the listener.
   */
  constructor(engine: ListenerEngine<R>, wrap: (raw: R) => C, label: string) {
    this.#engine = engine;
    this.#wrap = wrap;
    this.#label = label;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The next connection; rejects with BadResource once closed, `signal.reason` on abort. */
  accept(signal: AbortSignal | undefined): Promise<C> {
    if (this.#closed) return Promise.reject(this.#onClose());
    if (signal?.aborted) return Promise.reject(signal.reason);
    return this.#queue.tryOrPark(signal, this.#take, this.#onClose);
  }

  /** Each connection in turn; ends, without throwing, once the loop is closed. */
  async *connections(): AsyncIterableIterator<C> {
    while (true) {
      let conn: C;
      try {
        conn = await this.accept(undefined);
      } catch (err) {
        if (this.#closed) return;
        throw err;
      }
      yield conn;
    }
  }

  #changed(): void {
    this.#pump();
    this.#syncRef();
  }

  #pump(): void {
    if (this.#inflight || this.#closed || this.#queue.length === 0) return;
    this.#inflight = true;
    this.#engine.accept().then(
      (raw) => {
        if (this.#closed) {
          // Every waiter was already told; nobody can ask for this connection any more.
          raw.close();
          return;
        }
        let conn: C | Error;
        try {
          conn = this.#wrap(raw);
        } catch (err) {
          raw.close();
          conn = err instanceof Error ? err : new Error(String(err));
        }
        this.#deliver(conn);
      },
      (err) => {
        if (!this.#closed) this.#deliver(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  #deliver(result: C | Error): void {
    this.#inflight = false;
    this.#ready.push(result);
    this.#queue.run();
    this.#changed();
  }

  // A pending engine accept keeps the process alive only while someone waits
  // for it: after an aborted accept nobody does, and the program may end.
  #syncRef(): void {
    if (this.#closed) return;
    if (this.#userRef && this.#queue.length > 0) this.#engine.ref();
    else this.#engine.unref();
  }

  /** Lets a pending accept keep the process alive (the default). */
  ref(): void {
    this.#userRef = true;
    this.#syncRef();
  }

  /** Lets the process exit while an accept is pending. */
  unref(): void {
    this.#userRef = false;
    this.#syncRef();
  }

  /**
   * Closes the engine, rejects pending accepts with BadResource and closes
   * the connections nobody took. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#engine.close();
    this.#queue.close();
    for (const result of this.#ready.splice(0)) if (!(result instanceof Error)) result.close();
  }
}
