/**
 * A small `ip`: the links, addresses and routes of this network namespace,
 * read over netlink, printed as `ip` prints them (or as `ip -j`, with `-j`).
 *
 * ```sh
 * deno run --allow-ffi examples/ip.ts [-j] [-4|-6] link|addr|route [table main|local|all|N]
 * ```
 *
 * Needs no privilege. Run it under `ip netns exec NAME` to look at another namespace.
 *
 * @module
 */

import {
  type Address,
  type Link,
  listAddresses,
  listLinks,
  listRoutes,
  type Route,
} from "@bsd/sockets/netlink";

interface Options {
  json: boolean;
  family?: "inet" | "inet6";
  object: "link" | "addr" | "route";
  table: number | "main" | "local" | "all";
}

function parseArgs(args: string[]): Options {
  const o: Partial<Options> = { json: false, table: "main" };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "-j") o.json = true;
    else if (arg === "-4") o.family = "inet";
    else if (arg === "-6") o.family = "inet6";
    else if (arg === "link" || arg === "addr" || arg === "route") o.object = arg;
    else if (arg === "table") {
      const t = args[++i];
      if (t === undefined) throw new TypeError("table needs a value");
      o.table = t === "main" || t === "local" || t === "all" ? t : Number(t);
    } else throw new TypeError(`unknown argument ${JSON.stringify(arg)}`);
  }
  if (o.object === undefined) throw new TypeError("say link, addr or route");
  return o as Options;
}

function linkLines(l: Link): string[] {
  const name = l.link ? `${l.ifname}@${l.link}` : l.ifname;
  const head = [`${l.ifindex}: ${name}: <${l.flags.join(",")}>`];
  if (l.mtu !== undefined) head.push(`mtu ${l.mtu}`);
  if (l.qdisc) head.push(`qdisc ${l.qdisc}`);
  if (l.master) head.push(`master ${l.master}`);
  if (l.operstate) head.push(`state ${l.operstate}`);
  if (l.group) head.push(`group ${l.group}`);
  if (l.txqlen !== undefined) head.push(`qlen ${l.txqlen}`);
  const hw = [`    link/${l.link_type}`];
  if (l.address !== undefined) hw.push(l.address);
  if (l.broadcast !== undefined) hw.push(l.link_pointtopoint ? "peer" : "brd", l.broadcast);
  return [head.join(" "), hw.join(" ")];
}

function addressLine(a: Address): string {
  const words = [
    `    ${a.family} ${a.local}${a.address ? ` peer ${a.address}` : ""}/${a.prefixlen}`,
  ];
  if (a.broadcast) words.push(`brd ${a.broadcast}`);
  words.push(`scope ${a.scope}`);
  for (const flag of ["secondary", "temporary", "dynamic", "nodad", "tentative", "deprecated"]) {
    if (a[flag] === true) words.push(flag);
  }
  if (a.label) words.push(a.label);
  return words.join(" ");
}

function routeLine(r: Route): string {
  const words: string[] = [];
  if (r.type) words.push(r.type);
  words.push(r.dst);
  if (r.from) words.push(`from ${r.from}`);
  if (r.gateway) words.push(`via ${r.gateway}`);
  if (r.dev) words.push(`dev ${r.dev}`);
  if (r.table) words.push(`table ${r.table}`);
  if (r.protocol) words.push(`proto ${r.protocol}`);
  if (r.scope) words.push(`scope ${r.scope}`);
  if (r.prefsrc) words.push(`src ${r.prefsrc}`);
  if (r.metric !== undefined) words.push(`metric ${r.metric}`);
  words.push(...r.flags);
  if (r.pref !== undefined) words.push(`pref ${r.pref}`);
  return words.join(" ");
}

async function main(o: Options): Promise<void> {
  if (o.object === "route") {
    // Like ip: a single table shows IPv4 unless -6 says otherwise.
    const family = o.family ?? (o.table === "all" ? undefined : "inet");
    const routes = await listRoutes({ family, table: o.table });
    console.log(o.json ? JSON.stringify(routes) : routes.map(routeLine).join("\n"));
    return;
  }
  const links = await listLinks();
  if (o.object === "link") {
    console.log(o.json ? JSON.stringify(links) : links.flatMap(linkLines).join("\n"));
    return;
  }
  const addresses = (await listAddresses()).filter((a) => !o.family || a.family === o.family);
  if (o.json) {
    const nested = links.map((l) => ({
      ...l,
      addr_info: addresses.filter((a) => a.ifindex === l.ifindex).map((a) => {
        const { ifindex: _, ifname: __, ...info } = a;
        return info;
      }),
    }));
    console.log(JSON.stringify(nested));
    return;
  }
  for (const l of links) {
    console.log(linkLines(l).join("\n"));
    for (const a of addresses.filter((a) => a.ifindex === l.ifindex)) console.log(addressLine(a));
  }
}

try {
  await main(parseArgs(Deno.args));
} catch (err) {
  console.error(`ip.ts: ${err instanceof Error ? err.message : err}`);
  Deno.exit(1);
}
