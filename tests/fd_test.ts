// fromFd(): the argument checks, each error of the contract with the
// descriptor left open and untouched, and adoption of descriptors a real
// Python peer made and passed in over SCM_RIGHTS.

import assert from "node:assert/strict";
import { fromFd } from "../fd.ts";
import { SocketError } from "../errors.ts";
import { listenSeqpacket, type SeqpacketConn, seqpacketPair } from "../seqpacket.ts";
import { closeFds } from "../ffi/socket.ts";
import { deadline, fdTable, isOpenFd, killOnDispose, needs, tempDir } from "./_helpers.ts";

const PEER = new URL("./peers/fd_peer.py", import.meta.url).pathname;

/** What the peer says about each descriptor it passed, in order. */
interface PeerInfo {
  kind: string;
  hostname?: string;
  port?: number;
  peer?: number;
  path?: string;
}

/** Descriptors of `kinds` made by the Python peer, received here; closes all on dispose. */
async function fromPeer(...kinds: string[]): Promise<
  { fds: number[]; info: PeerInfo[]; conn: SeqpacketConn } & AsyncDisposable
> {
  const dir = tempDir("sd-fd-");
  const path = `${dir.path}/peer.sock`;
  const listener = listenSeqpacket({ path });
  const peer = killOnDispose(
    new Deno.Command("python3", { args: [PEER, path, ...kinds], stdin: "null" }).spawn(),
  );
  try {
    const conn = await deadline(listener.accept(), 5000, "the Python peer to connect");
    const m = await deadline(conn.receive(), 5000, "the peer's descriptors");
    assert.ok(m);
    const info = JSON.parse(new TextDecoder().decode(m.data)) as PeerInfo[];
    const fds = m.fds ?? [];
    assert.equal(fds.length, kinds.length);
    return {
      fds,
      info,
      conn,
      async [Symbol.asyncDispose]() {
        conn.close();
        await peer.status;
        closeFds(fds.filter((fd) => isOpenFd(fd) && !owned.has(fd)));
        dir[Symbol.dispose]();
      },
    };
  } catch (err) {
    await peer[Symbol.asyncDispose]();
    dir[Symbol.dispose]();
    throw err;
  } finally {
    listener.close();
  }
}

/** Descriptors a test adopted: their sockets close them. */
const owned = new Set<number>();

/** `flags:` of /proc/self/fdinfo/N (octal, O_NONBLOCK and O_CLOEXEC among them), read by a child. */
function fdFlags(fd: number): string {
  const out = new Deno.Command("sh", {
    args: ["-c", `grep '^flags:' /proc/${Deno.pid}/fdinfo/${fd}`],
    stderr: "null",
  }).outputSync();
  assert.ok(out.success, `fd ${fd} is not open`);
  return new TextDecoder().decode(out.stdout).trim();
}

/** Runs `fromFd(fd)`, expecting `check` of its error, and that fd stayed open with its flags. */
function assertRefused(fd: number, check: (err: unknown) => boolean): void {
  const before = fdFlags(fd);
  assert.throws(() => fromFd(fd), check);
  assert.ok(isOpenFd(fd), `fd ${fd} was closed`);
  assert.equal(fdFlags(fd), before, `fd ${fd}'s flags changed`);
}

Deno.test("fromFd() refuses what is not a descriptor number before any system call", () => {
  for (const bad of ["3", 3n, null, undefined, {}, [3]]) {
    assert.throws(() => fromFd(bad as unknown as number), TypeError, String(bad));
  }
  for (const bad of [1.5, NaN, Infinity]) {
    assert.throws(() => fromFd(bad), TypeError);
  }
  for (const bad of [-1, 2 ** 31, Number.MAX_SAFE_INTEGER]) {
    assert.throws(() => fromFd(bad), RangeError);
  }
});

Deno.test("fromFd() of a descriptor that is not open is BadResource naming it", () => {
  // Far above any descriptor limit, so nothing can open it meanwhile.
  const fd = 1_000_000;
  assert.ok(!isOpenFd(fd));
  assert.throws(
    () => fromFd(fd),
    (err) => err instanceof Deno.errors.BadResource && /fd 1000000/.test(err.message),
  );
});

Deno.test("fromFd() of a socket this module owns is Busy, and the socket keeps working", async () => {
  const before = fdTable();
  const [a, b] = seqpacketPair();
  try {
    const mine = [...fdTable()].filter(([fd, target]) =>
      before.get(fd) !== target && target.startsWith("socket:")
    ).map(([fd]) => fd);
    assert.equal(mine.length, 2);
    for (const fd of mine) {
      assertRefused(
        fd,
        (err) => err instanceof Deno.errors.Busy && err.message.includes(`fd ${fd}`),
      );
    }
    await a.send(Uint8Array.of(1, 2, 3));
    assert.deepEqual((await b.receive())?.data, Uint8Array.of(1, 2, 3));
  } finally {
    a.close();
    b.close();
  }
});

Deno.test(
  "fromFd() of a pipe, an unconnected TCP socket and a vsock leaves each open and as it was",
  needs("python3"),
  async () => {
    await using got = await fromPeer("pipe", "tcp-unbound", "vsock");
    const [pipe, unbound, vsock] = got.fds;
    assertRefused(
      pipe,
      (err) =>
        err instanceof SocketError && err.code === "ENOTSOCK" && err.message.includes(`fd ${pipe}`),
    );
    assertRefused(
      unbound,
      (err) => err instanceof Deno.errors.NotConnected && err.message.includes(`fd ${unbound}`),
    );
    assertRefused(
      vsock,
      (err) =>
        err instanceof Deno.errors.NotSupported && /family 40, type stream/.test(err.message),
    );
  },
);
