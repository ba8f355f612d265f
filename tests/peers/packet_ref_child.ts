// Peer for tests/packet_socket_test.ts: leaves receives pending on packet
// sockets and lets the script end, so the parent sees whether it exits.
//   unref [raw]  every type unref()'d with a receive, a read and a batch
//                pending (raw and packet sockets too with "raw"); prints
//                "ready", and nothing more unless one settles
//   ref          UDP sockets (FFI, built-in) unref()'d then ref()'d, each
//                with a receive pending; prints "ready <port>..." and then
//                "<backend> <bytes>" for each record the parent sends

import type { PacketSocketBase } from "../../mod.ts";
import { datagramPair, listenDatagram } from "../../datagram.ts";
import { openNetlink } from "../../netlink.ts";
import { openPacket, openRaw } from "../../raw.ts";
import { seqpacketPair } from "../../seqpacket.ts";

const [mode, raw] = Deno.args;
const builtin = typeof (Deno as { listenDatagram?: unknown }).listenDatagram === "function";

if (mode === "unref") {
  const sockets: PacketSocketBase<unknown>[] = [
    ...seqpacketPair(),
    ...datagramPair(),
    listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "ffi" }),
    openNetlink({ protocol: "route" }),
  ];
  if (builtin) sockets.push(listenDatagram({ hostname: "127.0.0.1", port: 0, backend: "builtin" }));
  if (raw === "raw") {
    sockets.push(openRaw({ family: "ipv6", protocol: 254 }));
    sockets.push(openPacket({ interface: "lo", protocol: 0x88b6, immediate: true }));
  }
  for (const s of sockets) {
    s.unref();
    const settled = (what: string) => () => console.log(`${what} settled`);
    s.receive().then(settled("receive"), settled("receive"));
    // The built-in engine serves one receive at a time; one is enough there.
    if (s.backend === "ffi") {
      s.read(new Uint8Array(8)).then(settled("read"), settled("read"));
      s.receiveMany().then(settled("receiveMany"), settled("receiveMany"));
    }
  }
  console.log("ready");
} else if (mode === "ref") {
  const backends = builtin ? ["ffi", "builtin"] as const : ["ffi"] as const;
  const ports: number[] = [];
  for (const backend of backends) {
    const s = listenDatagram({ hostname: "127.0.0.1", port: 0, backend });
    s.unref();
    s.ref();
    s.receive().then((m) => console.log(`${backend} ${m?.data.length}`));
    ports.push(s.localAddr.port);
  }
  console.log(`ready ${ports.join(" ")}`);
} else {
  throw new Error(`unknown mode ${mode}`);
}
