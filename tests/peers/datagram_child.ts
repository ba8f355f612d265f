// A second Deno process for tests/datagram_test.ts: what must be checked
// under other flags (no --unstable-net, fewer permissions), in another
// network namespace, or by whether the process ends on its own.
// Every mode prints one JSON line: {"ok": …} or {"error": name, "message": …}.
//
//   default-backend         which backend listenDatagram() picks, and a round trip on it
//   ask-builtin             listenDatagram({ backend: "builtin" })
//   listen-udp HOST BACKEND listenDatagram on HOST:0
//   send-udp HOST PORT      from 127.0.0.1:0 on the FFI backend, send to HOST:PORT
//   listen-unix PATH        listenDatagram on PATH, FFI backend
//   auto-unix PATH          which backend a Unix socket on PATH gets, and a datagram to itself
//   unref BACKEND           a pending receive on an unref'd socket; the process must end
//   abort-exit BACKEND      a receive aborted while in flight; the process must end
//   multicast BACKEND       join, receive, leave, not receive (sentinel) on lo

import { listenDatagram } from "../../datagram.ts";
import type { DatagramBackend } from "../../datagram.ts";
import { deadline } from "../_helpers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function report(value: unknown): void {
  console.log(JSON.stringify(value));
}

async function outcome(fn: () => unknown): Promise<void> {
  try {
    report({ ok: await fn() });
  } catch (err) {
    const e = err as Error;
    report({ error: e.name, message: e.message });
  }
}

const [mode, ...args] = Deno.args;
switch (mode) {
  case "default-backend":
    await outcome(async () => {
      using a = listenDatagram({ hostname: "127.0.0.1", port: 0 });
      using b = listenDatagram({ hostname: "127.0.0.1", port: 0 });
      await a.send(enc.encode("over ffi"), b.localAddr);
      const m = await deadline(b.receive(), 5000, "a datagram");
      return { backend: a.backend, data: dec.decode(m!.data), fromPort: m!.from?.port };
    });
    break;
  case "ask-builtin":
    await outcome(() => listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "builtin" }));
    break;
  case "listen-udp":
    await outcome(() => {
      using s = listenDatagram({
        hostname: args[0],
        port: 0,
        backend: args[1] as DatagramBackend,
      });
      return s.backend;
    });
    break;
  case "send-udp":
    await outcome(async () => {
      using s = listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
      return await s.send(new Uint8Array(1), {
        transport: "udp",
        hostname: args[0],
        port: Number(args[1]),
      });
    });
    break;
  case "listen-unix":
    await outcome(() => {
      using s = listenDatagram({ path: args[0], backend: "ffi" });
      return s.localAddr.path;
    });
    break;
  case "auto-unix":
    await outcome(async () => {
      using s = listenDatagram({ path: args[0] });
      await s.send(enc.encode("unix"), s.localAddr);
      const m = await deadline(s.receive(), 5000, "a datagram");
      return { backend: s.backend, data: dec.decode(m!.data) };
    });
    break;
  case "unref": {
    const s = listenDatagram({
      hostname: "127.0.0.1",
      port: 0,
      backend: args[0] as DatagramBackend,
    });
    s.unref();
    s.receive().then(() => report({ ok: "received" }));
    report({ ok: "waiting" });
    break;
  }
  case "abort-exit": {
    // Never closed: the receive Deno still runs for it must not hold the process.
    const s = listenDatagram({
      hostname: "127.0.0.1",
      port: 0,
      backend: args[0] as DatagramBackend,
    });
    const controller = new AbortController();
    const receiving = s.receive({ signal: controller.signal }).catch((err) => err.message);
    controller.abort(new Error("aborted"));
    report({ ok: await receiving });
    break;
  }
  case "multicast":
    await outcome(() => multicast(args[0] as DatagramBackend));
    break;
  default:
    report({ error: "TypeError", message: `unknown mode ${mode}` });
}

/**
 * A socket joined to a group on lo receives what is sent to it; once it left,
 * a datagram to the group does not arrive, shown by a unicast sentinel sent
 * after it arriving first.
 */
async function multicast(backend: DatagramBackend): Promise<unknown> {
  const group = "239.255.77.77";
  using receiver = listenDatagram({ hostname: "0.0.0.0", port: 0, reuseAddress: true, backend });
  // Bound to 127.0.0.1, the sender's multicast leaves through lo.
  using sender = listenDatagram({ hostname: "127.0.0.1", port: 0, backend });
  const port = receiver.localAddr.port;
  const toGroup = { transport: "udp" as const, hostname: group, port };
  await receiver.joinMulticast(group, { interface: "lo" });
  await sender.send(enc.encode("while joined"), toGroup);
  const joined = await deadline(receiver.receive(), 5000, "a datagram");
  await receiver.leaveMulticast(group, { interface: "lo" });
  await sender.send(enc.encode("after leaving"), toGroup);
  await sender.send(enc.encode("sentinel"), { transport: "udp", hostname: "127.0.0.1", port });
  const next = await deadline(receiver.receive(), 5000, "a datagram");
  return {
    backend: receiver.backend,
    joined: dec.decode(joined!.data),
    joinedFrom: joined!.from,
    senderAddr: sender.localAddr,
    next: dec.decode(next!.data),
  };
}
