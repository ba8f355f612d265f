/**
 * `deno task bench`: builds the C references, runs every `bench/*_bench.ts`
 * (each in its own Deno process, with `--json` and a time limit), and prints
 * one markdown table of all their rows. The table also goes to
 * `bench/out/results.md`, the rows and run facts to `bench/out/results.json`;
 * the scale bench draws its curve beside them, in `bench/out/scale.svg`.
 *
 * Usage: `deno task bench [FILTER...] [--time-limit=SECONDS] [--dir=DIR] [--out=DIR]`
 * - FILTER: run only files whose name contains one of these words.
 * - `--time-limit`: per bench file, default 180 s (the engine bench, with its
 *   CPython and read(p) contenders, takes about two minutes on 2 cores); a file
 *   over it is killed and reported as failed.
 * - `--dir`: where the bench files are (default: this directory).
 * - `--out`: where results go (default: `bench/out/`).
 *
 * The exit status is 1 when any bench file failed.
 *
 * @module
 */

import {
  BENCH_DIR,
  buildC,
  BUILTIN,
  C,
  denoArgv,
  forEachLine,
  formatNumber,
  isRow,
  OURS,
  OUT_DIR,
  type Row,
} from "./_harness.ts";

/** How one bench file went. */
export interface FileOutcome {
  /** The file name, e.g. `"engine_bench.ts"`. */
  file: string;
  /** Wall-clock seconds it took. */
  seconds: number;
  /** The rows it printed (kept even when it failed later). */
  rows: Row[];
  /** Why it failed; absent when it succeeded. */
  failure?: string;
}

/** The facts a table header states, so numbers are read in context. */
export interface RunInfo {
  /** When the run started, ISO 8601 UTC. */
  date: string;
  /** Deno, V8 and TypeScript versions. */
  deno: string;
  /** The CPU model name. */
  cpu: string;
  /** Logical CPUs. */
  cores: number;
  /** OS and kernel release. */
  kernel: string;
}

/** Options of {@linkcode runBenchFiles}. */
export interface RunOptions {
  /** Substrings of file names to run; empty runs them all. */
  filters?: string[];
  /** The directory holding `*_bench.ts` files. */
  dir?: string;
  /** Seconds each file may take before it is killed. */
  timeLimit?: number;
  /** Where files that draw a chart write it (passed as `BSD_BENCH_OUT`). */
  out?: string;
}

/**
 * The `*_bench.ts` files in `dir` whose names contain one of `filters`, sorted.
 *
 * @param dir The directory to list.
 * @param filters Substrings; empty matches every file.
 * @returns File names.
 */
export function benchFiles(dir: string, filters: string[] = []): string[] {
  return [...Deno.readDirSync(dir)]
    .filter((e) => e.isFile && e.name.endsWith("_bench.ts"))
    .map((e) => e.name)
    .filter((n) => filters.length === 0 || filters.some((f) => n.includes(f)))
    .sort();
}

/**
 * Runs one bench file with `--json` under a time limit and collects its rows.
 * Lines that are not rows are passed on to stderr, as is its stderr.
 *
 * @param path The file's path.
 * @param timeLimit Seconds before it is killed.
 * @param out Where the file may write a chart (`BSD_BENCH_OUT`); default `bench/out/`.
 * @returns Its outcome; never throws for a failing file.
 */
export async function runBenchFile(
  path: string,
  timeLimit: number,
  out: string = OUT_DIR,
): Promise<FileOutcome> {
  const file = path.slice(path.lastIndexOf("/") + 1);
  const start = performance.now();
  const [deno, ...args] = denoArgv(path, ["--json"]);
  const child = new Deno.Command(deno, {
    args,
    env: { BSD_BENCH_OUT: out.replace(/\/?$/, "/") },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* exited meanwhile */ }
  }, timeLimit * 1000);

  const rows: Row[] = [];
  const badLines: string[] = [];
  const stdout = forEachLine(child.stdout, (line) => {
    let parsed: unknown;
    try {
      parsed = line.startsWith("{") ? JSON.parse(line) : undefined;
    } catch { /* not a row */ }
    if (isRow(parsed)) rows.push(parsed);
    else {
      if (line.startsWith("{")) badLines.push(line);
      console.error(`  ${file}: ${line}`);
    }
  });
  // The reason to quote: the last line naming an error (a stack trace follows
  // Deno's "error: Uncaught ..." line), else the last line.
  let lastErr = "";
  let lastLine = "";
  const stderr = forEachLine(child.stderr, (line) => {
    console.error(`  ${file}: ${line}`);
    if (/error/i.test(line)) lastErr = line.trim();
    if (line.trim()) lastLine = line.trim();
  });
  const status = await child.status;
  clearTimeout(timer);
  await Promise.all([stdout, stderr]);

  const seconds = (performance.now() - start) / 1000;
  let failure: string | undefined;
  // deno-lint-ignore no-control-regex
  const reason = (lastErr || lastLine).replace(/\x1b\[[0-9;]*m/g, "");
  if (timedOut) failure = `killed after the ${timeLimit} s time limit`;
  else if (!status.success) {
    failure = `exit status ${status.code}${reason ? `: ${reason}` : ""}`;
  } else if (badLines.length > 0) failure = `printed a malformed row: ${badLines[0]}`;
  else if (rows.length === 0) failure = "printed no rows";
  return failure === undefined ? { file, seconds, rows } : { file, seconds, rows, failure };
}

/**
 * Runs the matching bench files one after another.
 *
 * @param options Filters, directory and per-file time limit.
 * @returns One outcome per file, in order.
 */
export async function runBenchFiles(options: RunOptions = {}): Promise<FileOutcome[]> {
  const dir = options.dir ?? BENCH_DIR;
  const outcomes: FileOutcome[] = [];
  for (const file of benchFiles(dir, options.filters)) {
    console.error(`bench: ${file}`);
    const outcome = await runBenchFile(
      `${dir.replace(/\/?$/, "/")}${file}`,
      options.timeLimit ?? 180,
      options.out,
    );
    const how = outcome.failure ? `FAILED (${outcome.failure})` : "ok";
    console.error(
      `bench: ${file} ${how}, ${outcome.rows.length} rows, ${outcome.seconds.toFixed(1)} s`,
    );
    outcomes.push(outcome);
  }
  return outcomes;
}

/**
 * How many times better {@linkcode OURS} is than `other` in `row`: above 1
 * ours is better, below 1 it is worse, whichever way the unit runs.
 *
 * @param row The row.
 * @param other The contender to compare with.
 * @returns The ratio, or `null` when either value is missing or zero.
 */
export function ratio(row: Row, other: string): number | null {
  const ours = row.values[OURS] ?? null;
  const theirs = row.values[other] ?? null;
  if (ours === null || theirs === null || ours === 0 || theirs === 0) return null;
  return row.better === "lower" ? theirs / ours : ours / theirs;
}

/**
 * Reads the run facts: date, Deno version, CPU model, core count, kernel.
 *
 * @returns The facts.
 */
export function runInfo(): RunInfo {
  let cpu = "unknown CPU";
  let cores = navigator.hardwareConcurrency;
  try {
    // Deno wants --allow-all to read /proc directly; a child process needs only --allow-run.
    const out = new Deno.Command("cat", { args: ["/proc/cpuinfo"], stderr: "null" }).outputSync();
    const info = new TextDecoder().decode(out.stdout);
    cpu = /^model name\s*:\s*(.+)$/m.exec(info)?.[1].trim() ?? cpu;
    cores = info.match(/^processor\s*:/gm)?.length ?? cores;
  } catch { /* not Linux */ }
  const v = Deno.version;
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    deno: `deno ${v.deno} (v8 ${v.v8}, typescript ${v.typescript})`,
    cpu,
    cores,
    kernel: `${Deno.build.os} ${Deno.osRelease()}`,
  };
}

/**
 * Renders the outcomes as one markdown table, a failed file as a row saying so.
 *
 * @param outcomes What {@linkcode runBenchFiles} returned.
 * @param info The run facts for the header line.
 * @returns The markdown text.
 */
export function formatTable(outcomes: FileOutcome[], info: RunInfo): string {
  const rows = outcomes.flatMap((o) => o.rows);
  const known = [OURS, BUILTIN, C];
  const others = [...new Set(rows.flatMap((r) => Object.keys(r.values)))]
    .filter((k) => !known.includes(k));
  const contenders = [...known, ...others];
  const head = ["group", "case", "unit", ...contenders, `${OURS} vs C`, `${OURS} vs built-in`];
  const lines = [
    "# @bsd/sockets benchmarks",
    "",
    `${info.date} · ${info.deno} · ${info.cpu}, ${info.cores} cores · ${info.kernel}`,
    "",
    `Unit arrows: ↓ lower is better, ↑ higher is better. The "vs" columns say how many times ` +
    `better ${OURS} is than that contender: above 1 ours is better, below 1 it is worse.`,
    "",
    `| ${head.join(" | ")} |`,
    `| ${head.map((_, i) => i < 3 ? "---" : "---:").join(" | ")} |`,
  ];
  for (const o of outcomes) {
    for (const r of o.rows) {
      const cells = [
        escapeCell(r.group),
        escapeCell(r.case + (r.note ? ` (${r.note})` : "")),
        `${escapeCell(r.unit)} ${r.better === "lower" ? "↓" : "↑"}`,
        ...contenders.map((k) => {
          const v = r.values[k] ?? null;
          return v === null ? "—" : formatNumber(v);
        }),
        ...[C, BUILTIN].map((k) => {
          const x = ratio(r, k);
          return x === null ? "—" : `${x.toFixed(2)}×`;
        }),
      ];
      lines.push(`| ${cells.join(" | ")} |`);
    }
    if (o.failure) {
      const cells = [escapeCell(o.file), `**FAILED**: ${escapeCell(o.failure)}`, ""];
      lines.push(`| ${[...cells, ...contenders.map(() => ""), "", ""].join(" | ")} |`);
    }
  }
  if (outcomes.length === 0) lines.push("", "No bench files matched.");
  return lines.join("\n") + "\n";
}

function escapeCell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}

function parseArgs(args: string[]): RunOptions & { out: string } {
  const options: RunOptions & { out: string } = { filters: [], out: OUT_DIR };
  for (const arg of args) {
    const m = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (m?.[1] === "time-limit" && Number(m[2]) > 0) options.timeLimit = Number(m[2]);
    else if (m?.[1] === "dir") options.dir = m[2];
    else if (m?.[1] === "out") options.out = m[2];
    else if (arg.startsWith("-")) {
      throw new TypeError(
        `bench/run.ts: unknown option "${arg}"; use FILTER... --time-limit=SECONDS --dir=DIR --out=DIR`,
      );
    } else options.filters!.push(arg);
  }
  return options;
}

async function main(): Promise<number> {
  const options = parseArgs(Deno.args);
  const dir = await buildC();
  console.error(`bench: C references built in ${dir}`);
  const info = runInfo();
  const outcomes = await runBenchFiles(options);
  const table = formatTable(outcomes, info);
  console.log(table);
  const out = options.out.replace(/\/?$/, "/");
  Deno.mkdirSync(out, { recursive: true });
  Deno.writeTextFileSync(out + "results.md", table);
  Deno.writeTextFileSync(
    out + "results.json",
    JSON.stringify({ ...info, outcomes }, null, 2) + "\n",
  );
  console.error(`bench: wrote ${out}results.md and ${out}results.json`);
  return outcomes.some((o) => o.failure) ? 1 : 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    Deno.exit(1);
  }
}
