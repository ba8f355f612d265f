// Peer for tests/ffi_engine_test.ts: leaves engine sockets in one state and
// lets the script end, so the parent can see whether the process exits.
//   unref-after   a pending receive, unref()'d after it parked
//   unref-before  unref() first, then a pending receive
//   idle          open sockets with nothing pending
//   ref <path>    a pending receive on a datagram socket bound to <path>;
//                 prints what arrives
// With --no-op-ref last, the runtime's op ref/unref is hidden first, so the
// engine runs the way it must without it: one wait, stopped by its eventfd.

import { FdSocket } from "../../ffi/socket.ts";
import { encodeInet, encodeUnix } from "../../ffi/sockaddr.ts";

const args = Deno.args.filter((a) => a !== "--no-op-ref");
if (args.length < Deno.args.length) {
  // deno-lint-ignore no-explicit-any
  const deno = Deno as any;
  const internal = deno[deno.internal];
  Object.defineProperty(deno, deno.internal, {
    value: { ...internal, core: { ...internal.core, refOpPromise: undefined } },
  });
}
const [mode, path] = args;
const label = JSON.stringify(mode);

if (mode === "unref-after" || mode === "unref-before") {
  const [a, b] = FdSocket.pair("seqpacket", { label });
  if (mode === "unref-before") a.unref();
  a.receive(100).then((r) => console.log(`unexpected ${r === null ? "null" : "record"}`));
  if (mode === "unref-after") {
    // Let the engine start its wait while the socket is still ref'd.
    await new Promise((resolve) => setTimeout(resolve, 0));
    a.unref();
  }
  void b;
} else if (mode === "idle") {
  const [a, b] = FdSocket.pair("seqpacket", { label });
  const udp = FdSocket.open("ipv4", "datagram", 0, { label });
  udp.bind(encodeInet("127.0.0.1", 0));
  // Parked first, so the engine waits, then has nothing to wait for.
  const receiving = b.receive(10);
  await a.send(new Uint8Array([1]), null);
  const r = await receiving;
  if (r?.data[0] !== 1) throw new Error("the pair did not carry a record");
} else if (mode === "ref") {
  const sock = FdSocket.open("unix", "datagram", 0, { label: JSON.stringify(path) });
  sock.bind(encodeUnix(path));
  // No top-level await on it: only the pending receive may keep the process up.
  sock.receive(1000).then((r) => {
    console.log(`got ${r === null ? "null" : new TextDecoder().decode(r.data)}`);
    sock.close();
  });
} else {
  throw new Error(`unknown mode ${label}`);
}
console.log("ready");
