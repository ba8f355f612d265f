// Node + node-unix-socket as a seqpacket contender in bench/engine_bench.ts.
//
// Roles, with the harness's protocol (a "ready" line, then one JSON line),
// the same as bench/py/seqpacket_peer.py:
//   client PATH N SIZE  N round trips of SIZE bytes against an echo server,
//                       one outstanding; median round trip in µs
//   sink PATH N         listens on PATH, accepts one sender, counts N records
//                       received until end of stream; rate
//
// node-unix-socket is found through NODE_PATH (the bench installs it into a
// temporary directory, see bench/_node.ts), so the repository holds no copy.

import { Buffer } from "node:buffer";
import { createRequire } from "node:module";
import process from "node:process";
import { unlinkSync } from "node:fs";
import { performance } from "node:perf_hooks";

const { SeqpacketServer, SeqpacketSocket } = createRequire(import.meta.url)("node-unix-socket");

function record(size) {
  const r = Buffer.alloc(size);
  for (let i = 0; i < size; i++) r[i] = (i * 31 + 7) & 0xff;
  return r;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function client(path, n, size) {
  return new Promise((resolve, reject) => {
    const sock = new SeqpacketSocket();
    const msg = record(size);
    const samples = [];
    const warmup = Math.min(1000, Math.floor(n / 10));
    let i = -warmup;
    let t0 = 0;
    const next = () => {
      msg[0] = i & 0xff;
      t0 = performance.now();
      sock.write(msg);
    };
    sock.on("error", reject);
    sock.on("data", (reply) => {
      const t1 = performance.now();
      if (reply.length !== size || reply[0] !== msg[0]) {
        reject(new Error(`round trip ${i}: wrong reply`));
        return;
      }
      if (i >= 0) samples.push(t1 - t0);
      if (++i < n) return next();
      // No destroy() here: from inside its own data handler it aborts the
      // process (the addon panics); exiting closes the socket.
      resolve({ role: "client", n, rtt_us_median: median(samples) * 1000 });
    });
    sock.connect(path, () => {
      console.log("ready");
      next();
    });
  });
}

function sink(path, n) {
  return new Promise((resolve, reject) => {
    const server = new SeqpacketServer();
    server.on("error", reject);
    server.listen(path, 1);
    console.log("ready");
    server.on("connection", (conn) => {
      let records = 0, first = 0, last = 0;
      conn.on("error", reject);
      conn.on("data", () => {
        last = performance.now();
        if (records === 0) first = last;
        records++;
      });
      conn.on("end", () => {
        server.close();
        try {
          unlinkSync(path);
        } catch { /* already gone */ }
        if (records !== n) reject(new Error(`sink: ${records} records, expected ${n}`));
        else {resolve({
            role: "sink",
            n: records,
            msgs_per_s: (records - 1) / ((last - first) / 1000),
          });}
      });
    });
  });
}

const [role, path, a, b] = process.argv.slice(2);
try {
  let result;
  if (role === "client") result = await client(path, Number(a), Number(b));
  else if (role === "sink") result = await sink(path, Number(a));
  else throw new Error(`unknown role ${role}`);
  console.log(JSON.stringify(result));
  process.exit(0);
} catch (err) {
  console.log(JSON.stringify({ error: err instanceof Error ? err.message : String(err) }));
  process.exit(1);
}
