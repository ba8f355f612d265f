// errno → error class through the engine, each errno provoked for real, and
// the permission story: importing needs nothing, the first FFI use without
// --allow-ffi is NotCapable naming the flag.

import assert from "node:assert/strict";
import { SocketError } from "../errors.ts";
import { describeAddress, errnoError, withContext } from "../ffi/errors.ts";
import { FdSocket } from "../ffi/socket.ts";
import { decodeInet, encodeInet, encodeUnix } from "../ffi/sockaddr.ts";
import type { NetAddr } from "../types.ts";
import { deadline, denoRun, DROP_NET_RAW, needs, tempDir } from "./_helpers.ts";

const PEERS = new URL("./peers/", import.meta.url);
const ROOT = new URL("../", import.meta.url);

type ErrorClass = new (...args: never[]) => Error;

/**
 * Asserts `err` is exactly `Class` with the errno details and the message
 * `<call> <label>: <reason>` (plus `extra`, if given).
 */
function assertErrno(
  err: unknown,
  expected: {
    Class: ErrorClass;
    code: string;
    errno: number;
    syscall: string;
    message: string;
  },
): true {
  assert.ok(err instanceof Error, `not an Error: ${String(err)}`);
  assert.equal(err.constructor, expected.Class, `wrong class for: ${err.message}`);
  const e = err as Error & { code?: unknown; errno?: unknown; syscall?: unknown };
  assert.equal(e.code, expected.code);
  assert.equal(e.errno, expected.errno);
  assert.equal(e.syscall, expected.syscall);
  assert.equal(e.message, expected.message);
  return true;
}

/** The port an IPv4 socket is bound to. */
function portOf(sock: FdSocket): number {
  const addr = sock.localAddress((name, length) => decodeInet(name, length, "udp"));
  return (addr as NetAddr).port;
}

function unixStream(label: string): FdSocket {
  return FdSocket.open("unix", "stream", 0, { label });
}

Deno.test("errnoError() maps ENOENT, EADDRINUSE, EMSGSIZE and unknown numbers", () => {
  assertErrno(errnoError(2, "connect", '"/run/x.sock"'), {
    Class: Deno.errors.NotFound,
    code: "ENOENT",
    errno: 2,
    syscall: "connect",
    message: 'connect "/run/x.sock": no such file or directory',
  });
  assertErrno(errnoError(98, "bind"), {
    Class: Deno.errors.AddrInUse,
    code: "EADDRINUSE",
    errno: 98,
    syscall: "bind",
    message: "bind: address already in use",
  });
  assertErrno(errnoError(90, "sendmsg", '"127.0.0.1:9"'), {
    Class: SocketError,
    code: "EMSGSIZE",
    errno: 90,
    syscall: "sendmsg",
    message: 'sendmsg "127.0.0.1:9": message too long',
  });
  assertErrno(errnoError(4000, "recvmsg"), {
    Class: SocketError,
    code: "E4000",
    errno: 4000,
    syscall: "recvmsg",
    message: "recvmsg: errno 4000",
  });
});

Deno.test("FdSocket.connect() to a Unix path that does not exist rejects NotFound (ENOENT)", async () => {
  using dir = tempDir();
  const path = `${dir.path}/missing.sock`;
  const label = describeAddress({ path });
  const sock = unixStream(label);
  try {
    await assert.rejects(
      deadline(sock.connect(encodeUnix(path)), 5000, "connect"),
      (err) =>
        assertErrno(err, {
          Class: Deno.errors.NotFound,
          code: "ENOENT",
          errno: 2,
          syscall: "connect",
          message: `connect "${path}": no such file or directory`,
        }),
    );
  } finally {
    sock.close();
  }
});

Deno.test("FdSocket.connect() to a path whose listener is gone rejects ConnectionRefused", async () => {
  using dir = tempDir();
  const path = `${dir.path}/gone.sock`;
  const listener = unixStream(describeAddress({ path }));
  listener.bind(encodeUnix(path));
  listener.listen();
  listener.close();
  // The socket file stays behind with nobody listening on it.
  assert.ok(Deno.statSync(path).isSocket);
  const sock = unixStream("");
  try {
    await assert.rejects(
      deadline(sock.connect(encodeUnix(path), describeAddress({ path })), 5000, "connect"),
      (err) =>
        assertErrno(err, {
          Class: Deno.errors.ConnectionRefused,
          code: "ECONNREFUSED",
          errno: 111,
          syscall: "connect",
          message: `connect "${path}": connection refused`,
        }),
    );
  } finally {
    sock.close();
  }
});

Deno.test("FdSocket.connect() to a bound but not listening Unix socket rejects ConnectionRefused", async () => {
  using dir = tempDir();
  const path = `${dir.path}/quiet.sock`;
  const bound = unixStream(describeAddress({ path }));
  const sock = unixStream(describeAddress({ path }));
  try {
    bound.bind(encodeUnix(path));
    await assert.rejects(
      deadline(sock.connect(encodeUnix(path)), 5000, "connect"),
      (err) =>
        assertErrno(err, {
          Class: Deno.errors.ConnectionRefused,
          code: "ECONNREFUSED",
          errno: 111,
          syscall: "connect",
          message: `connect "${path}": connection refused`,
        }),
    );
  } finally {
    bound.close();
    sock.close();
  }
});

Deno.test("FdSocket.connect() to a TCP port nobody listens on rejects ConnectionRefused", async () => {
  // Find a free port by binding and closing: nothing listens there afterwards.
  const probe = FdSocket.open("ipv4", "stream", 0, { label: "" });
  probe.bind(encodeInet("127.0.0.1", 0));
  const port = portOf(probe);
  probe.close();
  const label = describeAddress({ hostname: "127.0.0.1", port });
  const sock = FdSocket.open("ipv4", "stream", 0, { label });
  try {
    await assert.rejects(
      deadline(sock.connect(encodeInet("127.0.0.1", port)), 5000, "connect"),
      (err) =>
        assertErrno(err, {
          Class: Deno.errors.ConnectionRefused,
          code: "ECONNREFUSED",
          errno: 111,
          syscall: "connect",
          message: `connect "127.0.0.1:${port}": connection refused`,
        }),
    );
  } finally {
    sock.close();
  }
});

Deno.test("FdSocket.bind() twice to one Unix path throws AddrInUse (EADDRINUSE)", () => {
  using dir = tempDir();
  const path = `${dir.path}/twice.sock`;
  const label = describeAddress({ path });
  const first = FdSocket.open("unix", "datagram", 0, { label });
  const second = FdSocket.open("unix", "datagram", 0, { label });
  try {
    first.bind(encodeUnix(path));
    assert.throws(() => second.bind(encodeUnix(path)), (err) =>
      assertErrno(err, {
        Class: Deno.errors.AddrInUse,
        code: "EADDRINUSE",
        errno: 98,
        syscall: "bind",
        message: `bind "${path}": address already in use`,
      }));
  } finally {
    first.close();
    second.close();
  }
});

Deno.test("FdSocket.bind() twice to one UDP port throws AddrInUse (EADDRINUSE)", () => {
  const first = FdSocket.open("ipv4", "datagram", 0, { label: "" });
  const second = FdSocket.open("ipv4", "datagram", 0, { label: "" });
  try {
    first.bind(encodeInet("127.0.0.1", 0));
    const port = portOf(first);
    assert.ok(port > 0);
    const label = describeAddress({ hostname: "127.0.0.1", port });
    assert.throws(
      () => second.bind(encodeInet("127.0.0.1", port), label),
      (err) =>
        assertErrno(err, {
          Class: Deno.errors.AddrInUse,
          code: "EADDRINUSE",
          errno: 98,
          syscall: "bind",
          message: `bind "127.0.0.1:${port}": address already in use`,
        }),
    );
  } finally {
    first.close();
    second.close();
  }
});

Deno.test("FdSocket.send() of 70,000 bytes over UDP rejects SocketError EMSGSIZE naming the size", async () => {
  const receiver = FdSocket.open("ipv4", "datagram", 0, { label: "" });
  const sender = FdSocket.open("ipv4", "datagram", 0, { label: "" });
  try {
    receiver.bind(encodeInet("127.0.0.1", 0));
    const port = portOf(receiver);
    sender.label = describeAddress({ hostname: "127.0.0.1", port });
    await assert.rejects(
      sender.send(new Uint8Array(70_000), encodeInet("127.0.0.1", port)),
      (err) =>
        assertErrno(err, {
          Class: SocketError,
          code: "EMSGSIZE",
          errno: 90,
          syscall: "send",
          message: `send "127.0.0.1:${port}": message too long (70000 bytes)`,
        }),
    );
    // Nothing was sent in part: the receiver's queue is empty.
    const ac = new AbortController();
    const pending = receiver.receive(100_000, ac.signal);
    await sender.send(new TextEncoder().encode("after"), encodeInet("127.0.0.1", port));
    const got = await deadline(pending, 5000, "the record after the refused one");
    assert.equal(new TextDecoder().decode(got!.data), "after");
  } finally {
    receiver.close();
    sender.close();
  }
});

Deno.test("FdSocket.send() of a Unix datagram over the send buffer rejects EMSGSIZE naming the size", async () => {
  const [a, b] = FdSocket.pair("datagram", { label: '"pair"' });
  try {
    a.setOption("sendBufferSize", 4096);
    const size = a.getOption("sendBufferSize") + 4096;
    await assert.rejects(a.send(new Uint8Array(size), null), (err) =>
      assertErrno(err, {
        Class: SocketError,
        code: "EMSGSIZE",
        errno: 90,
        syscall: "send",
        message: `send "pair": message too long (${size} bytes)`,
      }));
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("FdSocket.bind() of a truncated sockaddr_in throws SocketError EINVAL", () => {
  const sock = FdSocket.open("ipv4", "datagram", 0, { label: '"127.0.0.1:0"' });
  try {
    // Eight of the sixteen bytes: the kernel refuses the length itself.
    const short = encodeInet("127.0.0.1", 0).slice(0, 8);
    assert.throws(() => sock.bind(short), (err) =>
      assertErrno(err, {
        Class: SocketError,
        code: "EINVAL",
        errno: 22,
        syscall: "bind",
        message: 'bind "127.0.0.1:0": invalid argument',
      }));
  } finally {
    sock.close();
  }
});

Deno.test("FdSocket.setOption() with a value the kernel refuses throws SocketError EINVAL", () => {
  const sock = FdSocket.open("ipv4", "datagram", 0, { label: '"udp"' });
  try {
    // IP_TTL takes 1–255 (or -1 for the default).
    assert.throws(() => sock.setOption("ipTtl", 256), (err) =>
      assertErrno(err, {
        Class: SocketError,
        code: "EINVAL",
        errno: 22,
        syscall: "setsockopt ipTtl",
        message: 'setsockopt ipTtl "udp": invalid argument',
      }));
    sock.setOption("ipTtl", 7);
    assert.equal(sock.getOption("ipTtl"), 7);
  } finally {
    sock.close();
  }
});

Deno.test("FdSocket.listen() on a datagram socket throws NotSupported (EOPNOTSUPP)", () => {
  const sock = FdSocket.open("unix", "datagram", 0, { label: '"dgram"' });
  try {
    assert.throws(() => sock.listen(), (err) =>
      assertErrno(err, {
        Class: Deno.errors.NotSupported,
        code: "EOPNOTSUPP",
        errno: 95,
        syscall: "listen",
        message: 'listen "dgram": operation not supported',
      }));
  } finally {
    sock.close();
  }
});

Deno.test(
  "FdSocket.open() of a raw socket without CAP_NET_RAW throws PermissionDenied (EPERM)",
  needs("CAP_NET_RAW"), // to drop it: only a process that has it can show the difference
  async () => {
    const script = new URL("engine_raw.ts", PEERS).pathname;
    const withCap = await denoRun(script, { flags: ["--allow-ffi"] }).output();
    assert.equal(withCap.code, 0);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(withCap.stdout)), { opened: true });

    const drop = [...DROP_NET_RAW];
    const without = await denoRun(script, { flags: ["--allow-ffi"], prefix: drop }).output();
    assert.equal(without.code, 0);
    const result = JSON.parse(new TextDecoder().decode(without.stdout));
    assert.deepEqual(result, {
      opened: false,
      name: "PermissionDenied",
      permissionDenied: true,
      code: "EPERM",
      errno: 1,
      syscall: "socket",
      message: "socket: operation not permitted",
    });
  },
);

Deno.test("FdSocket without --allow-ffi: first use throws NotCapable naming --allow-ffi", async () => {
  const script = new URL("engine_no_ffi.ts", PEERS).pathname;
  const out = await denoRun(script).output();
  assert.equal(out.code, 0);
  const result = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.equal(result.opened, false);
  assert.equal(result.notCapable, true);
  assert.match(result.message, /--allow-ffi/);
  assert.equal(result.ledger, 0);
});

Deno.test("importing mod.ts, every export and every ffi/ module needs no permission", async () => {
  const config = JSON.parse(Deno.readTextFileSync(new URL("deno.json", ROOT)));
  const modules: URL[] = [];
  for (const target of Object.values(config.exports as Record<string, string>)) {
    modules.push(new URL(target, ROOT));
  }
  for (const entry of Deno.readDirSync(new URL("ffi/", ROOT))) {
    if (entry.isFile && entry.name.endsWith(".ts")) {
      modules.push(new URL(`ffi/${entry.name}`, ROOT));
    }
  }
  assert.ok(modules.some((u) => u.pathname.endsWith("/mod.ts")));
  assert.ok(modules.some((u) => u.pathname.endsWith("/ffi/socket.ts")));
  using dir = tempDir();
  const script = `${dir.path}/import_all.ts`;
  Deno.writeTextFileSync(
    script,
    modules.map((u) => `import ${JSON.stringify(u.href)};\n`).join("") +
      `console.log("imported ${modules.length}");\n`,
  );
  const out = await denoRun(script).output();
  assert.equal(out.code, 0, `importing ${modules.map((u) => u.pathname).join(", ")} failed`);
  assert.equal(new TextDecoder().decode(out.stdout).trim(), `imported ${modules.length}`);
});

Deno.test("withContext always gives an Error: a built-in's error classed and named, a non-Error wrapped", () => {
  const refused = withContext(
    new Deno.errors.ConnectionRefused("Connection refused (os error 111)"),
    "connect",
    '"127.0.0.1:9"',
  );
  assert.ok(refused instanceof Deno.errors.ConnectionRefused);
  assert.equal(refused.message, 'connect "127.0.0.1:9": connection refused');
  const odd = withContext("boom", "send", '"x"');
  assert.ok(odd instanceof Error);
  assert.equal(odd.message, 'send "x": boom');
  assert.equal(odd.cause, "boom");
  const bad = new TypeError("nope");
  assert.equal(withContext(bad, "send", ""), bad);
});
