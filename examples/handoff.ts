/**
 * A restart without a refused connection: a TCP server hands its listening
 * socket to the process that replaces it, over a Unix socket, and exits.
 *
 * The listening socket is a descriptor. Generation 1 listens on TCP and on
 * a Unix control socket; generation 2 connects to the control socket and
 * receives the listener's descriptor (`SCM_RIGHTS`), adopts it with
 * `fromFd`, and accepts on it. Generation 1 then stops accepting, finishes
 * the connections it holds and exits. The kernel's accept queue belongs to
 * the socket, not to a process, so a client connecting at any moment is
 * served by one generation or the other.
 *
 * Run the demonstration (it starts both generations and a client loop, and
 * says who served what):
 *
 * ```sh
 * deno run --allow-ffi --allow-net --allow-read --allow-write --allow-run examples/handoff.ts
 * ```
 *
 * Linux only.
 *
 * @module
 */

import {
  connectStream,
  fromFd,
  listenStream,
  type NetAddr,
  type StreamConn,
  StreamListener,
} from "@bsd/sockets";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Answers one client: one line in, one line out naming the generation, then close. */
async function serveOne(conn: StreamConn, generation: number): Promise<void> {
  try {
    const buf = new Uint8Array(256);
    let line = "";
    while (!line.includes("\n")) {
      const n = await conn.read(buf);
      if (n === null) return;
      line += dec.decode(buf.subarray(0, n));
    }
    await conn.write(enc.encode(`generation ${generation}: ${line}`));
  } finally {
    conn.close();
  }
}

/** One server generation; `dir` holds the control socket generations meet on. */
async function serve(generation: number, dir: string): Promise<void> {
  const control = `${dir}/handoff-${generation}.sock`;
  let listener: StreamListener<NetAddr>;
  if (generation === 1) {
    // The FFI backend: only it has a descriptor to hand on.
    listener = listenStream({ hostname: "127.0.0.1", port: 0, backend: "ffi" });
    console.log(`listening ${listener.addr.port}`);
  } else {
    using from = await connectStream({
      path: `${dir}/handoff-${generation - 1}.sock`,
      backend: "ffi",
    });
    const message = await from.receive();
    const fd = message?.fds?.[0];
    if (fd === undefined) throw new Error("the previous generation sent no descriptor");
    const adopted = fromFd(fd);
    if (!(adopted instanceof StreamListener) || adopted.addr.transport !== "tcp") {
      throw new TypeError("the previous generation sent no TCP listener");
    }
    listener = adopted as StreamListener<NetAddr>;
    console.log(`adopted ${listener.addr.port}`);
  }

  // The next generation asks here for the listener.
  const handing = (async () => {
    using controlListener = listenStream({ path: control, backend: "ffi" });
    using next = await controlListener.accept();
    // Our listener's descriptor rides with these bytes; the socket stays ours
    // until close() below, and both processes may accept meanwhile.
    await next.send(enc.encode("listener"), { fds: [listener.fd!] });
    listener.close(); // ends the accept loop below; the next generation's copy lives on
  })();

  const inFlight = new Set<Promise<void>>();
  for await (const conn of listener) {
    const served: Promise<void> = serveOne(conn, generation).finally(() => inFlight.delete(served));
    inFlight.add(served);
  }
  await Promise.all(inFlight);
  await handing;
  console.log(`generation ${generation} done`);
}

/** Starts one generation as a child process; resolves with it and the first line it prints. */
async function start(generation: number, dir: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-ffi",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      import.meta.filename!,
      "serve",
      String(generation),
      dir,
    ],
    stdout: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`generation ${generation} exited before it was ready`);
    text += value;
  }
  const rest = (async () => {
    for (;;) {
      const { value, done } = await lines.read();
      if (done) return text;
      text += value;
    }
  })();
  return { child, first: text.split("\n")[0], output: rest };
}

/** The demonstration: generation 1, a client loop, generation 2 midway. */
async function demo(): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "handoff-" });
  const counts = { total: 0, refused: 0, reset: 0, other: 0, byGeneration: [0, 0, 0] };
  const one = await start(1, dir);
  const port = Number(one.first.split(" ")[1]);
  let two: Promise<Awaited<ReturnType<typeof start>>> | undefined;
  let oneExit: Deno.CommandStatus | undefined;
  const oneExited = one.child.status.then((s) => (oneExit = s));
  const until = Date.now() + 20_000;
  let afterExit = 0;
  /** One client: connects, says hello, reads the answer, again and again. */
  const client = async () => {
    // Bounded in count and time: stop once generation 2 has served 100 after generation 1 left.
    while (counts.total < 5_000 && Date.now() < until && afterExit < 100) {
      const n = ++counts.total;
      // Generation 2 starts while the clients keep connecting.
      if (n === 200) two = start(2, dir);
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        await conn.write(enc.encode(`hello ${n}\n`));
        let reply = "";
        const buf = new Uint8Array(256);
        for (let r; (r = await conn.read(buf)) !== null;) reply += dec.decode(buf.subarray(0, r));
        conn.close();
        const gen = Number(/^generation (\d+): /.exec(reply)?.[1]);
        if (gen === 1 || gen === 2) counts.byGeneration[gen]++;
        else counts.other++;
      } catch (err) {
        if (err instanceof Deno.errors.ConnectionRefused) counts.refused++;
        else if (err instanceof Deno.errors.ConnectionReset) counts.reset++;
        else counts.other++;
      }
      if (oneExit) afterExit++;
    }
  };
  try {
    await Promise.all([client(), client(), client()]);
    await oneExited;
  } finally {
    const second = await two;
    second?.child.kill("SIGTERM");
    await second?.child.status;
    Deno.removeSync(dir, { recursive: true });
  }
  const [, g1, g2] = counts.byGeneration;
  console.log(
    `connections: ${counts.total}, refused: ${counts.refused}, reset: ${counts.reset}, ` +
      `other failures: ${counts.other}, served by generation 1: ${g1}, generation 2: ${g2}`,
  );
  console.log(`generation 1 exited with ${oneExit?.code}`);
  if (counts.refused || counts.reset || counts.other || !g1 || !g2 || oneExit?.code !== 0) {
    Deno.exit(1);
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "serve") await serve(Number(Deno.args[1]), Deno.args[2]);
  else await demo();
}
