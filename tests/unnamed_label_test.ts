// How errors name a Unix socket without a name: every end of every pair, and
// such an end adopted through fromFd, says `(unnamed)` where a named socket
// quotes its path, never `""` and never nothing.

import assert from "node:assert/strict";
import { describeAddress } from "../ffi/errors.ts";
import { datagramPair } from "../datagram.ts";
import { fromFd } from "../fd.ts";
import { closeFds, seqpacketPair } from "../seqpacket.ts";
import { type StreamConn, streamPair } from "../stream.ts";
import { deadline } from "./_helpers.ts";

type ErrorClass = new (...args: never[]) => Error;

async function assertRejects(
  promise: Promise<unknown>,
  Class: ErrorClass,
  message: string,
): Promise<void> {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof Error, `not an Error: ${String(err)}`);
    assert.equal(err.constructor, Class, `wrong class for: ${err.message}`);
    assert.equal(err.message, message);
    return true;
  });
}

const NOT_A_BUFFER = "bytes" as unknown as Uint8Array;

Deno.test("describeAddress() names an unnamed Unix socket (unnamed), unquoted", () => {
  assert.equal(describeAddress({ path: "" }), "(unnamed)");
  assert.equal(describeAddress({ path: "/run/x.sock" }), '"/run/x.sock"');
  assert.equal(describeAddress({ path: "\0name" }), '"\\u0000name"');
  // A string is a label already chosen by the caller: quoted as it is.
  assert.equal(describeAddress(""), '""');
});

Deno.test("seqpacketPair() ends name themselves (unnamed) in errors", async () => {
  const [a, b] = seqpacketPair();
  try {
    await assertRejects(
      a.send(NOT_A_BUFFER),
      TypeError,
      "send (unnamed): buffer must be a Uint8Array, got string",
    );
    b.close();
    await assertRejects(
      a.send(Uint8Array.of(1)),
      Deno.errors.BrokenPipe,
      "send (unnamed): broken pipe",
    );
    a.close();
    await assertRejects(
      a.send(Uint8Array.of(1)),
      Deno.errors.BadResource,
      "send (unnamed): socket is closed",
    );
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("datagramPair() ends name themselves (unnamed) in errors", async () => {
  const [a, b] = datagramPair();
  try {
    await assertRejects(
      a.send(NOT_A_BUFFER),
      TypeError,
      "send (unnamed): buffer must be a Uint8Array, got string",
    );
    b.close();
    await assertRejects(
      a.send(Uint8Array.of(1)),
      Deno.errors.ConnectionRefused,
      "send (unnamed): connection refused",
    );
    a.close();
    await assertRejects(
      a.send(Uint8Array.of(1)),
      Deno.errors.BadResource,
      "send (unnamed): socket is closed",
    );
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("streamPair() ends name themselves (unnamed) in errors", async () => {
  const [a, b] = streamPair();
  try {
    await assertRejects(
      a.write(NOT_A_BUFFER),
      TypeError,
      "write (unnamed): buffer must be a Uint8Array, got string",
    );
    b.close();
    await assertRejects(
      a.write(Uint8Array.of(1)),
      Deno.errors.BrokenPipe,
      "write (unnamed): broken pipe",
    );
    a.close();
    await assertRejects(
      a.write(Uint8Array.of(1)),
      Deno.errors.BadResource,
      "write (unnamed): socket is closed",
    );
  } finally {
    a.close();
    b.close();
  }
});

/**
 * A copy of `fd` (passed over a seqpacket pair, as another process would
 * pass it): a descriptor no socket of this module owns, for fromFd.
 */
async function copyOf(fd: number): Promise<number> {
  const [tx, rx] = seqpacketPair();
  try {
    await tx.send(Uint8Array.of(0), { fds: [fd] });
    const m = await deadline(rx.receive(), 5000, "the passed descriptor");
    assert.equal(m?.fds?.length, 1);
    return m!.fds![0];
  } finally {
    tx.close();
    rx.close();
  }
}

Deno.test("fromFd() of an unnamed stream or seqpacket end names it (unnamed)", async () => {
  const [a, b] = streamPair();
  const [c, d] = seqpacketPair();
  const copies: number[] = [];
  try {
    copies.push(await copyOf(a.fd!), await copyOf(c.fd!));
    const stream = fromFd(copies[0]) as StreamConn;
    const seqpacket = fromFd(copies[1]) as ReturnType<typeof seqpacketPair>[0];
    copies.length = 0;
    try {
      for (const end of [a, b, c, d]) end.close();
      await assertRejects(
        stream.write(Uint8Array.of(1)),
        Deno.errors.BrokenPipe,
        "write (unnamed): broken pipe",
      );
      await assertRejects(
        seqpacket.send(Uint8Array.of(1)),
        Deno.errors.BrokenPipe,
        "send (unnamed): broken pipe",
      );
    } finally {
      stream.close();
      seqpacket.close();
    }
  } finally {
    closeFds(copies);
    for (const end of [a, b, c, d]) end.close();
  }
});
