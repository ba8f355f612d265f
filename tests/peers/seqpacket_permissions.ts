// Peer for tests/seqpacket_test.ts, run with chosen permission flags:
//   pair | listen PATH | connect PATH   tries the call and prints the error's
//                                        name and message (or "ok") as JSON
//   unref PATH                           leaves an unref'd receive and accept
//                                        pending; the process must still end

import { report } from "./_report.ts";
import { connectSeqpacket, listenSeqpacket, seqpacketPair } from "../../seqpacket.ts";

// A leading "@" stands for "\0" (an abstract name), which no argument can hold.
const mode = Deno.args[0];
const path = Deno.args[1]?.replace(/^@/, "\0");

async function attempt(): Promise<void> {
  if (mode === "pair") {
    const [a, b] = seqpacketPair();
    a.close();
    b.close();
  } else if (mode === "listen") {
    listenSeqpacket({ path }).close();
  } else if (mode === "connect") {
    (await connectSeqpacket({ path })).close();
  } else if (mode === "unref") {
    const [a, b] = seqpacketPair();
    b.unref();
    b.receive();
    const listener = listenSeqpacket({ path });
    listener.unref();
    listener.accept().catch(() => {});
    // a stays open, so nothing but the unref lets the process end.
    globalThis.addEventListener("unload", () => a.close());
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
}

await report(attempt);
