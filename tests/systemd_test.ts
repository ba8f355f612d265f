// systemd.ts against the real tools: systemd-notify's bytes at a Python
// receiver beside ours, the real systemd-journald (in a mount namespace of
// its own) read back with journalctl, and systemd-socket-activate handing
// sockets to a Deno child.

import assert from "node:assert/strict";
import {
  journal,
  listenFds,
  notify,
  notifyReloading,
  notifyStopping,
  notifyWatchdog,
  watchdogInterval,
} from "../systemd.ts";
import { listenDatagram } from "../datagram.ts";
import { encodeUnix } from "../ffi/sockaddr.ts";
import { FdSocket } from "../ffi/socket.ts";
import {
  deadline,
  fdTable,
  killOnDispose,
  lines,
  needs,
  nextLine,
  prng,
  pythonOutput,
  randomBytes,
  sha256,
  tempDir,
  toHex,
} from "./_helpers.ts";

const RECEIVER = Deno.readTextFileSync(new URL("./peers/notify_receiver.py", import.meta.url));
const encoder = new TextEncoder();
const JOURNALD = "/lib/systemd/systemd-journald";

/** Runs `body` with the environment variables `vars` set (undefined: unset), then restores them. */
async function withEnv<T>(
  vars: Record<string, string | undefined>,
  body: () => Promise<T> | T,
): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, Deno.env.get(k)]));
  const apply = (v: Record<string, string | undefined>) => {
    for (const [k, value] of Object.entries(v)) {
      if (value === undefined) Deno.env.delete(k);
      else Deno.env.set(k, value);
    }
  };
  apply(vars);
  try {
    return await body();
  } finally {
    apply(saved);
  }
}

interface Notification {
  data: string;
  pid: number | null;
  fds: string[];
  monotonic: number;
}

/** The Python notification socket at `address`, for `count` datagrams. */
async function startReceiver(address: string, count: number) {
  const child = killOnDispose(
    new Deno.Command("python3", {
      args: ["-u", "-c", RECEIVER, address, String(count)],
      stdin: "null",
      stdout: "piped",
    }).spawn(),
  );
  const out = lines(child.stdout);
  assert.equal(await nextLine(out, 10_000), "ready");
  return {
    child,
    next: async (): Promise<Notification> => JSON.parse(await nextLine(out)),
  };
}

/** A receiver at a fresh path, removed with its directory on dispose. */
async function receiverAt(count: number) {
  const dir = tempDir("sd-notify-");
  const path = `${dir.path}/notify.sock`;
  const receiver = await startReceiver(path, count);
  return {
    ...receiver,
    path,
    async [Symbol.asyncDispose]() {
      await receiver.child[Symbol.asyncDispose]();
      dir[Symbol.dispose]();
    },
  };
}

function text(hex: string): string {
  return new TextDecoder().decode(Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16)));
}

// ---------------------------------------------------------------------------
// notify

Deno.test(
  "notify() sends the bytes systemd-notify --ready --status sends, one datagram, credentials ours",
  needsTools("python3", "systemd-notify"),
  async () => {
    await using receiver = await receiverAt(2);
    const path = receiver.path;
    const tool = await new Deno.Command("systemd-notify", {
      args: ["--no-block", "--ready", "--status=serving 3 sockets"],
      env: { NOTIFY_SOCKET: path },
      stdout: "null",
    }).output();
    assert.ok(tool.success, "systemd-notify failed");
    const theirs = await receiver.next();
    const sent = await withEnv(
      { NOTIFY_SOCKET: path },
      () => notify({ READY: 1, STATUS: "serving 3 sockets" }),
    );
    assert.equal(sent, true);
    const ours = await receiver.next();
    assert.equal(text(theirs.data), "READY=1\nSTATUS=serving 3 sockets");
    assert.equal(ours.data, theirs.data);
    assert.equal(ours.pid, Deno.pid);
    assert.deepEqual(ours.fds, []);
  },
);

Deno.test("notify() reaches an abstract @name, and the string form is sent as written", {
  ...needs("python3"),
}, async () => {
  const name = `@sd-notify-${crypto.randomUUID()}`;
  const receiver = await startReceiver(name, 1);
  await using _child = receiver.child;
  await withEnv({ NOTIFY_SOCKET: name }, () => notify("WATCHDOG=1\nSTATUS=alive\n"));
  assert.equal(text((await receiver.next()).data), "WATCHDOG=1\nSTATUS=alive\n");
});

Deno.test("notify() passes descriptors with FDSTORE=1, adding it when the state lacks it", {
  ...needs("python3"),
}, async () => {
  await using receiver = await receiverAt(2);
  const path = receiver.path;
  const mine = fdTable();
  await withEnv({ NOTIFY_SOCKET: path }, async () => {
    await notify("FDSTORE=1\nFDNAME=std", { fds: [0, 1, 2] });
    await notify({ FDNAME: "out" }, { fds: [1] });
  });
  const first = await receiver.next();
  assert.equal(text(first.data), "FDSTORE=1\nFDNAME=std");
  assert.deepEqual(first.fds, [mine.get(0), mine.get(1), mine.get(2)]);
  const second = await receiver.next();
  assert.equal(text(second.data), "FDNAME=out\nFDSTORE=1");
  assert.deepEqual(second.fds, [mine.get(1)]);
});

Deno.test("notifyWatchdog(), notifyStopping(), notifyReloading() send sd_notify(3)'s assignments", {
  ...needs("python3"),
}, async () => {
  await using receiver = await receiverAt(3);
  const path = receiver.path;
  await withEnv({ NOTIFY_SOCKET: path }, async () => {
    assert.equal(await notifyWatchdog(), true);
    await notifyStopping("closing");
    await notifyReloading();
  });
  assert.equal(text((await receiver.next()).data), "WATCHDOG=1");
  assert.equal(text((await receiver.next()).data), "STOPPING=1\nSTATUS=closing");
  const reloading = await receiver.next();
  const m = /^RELOADING=1\nMONOTONIC_USEC=(\d+)$/.exec(text(reloading.data));
  assert.ok(m, text(reloading.data));
  // The same clock as the receiver's CLOCK_MONOTONIC, read before it received.
  const usec = Number(m[1]);
  assert.ok(usec <= reloading.monotonic && usec > reloading.monotonic - 5_000_000, m[1]);
});

Deno.test("notify() is false without NOTIFY_SOCKET and checks its arguments first", async () => {
  await withEnv({ NOTIFY_SOCKET: undefined }, async () => {
    assert.equal(await notify("READY=1"), false);
    assert.equal(await notifyWatchdog(), false);
    await assert.rejects(() => notify(""), TypeError);
    await assert.rejects(() => notify({ "bad key": 1 }), TypeError);
    await assert.rejects(() => notify({ STATUS: "two\nlines" }), TypeError);
    await assert.rejects(() => notify("READY=1", { fds: [-1] }), RangeError);
    await assert.rejects(() => notify("READY=1", { fds: [1.5] }), TypeError);
  });
  await withEnv({ NOTIFY_SOCKET: "relative.sock" }, async () => {
    await assert.rejects(() => notify("READY=1"), TypeError, "NOTIFY_SOCKET");
  });
  using dir = tempDir("sd-notify-");
  await withEnv({ NOTIFY_SOCKET: `${dir.path}/nobody.sock` }, async () => {
    await assert.rejects(() => notify("READY=1"), Deno.errors.NotFound);
  });
});

Deno.test("watchdogInterval() reads WATCHDOG_USEC for this process only", async () => {
  await withEnv({ WATCHDOG_USEC: "3000000", WATCHDOG_PID: String(Deno.pid) }, () => {
    assert.equal(watchdogInterval(), 3_000_000);
  });
  await withEnv({ WATCHDOG_USEC: "3000000", WATCHDOG_PID: undefined }, () => {
    assert.equal(watchdogInterval(), 3_000_000);
  });
  await withEnv({ WATCHDOG_USEC: "3000000", WATCHDOG_PID: String(Deno.pid + 1) }, () => {
    assert.equal(watchdogInterval(), null);
  });
  await withEnv({ WATCHDOG_USEC: undefined, WATCHDOG_PID: undefined }, () => {
    assert.equal(watchdogInterval(), null);
  });
  for (const bad of ["", "0", "-5", "3s"]) {
    await withEnv({ WATCHDOG_USEC: bad }, () => {
      assert.throws(() => watchdogInterval(), TypeError, "WATCHDOG_USEC");
    });
  }
  await withEnv({ WATCHDOG_USEC: "1000", WATCHDOG_PID: "x" }, () => {
    assert.throws(() => watchdogInterval(), TypeError, "WATCHDOG_PID");
  });
});

// ---------------------------------------------------------------------------
// listenFds: the variables

Deno.test("listenFds() is [] without the variables or for another pid, and removes them", async () => {
  const gone = () => ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"].map((v) => Deno.env.get(v));
  await withEnv({ LISTEN_PID: undefined, LISTEN_FDS: undefined, LISTEN_FDNAMES: undefined }, () => {
    assert.deepEqual(listenFds(), []);
  });
  await withEnv(
    { LISTEN_PID: String(Deno.pid + 1), LISTEN_FDS: "2", LISTEN_FDNAMES: "a:b" },
    () => {
      assert.deepEqual(listenFds(), []);
      assert.deepEqual(gone(), [undefined, undefined, undefined]);
    },
  );
  await withEnv(
    { LISTEN_PID: String(Deno.pid), LISTEN_FDS: "0", LISTEN_FDNAMES: undefined },
    () => {
      assert.deepEqual(listenFds(), []);
      assert.deepEqual(gone(), [undefined, undefined, undefined]);
    },
  );
});

Deno.test("listenFds() throws TypeError naming a malformed variable, adopting nothing", async () => {
  const pid = String(Deno.pid);
  const cases: [Record<string, string | undefined>, string][] = [
    [{ LISTEN_PID: "12x", LISTEN_FDS: "1" }, "LISTEN_PID"],
    [{ LISTEN_PID: "", LISTEN_FDS: "1" }, "LISTEN_PID"],
    [{ LISTEN_PID: pid, LISTEN_FDS: "-1" }, "LISTEN_FDS"],
    [{ LISTEN_PID: pid, LISTEN_FDS: "one" }, "LISTEN_FDS"],
    [{ LISTEN_PID: pid, LISTEN_FDS: "2", LISTEN_FDNAMES: "a" }, "LISTEN_FDNAMES"],
    [{ LISTEN_PID: pid, LISTEN_FDS: "2", LISTEN_FDNAMES: "a::" }, "LISTEN_FDNAMES"],
    [{ LISTEN_PID: pid, LISTEN_FDS: "1", LISTEN_FDNAMES: "" }, "LISTEN_FDNAMES"],
  ];
  for (const [vars, name] of cases) {
    const before = fdTable();
    await withEnv({ LISTEN_FDNAMES: undefined, ...vars }, () => {
      assert.throws(
        () => listenFds(),
        (err) => err instanceof TypeError && err.message.includes(name),
      );
    });
    // Nothing adopted: the descriptors 3, 4 are as they were (open, not closed).
    const after = fdTable();
    for (const fd of [3, 4]) assert.equal(after.get(fd), before.get(fd));
  }
});

// ---------------------------------------------------------------------------
// journal: the real systemd-journald

/** Like needs(): ignored, saying why, unless every command is here (and root, for `root`). */
function needsTools(...what: string[]): { ignore: boolean } {
  const missing = what.filter((w) =>
    w === "root" ? Deno.uid() !== 0 : w.startsWith("/") ? !exists(w) : !commandExists(w)
  );
  if (missing.length > 0) {
    console.error(`skipping a test: it needs ${missing.join(", ")}, which this machine lacks`);
  }
  return { ignore: missing.length > 0 };
}

/** What starting journald here takes. */
const JOURNALD_NEEDS = ["root", JOURNALD, "journalctl", "unshare", "nsenter"];

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function commandExists(cmd: string): boolean {
  return new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
    .outputSync().success;
}

/**
 * The real journald in a mount namespace of its own: its /run/systemd,
 * /run/log and /var/log/journal are directories of a temp dir, so its socket
 * and its journal files are visible here and nothing of the host's is touched.
 * Resolves once journald said READY=1 (it speaks sd_notify to our socket).
 */
async function startJournald() {
  const dir = tempDir("sd-journald-");
  for (const d of ["run", "log", "var"]) Deno.mkdirSync(`${dir.path}/${d}`);
  const script = [
    "set -e",
    `mount --bind ${dir.path}/run /run/systemd`,
    `mount --bind ${dir.path}/log /run/log`,
    `if [ -d /var/log/journal ]; then mount --bind ${dir.path}/var /var/log/journal; fi`,
    `exec ${JOURNALD}`,
  ].join("\n");
  const ready = listenDatagram({ path: `${dir.path}/notify.sock` });
  const child = killOnDispose(
    new Deno.Command("unshare", {
      args: ["-m", "--propagation", "private", "sh", "-c", script],
      env: { NOTIFY_SOCKET: `${dir.path}/notify.sock` },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn(),
  );
  try {
    const said = async () => {
      for await (const m of ready) {
        if (/(^|\n)READY=1(\n|$)/.test(new TextDecoder().decode(m.data))) return;
      }
    };
    await deadline(said(), 15_000, "systemd-journald to say READY=1");
  } catch (err) {
    await child[Symbol.asyncDispose]();
    dir[Symbol.dispose]();
    throw err;
  } finally {
    ready.close();
  }
  const socket = `${dir.path}/run/journal/socket`;
  return {
    socket,
    /** Entries with SDTEST=`id`, after journald wrote everything it received. */
    async entries(id: string): Promise<Record<string, unknown>[]> {
      const sync = await new Deno.Command("nsenter", {
        args: ["-m", "-t", String(child.pid), "journalctl", "--sync"],
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.ok(sync.success, new TextDecoder().decode(sync.stderr));
      const [machine] = [...Deno.readDirSync(`${dir.path}/log/journal`)];
      const out = await new Deno.Command("journalctl", {
        args: ["-D", `${dir.path}/log/journal/${machine.name}`, "-a", "-o", "json", `SDTEST=${id}`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l !== "").map((l) =>
        JSON.parse(l)
      );
    },
    async [Symbol.asyncDispose]() {
      await child[Symbol.asyncDispose]();
      dir[Symbol.dispose]();
    },
  };
}

/** A journal field as journalctl's JSON gives it: a string, or an array of byte values. */
function fieldBytes(value: unknown): Uint8Array {
  if (typeof value === "string") return encoder.encode(value);
  assert.ok(Array.isArray(value), `a field of ${typeof value}`);
  return Uint8Array.from(value as number[]);
}

Deno.test(
  "journal() writes entries journald stores: small, with newlines, 1 MiB, and 6 MiB by memfd",
  needsTools(...JOURNALD_NEEDS),
  async () => {
    await using jd = await startJournald();
    const id = crypto.randomUUID().replaceAll("-", "");
    const rand = prng(13);
    const mib = toHex(randomBytes(rand, 512 * 1024));
    const six = toHex(randomBytes(rand, 3 * 1024 * 1024));
    const binary = Uint8Array.of(0, 1, 2, 10, 255, 10);
    await journal({ MESSAGE: "small", SDTEST: id, PRIORITY: "6" }, { path: jd.socket });
    await journal(
      { MESSAGE: "two\nlines\n", SDTEST: id, BLOB: binary },
      { path: jd.socket },
    );
    await journal({ MESSAGE: "1 MiB", SDTEST: id, BIG: mib }, { path: jd.socket });
    await journal({ MESSAGE: "6 MiB", SDTEST: id, BIG: six }, { path: jd.socket });

    // The 6 MiB entry cannot go as one datagram even with the send buffer
    // raised as journal() raises it: it can only have come through the memfd.
    const probe = FdSocket.open("unix", "datagram", 0, { label: "probe" });
    try {
      probe.setBufferSize("send", 8 * 1024 * 1024);
      await assert.rejects(
        () => probe.send(new Uint8Array(six.length + 64), encodeUnix(jd.socket)),
        (err) => ["EMSGSIZE", "ENOBUFS"].includes((err as { code?: string }).code ?? ""),
      );
    } finally {
      probe.close();
    }

    const entries = await jd.entries(id);
    assert.deepEqual(entries.map((e) => e.MESSAGE !== undefined), [true, true, true, true]);
    const [small, lined, oneMib, sixMib] = entries;
    assert.equal(small.MESSAGE, "small");
    assert.equal(small.PRIORITY, "6");
    assert.equal(small._PID, String(Deno.pid));
    assert.deepEqual(fieldBytes(lined.MESSAGE), encoder.encode("two\nlines\n"));
    assert.deepEqual(fieldBytes(lined.BLOB), binary);
    assert.equal(oneMib.MESSAGE, "1 MiB");
    assert.equal(await sha256(fieldBytes(oneMib.BIG)), await sha256(encoder.encode(mib)));
    assert.equal(sixMib.MESSAGE, "6 MiB");
    assert.equal(await sha256(fieldBytes(sixMib.BIG)), await sha256(encoder.encode(six)));
  },
);

Deno.test(
  "journal() refuses bad field names before sending anything, and says when journald is not there",
  needsTools(...JOURNALD_NEEDS),
  async () => {
    await using jd = await startJournald();
    const id = crypto.randomUUID().replaceAll("-", "");
    const bad = ["lower", "_PID", "1ST", "", "A-B", "A".repeat(65), "ÄÖ"];
    for (const name of bad) {
      await assert.rejects(
        () => journal({ SDTEST: id, MESSAGE: "never", [name]: "x" }, { path: jd.socket }),
        TypeError,
      );
    }
    await assert.rejects(() => journal({}, { path: jd.socket }), TypeError);
    await assert.rejects(
      () => journal({ SDTEST: id, N: 5 as unknown as string }, { path: jd.socket }),
      TypeError,
    );
    // A valid name of 64 characters goes.
    await journal({ SDTEST: id, MESSAGE: "last", ["A".repeat(64)]: "y" }, { path: jd.socket });
    const entries = await jd.entries(id);
    assert.deepEqual(entries.map((e) => e.MESSAGE), ["last"]);

    using dir = tempDir("sd-journal-");
    await assert.rejects(
      () => journal({ MESSAGE: "x" }, { path: `${dir.path}/none.sock` }),
      (err) => err instanceof Deno.errors.NotFound && /journald/.test(err.message),
    );
  },
);

Deno.test("journal() refuses shared, resizable and detached values before sending anything", async () => {
  using dir = tempDir("sd-journal-");
  const path = `${dir.path}/journal.sock`;
  using receiver = listenDatagram({ path });
  const detached = new Uint8Array(4);
  structuredClone(detached.buffer, { transfer: [detached.buffer] });
  const bad = [
    new Uint8Array(new SharedArrayBuffer(4)),
    new Uint8Array(new ArrayBuffer(4, { maxByteLength: 8 })),
    detached,
  ];
  for (const value of bad) {
    await assert.rejects(
      () => journal({ MESSAGE: "never", BLOB: value }, { path }),
      (err) => err instanceof TypeError && /BLOB/.test(err.message),
    );
  }
  await journal({ MESSAGE: "sent" }, { path });
  const first = await deadline(receiver.receive(), 5000, "the entry that was sent");
  assert.equal(new TextDecoder().decode(first!.data), "MESSAGE=sent\n");
});

// ---------------------------------------------------------------------------
// listenFds under systemd-socket-activate

const CHILD = new URL("./peers/activated_child.ts", import.meta.url).pathname;
const CLIENT = Deno.readTextFileSync(new URL("./peers/activation_client.py", import.meta.url));

interface ChildReport {
  pid: number;
  before: (string | null)[];
  after: (string | null)[];
  sockets: { fd: number; name: string; class: string }[];
}

/** A TCP port on 127.0.0.1 that was free a moment ago (the tool refuses port 0). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = l.addr;
  l.close();
  return port;
}

/**
 * Runs the Deno child under `systemd-socket-activate toolArgs`, waits for its
 * `listening` sockets, lets the Python client talk to `clients` (which
 * starts the child on the first), and returns the client's answers and the
 * child's report.
 */
async function activate(
  dir: string,
  toolArgs: string[],
  listening: number,
  clients: string[],
  mode: "listen" | "accept" | "inetd" = "listen",
): Promise<{ answers: string[]; report: ChildReport }> {
  const flags = ["--allow-ffi", "--allow-env", "--allow-read", "--allow-write", "--allow-net"];
  const command = new Deno.Command("systemd-socket-activate", {
    args: [
      ...toolArgs,
      Deno.execPath(),
      "run",
      "--quiet",
      "--no-prompt",
      ...flags,
      CHILD,
      ...(mode === "inetd" ? ["inetd"] : []),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  await using tool = killOnDispose(command.spawn());
  const stderr = lines(tool.stderr);
  const said: string[] = [];
  for (let seen = 0; seen < listening && said.length < 20;) {
    const line = await nextLine(stderr, 10_000);
    said.push(line);
    if (line.startsWith("Listening on ")) seen++;
  }
  const stdout = lines(tool.stdout);
  const client = await pythonOutput(CLIENT, [dir, ...clients]);
  // With --inetd stdout is the connection, so the report comes on stderr.
  const reports = mode === "inetd" ? stderr : stdout;
  let reportLine = "";
  for (let i = 0; !reportLine.startsWith("{"); i++) {
    assert.ok(i < 20, `no report from the child; the tool said ${said.join(" | ")}`);
    reportLine = await nextLine(reports, 30_000);
  }
  // With --accept the tool keeps listening for the next connection: it is
  // killed on dispose. Otherwise it exec'd the child, whose status this is.
  if (!toolArgs.includes("--accept")) {
    const status = await deadline(tool.status, 30_000, "the child to exit");
    assert.ok(status.success, `the child exited with ${status.code}`);
  }
  return { answers: JSON.parse(client), report: JSON.parse(reportLine) };
}

const ACTIVATION_NEEDS = ["python3", "systemd-socket-activate"];
const GONE = [null, null, null];

Deno.test(
  "listenFds() under systemd-socket-activate: a TCP and a Unix listener, named, served",
  needsTools(...ACTIVATION_NEEDS),
  async () => {
    using dir = tempDir("sd-activate-");
    const port = freePort();
    const path = `${dir.path}/web.sock`;
    const { answers, report } = await activate(
      dir.path,
      ["-l", `127.0.0.1:${port}`, "-l", path, "--fdname=web:local"],
      2,
      [`tcp:127.0.0.1:${port}`, `unix:${path}`],
    );
    assert.deepEqual(report.before, [String(report.pid), "2", "web:local"]);
    assert.deepEqual(report.after, GONE);
    assert.deepEqual(report.sockets, [
      { fd: 3, name: "web", class: "StreamListener" },
      { fd: 4, name: "local", class: "StreamListener" },
    ]);
    assert.deepEqual(answers, ["pong: ping 0", "pong: ping 1"]);
  },
);

Deno.test(
  "listenFds() under systemd-socket-activate --datagram and --seqpacket",
  needsTools(...ACTIVATION_NEEDS),
  async () => {
    using dir = tempDir("sd-activate-");
    const dgram = `${dir.path}/dgram.sock`;
    const datagram = await activate(dir.path, ["--datagram", "-l", dgram], 1, [
      `unixgram:${dgram}`,
    ]);
    assert.deepEqual(datagram.report.after, GONE);
    assert.deepEqual(datagram.report.sockets, [
      { fd: 3, name: "unknown", class: "DatagramSocket" },
    ]);
    assert.deepEqual(datagram.answers, ["pong: ping 0"]);

    const seq = `${dir.path}/seq.sock`;
    const seqpacket = await activate(dir.path, ["--seqpacket", "-l", seq, "--fdname=records"], 1, [
      `seqpacket:${seq}`,
    ]);
    assert.deepEqual(seqpacket.report.sockets, [
      { fd: 3, name: "records", class: "SeqpacketListener" },
    ]);
    assert.deepEqual(seqpacket.answers, ["pong: ping 0"]);
  },
);

Deno.test(
  "listenFds() under systemd-socket-activate --accept gets the connection; --inetd: fromFd(0)",
  needsTools(...ACTIVATION_NEEDS),
  async () => {
    using dir = tempDir("sd-activate-");
    const path = `${dir.path}/accept.sock`;
    const accepted = await activate(dir.path, ["--accept", "-l", path], 1, [
      `unix:${path}`,
    ], "accept");
    // The tool sets no LISTEN_FDNAMES for a connection: the default name.
    assert.deepEqual(accepted.report.before, [String(accepted.report.pid), "1", null]);
    assert.deepEqual(accepted.report.sockets, [{ fd: 3, name: "unknown", class: "StreamConn" }]);
    assert.deepEqual(accepted.report.after, GONE);
    assert.deepEqual(accepted.answers, ["pong: ping 0"]);

    // --inetd alone puts the listener on stdin (inetd's "wait"); with --accept, the connection.
    const inetdPath = `${dir.path}/inetd.sock`;
    const waiting = await activate(dir.path, ["--inetd", "-l", inetdPath], 1, [
      `unix:${inetdPath}`,
    ], "inetd");
    assert.deepEqual(waiting.report.sockets, [{ fd: 0, name: "stdin", class: "StreamListener" }]);
    assert.deepEqual(waiting.answers, ["pong: ping 0"]);
    const inetdConn = `${dir.path}/inetd-conn.sock`;
    const inetd = await activate(dir.path, ["--inetd", "--accept", "-l", inetdConn], 1, [
      `unix:${inetdConn}`,
    ], "inetd");
    assert.deepEqual(inetd.report.sockets, [{ fd: 0, name: "stdin", class: "StreamConn" }]);
    assert.deepEqual(inetd.answers, ["pong: ping 0"]);
  },
);

Deno.test(
  "listenFds() without net permission for a passed UDP socket is NotCapable, the descriptor left open",
  needsTools(...ACTIVATION_NEEDS),
  async () => {
    const port = freePort();
    const child = new URL("./peers/adopt_without_net.ts", import.meta.url).pathname;
    const command = new Deno.Command("systemd-socket-activate", {
      args: [
        "--datagram",
        "-l",
        `127.0.0.1:${port}`,
        Deno.execPath(),
        "run",
        "--quiet",
        "--no-prompt",
        "--allow-ffi",
        "--allow-env",
        child,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    });
    await using tool = killOnDispose(command.spawn());
    const stderr = lines(tool.stderr);
    assert.match(await nextLine(stderr, 10_000), /^Listening on /);
    const stdout = new Response(tool.stdout).text();
    await pythonOutput(
      "import socket, sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)" +
        ".sendto(b'wake', ('127.0.0.1', int(sys.argv[1])))",
      [String(port)],
    );
    const out = await deadline(stdout, 30_000, "the child's line");
    const report = JSON.parse(out.trim().split("\n").at(-1)!);
    assert.equal(report.error?.name, "NotCapable", out);
    assert.match(report.error.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
    assert.equal(report.open, true);
    assert.ok((await tool.status).success);
  },
);
