// A member of a reuse-port group in a second Deno process, for
// tests/reuseport_test.ts: binds 127.0.0.1:PORT with reusePort, prints
// "ready", then answers every datagram (udp) or connection (tcp) with NAME.
// It runs until killed.
//
//   deno run reuseport_child.ts udp|tcp PORT NAME

import { listenDatagram } from "../../datagram.ts";
import { listenStream } from "../../stream.ts";

const [transport, portText, name] = Deno.args;
const port = Number(portText);
const reply = new TextEncoder().encode(name);

if (transport === "udp") {
  const sock = listenDatagram({ hostname: "127.0.0.1", port, reusePort: true });
  console.log("ready");
  for await (const m of sock) if (m.from) await sock.send(reply, m.from);
} else {
  const listener = listenStream({ hostname: "127.0.0.1", port, reusePort: true });
  console.log("ready");
  for await (const conn of listener) {
    await conn.write(reply);
    conn.close();
  }
}
