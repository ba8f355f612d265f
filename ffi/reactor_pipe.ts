// Reads and writes a stream socket on Deno's own event loop instead of the
// engine's epoll wait. Node compatibility's `pipe_wrap.Pipe` registers a
// descriptor with the runtime's reactor on `open(fd)` and reads it with
// read(2) on the JS thread when it becomes readable, so a parked read needs
// no hop through a blocking-pool thread; its writes finish on the same loop.
// It reads and writes the socket itself, so it serves only calls with no
// control data (StreamConn.read and write). `process.binding` is internal and
// deprecated: everything is feature-detected, and the engine's wait stays the
// path wherever it is missing.
//
// The Pipe gets a duplicate of the socket's descriptor: it may close it
// whenever it likes without the number ever being the socket's own.

import { F_DUPFD_CLOEXEC } from "./constants.ts";
import { libc } from "./libc.ts";

/** The runtime's `Pipe` handle, as far as this module uses it. */
export interface PipeHandle {
  open(fd: number): number;
  useUserBuffer(buffer: Uint8Array): void;
  readStart(): number;
  readStop(): number;
  close(callback?: () => void): void;
  writeBuffer(req: WriteRequest, data: Uint8Array): number;
  ref(): void;
  unref(): void;
  onread: (() => void) | null;
}

interface WriteRequest {
  oncomplete: ((status: number) => void) | null;
  /** Keeps the bytes referenced until the write is over. */
  buffer?: Uint8Array;
}

interface Bindings {
  Pipe: new (type: number) => PipeHandle;
  WriteWrap: new () => WriteRequest;
  socketType: number;
  state: Int32Array;
  nread: number;
  async: number;
}

/** libuv's end-of-stream code; every other negative count is -errno on Linux. */
const UV_EOF = -4095;

let bindings: Bindings | null | undefined;
let enabled = true;

function find(): Bindings | null {
  try {
    // deno-lint-ignore no-explicit-any
    const binding = (globalThis as any).process?.binding;
    if (typeof binding !== "function") return null;
    const pipe = binding("pipe_wrap"), stream = binding("stream_wrap");
    const proto = pipe?.Pipe?.prototype;
    const methods = [
      "open",
      "useUserBuffer",
      "readStart",
      "readStop",
      "writeBuffer",
      "close",
      "ref",
      "unref",
    ];
    if (!proto || methods.some((m) => typeof proto[m] !== "function")) return null;
    if (typeof pipe.constants?.SOCKET !== "number") return null;
    if (typeof stream?.WriteWrap !== "function") return null;
    if (!(stream.streamBaseState instanceof Int32Array)) return null;
    if (typeof stream.kReadBytesOrError !== "number") return null;
    if (typeof stream.kLastWriteWasAsync !== "number") return null;
    return {
      Pipe: pipe.Pipe,
      WriteWrap: stream.WriteWrap,
      socketType: pipe.constants.SOCKET,
      state: stream.streamBaseState,
      nread: stream.kReadBytesOrError,
      async: stream.kLastWriteWasAsync,
    };
  } catch {
    return null;
  }
}

/**
 * Turns the runtime's reactor on or off for stream sockets that have not
 * used it yet (tests run the engine's fallback path with it off).
 */
export function setReactorPipes(on: boolean): void {
  enabled = on;
}

/** Whether new stream sockets read and write on the runtime's reactor. */
export function reactorPipesAvailable(): boolean {
  if (!enabled) return false;
  if (bindings === undefined) bindings = find();
  return bindings !== null;
}

/**
 * A `Pipe` that owns `fd` from now on and will read it on the runtime's
 * reactor, whatever {@linkcode setReactorPipes} says; null (and `fd` still
 * the caller's) when the runtime offers none.
 */
export function openPipe(fd: number): PipeHandle | null {
  if (bindings === undefined) bindings = find();
  if (bindings === null) return null;
  try {
    const pipe = new bindings.Pipe(bindings.socketType);
    if (pipe.open(fd) === 0) return pipe;
  } catch {
    // Refused: the caller keeps the descriptor.
  }
  return null;
}

/**
 * One outstanding read and one outstanding write at a time on a duplicate
 * of a socket's descriptor. Between calls it holds no reference to its
 * owner, so a socket dropped unclosed can still be collected.
 */
export class ReactorPipe {
  readonly #pipe: PipeHandle;
  readonly #b: Bindings;
  #buffer = new Uint8Array(0);
  #done: ((n: number) => void) | null = null;
  #written: ((status: number) => void) | null = null;
  #closed = false;

  /** A pipe on a duplicate of `fd`, or null when the runtime offers none. */
  static open(fd: number): ReactorPipe | null {
    if (!reactorPipesAvailable()) return null;
    const dup = libc().fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return null;
    const pipe = openPipe(dup);
    if (pipe === null) {
      libc().close(dup);
      return null;
    }
    return new ReactorPipe(pipe, bindings!);
  }

  private constructor(pipe: PipeHandle, b: Bindings) {
    this.#pipe = pipe;
    this.#b = b;
    pipe.onread = () => {
      const n = this.#b.state[this.#b.nread];
      // 0: the read found nothing after all; the Pipe keeps waiting.
      if (n === 0 || this.#done === null) return;
      this.#pipe.readStop();
      const done = this.#done;
      this.#done = null;
      done(n === UV_EOF ? 0 : n);
    };
  }

  /** The buffer the last read filled (valid until the next read). */
  get buffer(): Uint8Array {
    return this.#buffer;
  }

  /** Whether a read is outstanding. */
  get reading(): boolean {
    return this.#done !== null;
  }

  /**
   * Waits for the socket to be readable and reads up to `size` bytes into
   * {@linkcode ReactorPipe.buffer}; `done` gets the count, 0 at end of
   * stream, or -errno. Nothing is read after {@linkcode ReactorPipe.cancel}.
   */
  read(size: number, done: (n: number) => void): void {
    if (this.#buffer.length !== size) {
      this.#buffer = new Uint8Array(size);
      this.#pipe.useUserBuffer(this.#buffer);
    }
    this.#done = done;
    const rc = this.#pipe.readStart();
    if (rc !== 0) {
      this.#done = null;
      done(rc);
    }
  }

  /**
   * Writes all of `data`; `done` gets 0 once the last byte is handed to the
   * kernel, or -errno. It may be called before this returns.
   */
  write(data: Uint8Array, done: (status: number) => void): void {
    const req = new this.#b.WriteWrap();
    const finish = (status: number): void => {
      if (this.#written !== finish) return;
      this.#written = null;
      done(status);
    };
    this.#written = finish;
    req.oncomplete = finish;
    req.buffer = data;
    const rc = this.#pipe.writeBuffer(req, data);
    if (rc !== 0 || this.#b.state[this.#b.async] === 0) finish(rc);
  }

  /** Stops the outstanding read; its callback is never called. */
  cancel(): void {
    if (this.#done === null) return;
    this.#done = null;
    this.#pipe.readStop();
  }

  /**
   * Lets outstanding calls keep the process alive (the default). A ref'd
   * handle with nothing outstanding keeps nothing alive.
   */
  ref(): void {
    this.#pipe.ref();
  }

  /** Lets the process exit while calls are outstanding. */
  unref(): void {
    this.#pipe.unref();
  }

  /** Stops reading and closes the duplicate descriptor (synchronously). */
  close(): void {
    if (this.#closed) return;
    this.cancel();
    this.#written = null;
    this.#closed = true;
    this.#pipe.onread = null;
    this.#pipe.close();
  }
}
