// Tests for what PacketSocketBase gives every packet socket alike, whatever
// its type and engine: read(p) cuts a record to p and loses the rest, async
// iteration ends on close, the closed socket's answers, argument checks
// before any system call, and ref()/unref() deciding whether a pending
// receive keeps the process alive.

import assert from "node:assert/strict";
import type { PacketSocketBase } from "../mod.ts";
import { datagramPair, listenDatagram } from "../datagram.ts";
import { openNetlink } from "../netlink.ts";
import { openPacket, openRaw } from "../raw.ts";
import { seqpacketPair } from "../seqpacket.ts";
import {
  deadline,
  denoRun,
  hasCapNetRaw,
  lines,
  needs,
  nextLine,
  socketFdCount,
} from "./_helpers.ts";

const BUILTIN_PRESENT = typeof (Deno as { listenDatagram?: unknown }).listenDatagram ===
  "function";
const CHILD = new URL("./peers/packet_ref_child.ts", import.meta.url).pathname;
const ETHER_TYPE = 0x88b5;

/** A receiving socket and a way to put one record on its queue. */
interface Case {
  socket: PacketSocketBase<unknown>;
  /**
   * Sends `data` as one record to `socket`; resolves once it is queued
   * there, or only once it is sent with `wait` false (a receive already
   * waiting may take it at once).
   */
  deliver(data: Uint8Array, wait?: boolean): Promise<void>;
  /** How a received record starts before `data` (a link-layer frame's header). */
  header: number;
  backend: "ffi" | "builtin";
  close(): void;
}

interface Maker {
  name: string;
  needs?: { ignore: boolean };
  make(): Case;
}

/** Waits until `socket` has a record queued, without consuming it. */
async function queued(socket: PacketSocketBase<unknown>): Promise<void> {
  await deadline(socket.receive({ peek: true, maxSize: 1 }), 5000, "the record");
}

/**
 * `a` receiving what `send` sends from `b`. A record sent over a connection
 * is queued when the send resolves; one sent to an address is waited for
 * with a peek where the engine can peek (`queues: false`).
 */
function caseOf(
  a: PacketSocketBase<unknown>,
  b: PacketSocketBase<unknown>,
  send: (data: Uint8Array) => Promise<number>,
  options: { queues?: boolean; header?: number } = {},
): Case {
  const peek = !(options.queues ?? false) && a.backend === "ffi";
  return {
    socket: a,
    deliver: async (data, wait = true) => {
      await send(data);
      if (wait && peek) await queued(a);
    },
    header: options.header ?? 0,
    backend: a.backend,
    close() {
      a.close();
      b.close();
    },
  };
}

const MAKERS: Maker[] = [
  {
    name: "SeqpacketConn",
    make() {
      const [a, b] = seqpacketPair();
      return caseOf(a, b, (data) => b.send(data), { queues: true });
    },
  },
  {
    name: "DatagramSocket (UDP, ffi)",
    make() {
      const a = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
      const b = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
      return caseOf(a, b, (data) => b.send(data, a.localAddr));
    },
  },
  {
    name: "DatagramSocket (Unix pair, ffi)",
    make() {
      const [a, b] = datagramPair();
      return caseOf(a, b, (data) => b.send(data), { queues: true });
    },
  },
  {
    // The built-in engine cannot peek: its first receive waits for the record.
    name: "DatagramSocket (UDP, builtin)",
    needs: { ignore: !BUILTIN_PRESENT },
    make() {
      const a = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "builtin" });
      const b = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
      return caseOf(a, b, (data) => b.send(data, a.localAddr));
    },
  },
  {
    name: "NetlinkSocket",
    make() {
      const a = openNetlink({ protocol: "route" });
      const b = openNetlink({ protocol: "route" });
      return caseOf(a, b, (data) => b.send(data, a.localAddr));
    },
  },
  {
    name: "RawSocket (IPv6, protocol 253)",
    needs: needs("CAP_NET_RAW"),
    make() {
      const a = openRaw({ family: "ipv6", protocol: 253 });
      const b = openRaw({ family: "ipv6", protocol: 253 });
      return caseOf(a, b, (data) => b.send(data, { transport: "ip", hostname: "::1" }));
    },
  },
  {
    name: "LinkSocket (lo)",
    needs: needs("CAP_NET_RAW"),
    make() {
      const a = openPacket({ interface: "lo", protocol: ETHER_TYPE, immediate: true });
      const b = openPacket({ interface: "lo", protocol: ETHER_TYPE, immediate: true });
      // An Ethernet header to nobody's MAC, then the payload.
      const frame = (data: Uint8Array) => {
        const f = new Uint8Array(14 + data.length);
        new DataView(f.buffer).setUint16(12, ETHER_TYPE);
        f.set(data, 14);
        return f;
      };
      return caseOf(a, b, (data) => b.send(frame(data)), { header: 14 });
    },
  },
];

function counting(n: number, from = 0): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (from + i) & 0xff);
}

for (const maker of MAKERS) {
  Deno.test({
    name: `${maker.name}.read(p) returns one record cut to p; the rest of it is gone`,
    ...maker.needs,
    async fn() {
      const c = maker.make();
      try {
        await c.deliver(counting(40));
        await c.deliver(counting(3, 100));
        const small = new Uint8Array(c.header + 4);
        assert.equal(await deadline(c.socket.read(small), 5000, "read"), small.length);
        assert.deepEqual(small.subarray(c.header), counting(4));
        const big = new Uint8Array(c.header + 64);
        assert.equal(await deadline(c.socket.read(big), 5000, "read"), c.header + 3);
        assert.deepEqual(big.subarray(c.header, c.header + 3), counting(3, 100));
      } finally {
        c.close();
      }
    },
  });

  Deno.test({
    name: `${maker.name}: async iteration yields records and ends when the socket closes`,
    ...maker.needs,
    async fn() {
      const c = maker.make();
      try {
        const seen: number[] = [];
        const loop = (async () => {
          for await (const m of c.socket) {
            seen.push(m.data.length - c.header);
            // A second receive is parked or about to be: close must end it.
            if (seen.length === 2) queueMicrotask(() => c.socket.close());
          }
        })();
        await c.deliver(counting(5), false);
        await c.deliver(counting(6), false);
        await deadline(loop, 5000, "the end of iteration");
        assert.deepEqual(seen, [5, 6]);
      } finally {
        c.close();
      }
    },
  });

  Deno.test({
    name: `${maker.name}: once closed, fd is null, receives are null, sends BadResource`,
    ...maker.needs,
    async fn() {
      const before = socketFdCount();
      const c = maker.make();
      try {
        assert.equal(c.socket.backend, c.backend);
        if (c.backend === "ffi") assert.equal(typeof c.socket.fd, "number");
        else assert.equal(c.socket.fd, null);
        const pending = c.socket.receive();
        c.socket.close();
        assert.equal(await deadline(pending, 5000, "the pending receive"), null);
        c.socket.close();
        assert.equal(c.socket.fd, null);
        assert.equal(await c.socket.receive(), null);
        assert.equal(await c.socket.read(new Uint8Array(8)), null);
        assert.equal(await c.socket.receiveMany(), null);
        await assert.rejects(c.socket.write(new Uint8Array(1)), Deno.errors.BadResource);
        await assert.rejects(c.socket.send(new Uint8Array(1)), Deno.errors.BadResource);
        // Neither may bring a closed socket back into the engine.
        c.socket.unref();
        c.socket.ref();
        assert.throws(() => c.socket.getOption("receiveBufferSize"), Error);
      } finally {
        c.close();
      }
      assert.equal(socketFdCount(), before, "every descriptor was closed");
    },
  });

  Deno.test({
    name: `${maker.name}: receive, read and receiveMany check their arguments alike`,
    ...maker.needs,
    async fn() {
      const c = maker.make();
      try {
        const s = c.socket;
        await assert.rejects(s.receive({ maxSize: -1 }), RangeError);
        await assert.rejects(s.receive({ maxSize: "1" as never }), TypeError);
        await assert.rejects(s.receive({ peek: 1 as never }), TypeError);
        await assert.rejects(s.receive({ signal: {} as never }), TypeError);
        await assert.rejects(s.receive(null as never), TypeError);
        await assert.rejects(s.receiveMany({ max: 0 }), RangeError);
        await assert.rejects(s.receiveMany({ max: 1.5 }), TypeError);
        await assert.rejects(s.read("abc" as never), TypeError);
        await assert.rejects(s.read(new Uint8Array(new SharedArrayBuffer(4))), TypeError);
        // An aborted receive rejects with the reason and takes nothing.
        const reason = new Error("stop");
        await assert.rejects(s.receive({ signal: AbortSignal.abort(reason) }), (e) => e === reason);
        await c.deliver(counting(2));
        const m = await deadline(s.receive(), 5000, "the record");
        assert.equal(m?.data.length, c.header + 2);
      } finally {
        c.close();
      }
    },
  });
}

Deno.test("[builtin] receive({ peek }) is NotSupported, naming the FFI backend", {
  ignore: !BUILTIN_PRESENT,
}, async () => {
  using sock = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "builtin" });
  await assert.rejects(
    sock.receive({ peek: true }),
    (e: Error) => e instanceof Deno.errors.NotSupported && /backend: "ffi"/.test(e.message),
  );
  assert.throws(() => sock.setOption("ttl", 3), Deno.errors.NotSupported);
});

// ---------------------------------------------------------------------------
// ref() and unref(), in a child that ends only if nothing keeps it alive

/** Runs the child in `mode`; returns its exit code and what it printed after its ready line. */
async function runChild(mode: string, after?: (ports: number[]) => Promise<void>) {
  const child = denoRun(CHILD, {
    flags: ["--unstable-net", "--allow-ffi", "--allow-net"],
    args: [mode, ...(hasCapNetRaw() ? ["raw"] : [])],
  }).spawn();
  const out = lines(child.stdout);
  const ready = await nextLine(out, 10_000);
  const m = /^ready((?: \d+)*)$/.exec(ready);
  assert.ok(m, `the child said ${JSON.stringify(ready)}`);
  if (after) await after(m[1].trim().split(" ").filter((p) => p !== "").map(Number));
  const said: string[] = [];
  for (;;) {
    const next = await deadline(out.next(), 10_000, "the child's output");
    if (next.done) break;
    said.push(next.value);
  }
  const status = await deadline(child.status, 10_000, "the child's exit");
  return { code: status.code, said };
}

Deno.test("unref() on every packet type lets a program end while receives wait", async () => {
  const { code, said } = await runChild("unref");
  assert.equal(code, 0);
  assert.deepEqual(said, [], "no pending receive settled");
});

Deno.test("ref() after unref() keeps a program alive until its record comes", async () => {
  const { code, said } = await runChild("ref", async (ports) => {
    assert.equal(ports.length, BUILTIN_PRESENT ? 2 : 1);
    using sock = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
    for (const port of ports) {
      await sock.send(new Uint8Array(7), { transport: "udp", hostname: "127.0.0.1", port });
    }
  });
  assert.equal(code, 0);
  assert.deepEqual(said.sort(), BUILTIN_PRESENT ? ["builtin 7", "ffi 7"] : ["ffi 7"]);
});
