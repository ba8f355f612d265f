/**
 * A small `tcpdump`: capture on one interface, optionally only one TCP/UDP
 * port (a BPF filter attached before the first frame), one line per packet,
 * stopping after a count or a time.
 *
 * ```sh
 * deno run --allow-ffi --allow-net examples/sniff.ts -i IFACE [-p PORT] [-c COUNT] [-t SECONDS]
 * ```
 *
 * - `-i`: the interface (default `lo`); `-p`: keep only TCP and UDP packets
 *   to or from this port; `-c`: stop after this many packets (default 10);
 *   `-t`: stop after this many seconds (default 10).
 *
 * Needs `CAP_NET_RAW` (root). Each line reads:
 * `TIME IFACE DIRECTION SRC-MAC > DST-MAC PROTOCOL SRC > DST LENGTH`.
 *
 * @module
 */

import { compileFilter, type LinkSocket, openPacket } from "@bsd/sockets/raw";
import { decodeIPv4Header } from "@bsd/sockets/icmp";
import type { LinkAddr } from "@bsd/sockets";

interface Options {
  iface: string;
  port?: number;
  count: number;
  seconds: number;
}

function parseArgs(args: string[]): Options {
  const o: Options = { iface: "lo", count: 10, seconds: 10 };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i], value = args[++i];
    if (value === undefined) throw new TypeError(`${arg} needs a value`);
    if (arg === "-i") o.iface = value;
    else if (arg === "-p" || arg === "-c" || arg === "-t") {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0) throw new TypeError(`${arg} needs a whole number`);
      if (arg === "-p") o.port = n;
      else if (arg === "-c") o.count = n;
      else o.seconds = n;
    } else throw new TypeError(`unknown option ${arg}`);
  }
  return o;
}

const PROTOCOLS: Record<number, string> = { 1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6" };

function mac(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(":");
}

function ipv6(bytes: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  return groups.join(":").replace(/(^|:)0(:0)+(:|$)/, "::");
}

/** What the frame carries, as `PROTOCOL SRC > DST`. */
function describe(frame: Uint8Array): string {
  if (frame.length < 14) return `short frame`;
  const view = new DataView(frame.buffer, frame.byteOffset, frame.length);
  const etherType = view.getUint16(12);
  const ports = (protocol: number, at: number): [string, string] =>
    (protocol === 6 || protocol === 17) && frame.length >= at + 4
      ? [`:${view.getUint16(at)}`, `:${view.getUint16(at + 2)}`]
      : ["", ""];
  if (etherType === 0x0800) {
    try {
      const ip = decodeIPv4Header(frame.subarray(14));
      const [sp, dp] = ports(ip.protocol, 14 + ip.headerLength);
      const name = PROTOCOLS[ip.protocol] ?? `proto ${ip.protocol}`;
      return `${name} ${ip.source}${sp} > ${ip.destination}${dp}`;
    } catch {
      return "IPv4 (malformed)";
    }
  }
  if (etherType === 0x86dd && frame.length >= 54) {
    const next = frame[20];
    const [sp, dp] = ports(next, 54);
    const name = PROTOCOLS[next] ?? `next header ${next}`;
    return `${name} ${ipv6(frame.subarray(22, 38))}${sp} > ${ipv6(frame.subarray(38, 54))}${dp}`;
  }
  if (etherType === 0x0806) return "ARP";
  return `ethertype 0x${etherType.toString(16).padStart(4, "0")}`;
}

function line(data: Uint8Array, from: LinkAddr): string {
  const time = new Date().toISOString().slice(11, 23);
  const dst = mac(data.subarray(0, 6)), src = mac(data.subarray(6, 12));
  return `${time} ${from.interface} ${from.packetType} ${src} > ${dst} ${
    describe(data)
  } ${data.length} B`;
}

async function capture(sock: LinkSocket, o: Options): Promise<number> {
  const signal = AbortSignal.timeout(o.seconds * 1000);
  let seen = 0;
  while (seen < o.count) {
    let message;
    try {
      message = await sock.receive({ signal });
    } catch (err) {
      if (signal.aborted) break;
      throw err;
    }
    if (message === null) break;
    seen++;
    console.log(line(message.data, message.from!));
  }
  return seen;
}

async function main(): Promise<void> {
  const o = parseArgs(Deno.args);
  const filter = o.port === undefined
    ? undefined
    : compileFilter({ port: o.port }, { link: "ethernet" });
  using sock = openPacket({ interface: o.iface, filter });
  console.error(
    `capturing on ${o.iface}${o.port === undefined ? "" : `, port ${o.port}`}: ` +
      `up to ${o.count} packets or ${o.seconds} s`,
  );
  const seen = await capture(sock, o);
  const { dropped } = sock.statistics();
  console.error(`${seen} packets captured, ${dropped} dropped by the kernel`);
}

if (import.meta.main) {
  try {
    await main();
  } catch (err) {
    console.error(`sniff: ${err instanceof Error ? err.message : err}`);
    Deno.exitCode = 2;
  }
}
