/**
 * A sequenced-packet server that hands each client a file descriptor.
 *
 * The server passes its own standard output (descriptor 1) along with a
 * greeting record. The client is started with its standard output thrown
 * away, so the only way its line can reach your terminal is through the
 * descriptor it received: it writes there by reopening
 * `/proc/self/fd/<n>`, since Deno has no API to wrap a bare descriptor.
 * Before answering, the server checks who the client is with
 * `peerCredentials()`, as the kernel vouches for it.
 *
 * Run (the server starts two clients, each a separate Deno process):
 *
 * ```sh
 * deno run --allow-ffi --allow-read --allow-write --allow-net --allow-run --allow-sys=uid \
 *   examples/seqpacket_fd_server.ts
 * ```
 *
 * or start a client by hand against a running server:
 * `deno run -A examples/seqpacket_fd_server.ts client /tmp/…/fd.sock`.
 *
 * Linux only: descriptor passing and `/proc` are Linux features here.
 *
 * @module
 */

import { closeFds, connectSeqpacket, listenSeqpacket } from "@bsd/sockets/seqpacket";

const enc = new TextEncoder();
const dec = new TextDecoder();

async function server(): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "seqpacket-fd-" });
  // `using` closes the listener at the end of the block, which also removes
  // the socket file it created.
  using listener = listenSeqpacket({ path: `${dir}/fd.sock` });
  // The server's own notes go to stderr: once clients hold its stdout, they
  // write there through descriptors of their own, and if stdout is a regular
  // file, the server's offset in it would not move past their lines.
  console.error(`server: listening on ${listener.addr.path}`);

  const clients = [1, 2].map((n) => startClient(listener.addr.path, n));
  let served = 0;
  for await (const conn of listener) {
    using c = conn;
    // SO_PEERCRED: the client's pid, uid and gid, recorded by the kernel
    // when it connected, not something the client claims.
    const peer = c.peerCredentials();
    if (peer.uid !== Deno.uid()) {
      console.error(`server: refusing uid ${peer.uid}`);
      continue;
    }
    // One record: the greeting and, alongside it, descriptor 1. The client
    // gets its own descriptor for the same open file; ours stays open.
    await c.send(enc.encode(`hello pid ${peer.pid}, here is my stdout`), { fds: [1] });
    // The client answers with one record when it is done writing.
    const done = await c.receive();
    console.error(`server: client ${peer.pid} says "${dec.decode(done?.data)}"`);
    if (++served === clients.length) break;
  }
  for (const status of await Promise.all(clients)) {
    if (!status.success) console.error(`server: a client exited with ${status.code}`);
  }
  Deno.removeSync(dir, { recursive: true });
}

/** Starts this file as a client whose own stdout goes nowhere. */
function startClient(path: string, n: number): Promise<Deno.CommandStatus> {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "client", path, String(n)],
    stdout: "null",
    stderr: "inherit",
  }).spawn().status;
}

async function client(path: string, n: string): Promise<void> {
  using conn = await connectSeqpacket({ path });
  const greeting = await conn.receive();
  if (greeting === null) throw new Error("the server closed before greeting");
  const [fd] = greeting.fds ?? [];
  if (fd === undefined) throw new Error("the greeting carried no descriptor");
  // Reopening /proc/self/fd/<fd> reaches what the descriptor refers to: the
  // server's terminal, pipe or file.
  using out = Deno.openSync(`/proc/self/fd/${fd}`, { write: true, append: true });
  out.writeSync(enc.encode(`client ${n} (pid ${Deno.pid}): "${dec.decode(greeting.data)}"\n`));
  // The received descriptor is ours to close.
  closeFds(greeting.fds!);
  await conn.send(enc.encode(`client ${n} wrote its line`));
}

if (import.meta.main) {
  if (Deno.args[0] === "client") await client(Deno.args[1], Deno.args[2] ?? "1");
  else await server();
}
