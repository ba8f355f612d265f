/**
 * A UDP echo server and client: the server sends every datagram back to
 * whoever sent it; the client connects to the server, writes each message
 * and prints the reply with its round-trip time.
 *
 * ```sh
 * deno run --allow-net --allow-ffi examples/udp_echo.ts server [--hostname H] [--port P]
 * deno run --allow-net --allow-ffi examples/udp_echo.ts client [--hostname H] [--port P] MESSAGE...
 * deno run --allow-net --allow-ffi examples/udp_echo.ts   # both in one process, on a free port
 * ```
 *
 * `--hostname` defaults to `127.0.0.1`, `--port` to 7007 (the demo picks a
 * free port). Add `--unstable-net` and the sockets run on Deno's built-in
 * instead; `--backend ffi` or `--backend builtin` forces one.
 *
 * @module
 */

import { type DatagramBackend, type DatagramSocket, listenDatagram } from "@bsd/sockets/datagram";
import type { NetAddr } from "@bsd/sockets";

interface Options {
  mode: "server" | "client" | "demo";
  hostname: string;
  port: number;
  backend?: DatagramBackend;
  messages: string[];
}

function parseArgs(args: string[]): Options {
  const o: Options = { mode: "demo", hostname: "127.0.0.1", port: 7007, messages: [] };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "server" || arg === "client") o.mode = arg;
    else if (arg === "--hostname") o.hostname = args[++i];
    else if (arg === "--port") o.port = Number(args[++i]);
    else if (arg === "--backend") o.backend = args[++i] as DatagramBackend;
    else if (arg.startsWith("--")) throw new TypeError(`udp_echo: unknown option ${arg}`);
    else o.messages.push(arg);
  }
  if (o.messages.length === 0) o.messages = ["hello", "datagram", "world"];
  return o;
}

/** Echoes until the socket closes. */
async function serve(sock: DatagramSocket<NetAddr>): Promise<void> {
  for await (const message of sock) {
    if (message.from === null) continue;
    await sock.send(message.data, message.from);
  }
}

/** Sends each message to `server` and prints the reply, waiting at most a second for each. */
async function ask(
  server: NetAddr,
  messages: string[],
  backend: DatagramBackend | undefined,
): Promise<void> {
  const hostname = server.hostname.includes(":") ? "::1" : "127.0.0.1";
  using sock = listenDatagram({ hostname, port: 0, backend });
  await sock.connect(server);
  console.log(`client ${sock.localAddr.hostname}:${sock.localAddr.port} (${sock.backend} backend)`);
  for (const text of messages) {
    const started = performance.now();
    await sock.write(new TextEncoder().encode(text));
    const reply = await sock.receive({ signal: AbortSignal.timeout(1000) });
    const ms = (performance.now() - started).toFixed(3);
    console.log(`${JSON.stringify(new TextDecoder().decode(reply!.data))} in ${ms} ms`);
  }
}

async function main(): Promise<void> {
  const o = parseArgs(Deno.args);
  if (o.mode === "client") {
    await ask({ transport: "udp", hostname: o.hostname, port: o.port }, o.messages, o.backend);
    return;
  }
  const port = o.mode === "demo" ? 0 : o.port;
  using server = listenDatagram({ hostname: o.hostname, port, backend: o.backend });
  const { hostname, port: bound } = server.localAddr;
  console.log(`echo server on ${hostname}:${bound} (${server.backend} backend)`);
  if (o.mode === "server") return await serve(server);
  const serving = serve(server);
  await ask(server.localAddr, o.messages, o.backend);
  server.close();
  await serving;
}

if (import.meta.main) await main();
