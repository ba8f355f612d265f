// Peer for tests/ffi_errors_test.ts: run without --allow-ffi. Importing the
// engine must succeed; the first use must throw NotCapable, printed as JSON.

import { FdSocket, openSocketCount } from "../../ffi/socket.ts";

const before = openSocketCount();
try {
  FdSocket.pair("seqpacket", { label: "" });
  console.log(JSON.stringify({ opened: true }));
} catch (err) {
  const e = err as Error;
  console.log(JSON.stringify({
    opened: false,
    notCapable: e instanceof Deno.errors.NotCapable,
    message: e.message,
    ledger: openSocketCount() - before,
  }));
}
