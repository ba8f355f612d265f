/**
 * Stream sockets: what `@bsd/sockets`' `StreamConn` costs on top of the
 * `Deno.Conn` it wraps, over TCP loopback and Unix stream sockets.
 *
 * Both ends of each case run in this process and use the same variant (our
 * `listenStream`/`connectStream` on the built-in backend, the same on the
 * FFI backend, waiting on Deno's own reactor through Node compatibility's
 * `Pipe` or, as where that is missing, on the engine's epoll wait, or
 * Deno's `Deno.listen`/`Deno.connect`), so the wrapper is
 * paid twice per exchange. The variants take turns block
 * by block, each block on a fresh connection, so drift on a noisy machine
 * hits both alike; each value is the median over the blocks.
 *
 * - echo round trip: 64 B out, the same 64 B back, one outstanding; 40
 *   blocks of 1,000 round trips per variant (40,000 in all), in µs.
 * - bulk: 512 MiB per variant in 64 KiB writes, as 32 blocks of 16 MiB,
 *   each timed until the receiver has counted every byte and acknowledged,
 *   in MiB/s.
 *
 * Usage: `deno run --unstable-net --allow-all bench/stream_bench.ts [--json]`
 * (or `deno task bench stream`). Without `--json` it prints a table with the
 * ratio ours/built-in of the time per operation (goal: below 1.03), and the
 * same ratio for the FFI backend's two waits (goal: round trip at most 1,
 * bulk at most 1.11, i.e. ≥ 90% of the built-in's rate). `--smoke` runs 2 short blocks per case, to
 * see that it works, not to measure.
 *
 * @module
 */

import { BUILTIN, emit, median, OURS, type Row } from "./_harness.ts";
import { connectStream, listenStream } from "../stream.ts";
import { setReactorPipes } from "../ffi/reactor_pipe.ts";

const SMOKE = Deno.args.includes("--smoke");
const ECHO_SIZE = 64;
const ECHO_BLOCKS = SMOKE ? 2 : 40;
const ECHO_BLOCK = SMOKE ? 100 : 1_000;
const BULK_BLOCKS = SMOKE ? 2 : 32;
const BULK_BLOCK = SMOKE ? 1 << 20 : 16 << 20;
const BULK_CHUNK = 64 << 10;

/** Our StreamConn on the FFI backend (`backend: "ffi"`), waiting on Deno's reactor. */
const FFI = `${OURS} (ffi)`;
/** The same with the fallback wait, the engine's epoll_wait on Deno's blocking pool. */
const FFI_POOL = `${OURS} (ffi, pool wait)`;

type Transport = "tcp" | "unix";
type Variant = typeof OURS | typeof FFI | typeof FFI_POOL | typeof BUILTIN;
const VARIANTS: Variant[] = [OURS, FFI, FFI_POOL, BUILTIN];

/** The part of a connection the cases use; both variants provide it. */
interface Conn {
  read(p: Uint8Array): Promise<number | null>;
  close(): void;
}

/** A connected pair and a way to write all of a buffer on either end. */
interface Pair {
  client: Conn;
  server: Conn;
  writeAll(conn: Conn, p: Uint8Array): Promise<void>;
  close(): void;
}

async function openPair(variant: Variant, transport: Transport, dir: string): Promise<Pair> {
  const path = `${dir}/bench-${variant === BUILTIN ? "builtin" : "ours"}.sock`;
  if (variant !== BUILTIN) {
    const backend = variant === OURS ? "builtin" : "ffi";
    // Sockets choose their wait when they first wait: these are fresh.
    setReactorPipes(variant !== FFI_POOL);
    const listener = transport === "tcp"
      ? listenStream({ hostname: "127.0.0.1", port: 0, backend })
      : listenStream({ path, backend });
    const accepted = listener.accept();
    const client = await connectStream(
      listener.addr.transport === "tcp" ? { port: listener.addr.port, backend } : { path, backend },
    );
    const server = await accepted;
    return {
      client,
      server,
      // StreamConn.write never stops part way.
      writeAll: async (conn, p) => void await (conn as typeof client).write(p),
      close: () => {
        client.close();
        server.close();
        listener.close();
      },
    };
  }
  const listener = transport === "tcp"
    ? Deno.listen({ hostname: "127.0.0.1", port: 0 })
    : Deno.listen({ transport: "unix", path });
  const accepted = listener.accept();
  const client = transport === "tcp"
    ? await Deno.connect({ port: (listener.addr as Deno.NetAddr).port })
    : await Deno.connect({ transport: "unix", path });
  const server = await accepted;
  return {
    client,
    server,
    writeAll: async (conn, p) => {
      const c = conn as Deno.Conn;
      for (let done = 0; done < p.length;) done += await c.write(p.subarray(done));
    },
    close: () => {
      client.close();
      server.close();
      listener.close();
    },
  };
}

async function readExactly(conn: Conn, buf: Uint8Array): Promise<void> {
  for (let got = 0; got < buf.length;) {
    const n = await conn.read(buf.subarray(got));
    if (n === null) throw new Error(`end of stream after ${got} of ${buf.length} B`);
    got += n;
  }
}

/** Mean µs per 64 B round trip over `n` round trips. */
async function echoRound(pair: Pair, n: number): Promise<number> {
  const server = (async () => {
    const buf = new Uint8Array(ECHO_SIZE);
    for (let i = 0; i < n; i++) {
      await readExactly(pair.server, buf);
      await pair.writeAll(pair.server, buf);
    }
  })();
  const out = new Uint8Array(ECHO_SIZE).fill(0x5a);
  const back = new Uint8Array(ECHO_SIZE);
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    await pair.writeAll(pair.client, out);
    await readExactly(pair.client, back);
  }
  const elapsed = performance.now() - start;
  await server;
  if (back[ECHO_SIZE - 1] !== 0x5a) throw new Error("the echo came back wrong");
  return (elapsed * 1000) / n;
}

/** MiB/s for `total` bytes in `chunk`-byte writes, until the receiver acknowledges. */
async function bulkRound(pair: Pair, total: number, chunk: number): Promise<number> {
  const receiver = (async () => {
    const buf = new Uint8Array(chunk);
    let got = 0;
    while (got < total) {
      const n = await pair.server.read(buf);
      if (n === null) throw new Error(`end of stream after ${got} of ${total} B`);
      got += n;
    }
    await pair.writeAll(pair.server, new Uint8Array([1]));
  })();
  const data = new Uint8Array(chunk).fill(0xa5);
  const ack = new Uint8Array(1);
  const start = performance.now();
  for (let sent = 0; sent < total; sent += chunk) await pair.writeAll(pair.client, data);
  await readExactly(pair.client, ack);
  const elapsed = performance.now() - start;
  await receiver;
  return total / (1 << 20) / (elapsed / 1000);
}

interface Case {
  transport: Transport;
  name: string;
  unit: string;
  better: "lower" | "higher";
  blocks: number;
  run(pair: Pair): Promise<number>;
}

const CASES: Case[] = (["tcp", "unix"] as const).flatMap((transport): Case[] => {
  const label = transport === "tcp" ? "TCP" : "Unix";
  return [
    {
      transport,
      name: `${label} echo round trip, ${ECHO_SIZE} B`,
      unit: "µs",
      better: "lower",
      blocks: ECHO_BLOCKS,
      run: (pair) => echoRound(pair, ECHO_BLOCK),
    },
    {
      transport,
      name: `${label} bulk, ${(BULK_BLOCKS * BULK_BLOCK) >> 20} MiB in ${
        BULK_CHUNK >> 10
      } KiB writes`,
      unit: "MiB/s",
      better: "higher",
      blocks: BULK_BLOCKS,
      run: (pair) => bulkRound(pair, BULK_BLOCK, BULK_CHUNK),
    },
  ];
});

/** The time ratio ours/built-in: above 1 means ours takes longer per operation. */
function timeRatio(row: Row, variant: Variant = OURS): number {
  const ours = row.values[variant]!;
  const builtin = row.values[BUILTIN]!;
  return row.better === "lower" ? ours / builtin : builtin / ours;
}

async function measure(c: Case, dir: string): Promise<Row> {
  const samples: Record<Variant, number[]> = {
    [OURS]: [],
    [FFI]: [],
    [FFI_POOL]: [],
    [BUILTIN]: [],
  };
  // Block -1 warms every variant up and is not counted.
  for (let block = -1; block < c.blocks; block++) {
    // Rotate which variant goes first, so none always follows another.
    const first = (block + 1) % VARIANTS.length;
    const order = [...VARIANTS.slice(first), ...VARIANTS.slice(0, first)];
    for (const variant of order) {
      // A fresh connection per block: a TCP connection keeps the buffer sizes
      // the kernel tuned for it, which alone moved bulk results by 15% when
      // each variant kept one connection for the whole case.
      const pair = await openPair(variant, c.transport, dir);
      try {
        const value = await c.run(pair);
        if (block >= 0) samples[variant].push(value);
      } finally {
        pair.close();
      }
    }
  }
  const row: Row = {
    group: "stream",
    case: c.name,
    unit: c.unit,
    better: c.better,
    values: {
      [OURS]: median(samples[OURS]),
      [FFI]: median(samples[FFI]),
      [FFI_POOL]: median(samples[FFI_POOL]),
      [BUILTIN]: median(samples[BUILTIN]),
    },
  };
  row.note = `time ratio ${timeRatio(row).toFixed(3)}, ffi ${timeRatio(row, FFI).toFixed(3)}, ` +
    `ffi pool wait ${timeRatio(row, FFI_POOL).toFixed(3)}, median of ${c.blocks} blocks`;
  return row;
}

function printTable(rows: Row[]): void {
  const header = [
    "case",
    OURS,
    FFI,
    FFI_POOL,
    BUILTIN,
    "unit",
    "ours/built-in (time)",
    "ffi/built-in",
    "ffi pool/built-in",
  ];
  const fmt = (v: number): string => v >= 100 ? v.toFixed(0) : v.toFixed(2);
  const body = rows.map((r) => [
    r.case,
    fmt(r.values[OURS]!),
    fmt(r.values[FFI]!),
    fmt(r.values[FFI_POOL]!),
    fmt(r.values[BUILTIN]!),
    r.unit,
    timeRatio(r).toFixed(3),
    timeRatio(r, FFI).toFixed(3),
    timeRatio(r, FFI_POOL).toFixed(3),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]): string =>
    cells.map((cell, i) => i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])).join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const b of body) console.log(line(b));
  console.log("\nmedians over alternating blocks; a ratio above 1 means ours is slower");
}

if (import.meta.main) {
  const json = Deno.args.includes("--json");
  const dir = Deno.makeTempDirSync({ prefix: "bsd-stream-bench-" });
  try {
    const rows: Row[] = [];
    for (const c of CASES) {
      const row = await measure(c, dir);
      rows.push(row);
      if (json) emit(row, true);
    }
    if (!json) printTable(rows);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}
