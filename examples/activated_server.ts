/**
 * A socket-activated service: it serves whatever sockets systemd hands it
 * (TCP and Unix listeners, datagram and seqpacket sockets, an accepted
 * connection), or, started by hand, a TCP and a Unix listener of its own; it
 * tells the manager when it is ready and when it stops. Every socket answers
 * each message with `NAME: MESSAGE`, NAME being the socket's
 * `FileDescriptorName=`.
 *
 * ```sh
 * # without systemd as PID 1: the tool holds the sockets and starts the
 * # service on the first connection, as systemd would
 * systemd-socket-activate -l 127.0.0.1:8080 -l /tmp/activated.sock --fdname=web:local \
 *   -E NOTIFY_SOCKET deno run --allow-ffi --allow-env --allow-read --allow-write \
 *   --allow-net examples/activated_server.ts
 * # by hand, listening itself
 * deno run --allow-ffi --allow-env --allow-read --allow-write --allow-net \
 *   examples/activated_server.ts --port 8080 --path /tmp/activated.sock
 * ```
 *
 * It stops on SIGTERM (what `systemctl stop` sends), saying `STOPPING=1`
 * first. Linux only.
 *
 * @module
 */

import {
  DatagramSocket,
  listenStream,
  SeqpacketConn,
  SeqpacketListener,
  StreamConn,
  StreamListener,
} from "@bsd/sockets";
import { type ListenedFd, listenFds, notify, notifyStopping } from "@bsd/sockets/systemd";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `NAME: message` for `data`. */
function answer(name: string, data: Uint8Array): Uint8Array {
  return encoder.encode(`${name}: ${decoder.decode(data)}`);
}

/** Answers every chunk a connection sends until it closes. */
async function serveStream(name: string, conn: StreamConn): Promise<void> {
  using _conn = conn;
  const buf = new Uint8Array(4096);
  for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
    await conn.write(answer(name, buf.subarray(0, n)));
  }
}

/** Answers every record a seqpacket connection sends until it closes. */
async function serveRecords(name: string, conn: SeqpacketConn): Promise<void> {
  using _conn = conn;
  for await (const m of conn) await conn.send(answer(name, m.data));
}

/** Serves one socket until it closes: each connection of a listener on its own. */
async function serve({ name, socket }: Pick<ListenedFd, "name" | "socket">): Promise<void> {
  if (socket instanceof StreamListener) {
    for await (const conn of socket) serveStream(name, conn).catch(report);
  } else if (socket instanceof SeqpacketListener) {
    for await (const conn of socket) serveRecords(name, conn).catch(report);
  } else if (socket instanceof SeqpacketConn) {
    await serveRecords(name, socket);
  } else if (socket instanceof DatagramSocket) {
    // A sender may be gone before its answer: that one reply fails, the socket serves on.
    for await (const m of socket) {
      if (m.from) await socket.send(answer(name, m.data), m.from).catch(report);
    }
  } else if (socket instanceof StreamConn) {
    await serveStream(name, socket);
  } else {
    console.error(`${name}: a ${socket.constructor.name} has nothing to serve`);
  }
}

function report(err: unknown): void {
  console.error(`activated_server: ${err instanceof Error ? err.message : err}`);
}

/** Listeners of its own when no manager passed any: `--port N` and `--path P`. */
function ownSockets(args: string[]): Pick<ListenedFd, "name" | "socket">[] {
  const value = (flag: string) => {
    const i = args.indexOf(flag);
    return i < 0 ? undefined : args[i + 1];
  };
  const port = Number(value("--port") ?? 8080);
  const path = value("--path");
  const own: Pick<ListenedFd, "name" | "socket">[] = [
    { name: "web", socket: listenStream({ hostname: "127.0.0.1", port }) },
  ];
  if (path) own.push({ name: "local", socket: listenStream({ path }) });
  return own;
}

async function main(): Promise<void> {
  const passed = listenFds();
  const sockets = passed.length > 0 ? passed : ownSockets(Deno.args);
  // A signal listener's rejection would be unhandled and end the process with
  // its sockets open: the manager being gone must not stop the shutdown.
  const stop = () => {
    notifyStopping("closing its sockets").catch(report).finally(() => {
      for (const { socket } of sockets) socket.close();
    });
  };
  Deno.addSignalListener("SIGTERM", stop);
  const serving = Promise.all(sockets.map((s) => serve(s).catch(report)));
  for (const { name, socket } of sockets) {
    console.log(`serving ${name} (${socket.constructor.name})`);
  }
  const from = passed.length > 0 ? "from the manager" : "of its own";
  await notify({ READY: 1, STATUS: `serving ${sockets.length} sockets ${from}` });
  await serving;
  Deno.removeSignalListener("SIGTERM", stop);
}

if (import.meta.main) await main();
