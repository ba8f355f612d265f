// Runs inside a test's network namespace (under `ip netns exec`):
//   dump          prints {links, addresses, routes} as one JSON line
//   watch N       prints "ready", then N changes (links and addresses), one JSON line each
//   set NAME up|down  sets a link up or down, then prints its flags as JSON
// Needs --allow-ffi.

import { listAddresses, listLinks, listRoutes, setLinkUp, watchNetwork } from "../../netlink.ts";

const [mode, count] = Deno.args;
if (mode === "dump") {
  const [links, addresses, routes] = [
    await listLinks(),
    await listAddresses(),
    await listRoutes({ table: "all" }),
  ];
  console.log(JSON.stringify({ links, addresses, routes }));
} else if (mode === "watch") {
  using changes = watchNetwork({ types: ["link", "address"], signal: AbortSignal.timeout(20_000) });
  console.log("ready");
  let seen = 0;
  for await (const change of changes) {
    console.log(JSON.stringify(change));
    if (++seen >= Number(count)) break;
  }
} else if (mode === "set") {
  await setLinkUp(count, Deno.args[2] === "up");
  console.log(JSON.stringify((await listLinks()).find((l) => l.ifname === count)?.flags));
} else {
  throw new Error(`unknown mode ${mode}`);
}
