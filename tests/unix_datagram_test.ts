// Tests for Unix datagram descriptors and credentials (FFI backend) and for
// datagramPair(): against ourselves and against Python's socket module.

import assert from "node:assert/strict";
import { datagramPair, listenDatagram } from "../datagram.ts";
import { closeFds } from "../seqpacket.ts";
import {
  closeFd,
  deadline,
  descriptorCount,
  fdText,
  isCloseOnExec,
  isOpenFd,
  lines,
  needs,
  nextLine,
  openFd,
  python,
  pythonOutput,
  tempDir,
  withDescriptorRoom,
} from "./_helpers.ts";

const PEER = Deno.readTextFileSync(new URL("./peers/unixgram_peer.py", import.meta.url));

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The descriptor count with the engine started, so its own descriptors are not a leak. */
function fdBaseline(): number {
  for (const end of datagramPair()) end.close();
  return descriptorCount();
}

/** Three files with distinct contents, and their paths. */
function threeFiles(dir: string): string[] {
  return [0, 1, 2].map((i) => {
    const path = `${dir}/file${i}`;
    Deno.writeTextFileSync(path, `content of file ${i}: ${"x".repeat(i * 10)}`);
    return path;
  });
}

function abstractName(): string {
  return `\0ub-${Deno.pid}-${crypto.randomUUID()}`;
}

Deno.test({
  name: "DatagramSocket.receive() gets three descriptors a Python peer sent with SCM_RIGHTS",
  ...needs("python3"),
  async fn() {
    using dir = tempDir();
    const files = threeFiles(dir.path);
    const before = fdBaseline();
    {
      using sock = listenDatagram({ path: `${dir.path}/me.sock` });
      assert.equal(sock.backend, "ffi");
      const out = await pythonOutput(PEER, ["sendfds", sock.localAddr.path, ...files]);
      assert.equal(JSON.parse(out).sent, 3);
      const m = await deadline(sock.receive(), 5000, "the datagram");
      assert.equal(dec.decode(m!.data), "files");
      assert.equal(m!.fds?.length, 3);
      assert.equal(m!.controlTruncated, undefined);
      assert.equal(m!.credentials, undefined, "no credentials unless asked for");
      for (const [i, fd] of m!.fds!.entries()) {
        assert.equal(fdText(fd), Deno.readTextFileSync(files[i]));
        assert.ok(isCloseOnExec(fd), `received descriptor ${fd} is close-on-exec`);
      }
      closeFds(m!.fds!);
    }
    assert.equal(descriptorCount(), before);
  },
});

Deno.test({
  name: "DatagramSocket.send({ fds }) passes three files that a Python peer reads back",
  ...needs("python3"),
  async fn() {
    using dir = tempDir();
    const files = threeFiles(dir.path);
    const before = fdBaseline();
    const mine = files.map(openFd);
    try {
      const path = `${dir.path}/peer.sock`;
      await using peer = python(PEER, "recvfds", path);
      const out = lines(peer.stdout);
      assert.equal(await nextLine(out), "ready");
      using sock = listenDatagram({ path: "" });
      const n = await sock.send(enc.encode("three files"), { transport: "unixgram", path }, {
        fds: mine,
      });
      assert.equal(n, 11);
      const seen = JSON.parse(await nextLine(out));
      assert.equal(seen.data, "three files");
      assert.deepEqual(seen.contents, files.map((f) => Deno.readTextFileSync(f)));
    } finally {
      for (const fd of mine) closeFd(fd);
    }
    assert.equal(descriptorCount(), before);
  },
});

/**
 * A python3 that user nobody can run (pyenv's shims live under /root), or
 * undefined; a test that needs one is then reported as ignored.
 */
const NOBODY_PYTHON = ["/usr/bin/python3", "/usr/local/bin/python3"].find((path) => {
  try {
    return (Deno.statSync(path).mode! & 0o001) !== 0 && commandWorks("setpriv", ["--version"]);
  } catch {
    return false;
  }
});

function commandWorks(cmd: string, args: string[]): boolean {
  try {
    return new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

Deno.test({
  name: "listenDatagram({ passCredentials }) gives every message the sender's pid, uid and gid",
  ignore: NOBODY_PYTHON === undefined || Deno.uid() !== 0,
  async fn() {
    const name = abstractName();
    using sock = listenDatagram({ path: name, passCredentials: true });
    assert.equal(sock.backend, "ffi");
    // Run as nobody, so the values are not this process's own.
    const child = new Deno.Command("setpriv", {
      args: [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        NOBODY_PYTHON!,
        "-c",
        PEER,
        "hello",
        `@${name.slice(1)}`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = await deadline(child, 10_000, "the peer run as nobody");
    assert.ok(out.success, `the peer ran: ${dec.decode(out.stderr)}`);
    const m = await deadline(sock.receive(), 5000, "the datagram from nobody");
    const peer = JSON.parse(dec.decode(out.stdout));
    assert.deepEqual(peer.uid, 65534);
    assert.equal(dec.decode(m!.data), "hello");
    assert.deepEqual(m!.credentials, { pid: peer.pid, uid: 65534, gid: 65534 });
    // And from this process: every message carries them.
    using me = listenDatagram({ path: "" });
    await me.send(new Uint8Array(0), sock.localAddr);
    const own = await sock.receive();
    assert.deepEqual(own?.data.length, 0);
    assert.deepEqual(own?.credentials, { pid: Deno.pid, uid: Deno.uid(), gid: Deno.gid() });
  },
});

Deno.test("listenDatagram({ passCredentials }) is refused by the built-in backend and checked", () => {
  assert.throws(
    () => listenDatagram({ path: abstractName(), passCredentials: true, backend: "builtin" }),
    (e: Error) => e instanceof Deno.errors.NotSupported && /passCredentials/.test(e.message),
  );
  assert.throws(
    () => listenDatagram({ path: abstractName(), passCredentials: 1 as never }),
    TypeError,
  );
});

Deno.test("datagramPair(): records both ways, unnamed ends connected to each other, fd on each", async () => {
  const before = fdBaseline();
  const [a, b] = datagramPair();
  try {
    assert.deepEqual(a.localAddr, { transport: "unixgram", path: "" });
    assert.deepEqual(b.remoteAddr, { transport: "unixgram", path: "" });
    assert.equal(a.backend, "ffi");
    assert.ok(typeof a.fd === "number" && typeof b.fd === "number" && a.fd !== b.fd);
    await a.write(enc.encode("ab"));
    await a.send(new Uint8Array(0));
    await b.send(enc.encode("back"));
    const first = await b.receive();
    assert.deepEqual([dec.decode(first!.data), first!.from], ["ab", null]);
    assert.equal((await b.receive())?.data.length, 0, "a 0-byte record is a record");
    assert.equal(dec.decode((await a.receive())!.data), "back");
  } finally {
    a.close();
    b.close();
  }
  assert.equal(a.fd, null, "no descriptor after close");
  assert.equal(descriptorCount(), before);
});

Deno.test("datagramPair(): no end of stream when the peer closes; a send to the closed end fails", async () => {
  const [a, b] = datagramPair();
  try {
    await b.send(enc.encode("last"));
    b.close();
    assert.equal(dec.decode((await a.receive())!.data), "last", "queued records still come");
    const reason = new Error("waited");
    const waited = a.receive({ signal: AbortSignal.timeout(50) });
    await assert.rejects(waited, (e: Error) => e.name === "TimeoutError" && e !== reason);
    await assert.rejects(a.send(enc.encode("x")), Deno.errors.ConnectionRefused);
    await assert.rejects(a.write(enc.encode("x")), Deno.errors.NotConnected);
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("datagramPair(): descriptors over a pair; truncation keeps them; read() and close() close them", async () => {
  using dir = tempDir();
  Deno.writeTextFileSync(`${dir.path}/f`, "passed");
  const fd = openFd(`${dir.path}/f`);
  const before = fdBaseline();
  try {
    {
      const [a, b] = datagramPair();
      using _a = a, _b = b;
      await a.send(new Uint8Array(10), undefined, { fds: [fd, fd] });
      const cut = await b.receive({ maxSize: 4 });
      assert.deepEqual([cut?.data.length, cut?.truncated, cut?.fds?.length], [4, true, 2]);
      for (const got of cut!.fds!) assert.equal(fdText(got), "passed");
      closeFds(cut!.fds!);
      await a.send(new Uint8Array(3), undefined, { fds: [fd] });
      assert.equal(await b.read(new Uint8Array(8)), 3);
      assert.equal(descriptorCount(), before + 2, "read() closed what came with its record");
      // Two records read ahead by one receiveMany; only the first is taken.
      await a.send(new Uint8Array(1), undefined, { fds: [fd] });
      await a.send(new Uint8Array(2), undefined, { fds: [fd, fd, fd] });
      const batch = await b.receiveMany({ max: 1 });
      assert.equal(batch?.[0].fds?.length, 1);
      closeFds(batch![0].fds!);
    }
    assert.equal(descriptorCount(), before, "close() closed the unread record's descriptors");
  } finally {
    closeFd(fd);
  }
});

Deno.test("DatagramSocket.receive() reports controlTruncated when out of descriptors, and leaks none", async () => {
  using dir = tempDir();
  Deno.writeTextFileSync(`${dir.path}/f`, "x");
  const [a, b] = datagramPair();
  const fd = openFd(`${dir.path}/f`);
  try {
    await a.send(enc.encode("five"), undefined, { fds: [fd, fd, fd, fd, fd] });
    closeFd(fd);
    const before = descriptorCount();
    const m = await withDescriptorRoom(2, () => b.receive());
    assert.equal(dec.decode(m?.data), "five");
    assert.equal(m?.controlTruncated, true);
    assert.equal(m?.fds?.length, 2, "the two that fit were delivered");
    closeFds(m!.fds!);
    assert.equal(descriptorCount(), before, "the three that did not fit were not installed");
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("DatagramSocket.send() checks fds before any system call, and refuses them on UDP and built-in", async () => {
  const [a, b] = datagramPair();
  try {
    await assert.rejects(a.send(new Uint8Array(1), undefined, { fds: [-1] }), RangeError);
    await assert.rejects(a.send(new Uint8Array(1), undefined, { fds: [1.5] }), TypeError);
    await assert.rejects(
      a.send(new Uint8Array(1), undefined, { fds: new Array(254).fill(1) }),
      RangeError,
    );
    await assert.rejects(a.send(new Uint8Array(1), undefined, { fds: "1" as never }), TypeError);
    await assert.rejects(a.send(new Uint8Array(1), undefined, null as never), TypeError);
    let unused = 1000;
    while (isOpenFd(unused)) unused++;
    await assert.rejects(
      a.send(new Uint8Array(1), undefined, { fds: [unused] }),
      Deno.errors.BadResource,
    );
    await a.send(new Uint8Array([7]));
    assert.deepEqual((await b.receive())?.data, new Uint8Array([7]), "nothing else was sent");
  } finally {
    a.close();
    b.close();
  }
  for (const backend of ["builtin", "ffi"] as const) {
    using udp = listenDatagram({ hostname: "127.0.0.1", port: 0, backend });
    await assert.rejects(udp.send(new Uint8Array(1), udp.localAddr, { fds: [1] }), TypeError);
  }
  using dir = tempDir();
  using builtin = listenDatagram({ path: `${dir.path}/b.sock`, backend: "builtin" });
  assert.equal(builtin.fd, null);
  await assert.rejects(
    builtin.send(new Uint8Array(1), builtin.localAddr, { fds: [1] }),
    (e: Error) => e instanceof Deno.errors.NotSupported && /backend: "ffi"/.test(e.message),
  );
});
