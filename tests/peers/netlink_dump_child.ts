// Runs inside a test's network namespace (under `ip netns exec`):
//   routes FILE      lists the main table's routes while `ip -batch FILE` runs
//   addresses FILE   lists the addresses while `ip -batch FILE` runs
// and prints one JSON line, { runs }: per listing, its keys (route dst, or "ifname
// local/prefixlen") or the error it rejected with. At most 40 listings.
// Needs --allow-ffi and --allow-run.

import { listAddresses, listRoutes } from "../../netlink.ts";

const [mode, file] = Deno.args;
if (mode !== "routes" && mode !== "addresses") throw new Error(`unknown mode ${mode}`);
const churn = new Deno.Command("ip", {
  args: ["-force", "-batch", file],
  stdin: "null",
  stdout: "null",
  stderr: "inherit",
}).spawn();
let churning = true;
const ended = churn.status.then(() => churning = false);
const runs: ({ keys: string[] } | { error: string; message: string })[] = [];
while (runs.length < 40 && (churning || runs.length === 0)) {
  try {
    const keys = mode === "routes"
      ? (await listRoutes({ family: "inet" })).map((r) => r.dst)
      : (await listAddresses()).map((a) => `${a.ifname} ${a.local}/${a.prefixlen}`);
    runs.push({ keys });
  } catch (err) {
    const e = err as Error;
    runs.push({ error: e.constructor.name, message: e.message });
  }
}
await ended;
console.log(JSON.stringify({ runs }));
