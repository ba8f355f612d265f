/**
 * `ping` in a page of TypeScript: ICMP echo over a raw socket, or over an
 * unprivileged ping socket when `CAP_NET_RAW` is missing, with the round-trip
 * summary `ping` prints.
 *
 * ```sh
 * deno run --allow-ffi --allow-net examples/ping.ts \
 *   [-c COUNT] [-i MS] [-s BYTES] [-W MS] [--unprivileged] [HOST]
 * ```
 *
 * - `HOST`: an IPv4 or IPv6 address, default `127.0.0.1`.
 * - `-c`: how many requests (default 4); `-i`: milliseconds between them
 *   (default 1000); `-s`: data bytes per request (default 56); `-W`: how long
 *   to wait for each reply (default 1000 ms).
 * - `--unprivileged`: use a ping socket even with `CAP_NET_RAW`. Without the
 *   capability the example falls back to one by itself; the kernel allows it
 *   when the sysctl `net.ipv4.ping_group_range` admits the process's group.
 *
 * @module
 */

import { openRaw, type RawSocket } from "@bsd/sockets/raw";
import { decodeEcho, decodeIPv4Header, encodeEcho } from "@bsd/sockets/icmp";

interface Options {
  host: string;
  count: number;
  interval: number;
  size: number;
  wait: number;
  unprivileged: boolean;
}

function parseArgs(args: string[]): Options {
  const o: Options = {
    host: "127.0.0.1",
    count: 4,
    interval: 1000,
    size: 56,
    wait: 1000,
    unprivileged: false,
  };
  const numbers: Record<string, "count" | "interval" | "size" | "wait"> = {
    "-c": "count",
    "-i": "interval",
    "-s": "size",
    "-W": "wait",
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--unprivileged") o.unprivileged = true;
    else if (arg in numbers) {
      const value = Number(args[++i]);
      if (!Number.isInteger(value) || value < 0) throw new TypeError(`${arg} needs a whole number`);
      o[numbers[arg]] = value;
    } else if (arg.startsWith("-")) throw new TypeError(`unknown option ${arg}`);
    else o.host = arg;
  }
  if (o.count < 1) throw new RangeError("-c must be at least 1");
  return o;
}

function open(family: "ipv4" | "ipv6", unprivileged: boolean): RawSocket {
  if (!unprivileged) {
    try {
      return openRaw({ family, protocol: "icmp", receiveInfo: ["ttl"] });
    } catch (err) {
      if (!(err instanceof Deno.errors.PermissionDenied)) throw err;
      console.error("no CAP_NET_RAW: using an unprivileged ping socket");
    }
  }
  return openRaw({ family, protocol: "icmp", unprivileged: true, receiveInfo: ["ttl"] });
}

/** Waits for the reply to `sequence`; resolves its size and TTL, or undefined on timeout. */
async function awaitReply(
  sock: RawSocket,
  family: "ipv4" | "ipv6",
  id: number,
  sequence: number,
  wait: number,
): Promise<{ bytes: number; ttl: number | null } | undefined> {
  const signal = AbortSignal.timeout(wait);
  // A raw socket sees its own requests and other programs' echoes: match on
  // type, identifier and sequence. A ping socket sees only its replies, the
  // identifier rewritten to the socket's own.
  const headerIncluded = family === "ipv4" && !sock.unprivileged;
  const expectedId = sock.echoId ?? id;
  for (;;) {
    let message;
    try {
      message = await sock.receive({ signal });
    } catch (err) {
      if (signal.aborted) return undefined;
      throw err;
    }
    if (message === null) return undefined;
    let icmp = message.data;
    // The kernel reports the TTL (hop limit) of every packet: the only way to
    // know it where no IP header comes with the packet (ping sockets, IPv6).
    const ttl = message.ttl ?? message.hopLimit ?? null;
    if (headerIncluded) {
      const ip = decodeIPv4Header(icmp);
      if (ip.protocol !== 1) continue;
      icmp = ip.payload;
    }
    const echo = decodeEcho(icmp, family);
    if (echo?.type === "reply" && echo.id === expectedId && echo.sequence === sequence) {
      return { bytes: icmp.length, ttl };
    }
  }
}

async function main(): Promise<void> {
  const o = parseArgs(Deno.args);
  const family = o.host.includes(":") ? "ipv6" : "ipv4";
  using sock = open(family, o.unprivileged);
  const id = (Deno.pid ^ 0x5a5a) & 0xffff;
  const data = new Uint8Array(o.size).map((_, i) => i & 0xff);
  const to = { transport: "ip" as const, hostname: o.host };
  console.log(`PING ${o.host}: ${o.size} data bytes${sock.unprivileged ? " (ping socket)" : ""}`);

  const rtts: number[] = [];
  const start = performance.now();
  for (let sequence = 1; sequence <= o.count; sequence++) {
    const sent = performance.now();
    await sock.send(encodeEcho({ family, id, sequence, data }), to);
    const reply = await awaitReply(sock, family, id, sequence, o.wait);
    const rtt = performance.now() - sent;
    if (reply) {
      rtts.push(rtt);
      const ttl = reply.ttl === null ? "" : ` ttl=${reply.ttl}`;
      console.log(
        `${reply.bytes} bytes from ${o.host}: icmp_seq=${sequence}${ttl} time=${rtt.toFixed(3)} ms`,
      );
    } else {
      console.log(`no reply for icmp_seq=${sequence} within ${o.wait} ms`);
    }
    if (sequence < o.count) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, o.interval - rtt)));
    }
  }
  const elapsed = performance.now() - start;

  const loss = ((o.count - rtts.length) / o.count) * 100;
  console.log(`\n--- ${o.host} ping statistics ---`);
  console.log(
    `${o.count} packets transmitted, ${rtts.length} received, ${loss.toFixed(0)}% packet loss, ` +
      `time ${elapsed.toFixed(0)}ms`,
  );
  if (rtts.length > 0) {
    const min = Math.min(...rtts), max = Math.max(...rtts);
    const avg = rtts.reduce((a, b) => a + b, 0) / rtts.length;
    const mdev = Math.sqrt(rtts.reduce((a, b) => a + (b - avg) ** 2, 0) / rtts.length);
    console.log(
      `rtt min/avg/max/mdev = ${[min, avg, max, mdev].map((v) => v.toFixed(3)).join("/")} ms`,
    );
  }
  if (rtts.length === 0) Deno.exitCode = 1;
}

if (import.meta.main) {
  try {
    await main();
  } catch (err) {
    console.error(`ping: ${err instanceof Error ? err.message : err}`);
    Deno.exitCode = 2;
  }
}
