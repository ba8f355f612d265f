// The README's quick examples are run as written, with `jsr:@bsd/sockets`
// pointed at this checkout, so the front page cannot drift from the code.

import assert from "node:assert/strict";
import { deadline, denoRun, needs, tempDir } from "./_helpers.ts";

const root = new URL("../", import.meta.url);
const readme = Deno.readTextFileSync(new URL("README.md", root));

/** The ```ts blocks under "## Quick examples", each with the heading above it. */
function quickExamples(): { title: string; code: string }[] {
  const section = readme.split("## Quick examples")[1].split("\n## ")[0];
  const out: { title: string; code: string }[] = [];
  const re = /\*\*([^*]+)\*\*[^\n]*\n\n```ts\n([\s\S]*?)```/g;
  for (const m of section.matchAll(re)) out.push({ title: m[1], code: m[2] });
  return out;
}

function localImports(code: string): string {
  return code.replaceAll(/"jsr:@bsd\/sockets(\/[a-z]+)?"/g, (_, sub?: string) => {
    const file = sub ? `${sub.slice(1)}.ts` : "mod.ts";
    return JSON.stringify(new URL(file, root).href);
  });
}

Deno.test("README quick examples exist for all four socket types, descriptors and netlink", () => {
  const titles = quickExamples().map((e) => e.title);
  assert.deepEqual(titles.map((t) => t.split(" ")[0]), [
    "Stream",
    "Datagram",
    "Seqpacket",
    "Raw",
    "Descriptors",
    "Netlink",
  ]);
});

for (const { title, code } of quickExamples()) {
  const privileged = title.startsWith("Raw");
  Deno.test({
    name: `README quick example "${title}" runs as written`,
    ...(privileged ? needs("CAP_NET_RAW") : {}),
    async fn() {
      using dir = tempDir("bsd-readme-");
      const file = `${dir.path}/example.ts`;
      Deno.writeTextFileSync(file, localImports(code));
      const child = denoRun(file, {
        flags: [
          "--no-lock",
          "--unstable-net",
          "--allow-net",
          "--allow-ffi",
          "--allow-read",
          "--allow-write",
        ],
        stderr: "piped",
      }).spawn();
      const out = await deadline(child.output(), 20_000, `README example ${title}`);
      const text = new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      assert.notEqual(text.trim(), "", "the example printed nothing");
    },
  });
}
