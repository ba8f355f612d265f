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

/** Every `.ts` file of the library (top level, `_internal/`, `ffi/`, `tools/`), sorted. */
function libraryFiles(): string[] {
  const files: string[] = [];
  for (const dir of ["", "_internal/", "ffi/", "tools/"]) {
    for (const entry of Deno.readDirSync(new URL(dir || "./", root))) {
      if (entry.isFile && entry.name.endsWith(".ts")) files.push(dir + entry.name);
    }
  }
  return files.sort();
}

Deno.test("README layout table has one row per library file, and no row for a file that is gone", () => {
  const section = readme.split("## Layout")[1].split("\n## ")[0];
  const rows = [...section.matchAll(/^\| `([^`]+)` +\|/gm)].map((m) => m[1]);
  const files = rows.filter((r) => r.endsWith(".ts"));
  assert.deepEqual([...files].sort(), libraryFiles());
  assert.equal(new Set(files).size, files.length, "a file has two rows");
});
