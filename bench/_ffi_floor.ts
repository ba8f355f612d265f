/**
 * The floor under the engine benchmark: the least a Deno program can do
 * through FFI to move seqpacket records, with no library around it. Each
 * role makes the system calls a socket library cannot avoid and nothing
 * else: no engine, no argument checks, no credentials (so no way to tell a
 * 0-byte record from end of stream), no descriptor passing. What a receive
 * hands back is still a copy of its own (`slice`), as any receive API's must
 * be. Waiting is one `nonblocking: true` `poll` per wait.
 *
 * Whatever this reaches bounds what `@bsd/sockets` can reach on the same
 * machine: a goal above it asks more of the runtime than of the library.
 *
 * With `cmsg`, receives also do what seqpacket needs the kernel to do for
 * it: they pass a control buffer (without one the kernel would close any
 * descriptors a record carries) and the socket sets `SO_PASSCRED` (how end
 * of stream is told from a 0-byte record). This variant bounds what a
 * seqpacket library with those two guarantees can reach.
 *
 * @module
 */

import { type PeerResult, record } from "./_harness.ts";
import {
  AF_UNIX,
  EAGAIN,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  SO_PASSCRED,
  SOCK_CLOEXEC,
  SOCK_SEQPACKET,
  SOL_SOCKET,
} from "../ffi/constants.ts";

const POLLIN = 1;
const POLLOUT = 4;
const BATCH = 32;
const SLOT = 65536;
/** Room per record for credentials and a few descriptors. */
const CONTROL = 64;

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  accept4: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  recvfrom: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "buffer"], result: "isize" },
  recvmmsg: { parameters: ["i32", "buffer", "u32", "i32", "pointer"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  close: { parameters: ["i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The floor's own libc bindings, opened on first use. */
let floorLibc: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] | undefined;
function lib(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] {
  return floorLibc ??= Deno.dlopen("libc.so.6", SYMBOLS).symbols;
}

/** A connected seqpacket socket and the calls on it. */
class FloorSocket {
  readonly #lib = lib();
  readonly #errno = new Deno.UnsafePointerView(this.#lib.__errno_location()!);
  readonly #fd: number;
  readonly #pollfd = new Uint8Array(8);

  /** Whether receives pass control buffers (see the module's `cmsg`). */
  readonly #cmsg: boolean;
  /** The receive arena, for batches and, with `cmsg`, for single records too. */
  readonly #arena = new Arena();

  private constructor(fd: number, cmsg: boolean) {
    this.#fd = fd;
    this.#cmsg = cmsg;
    new DataView(this.#pollfd.buffer).setInt32(0, fd, true);
    if (cmsg) {
      const one = new Uint8Array(new Int32Array([1]).buffer);
      this.#lib.setsockopt(fd, SOL_SOCKET, SO_PASSCRED, one, 4);
    }
  }

  /** Connects to the listener at `path`. */
  static connect(path: string, cmsg: boolean): FloorSocket {
    const c = lib();
    const fd = c.socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    const addr = sockaddr(path);
    if (fd < 0 || c.connect(fd, addr, addr.length) < 0) {
      throw new Error(`floor: connect ${path} failed`);
    }
    return new FloorSocket(fd, cmsg);
  }

  /** Listens at `path`, calls `ready`, and accepts one connection. */
  static async accept(path: string, ready: () => void, cmsg: boolean): Promise<FloorSocket> {
    const c = lib();
    const lfd = c.socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    const addr = sockaddr(path);
    if (lfd < 0 || c.bind(lfd, addr, addr.length) < 0 || c.listen(lfd, 1) < 0) {
      throw new Error(`floor: listen ${path} failed`);
    }
    ready();
    const pollfd = new Uint8Array(8);
    new DataView(pollfd.buffer).setInt32(0, lfd, true);
    new DataView(pollfd.buffer).setInt16(4, POLLIN, true);
    await c.poll(pollfd, 1n, -1);
    const fd = c.accept4(lfd, null, null, SOCK_CLOEXEC);
    c.close(lfd);
    if (fd < 0) throw new Error(`floor: accept ${path} failed`);
    return new FloorSocket(fd, cmsg);
  }

  /** Sends one record, waiting for room; throws on any error but EAGAIN. */
  async send(data: Uint8Array): Promise<void> {
    for (;;) {
      const n = this.#lib.sendto(
        this.#fd,
        data,
        BigInt(data.length),
        MSG_DONTWAIT | MSG_NOSIGNAL,
        null,
        0,
      );
      if (n >= 0) return;
      await this.#wait(POLLOUT);
    }
  }

  /** One record, a copy of its own, or null at end of stream (or a 0-byte record). */
  async receive(buf: Uint8Array): Promise<Uint8Array | null> {
    if (this.#cmsg) {
      const one: Uint8Array[] = [];
      return await this.receiveBatch(1, one) === 0 ? null : one[0];
    }
    for (;;) {
      const n = Number(
        this.#lib.recvfrom(this.#fd, buf, BigInt(buf.length), MSG_DONTWAIT, null, null),
      );
      if (n > 0) return buf.slice(0, n);
      if (n === 0) return null;
      await this.#wait(POLLIN);
    }
  }

  /**
   * Drains up to `batch` records per call, a copy of each into `into`; the
   * count, or 0 at end of stream.
   */
  async receiveBatch(batch: number, into: Uint8Array[]): Promise<number> {
    const arena = this.#arena;
    for (;;) {
      arena.reset(batch, this.#cmsg ? CONTROL : 0);
      const n = this.#lib.recvmmsg(this.#fd, arena.headers, batch, MSG_DONTWAIT, null);
      if (n > 0) {
        for (let i = 0; i < n; i++) {
          const len = arena.view.getUint32(i * 64 + 56, true);
          if (len === 0) return i;
          into.push(arena.data.slice(i * SLOT, i * SLOT + len));
        }
        return n;
      }
      if (n === 0) return 0;
      await this.#wait(POLLIN);
    }
  }

  async #wait(events: number): Promise<void> {
    const e = this.#errno.getInt32();
    if (e !== EAGAIN) throw new Error(`floor: errno ${e}`);
    new DataView(this.#pollfd.buffer).setInt16(4, events, true);
    await this.#lib.poll(this.#pollfd, 1n, -1);
  }

  close(): void {
    this.#lib.close(this.#fd);
  }
}

function sockaddr(path: string): Uint8Array {
  const name = new TextEncoder().encode(path);
  const addr = new Uint8Array(2 + name.length + 1);
  addr[0] = AF_UNIX;
  addr.set(name, 2);
  return addr;
}

/** recvmmsg headers and slots, built once. */
class Arena {
  readonly data = new Uint8Array(BATCH * SLOT);
  readonly headers = new Uint8Array(BATCH * 64);
  readonly view = new DataView(this.headers.buffer);
  readonly #iovecs = new Uint8Array(BATCH * 16);
  readonly #control = new Uint8Array(BATCH * CONTROL);

  constructor() {
    const iov = new DataView(this.#iovecs.buffer);
    const at = (b: Uint8Array) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
    for (let i = 0; i < BATCH; i++) {
      iov.setBigUint64(i * 16, at(this.data) + BigInt(i * SLOT), true);
      iov.setBigUint64(i * 16 + 8, BigInt(SLOT), true);
      this.view.setBigUint64(i * 64 + 16, at(this.#iovecs) + BigInt(i * 16), true);
      this.view.setBigUint64(i * 64 + 24, 1n, true);
      this.view.setBigUint64(i * 64 + 32, at(this.#control) + BigInt(i * CONTROL), true);
    }
  }

  /** Resets what the kernel rewrites in the first `n` slots: control length (0: none), flags. */
  reset(n: number, control: number): void {
    for (let i = 0; i < n; i++) {
      this.view.setUint32(i * 64 + 40, control, true);
      this.view.setUint32(i * 64 + 48, 0, true);
    }
  }
}

/**
 * Runs one floor role against a C peer and returns its result line:
 * `floor-client PATH N SIZE [cmsg]` (round trips, timed by `trips`),
 * `floor-flood PATH N SIZE`, `floor-sink PATH N [cmsg]` (listens at PATH;
 * `ready` is called once it can be connected to, or once connected for the
 * other two).
 */
export async function runFloor(
  role: string,
  args: string[],
  ready: () => void,
  trips: (trip: (msg: Uint8Array) => Promise<Uint8Array | null>) => Promise<PeerResult>,
): Promise<PeerResult> {
  const [path, a, b] = args;
  const n = Number(a), size = Number(b);
  const cmsg = args.includes("cmsg");
  const sock = role === "floor-sink"
    ? await FloorSocket.accept(path, ready, cmsg)
    : FloorSocket.connect(path, cmsg);
  try {
    switch (role) {
      case "floor-client": {
        ready();
        const buf = new Uint8Array(SLOT);
        return await trips(async (msg) => {
          await sock.send(msg);
          return await sock.receive(buf);
        });
      }
      case "floor-flood": {
        ready();
        const msg = record(size);
        const t0 = performance.now();
        for (let i = 0; i < n; i++) await sock.send(msg);
        const t1 = performance.now();
        return { role: "flood", n, msgs_per_s: n / ((t1 - t0) / 1000) };
      }
      case "floor-sink": {
        const records: Uint8Array[] = [];
        let count = 0, first = 0, last = 0;
        for (;;) {
          const got = await sock.receiveBatch(BATCH, records);
          if (got === 0) break;
          // One timestamp per record, as the other sinks take.
          for (let i = 0; i < got; i++) last = performance.now();
          if (count === 0) first = last;
          count += got;
          records.length = 0;
        }
        if (count !== n) throw new Error(`floor-sink: ${count} records, expected ${n}`);
        return { role: "sink", n: count, msgs_per_s: (count - 1) / ((last - first) / 1000) };
      }
      default:
        throw new Error(`unknown floor role ${role}`);
    }
  } finally {
    sock.close();
  }
}
