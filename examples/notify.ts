/**
 * `systemd-notify` in a page of TypeScript: sends service status
 * (`READY=1`, `STATUS=…`) as one Unix datagram to the socket named by
 * `$NOTIFY_SOCKET`, from a socket with no name of its own; and a tiny
 * receiver, so it can be tried without systemd.
 *
 * ```sh
 * # the receiver: prints each notification and who sent it
 * deno run --allow-ffi --allow-read --allow-write --allow-net examples/notify.ts \
 *   --listen /tmp/notify.sock
 * # the sender, from another shell
 * NOTIFY_SOCKET=/tmp/notify.sock deno run --allow-ffi --allow-env --allow-read --allow-write \
 *   --allow-net examples/notify.ts READY=1 STATUS="Serving"
 * # both in one process
 * deno run --allow-ffi --allow-env --allow-read --allow-write --allow-net examples/notify.ts --demo
 * ```
 *
 * As with systemd, a `$NOTIFY_SOCKET` starting with `@` names a socket in the
 * Linux abstract namespace. Without assignments the sender sends `READY=1`.
 *
 * @module
 */

import { listenDatagram } from "@bsd/sockets/datagram";
import type { UnixAddr } from "@bsd/sockets";

/** The socket address `$NOTIFY_SOCKET` names: a path, or `@name` for an abstract one. */
function notifySocket(value: string): UnixAddr {
  return { transport: "unixgram", path: value.startsWith("@") ? `\0${value.slice(1)}` : value };
}

/**
 * Sends `assignments` (newline-separated, as sd_notify does) to `$NOTIFY_SOCKET`.
 * Returns false, as sd_notify does, when the variable is not set.
 */
async function notify(assignments: string[]): Promise<boolean> {
  const target = Deno.env.get("NOTIFY_SOCKET");
  if (!target) return false;
  // path "": the kernel gives the socket an abstract name of its own.
  using sock = listenDatagram({ path: "" });
  await sock.send(new TextEncoder().encode(assignments.join("\n")), notifySocket(target));
  return true;
}

/** Prints each notification that arrives at `path` until `count` arrived (or forever). */
async function listen(path: string, count = Infinity, ready?: () => void): Promise<void> {
  using sock = listenDatagram({ path });
  console.log(`listening on ${JSON.stringify(sock.localAddr.path)} (${sock.backend} backend)`);
  ready?.();
  let seen = 0;
  for await (const message of sock) {
    const sender = message.from === null ? "an unnamed socket" : JSON.stringify(message.from.path);
    const text = new TextDecoder().decode(message.data).split("\n").join(", ");
    console.log(`from ${sender}: ${text}${message.truncated ? " (truncated)" : ""}`);
    if (++seen >= count) return;
  }
}

async function main(): Promise<void> {
  const args = Deno.args;
  if (args[0] === "--listen") return await listen(args[1] ?? "/tmp/notify.sock");
  if (args[0] === "--demo") {
    const dir = Deno.makeTempDirSync({ prefix: "notify-" });
    const path = `${dir}/notify.sock`;
    let listening!: () => void;
    const ready = new Promise<void>((resolve) => listening = resolve);
    const receiving = listen(path, 2, listening);
    await ready;
    Deno.env.set("NOTIFY_SOCKET", path);
    await notify(["READY=1"]);
    await notify(["STATUS=Serving 3 clients", "MAINPID=" + Deno.pid]);
    await receiving;
    Deno.removeSync(dir, { recursive: true });
    return;
  }
  const assignments = args.length > 0 ? args : ["READY=1"];
  if (!await notify(assignments)) {
    console.error("notify: NOTIFY_SOCKET is not set; nothing to notify");
    Deno.exit(1);
  }
}

if (import.meta.main) await main();
