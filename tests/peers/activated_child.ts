// The service of tests/systemd_test.ts's socket-activation tests, started by
// systemd-socket-activate: it adopts what it was handed (listenFds(), or
// fromFd(0) with `inetd`), prints one JSON report on stdout (on stderr with
// `inetd`, where stdout is the connection), then answers one message on each
// socket with "pong: <message>" and exits.

import { fromFd, type StreamConn, StreamListener } from "../../mod.ts";
import { DatagramSocket } from "../../datagram.ts";
import { SeqpacketConn, SeqpacketListener } from "../../seqpacket.ts";
import { listenFds } from "../../systemd.ts";

const VARIABLES = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];
const inetd = Deno.args[0] === "inetd";
const before = VARIABLES.map((v) => Deno.env.get(v) ?? null);
const sockets = inetd ? [{ fd: 0, name: "stdin", socket: fromFd(0) }] : listenFds();
const report = JSON.stringify({
  pid: Deno.pid,
  before,
  after: VARIABLES.map((v) => Deno.env.get(v) ?? null),
  sockets: sockets.map((s) => ({ fd: s.fd, name: s.name, class: s.socket.constructor.name })),
});
if (inetd) console.error(report);
else console.log(report);

const decoder = new TextDecoder(), encoder = new TextEncoder();
const pong = (data: Uint8Array) => encoder.encode(`pong: ${decoder.decode(data)}`);

async function answerStream(conn: StreamConn): Promise<void> {
  const buf = new Uint8Array(1024);
  const n = await conn.read(buf);
  if (n !== null) await conn.write(pong(buf.subarray(0, n)));
  conn.close();
}

async function answerSeqpacket(conn: SeqpacketConn): Promise<void> {
  const m = await conn.receive();
  if (m) await conn.send(pong(m.data));
  conn.close();
}

await Promise.all(sockets.map(async ({ socket }) => {
  if (socket instanceof StreamListener) {
    await answerStream(await socket.accept());
  } else if (socket instanceof SeqpacketListener) {
    await answerSeqpacket(await socket.accept());
  } else if (socket instanceof SeqpacketConn) {
    await answerSeqpacket(socket);
  } else if (socket instanceof DatagramSocket) {
    const m = await socket.receive();
    if (m?.from) await socket.send(pong(m.data), m.from);
  } else {
    await answerStream(socket as StreamConn);
  }
  socket.close();
}));
