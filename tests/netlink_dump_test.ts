// Dumps the kernel flags interrupted (the table changed between two of its
// parts) are run again, and never returned: the collector and the retry
// driven with crafted messages, then listRoutes and listAddresses against a
// kernel whose tables change while they are listed.

import assert from "node:assert/strict";
import {
  AnswerCollector,
  consistentDump,
  decodeMessages,
  DUMP_ATTEMPTS,
  encodeMessage,
  type NetlinkMessage,
} from "../_internal/netlink_codec.ts";
import { denoJson, needs, tempDir } from "./_helpers.ts";
import { NetNs } from "./_netns.ts";

const CHILD = new URL("./peers/netlink_dump_child.ts", import.meta.url).pathname;
const RTM_NEWROUTE = 24, NLMSG_DONE = 3, NLMSG_ERROR = 2;
const NLM_F_MULTI = 0x2, NLM_F_DUMP_INTR = 0x10;

/** One record of a dump as the kernel sends it: parts, then the end, through the codec. */
function record(parts: { flags?: number }[], end: { flags?: number; errno?: number }) {
  const errno = new Uint8Array(4);
  new DataView(errno.buffer).setInt32(0, -(end.errno ?? 0), true);
  const messages = [
    ...parts.map((p, i) =>
      encodeMessage({
        type: RTM_NEWROUTE,
        flags: NLM_F_MULTI | (p.flags ?? 0),
        seq: 7,
        payload: Uint8Array.of(i, 0, 0, 0),
      })
    ),
    encodeMessage({
      type: NLMSG_DONE,
      flags: NLM_F_MULTI | (end.flags ?? 0),
      seq: 7,
      payload: errno,
    }),
  ];
  const bytes = new Uint8Array(messages.reduce((n, m) => n + m.length, 0));
  let at = 0;
  for (const m of messages) bytes.set(m, (at += m.length) - m.length);
  return decodeMessages(bytes);
}

function collect(messages: NetlinkMessage[]) {
  const answer = new AnswerCollector();
  for (const [i, m] of messages.entries()) {
    const end = answer.add(m);
    if (end !== null) return { answer, end, taken: i + 1 };
  }
  throw new Error("the answer never ended");
}

Deno.test("AnswerCollector keeps a dump's parts and ends at its end, not interrupted", () => {
  const { answer, end, taken } = collect(record([{}, {}, {}], {}));
  assert.equal(taken, 4);
  assert.deepEqual(end, { errno: 0, extack: undefined });
  assert.equal(answer.interrupted, false);
  assert.deepEqual(answer.messages.map((m) => [m.type, m.payload[0]]), [[24, 0], [24, 1], [24, 2]]);
});

Deno.test("AnswerCollector sees the interrupted flag on any part, or on the end alone", () => {
  assert.equal(collect(record([{}, { flags: NLM_F_DUMP_INTR }, {}], {})).answer.interrupted, true);
  assert.equal(collect(record([{ flags: NLM_F_DUMP_INTR }], {})).answer.interrupted, true);
  const onEnd = collect(record([{}, {}], { flags: NLM_F_DUMP_INTR }));
  assert.equal(onEnd.answer.interrupted, true);
  assert.equal(onEnd.answer.messages.length, 2);
  // An error end still ends the answer, with its errno.
  assert.equal(collect(record([{}], { errno: 22 })).end.errno, 22);
  const ack = encodeMessage({
    type: NLMSG_ERROR,
    flags: 0x100,
    seq: 7,
    payload: new Uint8Array(20),
  });
  const acked = collect(decodeMessages(ack));
  assert.deepEqual([acked.end.errno, acked.answer.interrupted], [0, false]);
});

/** A run of a dump, from a crafted record. */
function runOf(messages: NetlinkMessage[]): () => Promise<AnswerCollector> {
  return () => Promise.resolve(collect(messages).answer);
}

Deno.test("consistentDump() runs an interrupted dump again and returns the first clean run", async () => {
  const runs = [record([{ flags: NLM_F_DUMP_INTR }], {}), record([{}], { flags: NLM_F_DUMP_INTR })];
  runs.push(record([{}, {}, {}], {}));
  let ran = 0;
  const messages = await consistentDump(
    () => runOf(runs[ran++])(),
    () => new Error("gave up"),
  );
  assert.equal(ran, 3);
  assert.deepEqual(messages.map((m) => m.payload[0]), [0, 1, 2]);
});

Deno.test(`consistentDump() gives up after ${DUMP_ATTEMPTS} interrupted runs, and stops at an error`, async () => {
  assert.equal(DUMP_ATTEMPTS, 5);
  let ran = 0;
  const interrupted = runOf(record([{}, { flags: NLM_F_DUMP_INTR }], {}));
  await assert.rejects(
    consistentDump(() => (ran++, interrupted()), () => new Deno.errors.Interrupted("gave up")),
    (err) => err instanceof Deno.errors.Interrupted && err.message === "gave up",
  );
  assert.equal(ran, DUMP_ATTEMPTS);
  ran = 0;
  await assert.rejects(
    consistentDump(() => (ran++, Promise.reject(new RangeError("bad"))), () => new Error("no")),
    RangeError,
  );
  assert.equal(ran, 1);
});

type Run = { keys: string[] } | { error: string; message: string };

/**
 * Lists `what` in a namespace of its own, with 600 entries that stay and
 * 300 that come and go while it lists: every listing must hold each entry
 * that stays exactly once and each that comes and goes at most once, or be
 * the documented Interrupted error.
 */
async function listWhileChanging(what: "routes" | "addresses"): Promise<Run[]> {
  using ns = new NetNs({ prefix: "misc-" });
  using dir = tempDir("misc-nl-");
  ns.ip("link", "add", "v0", "type", "veth", "peer", "name", "v1");
  ns.ip("link", "set", "v0", "up");
  ns.ip("link", "set", "v1", "up");
  const verb = what === "routes" ? "route" : "addr";
  const entry = (net: number, i: number) => `10.${net}.${i >> 7}.${(i & 127) + 1}/32`;
  const stays = Array.from({ length: 600 }, (_, i) => entry(1, i));
  const comes = Array.from({ length: 300 }, (_, i) => entry(2, i));
  const setup = `${dir.path}/setup`, churn = `${dir.path}/churn`;
  Deno.writeTextFileSync(setup, stays.map((e) => `${verb} add ${e} dev v0\n`).join(""));
  ns.ip("-batch", setup);
  // An address of scope host goes before the global ones in the kernel's
  // list, so each that comes or goes moves every one that stays, and a dump
  // resumed by position repeats or skips them: what the flag warns of.
  const scope = what === "addresses" ? " scope host" : "";
  const lines: string[] = [];
  for (let round = 0; round < 4; round++) {
    for (const e of comes) lines.push(`${verb} add ${e} dev v0${scope}\n`);
    for (const e of comes) lines.push(`${verb} del ${e} dev v0\n`);
  }
  Deno.writeTextFileSync(churn, lines.join(""));
  const { runs } = await denoJson(CHILD, {
    flags: ["--allow-ffi", "--allow-run"],
    args: [what, churn],
    prefix: ["ip", "netns", "exec", ns.name],
  }) as { runs: Run[] };
  assert.ok(runs.length >= 1);
  const key = (e: string) => what === "routes" ? e.replace(/\/32$/, "") : `v0 ${e}`;
  for (const run of runs) {
    if ("error" in run) {
      assert.equal(run.error, "Interrupted", run.message);
      assert.match(run.message, /^request "netlink\/route": the dump was interrupted /);
      continue;
    }
    const seen = new Map<string, number>();
    for (const k of run.keys) seen.set(k, (seen.get(k) ?? 0) + 1);
    const twice = [...seen].filter(([, n]) => n > 1).map(([k]) => k);
    assert.deepEqual(twice, [], "an entry listed twice");
    const missing = stays.map(key).filter((k) => !seen.has(k));
    assert.deepEqual(missing, [], "an entry that stayed is missing");
  }
  return runs;
}

Deno.test(
  "listRoutes() while routes come and go: each entry once, or Interrupted, never inconsistent",
  needs("CAP_NET_ADMIN"),
  async () => {
    const runs = await listWhileChanging("routes");
    console.log(`${runs.length} listings, ${runs.filter((r) => "error" in r).length} Interrupted`);
  },
);

Deno.test(
  "listAddresses() while addresses come and go: each entry once, or Interrupted",
  needs("CAP_NET_ADMIN"),
  async () => {
    const runs = await listWhileChanging("addresses");
    console.log(`${runs.length} listings, ${runs.filter((r) => "error" in r).length} Interrupted`);
  },
);
