// Peer for tests/doorbell_fallback_test.ts: 200 round trips over a
// seqpacket pair with every receive parked before its record is sent, then
// prints, as JSON, how the engine waited and what arrived.

import { FdSocket } from "../../ffi/socket.ts";
import { theReactor } from "../../ffi/reactor.ts";

const [a, b] = FdSocket.pair("seqpacket", { label: '"wait"' });
let received = 0, bytes = 0;
for (let i = 0; i < 200; i++) {
  const pending = a.receive(100);
  // The receive has tried and parked; the record comes after.
  await b.send(new Uint8Array(i % 64 + 1).fill(i & 0xff), null);
  const r = await pending;
  if (r !== null && r.data.length === i % 64 + 1 && r.data[0] === (i & 0xff)) received++;
  bytes += r?.data.length ?? 0;
}
const reactor = theReactor();
console.log(
  JSON.stringify({ waitPath: reactor.waitPath, received, bytes, events: reactor.eventCount }),
);
a.close();
b.close();
