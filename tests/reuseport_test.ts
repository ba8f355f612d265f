import assert from "node:assert/strict";
import { listenDatagram } from "../datagram.ts";
import { listenStream } from "../stream.ts";
import { BPF, bpfStatement } from "../bpf.ts";
import {
  denoRun,
  killOnDispose,
  lines,
  needs,
  nextLine,
  python,
  pythonOutput,
} from "./_helpers.ts";

const peer = Deno.readTextFileSync(new URL("./peers/reuseport_peer.py", import.meta.url));
const child = new URL("./peers/reuseport_child.ts", import.meta.url).pathname;
const NAMES = ["deno-0", "deno-1", "python"];

/** Member index = source port % 3: the IPv4 header has no options on loopback. */
const BY_SOURCE_PORT = [
  bpfStatement(BPF.LD | BPF.H | BPF.ABS, BPF.NET_OFF + 20),
  bpfStatement(BPF.ALU | BPF.MOD | BPF.K, 3),
  bpfStatement(BPF.RET | BPF.A, 0),
];

/**
 * A reuse-port group of three on one port (this process, a second Deno
 * process, a Python socket, bound in that order); 64 Python clients from
 * their own source ports. Returns source port → the member that answered.
 */
async function spread(transport: "udp" | "tcp", steer: boolean): Promise<Map<number, string>> {
  const reply = new TextEncoder().encode(NAMES[0]);
  let port: number;
  let close: () => void;
  let served: Promise<void>;
  let attach: (program: typeof BY_SOURCE_PORT) => void;
  if (transport === "udp") {
    const sock = listenDatagram({ hostname: "127.0.0.1", port: 0, reusePort: true });
    assert.equal(sock.backend, "ffi");
    port = sock.localAddr.port;
    close = () => sock.close();
    attach = (p) => sock.attachReusePortFilter(p);
    served = (async () => {
      for await (const m of sock) if (m.from) await sock.send(reply, m.from);
    })();
  } else {
    const listener = listenStream({ hostname: "127.0.0.1", port: 0, reusePort: true });
    assert.equal(listener.backend, "ffi");
    port = listener.addr.port;
    close = () => listener.close();
    attach = (p) => listener.attachReusePortFilter(p);
    served = (async () => {
      for await (const conn of listener) {
        await conn.write(reply);
        conn.close();
      }
    })();
  }
  try {
    await using deno = killOnDispose(
      denoRun(child, {
        flags: ["--allow-net", "--allow-ffi", "--allow-read"],
        args: [transport, String(port), NAMES[1]],
      }).spawn(),
    );
    assert.equal(await nextLine(lines(deno.stdout), 15_000), "ready");
    await using py = python(peer, "serve", transport, String(port));
    assert.equal(await nextLine(lines(py.stdout)), "ready");
    if (steer) attach(BY_SOURCE_PORT);
    const out = await pythonOutput(peer, ["client", transport, String(port)]);
    const seen = new Map<number, string>();
    for (const line of out.trim().split("\n")) {
      const [sport, name] = line.split(" ");
      seen.set(Number(sport), name);
    }
    assert.equal(seen.size, 64);
    return seen;
  } finally {
    close();
    await served;
  }
}

for (const transport of ["udp", "tcp"] as const) {
  Deno.test(
    `reusePort (${transport}): two Deno processes and a Python socket share a port, each reached`,
    needs("python3"),
    async () => {
      const seen = await spread(transport, false);
      assert.deepEqual(new Set(seen.values()), new Set(NAMES));
    },
  );

  Deno.test(
    `attachReusePortFilter() (${transport}): source port % 3 picks the member, every time`,
    needs("python3"),
    async () => {
      const seen = await spread(transport, true);
      for (const [sport, name] of seen) {
        assert.equal(name, NAMES[sport % 3], `source port ${sport}`);
      }
    },
  );
}

Deno.test("attachReusePortFilter(): refused on the built-in backend and for a bad program", () => {
  using builtin = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "builtin" });
  assert.throws(
    () => builtin.attachReusePortFilter(BY_SOURCE_PORT),
    (e: Error) => e instanceof Deno.errors.NotSupported && /backend: "ffi"/.test(e.message),
  );
  using sock = listenDatagram({ hostname: "127.0.0.1", port: 0, reusePort: true });
  assert.throws(() => sock.attachReusePortFilter([]), RangeError);
  using unix = listenDatagram({ path: "", backend: "ffi" });
  assert.throws(() => unix.attachReusePortFilter(BY_SOURCE_PORT), Deno.errors.NotSupported);
});

Deno.test("listenStream({ reusePort, backlog }) and listenDatagram({ reusePort }) pick the FFI backend; builtin refuses them", () => {
  using a = listenStream({ hostname: "127.0.0.1", port: 0, reusePort: true, backlog: 8 });
  assert.equal(a.backend, "ffi");
  assert.equal(a.getOption("reusePort"), true);
  using b = listenStream({ hostname: "127.0.0.1", port: a.addr.port, reusePort: true });
  assert.equal(b.addr.port, a.addr.port);
  assert.throws(
    () => listenStream({ hostname: "127.0.0.1", port: 0, reusePort: true, backend: "builtin" }),
    Deno.errors.NotSupported,
  );
  assert.throws(() => listenStream({ port: 0, backlog: 0 }), RangeError);
  assert.throws(
    () => listenDatagram({ hostname: "127.0.0.1", port: 0, reusePort: true, backend: "builtin" }),
    Deno.errors.NotSupported,
  );
});
