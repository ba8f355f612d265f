// A stream socket's reads and writes that wait on the runtime's reactor (a
// ReactorPipe) instead of the engine's WaitQueue. They keep a queue of their
// own because the pipe has one read outstanding at a time, sized for the
// oldest read, and what it read is the bytes themselves: a read finished on
// the reactor cannot be retried as an engine attempt is. FdSocket moves them
// to its engine queue when a call the pipe cannot serve (a receive with
// control data) arrives behind them.

import { closedError, errnoError } from "./errors.ts";
import type { ReactorPipe } from "./reactor_pipe.ts";

/** A read parked on the reactor. */
interface PipeRead {
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
const PIPE_READ_MAX = 1 << 16;

/** The reads and writes of one stream socket on its ReactorPipe, in order. */
export class StreamPipe {
  readonly #pipe: ReactorPipe;
  readonly #owner: { readonly label: string };
  /** Reads parked on the reactor, oldest first. */
  readonly #reads: PipeRead[] = [];
  /** Bytes the pipe read past what its reader asked for. */
  #ahead: Uint8Array | null = null;
  /** The end of the write the reactor is finishing, which later writes wait for. */
  #writeTail: Promise<unknown> | null = null;
  /** Settles the reactor's write as closed. */
  #writeClosed: (() => void) | null = null;
  #closed = false;

  /** `owner` names the socket in error messages (its label may change). */
  constructor(pipe: ReactorPipe, owner: { readonly label: string }) {
    this.#pipe = pipe;
    this.#owner = owner;
  }

  /** How many reads wait on the reactor. */
  get waiting(): number {
    return this.#reads.length;
  }

  /** How many bytes the pipe read ahead wait to be taken. */
  get aheadLength(): number {
    return this.#ahead === null ? 0 : this.#ahead.length;
  }

  /** Copies what was read ahead into `p` (call only when there is some). */
  takeAhead(p: Uint8Array): number {
    const ahead = this.#ahead!;
    const n = Math.min(p.length, ahead.length);
    p.set(ahead.subarray(0, n));
    this.#ahead = n === ahead.length ? null : ahead.subarray(n);
    return n;
  }

  /** Parks a read of up to `p.length` bytes on the reactor, behind those already parked. */
  read(p: Uint8Array, signal: AbortSignal | undefined): Promise<number | null> {
    return new Promise<number | null>((resolve, reject) => {
      const read: PipeRead = { p, signal, resolve, reject };
      if (signal) {
        const abort = (): void => {
          const i = this.#reads.indexOf(read);
          if (i < 0) return;
          this.#reads.splice(i, 1);
          if (i === 0) {
            this.#pipe.cancel();
            this.#next();
          }
          reject(signal.reason);
        };
        signal.addEventListener("abort", abort, { once: true });
        read.cleanup = () => signal.removeEventListener("abort", abort);
      }
      this.#reads.push(read);
      if (this.#reads.length === 1) this.#next();
    });
  }

  /**
   * Stops the reactor's read and hands every parked read, in order, to
   * `park`, whose result settles it.
   */
  moveTo(park: (p: Uint8Array, signal: AbortSignal | undefined) => Promise<number | null>): void {
    this.#pipe.cancel();
    for (const read of this.#reads.splice(0)) {
      read.cleanup?.();
      park(read.p, read.signal).then(read.resolve, read.reject);
    }
  }

  /** Starts the reactor read for the oldest parked read, if any. */
  #next(): void {
    const pipe = this.#pipe;
    if (this.#closed || pipe.reading || this.#reads.length === 0) return;
    const size = Math.min(this.#reads[0].p.length, PIPE_READ_MAX);
    pipe.read(size, (n) => this.#done(n));
  }

  #done(n: number): void {
    if (this.#closed) return;
    const queue = this.#reads;
    if (n > 0) {
      // The read was sized for the oldest parked read, so it takes all of it.
      const bytes = this.#pipe.buffer.subarray(0, n);
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
      if (this.#ahead !== null) read.resolve(this.takeAhead(read.p));
      else if (n === 0) read.resolve(null);
      else {
        read.reject(errnoError(-n, "read", this.#owner.label));
        break;
      }
    }
    this.#next();
  }

  /** The write still finishing on the reactor, which a later write must follow; or null. */
  get writeTail(): Promise<unknown> | null {
    return this.#writeTail;
  }

  /** Hands the rest of a write to the reactor; resolves with `total` once it is all sent. */
  write(rest: Uint8Array, total: number, call: string): Promise<number> {
    let tail: Promise<unknown> | null = null;
    const written = new Promise<number>((resolve, reject) => {
      const settle = (err: Error | null): void => {
        this.#writeClosed = null;
        if (this.#writeTail === tail) this.#writeTail = null;
        if (err) reject(err);
        else resolve(total);
      };
      this.#writeClosed = () => settle(closedError(call, this.#owner.label));
      this.#pipe.write(rest, (status) => {
        if (this.#closed) return;
        settle(status < 0 ? errnoError(-status, call, this.#owner.label) : null);
      });
    });
    // Later writes follow this one whether it succeeds or fails.
    if (this.#writeClosed !== null) this.#writeTail = tail = written.then(() => {}, () => {});
    return written;
  }

  /**
   * The socket closed (its pipe is closed already): parked reads resolve
   * `null`, the write in progress rejects, bytes read ahead are dropped.
   */
  close(): void {
    this.#closed = true;
    this.#ahead = null;
    this.#writeClosed?.();
    for (const read of this.#reads.splice(0)) {
      read.cleanup?.();
      read.resolve(null);
    }
  }
}
