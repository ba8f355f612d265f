// The FFI listener engine: a listening FdSocket (stream or seqpacket) whose
// accepted descriptors `adopt` turns into connection engines, and the
// socket file it created, removed when it closes if it is still its own.
// Private to the package.

import type { FdSocket } from "../ffi/socket.ts";
import { type OwnedSocketFile, removeOwnSocketFile } from "./socket_file.ts";
import { ENGINE, type Engine } from "./engine.ts";
import type { ListenerEngine } from "./accept_loop.ts";

/** A listening FdSocket as a {@linkcode ListenerEngine}. */
export class FfiListenerEngine<A, R extends { close(): void }>
  implements ListenerEngine<R>, Engine<"listener"> {
  readonly [ENGINE] = "listener" as const;
  readonly backend = "ffi" as const;
  readonly socket: FdSocket<A>;
  readonly addr: A;
  readonly #file: OwnedSocketFile | null;
  readonly #adopt: (fd: number) => R;

  /**
   * @param socket The listening socket.
   * @param addr Its address as the listener reports it.
   * @param file The socket file it created (null: none, or not its own).
   * @param adopt Makes a connection engine of an accepted descriptor; when
   * it throws, the descriptor is closed.
   */
  constructor(
    socket: FdSocket<A>,
    addr: A,
    file: OwnedSocketFile | null,
    adopt: (fd: number) => R,
  ) {
    this.socket = socket;
    this.addr = addr;
    this.#file = file;
    this.#adopt = adopt;
  }

  get fd(): number | null {
    return this.socket.closed ? null : this.socket.fd;
  }

  get closed(): boolean {
    return this.socket.closed;
  }

  accept(): Promise<R> {
    return this.socket.accept(this.#adopt);
  }

  /** The descriptor calls: a listening FdSocket serves them all. */
  extras(_call: string): { readonly socket: FdSocket<A> } {
    return this;
  }

  ref(): void {
    if (!this.socket.closed) this.socket.ref();
  }

  unref(): void {
    if (!this.socket.closed) this.socket.unref();
  }

  close(): void {
    if (this.socket.closed) return;
    removeOwnSocketFile(this.#file);
    this.socket.close();
  }
}
