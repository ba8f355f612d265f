// Started by systemd-socket-activate with --allow-ffi and --allow-env only
// (tests/systemd_test.ts): listenFds() must refuse a socket on an IP address
// it has no net permission for, and leave the descriptor open. Prints one
// JSON line: the error's name and message, and whether descriptor 3 is open.

import { listenFds } from "../../systemd.ts";
import { isOpenFd } from "../_helpers.ts";

let error: { name: string; message: string } | null = null;
try {
  listenFds();
} catch (err) {
  error = { name: (err as Error).name, message: (err as Error).message };
}
console.log(JSON.stringify({ error, open: isOpenFd(3) }));
