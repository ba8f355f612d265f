// What every packet socket class stands on: a record engine. The FFI one is
// `FfiRecords`, a thin adapter over `FdSocket`; the built-in one wraps
// `Deno.listenDatagram`. `PacketSocketBase` implements receive, read,
// receiveMany, options, iteration, ref/unref, close and dispose once over
// this interface; each class adds only what is its own. Private to the package.

import type { FdSocket } from "../ffi/socket.ts";
import type { Shape } from "../ffi/options.ts";
import type { Message } from "../types.ts";

/** Which implementation moves a socket's records. */
export type Backend = "builtin" | "ffi";

/** What a socket's setOption/getOption act on: the FFI socket and its family and type. */
export interface OptionTarget {
  readonly socket: FdSocket<unknown>;
  readonly shape: Shape;
}

/**
 * A record engine. Arguments arrive checked (the public class checks them
 * before any system call); every method may be called after `close()`.
 */
export interface RecordEngine<A> {
  /** Which implementation this is. */
  readonly backend: Backend;
  /** The descriptor the engine owns; `null` on the built-in engine and once closed. */
  readonly fd: number | null;
  /** Whether `close()` was called. */
  readonly closed: boolean;
  /** The address quoted in error messages, already formatted. */
  readonly label: string;
  /** Where socket options go; `null` where the engine has none (the built-in one). */
  readonly options: OptionTarget | null;
  /**
   * One record, cut to `maxSize` with `truncated: true` when longer; with
   * `peek`, the record stays queued. `null` at end of stream or once closed.
   * An engine that cannot peek rejects with `Deno.errors.NotSupported`.
   */
  receive(maxSize: number, signal: AbortSignal | undefined, peek: boolean): Promise<
    Message<A> | null
  >;
  /**
   * Waits for one record, then adds every record already queued, up to
   * `max`, each cut to `maxSize` on its own; `null` where `receive` would be.
   */
  receiveMany(max: number, maxSize: number, signal: AbortSignal | undefined): Promise<
    Message<A>[] | null
  >;
  /**
   * One record into `p`, cut to `p.length`; descriptors that came with it
   * are closed. Resolves the bytes copied, `null` where `receive` would.
   */
  receiveInto(p: Uint8Array, signal: AbortSignal | undefined): Promise<number | null>;
  /** Lets pending operations keep the process alive (the default). */
  ref(): void;
  /** Lets the process exit while operations are pending. */
  unref(): void;
  /**
   * Closes the engine: pending receives resolve `null`, pending sends reject
   * with `BadResource`. Idempotent.
   */
  close(): void;
}
