// Records read ahead (by a batch, for receives to come) stay whole: a record
// is cut only when it is longer than the maxSize of the receive that returns
// it, whatever earlier receives asked for, on every type and backend. And a
// failed system call is a Deno.errors class on the built-in backend too.

import assert from "node:assert/strict";
import { type DatagramSocket, listenDatagram } from "../datagram.ts";
import { seqpacketPair } from "../seqpacket.ts";
import type { Message, NetAddr, UnixAddr } from "../types.ts";
import { deadline, tempDir } from "./_helpers.ts";

/** What each type's pair gives the checks: a sender and a receiver of records. */
interface Pair {
  send(data: Uint8Array): Promise<unknown>;
  receive(maxSize: number): Promise<Message<unknown> | null>;
  receiveMany(max: number, maxSize: number): Promise<Message<unknown>[] | null>;
  close(): void;
}

/** A record of `size` bytes whose content says where each byte was. */
function pattern(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 7 + size) & 0xff;
  return out;
}

/**
 * Small records first, read with small receives (so that the engine reads
 * ahead), then a long one, which the receive that asks for it gets whole.
 */
async function checkLongAfterShort(make: () => Pair, long: number): Promise<void> {
  for (const firstBy of ["receive", "receiveMany"] as const) {
    const p = make();
    try {
      for (const n of [10, 10, long, 10]) await p.send(pattern(n));
      if (firstBy === "receive") {
        assert.equal((await p.receive(100))?.data.length, 10);
        assert.equal((await p.receive(100))?.data.length, 10);
      } else {
        // max keeps the long record out of these batches, not out of the read-ahead.
        const got: number[] = [];
        while (got.length < 2) {
          const batch = await deadline(p.receiveMany(2 - got.length, 100), 5000, "receiveMany");
          assert.ok(batch !== null);
          got.push(...batch.map((m) => m.data.length));
        }
        assert.deepEqual(got, [10, 10]);
      }
      const m = await deadline(p.receive(long), 5000, "the long record");
      assert.equal(m?.truncated, false, `${firstBy}: the ${long}-byte record is whole`);
      assert.equal(m?.data.length, long);
      assert.deepEqual(m?.data, pattern(long));
      const last = await deadline(p.receive(5), 5000, "the record after");
      assert.deepEqual([last?.data.length, last?.truncated], [5, true]);
    } finally {
      p.close();
    }
  }
}

/** A's sends to b as a Pair. */
function datagrams<A extends NetAddr | UnixAddr>(a: DatagramSocket<A>, b: DatagramSocket<A>): Pair {
  return {
    send: (d) => a.send(d, b.localAddr),
    receive: (maxSize) => b.receive({ maxSize }),
    receiveMany: (max, maxSize) => b.receiveMany({ max, maxSize }),
    close() {
      a.close();
      b.close();
    },
  };
}

Deno.test("seqpacketPair(): a 200 KB record after read-ahead comes back whole", async () => {
  await checkLongAfterShort(() => {
    const [a, b] = seqpacketPair();
    return {
      send: (d) => a.send(d),
      receive: (maxSize) => b.receive({ maxSize }),
      receiveMany: (max, maxSize) => b.receiveMany({ max, maxSize }),
      close() {
        a.close();
        b.close();
      },
    };
  }, 200_000);
});

Deno.test("the issue's case: seqpacket 10, 10, 70,000 bytes read with 100, 100, 70,000", async () => {
  const [a, b] = seqpacketPair();
  try {
    for (const n of [10, 10, 70_000]) await a.send(new Uint8Array(n));
    await b.receive({ maxSize: 100 });
    await b.receive({ maxSize: 100 });
    const m = await b.receive({ maxSize: 70_000 });
    assert.deepEqual([m?.data.length, m?.truncated], [70_000, false]);
  } finally {
    a.close();
    b.close();
  }
});

for (const backend of ["ffi", "builtin"] as const) {
  Deno.test(`Unix datagram, ${backend} backend: a long record after read-ahead is whole`, async () => {
    using dir = tempDir();
    let n = 0;
    await checkLongAfterShort(() => {
      const a = listenDatagram({ path: `${dir.path}/a${n}.sock`, backend });
      const b = listenDatagram({ path: `${dir.path}/b${n++}.sock`, backend });
      return datagrams(a, b);
    }, 200_000);
  });

  Deno.test(`UDP, ${backend} backend: a 65,507-byte datagram after read-ahead is whole`, async () => {
    await checkLongAfterShort(() => {
      const a = listenDatagram({ hostname: "127.0.0.1", port: 0, backend });
      const b = listenDatagram({ hostname: "127.0.0.1", port: 0, backend });
      return datagrams(a, b);
    }, 65_507);
  });
}

Deno.test("send() to an IPv6 host from an IPv4 socket: NotSupported on both backends", async () => {
  const errors: Record<string, unknown> = {};
  for (const backend of ["builtin", "ffi"] as const) {
    using sock = listenDatagram({ hostname: "127.0.0.1", port: 0, backend });
    const to = { transport: "udp", hostname: "::1", port: 9 } as const;
    errors[backend] = await sock.send(new Uint8Array(1), to).then(() => "sent", (e) => e);
  }
  for (const [backend, err] of Object.entries(errors)) {
    assert.ok(err instanceof Deno.errors.NotSupported, `${backend}: ${err}`);
    const { code, syscall, errno } = err as Error & {
      code: string;
      syscall: string;
      errno: number;
    };
    assert.deepEqual({ code, syscall, errno }, {
      code: "EAFNOSUPPORT",
      syscall: "send",
      errno: 97,
    });
    assert.match((err as Error).message, /^send "\[::1\]:9": address family not supported/);
  }
});
