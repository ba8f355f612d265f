/**
 * Prints links as they change: up, down, carrier, new and deleted, one line
 * each, until a count or a time is reached. Like `ip monitor link`.
 *
 * ```sh
 * deno run --allow-ffi examples/watch_links.ts [-c COUNT] [-t SECONDS]
 * ```
 *
 * `-c`: stop after this many changes (default: no limit); `-t`: stop after
 * this many seconds (default 60). It prints `watching` once it listens.
 * Each line reads: `TIME new|delete IFINDEX IFNAME STATE <FLAGS>`.
 *
 * @module
 */

import { watchNetwork } from "@bsd/sockets/netlink";

function parseArgs(args: string[]): { count: number; seconds: number } {
  const o = { count: Infinity, seconds: 60 };
  for (let i = 0; i < args.length; i += 2) {
    const n = Number(args[i + 1]);
    if (!Number.isInteger(n) || n <= 0) throw new TypeError(`${args[i]} needs a positive number`);
    if (args[i] === "-c") o.count = n;
    else if (args[i] === "-t") o.seconds = n;
    else throw new TypeError(`unknown argument ${JSON.stringify(args[i])}`);
  }
  return o;
}

try {
  const { count, seconds } = parseArgs(Deno.args);
  using changes = watchNetwork({ types: ["link"], signal: AbortSignal.timeout(seconds * 1000) });
  console.log("watching");
  let seen = 0;
  for await (const c of changes) {
    if (c.type !== "link") continue;
    const l = c.link;
    const time = new Date().toISOString().slice(11, 23);
    console.log(
      `${time} ${c.change} ${l.ifindex} ${l.ifname} ${l.operstate} <${l.flags.join(",")}>`,
    );
    if (++seen >= count) break;
  }
} catch (err) {
  console.error(`watch_links.ts: ${err instanceof Error ? err.message : err}`);
  Deno.exit(1);
}
