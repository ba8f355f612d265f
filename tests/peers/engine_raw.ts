// Peer for tests/ffi_errors_test.ts: opens a raw ICMP socket through the
// engine and prints, as one JSON line, how that went. Run without
// CAP_NET_RAW it shows how EPERM reaches the caller.

import { FdSocket } from "../../ffi/socket.ts";

const IPPROTO_ICMP = 1;

try {
  FdSocket.open("ipv4", "raw", IPPROTO_ICMP, { label: "" }).close();
  console.log(JSON.stringify({ opened: true }));
} catch (err) {
  const e = err as Error & { code?: string; errno?: number; syscall?: string };
  console.log(JSON.stringify({
    opened: false,
    name: e.constructor.name,
    permissionDenied: e instanceof Deno.errors.PermissionDenied,
    code: e.code,
    errno: e.errno,
    syscall: e.syscall,
    message: e.message,
  }));
}
