// Peer for tests/stream_test.ts, run with chosen permission flags, on the FFI backend:
//   pair | listen ADDR | connect ADDR   tries the call and prints the error's
//                                        name and message (or "ok") as JSON
//   unref PATH                           leaves an unref'd read and accept
//                                        pending; the process must still end
//   aborted tcp:0                        leaves a ref'd listener on each backend
//                                        open, its only accept aborted; the
//                                        process must still end
// ADDR is "tcp:PORT", a path, or "@name" for an abstract name ("\0name").

import { report } from "./_report.ts";
import { connectStream, listenStream, type ListenStreamOptions, streamPair } from "../../stream.ts";

const mode = Deno.args[0];
const addr = Deno.args[1] ?? "";

function target(): ListenStreamOptions {
  if (addr.startsWith("tcp:")) {
    return { hostname: "127.0.0.1", port: Number(addr.slice(4)), backend: "ffi" };
  }
  return { path: addr.replace(/^@/, "\0"), backend: "ffi" };
}

async function attempt(): Promise<void> {
  if (mode === "pair") {
    for (const end of streamPair()) end.close();
  } else if (mode === "listen") {
    listenStream(target()).close();
  } else if (mode === "connect") {
    (await connectStream(target())).close();
  } else if (mode === "unref") {
    const [a, b] = streamPair();
    b.unref();
    b.read(new Uint8Array(1));
    const listener = listenStream(target());
    listener.unref();
    listener.accept().catch(() => {});
    // a stays open, so nothing but the unref lets the process end.
    globalThis.addEventListener("unload", () => a.close());
  } else if (mode === "aborted") {
    for (const backend of ["builtin", "ffi"] as const) {
      const listener = listenStream({ ...target(), backend });
      const controller = new AbortController();
      const accepting = listener.accept({ signal: controller.signal });
      controller.abort();
      await accepting.catch(() => {});
      // Open and ref'd: only "nobody waits" lets the process end.
      globalThis.addEventListener("unload", () => listener.close());
    }
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
}

await report(attempt);
