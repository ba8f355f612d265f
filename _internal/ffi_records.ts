// The FFI record engine: `FdSocket` as `RecordEngine` sees it. Every call
// goes straight through to the socket, so the engine's fast paths (records
// handed over as received, read(p) straight into p) stay as they are.
// Private to the package.

import type { Shape } from "../ffi/options.ts";
import type { FdSocket } from "../ffi/socket.ts";
import type { Message } from "../types.ts";
import type { OptionTarget, RecordEngine } from "./record_engine.ts";

/** An `FdSocket` moving records for a packet socket class. */
export class FfiRecords<A> implements RecordEngine<A> {
  readonly #sock: FdSocket<A>;
  readonly options: OptionTarget;

  /**
   * @param sock The socket; the engine owns it from then on.
   * @param shape Its family and type, which decide the options it takes.
   */
  constructor(sock: FdSocket<A>, shape: Shape) {
    this.#sock = sock;
    this.options = { socket: sock, shape };
  }

  get backend(): "ffi" {
    return "ffi";
  }

  get fd(): number | null {
    return this.#sock.closed ? null : this.#sock.fd;
  }

  get closed(): boolean {
    return this.#sock.closed;
  }

  get label(): string {
    return this.#sock.label;
  }

  // The engine's records hold exactly a message's fields: no copy.
  receive(maxSize: number, signal: AbortSignal | undefined, peek: boolean): Promise<
    Message<A> | null
  > {
    return peek ? this.#sock.peek(maxSize, signal) : this.#sock.receive(maxSize, signal);
  }

  receiveMany(max: number, maxSize: number, signal: AbortSignal | undefined): Promise<
    Message<A>[] | null
  > {
    return this.#sock.receiveMany(max, maxSize, signal);
  }

  receiveInto(p: Uint8Array, signal: AbortSignal | undefined): Promise<number | null> {
    return this.#sock.receiveInto(p, signal);
  }

  // A closed socket has left the reactor: nothing of it may rejoin.
  ref(): void {
    if (!this.#sock.closed) this.#sock.ref();
  }

  unref(): void {
    if (!this.#sock.closed) this.#sock.unref();
  }

  close(): void {
    this.#sock.close();
  }
}
