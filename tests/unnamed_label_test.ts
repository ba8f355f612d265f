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

/** The three errors of one pair's end: a bad buffer, the peer gone, this end closed. */
async function assertUnnamed(
  [a, b]: [Disposable & { close(): void }, { close(): void }],
  call: string,
  send: (p: Uint8Array) => Promise<unknown>,
  PeerGone: ErrorClass,
  peerGone: string,
): Promise<void> {
  try {
    await assertRejects(
      send(NOT_A_BUFFER),
      TypeError,
      `${call} (unnamed): buffer must be a Uint8Array, got string`,
    );
    b.close();
    await assertRejects(send(Uint8Array.of(1)), PeerGone, `${call} (unnamed): ${peerGone}`);
    a.close();
    await assertRejects(
      send(Uint8Array.of(1)),
      Deno.errors.BadResource,
      `${call} (unnamed): socket is closed`,
    );
  } finally {
    a.close();
    b.close();
  }
}

Deno.test("seqpacketPair() ends name themselves (unnamed) in errors", async () => {
  const pair = seqpacketPair();
  await assertUnnamed(pair, "send", (p) => pair[0].send(p), Deno.errors.BrokenPipe, "broken pipe");
});

Deno.test("datagramPair() ends name themselves (unnamed) in errors", async () => {
  const pair = datagramPair();
  await assertUnnamed(
    pair,
    "send",
    (p) => pair[0].send(p),
    Deno.errors.ConnectionRefused,
    "connection refused",
  );
});

Deno.test("streamPair() ends name themselves (unnamed) in errors", async () => {
  const pair = streamPair();
  await assertUnnamed(
    pair,
    "write",
    (p) => pair[0].write(p),
    Deno.errors.BrokenPipe,
    "broken pipe",
  );
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

Deno.test("datagramPair() ends name themselves (unnamed) in read errors too", async () => {
  const [a, b] = datagramPair();
  try {
    await assertRejects(
      a.read("not a buffer" as unknown as Uint8Array),
      TypeError,
      "read (unnamed): buffer must be a Uint8Array, got string",
    );
  } finally {
    a.close();
    b.close();
  }
});
