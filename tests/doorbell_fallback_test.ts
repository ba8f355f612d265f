// The engine's io_uring doorbell is feature-detected: under a seccomp
// filter that refuses io_uring (as Docker's default profile does) a child
// Deno waits on the pool instead, and every parked receive still settles
// with its record; without the filter the same child uses the doorbell
// wherever this machine offers it.

import assert from "node:assert/strict";
import { denoJson, needs, tempDir, uringExpected } from "./_helpers.ts";

const CHILD = new URL("./peers/engine_wait_child.ts", import.meta.url).pathname;
const FILTER = new URL("./peers/no_uring.c", import.meta.url).pathname;
const FLAGS = ["--allow-ffi", "--allow-read", "--allow-env"];
/** What the child's 200 records add up to (record i is i % 64 + 1 bytes). */
const EXPECTED_BYTES = Array.from({ length: 200 }, (_, i) => i % 64 + 1).reduce((a, b) => a + b);

/** Builds the seccomp wrapper into `dir`; its path. */
async function buildFilter(dir: string): Promise<string> {
  const bin = `${dir}/no_uring`;
  const out = await new Deno.Command("gcc", { args: ["-O1", "-o", bin, FILTER], stderr: "piped" })
    .output();
  assert.ok(out.success, `gcc failed:\n${new TextDecoder().decode(out.stderr)}`);
  return bin;
}

Deno.test({
  name: "the engine falls back to the pool where seccomp refuses io_uring, and loses no wake-up",
  ...needs("gcc"),
  async fn() {
    using dir = tempDir();
    const wrapper = await buildFilter(dir.path);
    const r = await denoJson(CHILD, { flags: FLAGS, prefix: [wrapper] });
    assert.equal(r.waitPath, "pool");
    assert.equal(r.received, 200);
    assert.equal(r.bytes, EXPECTED_BYTES);
  },
});

Deno.test("the engine uses the doorbell where the machine offers io_uring", async () => {
  const r = await denoJson(CHILD, { flags: FLAGS });
  assert.equal(r.waitPath, uringExpected() ? "uring" : "pool");
  assert.equal(r.received, 200);
  assert.equal(r.bytes, EXPECTED_BYTES);
  // Every receive parked first: each record was a wake-up.
  assert.ok((r.events as number) >= 200, `${r.events} events for 200 parked receives`);
});
