// The import rules `deno task check` holds the module to, read from Deno's own
// module graph (`deno info --json`), `import type` included: a reader follows
// those edges too.
//   1. no import cycle among the package's files;
//   2. ffi/ never imports from outside ffi/ (it is the bottom layer), but for
//      `import type` of types.ts, which imports nothing and so closes no loop;
//   3. types.ts imports nothing at run time (it declares interfaces only).
// Exits 1 naming each violation.

const root = new URL("../", import.meta.url);
const config = JSON.parse(Deno.readTextFileSync(new URL("deno.json", root))) as {
  exports: Record<string, string>;
};
const entries = Object.values(config.exports).map((p) => new URL(p, root).pathname);

interface Info {
  modules: {
    specifier: string;
    dependencies?: { code?: { specifier?: string }; type?: { specifier?: string } }[];
  }[];
}

// `deno info` takes one root at a time.
const graphs: Info[] = entries.map((entry) => {
  const out = new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    stdout: "piped",
    stderr: "inherit",
  }).outputSync();
  if (!out.success) Deno.exit(out.code || 1);
  return JSON.parse(new TextDecoder().decode(out.stdout));
});

const prefix = root.href;
/** Every import, and the run-time ones apart. */
const edges = new Map<string, Set<string>>();
const runtime = new Map<string, Set<string>>();
for (const graph of graphs) {
  for (const m of graph.modules) {
    if (!m.specifier.startsWith(prefix)) continue;
    const from = m.specifier.slice(prefix.length);
    const to = edges.get(from) ?? new Set<string>();
    const code = runtime.get(from) ?? new Set<string>();
    for (const d of m.dependencies ?? []) {
      for (const s of [d.code?.specifier, d.type?.specifier]) {
        if (s?.startsWith(prefix)) to.add(s.slice(prefix.length));
      }
      const s = d.code?.specifier;
      if (s?.startsWith(prefix)) code.add(s.slice(prefix.length));
    }
    edges.set(from, to);
    runtime.set(from, code);
  }
}

const problems: string[] = [];
for (const [from, to] of edges) {
  for (const dep of to) {
    const typeOnly = !runtime.get(from)!.has(dep);
    if (from.startsWith("ffi/") && !dep.startsWith("ffi/") && !(dep === "types.ts" && typeOnly)) {
      problems.push(`${from} imports ${dep}: ffi/ must not import from above it`);
    }
  }
  const code = runtime.get(from)!;
  if (from === "types.ts" && code.size > 0) {
    problems.push(`types.ts imports ${[...code].join(", ")} at run time: it declares types only`);
  }
}

// Cycles: a depth-first search that reports each back edge's loop once.
const state = new Map<string, "open" | "done">();
const stack: string[] = [];
const seen = new Set<string>();
function visit(node: string): void {
  state.set(node, "open");
  stack.push(node);
  for (const next of edges.get(node) ?? []) {
    if (state.get(next) === "open") {
      const loop = [...stack.slice(stack.indexOf(next)), next];
      const key = [...loop].slice(0, -1).sort().join(" ");
      if (!seen.has(key)) {
        seen.add(key);
        problems.push(`import cycle: ${loop.join(" → ")}`);
      }
    } else if (!state.has(next)) {
      visit(next);
    }
  }
  stack.pop();
  state.set(node, "done");
}
for (const node of [...edges.keys()].sort()) if (!state.has(node)) visit(node);

if (problems.length > 0) {
  for (const p of problems) console.error(p);
  Deno.exit(1);
}
console.log(`imports: ${edges.size} files, no cycle, ffi/ self-contained, types.ts type-only`);
