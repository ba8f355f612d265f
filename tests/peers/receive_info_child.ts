// For tests/receive_info_test.ts, run inside a namespace whose loopback has
// 10.99.0.1 and 10.99.0.2: one socket on 0.0.0.0 with receiveInfo
// ["destination"] receives a datagram sent to each address and prints one
// JSON line: [{ data, destination }, …] in arrival order.

import { listenDatagram } from "../../datagram.ts";
import { deadline } from "../_helpers.ts";

using server = listenDatagram({ hostname: "0.0.0.0", port: 0, receiveInfo: ["destination"] });
using client = listenDatagram({ hostname: "0.0.0.0", port: 0, backend: "ffi" });
const port = server.localAddr.port;
const got = [];
for (const [i, hostname] of ["10.99.0.1", "10.99.0.2"].entries()) {
  await client.send(new TextEncoder().encode(`to-${i + 1}`), { transport: "udp", hostname, port });
  const m = await deadline(server.receive(), 5000, "a datagram");
  got.push({ data: new TextDecoder().decode(m!.data), destination: m!.destination });
}
console.log(JSON.stringify(got));
