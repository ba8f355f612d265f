// Peer for tests/ffi_engine_test.ts: holds one pending receive for 2 s and
// prints, as JSON, the process CPU time spent meanwhile and what arrived.

import process from "node:process";
import { FdSocket } from "../../ffi/socket.ts";

const [a, b] = FdSocket.pair("seqpacket", { label: '"idle"' });
const pending = a.receive(100);
// The engine's wait starts on the next turn; measure from then.
await new Promise((resolve) => setTimeout(resolve, 0));
const before = process.cpuUsage();
await new Promise((resolve) => setTimeout(resolve, 2000));
const used = process.cpuUsage(before);
await b.send(new TextEncoder().encode("wake"), null);
const r = await pending;
console.log(JSON.stringify({
  cpuSeconds: (used.user + used.system) / 1e6,
  received: r === null ? null : new TextDecoder().decode(r.data),
}));
a.close();
b.close();
