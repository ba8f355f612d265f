/**
 * What every bench file shares: building the C references, running peer
 * processes (C roles, other commands, a second Deno), pinning to CPUs, and
 * printing result rows in the one format `bench/run.ts` collects.
 *
 * A peer speaks a two-line protocol on stdout: one line `ready` (or
 * `ready <detail>`, such as the port it bound) once it can be talked to, and
 * at the end one JSON line with its result. The C roles in `bench/c/` do, and
 * {@linkcode peerReady} / {@linkcode peerResult} let a Deno peer do the same.
 *
 * @example A C-vs-C seqpacket ping-pong
 * ```ts ignore
 * import { emit, spawnC } from "./_harness.ts";
 *
 * const path = Deno.makeTempDirSync() + "/echo.sock";
 * await using server = await spawnC(["seqpacket", "server", path], { pin: [0] });
 * await using client = await spawnC(["seqpacket", "client", path, "-n", "20000"], { pin: [0] });
 * const { rtt_us_median: c } = await client.result();
 * await server.result();
 * emit({
 *   group: "seqpacket",
 *   case: "ping-pong 64 B, pinned",
 *   unit: "µs",
 *   better: "lower",
 *   values: { C: c ?? null },
 * });
 * ```
 *
 * @module
 */

/** The permission flags `deno task bench` runs with, passed on to every child Deno. */
export const BENCH_FLAGS: readonly string[] = [
  "--unstable-net",
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-ffi",
  "--allow-run",
  "--allow-env",
  "--allow-sys",
];

/** The contender names the runner computes ratios for; other names are shown as they are. */
export const OURS = "@bsd/sockets";
/** Deno's own sockets (`Deno.listen`, `Deno.listenDatagram`, …). */
export const BUILTIN = "Deno built-in";
/** The C reference in `bench/c/`. */
export const C = "C";

/** Where bench/ is, as a filesystem path with a trailing slash. */
export const BENCH_DIR: string = urlPath(new URL("./", import.meta.url));
/** Where compiled C references and results go (gitignored). */
export const OUT_DIR: string = BENCH_DIR + "out/";

/** One result of a benchmark case, as the runner tabulates it. */
export interface Row {
  /** The socket type or area, e.g. `"seqpacket"`. */
  group: string;
  /** What was measured, e.g. `"ping-pong 64 B, pinned"`. */
  case: string;
  /** The unit of every value, e.g. `"µs"` or `"msg/s"`. */
  unit: string;
  /** Whether a lower or a higher value is better. */
  better: "lower" | "higher";
  /**
   * One value per contender ({@linkcode OURS}, {@linkcode BUILTIN},
   * {@linkcode C}, …); `null` = not measured.
   */
  values: Record<string, number | null>;
  /** A short remark shown after the case, e.g. `"12 lost of 100000"`. */
  note?: string;
}

/** What a peer printed as its result line; the fields the C roles use are listed. */
export interface PeerResult {
  /** `"server"`, `"client"`, `"sink"` or `"flood"`. */
  role?: string;
  /** The socket kind, e.g. `"seqpacket"`. */
  kind?: string;
  /** Records done: round trips (client), echoed (server), received (sink), sent (flood). */
  n?: number;
  /** Bytes per record. */
  size?: number;
  /** Client: median round-trip time, µs. */
  "rtt_us_median"?: number;
  /** Client: mean round-trip time, µs. */
  "rtt_us_mean"?: number;
  /** Client: 99th-percentile round-trip time, µs. */
  "rtt_us_p99"?: number;
  /** Client: fastest round trip, µs. */
  "rtt_us_min"?: number;
  /** Client: slowest round trip, µs. */
  "rtt_us_max"?: number;
  /** Sink: records per second from first to last record; flood: records sent per second. */
  "msgs_per_s"?: number;
  /** Client, flood: seconds the timed part took. */
  "elapsed_s"?: number;
  /** Sink: seconds from the first record to the last. */
  "first_to_last_s"?: number;
  /** Server, sink: bytes received. */
  bytes?: number;
  /** Sink: the count it was told to expect (`-n`). */
  expected?: number;
  /** Sink: `expected` minus received. */
  lost?: number;
  /** Sink: whether it stopped at end of stream. */
  eof?: boolean;
  /** Datagram sink: the receive buffer the kernel granted, bytes. */
  rcvbuf?: number;
  /** Set when the peer failed; {@linkcode Peer.result} throws instead of returning it. */
  error?: string;
  /** Anything else a peer reports. */
  [key: string]: unknown;
}

/** A running peer process that has printed its `ready` line. */
export interface Peer extends AsyncDisposable {
  /** What followed `ready` on its ready line (the port for udp/tcp servers and sinks), or `""`. */
  readonly ready: string;
  /** The process id. */
  readonly pid: number;
  /**
   * Waits for the peer to exit and returns its JSON result line.
   *
   * @param timeoutMs How long to wait before killing it (default 60 s).
   * @throws {Error} If it times out, exits non-zero, prints no JSON line or reports an `error`.
   */
  result(timeoutMs?: number): Promise<PeerResult>;
  /** Kills the peer (SIGKILL); harmless once it has exited. */
  kill(): void;
}

/** Options for {@linkcode spawnPeer}. */
export interface SpawnOptions {
  /** CPUs to pin the peer to with `taskset -c`, e.g. `[0]`. */
  pin?: number[];
  /** How long to wait for the `ready` line (default 10 s). */
  readyTimeoutMs?: number;
}

let building: Promise<string> | undefined;

/**
 * Compiles every `bench/c/*.c` with `gcc -O2` into `bench/out/<name>`,
 * skipping binaries newer than their source, and returns `bench/out/`.
 *
 * Concurrent calls share one build; a binary is written under a temporary
 * name and renamed, so two processes building at once do not clash.
 *
 * @returns The output directory, with a trailing slash.
 * @throws {Error} If gcc is missing (saying how to install it) or a file does not compile (with
 * gcc's output).
 */
export function buildC(): Promise<string> {
  building ??= build().finally(() => building = undefined);
  return building;
}

async function build(): Promise<string> {
  Deno.mkdirSync(OUT_DIR, { recursive: true });
  const sources = [...Deno.readDirSync(BENCH_DIR + "c/")]
    .filter((e) => e.isFile && e.name.endsWith(".c"))
    .map((e) => e.name)
    .sort();
  for (const name of sources) {
    const src = BENCH_DIR + "c/" + name;
    const out = OUT_DIR + name.slice(0, -2);
    if (mtime(out) >= mtime(src)) continue;
    const tmp = `${out}.tmp-${Deno.pid}`;
    let output: Deno.CommandOutput;
    try {
      output = await new Deno.Command("gcc", {
        args: ["-O2", "-Wall", "-Wextra", "-std=gnu11", "-o", tmp, src],
        stdin: "null",
      }).output();
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new Error(
          "buildC: gcc not found on PATH; install it (apt-get install gcc libc6-dev) to build the C references",
        );
      }
      throw err;
    }
    if (!output.success) {
      try {
        Deno.removeSync(tmp);
      } catch { /* gcc wrote nothing */ }
      const text = new TextDecoder().decode(output.stderr).trim();
      throw new Error(`buildC: gcc failed on "${src}":\n${text}`);
    }
    Deno.renameSync(tmp, out);
  }
  return OUT_DIR;
}

function mtime(path: string): number {
  try {
    return Deno.statSync(path).mtime?.getTime() ?? 0;
  } catch {
    return 0;
  }
}

function urlPath(url: URL): string {
  return decodeURIComponent(url.pathname);
}

/**
 * Prefixes `cmd` with `taskset -c cpus`, so it runs on those CPUs only.
 *
 * @param cmd The command and its arguments.
 * @param cpus A `taskset` CPU list, e.g. `"0"` or `"0,1"`.
 * @returns The new command line.
 */
export function pinned(cmd: string[], cpus: string): string[] {
  return ["taskset", "-c", cpus, ...cmd];
}

/**
 * Pins this process (all its threads) to `cpus` and returns a function that
 * restores the previous affinity. Threads started later inherit the pinning.
 *
 * @param cpus A `taskset` CPU list, e.g. `"0"`.
 * @returns A function that undoes the pinning.
 * @throws {Error} If `taskset` fails.
 */
export function pinSelf(cpus: string): () => void {
  const before = /: *(\S+)\s*$/.exec(taskset(["-p", "-c", String(Deno.pid)]))?.[1];
  if (!before) throw new Error("pinSelf: could not read this process's CPU affinity");
  taskset(["-a", "-p", "-c", cpus, String(Deno.pid)]);
  return () => void taskset(["-a", "-p", "-c", before, String(Deno.pid)]);
}

function taskset(args: string[]): string {
  const out = new Deno.Command("taskset", { args, stdin: "null" }).outputSync();
  const text = new TextDecoder().decode(out.success ? out.stdout : out.stderr);
  if (!out.success) throw new Error(`taskset ${args.join(" ")}: ${text.trim()}`);
  return text;
}

/**
 * Starts a peer process and waits for its `ready` line.
 *
 * Its stdout is read line by line; its stderr is collected and quoted in
 * errors. Dispose of the peer (`await using`) to make sure it is gone.
 *
 * @param args The command and its arguments.
 * @param options CPU pinning and the ready timeout.
 * @returns The running peer.
 * @throws {Error} If it exits or stays silent before `ready`, quoting its stderr.
 */
export async function spawnPeer(args: string[], options: SpawnOptions = {}): Promise<Peer> {
  const cmd = options.pin ? pinned(args, options.pin.join(",")) : args;
  const name = describe(args);
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  let onReady: (detail: string) => void = () => {};
  const readyLine = new Promise<string>((resolve) => onReady = resolve);
  const stdout = forEachLine(child.stdout, (line) => {
    const m = /^ready(?: (.*))?$/.exec(line);
    if (m) onReady(m[1] ?? "");
    else lines.push(line);
  });
  const stderr = new Response(child.stderr).text();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const kill = (): void => {
    if (exited) return;
    try {
      child.kill("SIGKILL");
    } catch { /* exited meanwhile */ }
  };
  const settle = async (): Promise<{ code: number; err: string }> => {
    const s = await status;
    await stdout;
    return { code: s.code, err: (await stderr).trim() };
  };

  const timeoutMs = options.readyTimeoutMs ?? 10_000;
  // The end of stdout, not the exit status, decides "exited before ready": a
  // quick peer may print ready and exit before its stdout has been read.
  const timer = after(timeoutMs, undefined);
  const ready = await Promise.race([readyLine, stdout.then(() => null), timer.promise]);
  timer.cancel();
  if (typeof ready !== "string") {
    kill();
    const { code, err } = await settle();
    const why = ready === undefined
      ? `printed no ready line within ${timeoutMs} ms`
      : `exited with status ${code} before printing ready`;
    throw new Error(`${name}: ${why}${quote(err || lastError(lines))}`);
  }

  return {
    ready,
    pid: child.pid,
    async result(resultTimeoutMs = 60_000): Promise<PeerResult> {
      const timer = after(resultTimeoutMs, false);
      const done = await Promise.race([status.then(() => true), timer.promise]);
      timer.cancel();
      if (!done) kill();
      const { code, err } = await settle();
      if (!done) throw new Error(`${name}: no result within ${resultTimeoutMs} ms${quote(err)}`);
      const json = lines.findLast((l) => l.startsWith("{"));
      let parsed: PeerResult | undefined;
      try {
        parsed = json === undefined ? undefined : JSON.parse(json);
      } catch { /* reported below */ }
      if (parsed?.error) throw new Error(`${name}: ${parsed.error}`);
      if (code !== 0) throw new Error(`${name}: exited with status ${code}${quote(err)}`);
      if (!parsed) throw new Error(`${name}: printed no JSON result line${quote(err)}`);
      return parsed;
    },
    kill,
    async [Symbol.asyncDispose](): Promise<void> {
      kill();
      await settle();
    },
  };
}

/**
 * A promise of `value` after `ms`, and a way to drop the timer early.
 *
 * @param ms The delay.
 * @param value What the promise resolves with.
 * @returns The promise and its `cancel`.
 */
export function after<T>(ms: number, value: T): { promise: Promise<T>; cancel(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const promise = new Promise<T>((resolve) => timer = setTimeout(() => resolve(value), ms));
  return { promise, cancel: () => clearTimeout(timer) };
}

function describe(args: string[]): string {
  const prog = args[0].slice(args[0].lastIndexOf("/") + 1);
  return [prog, ...args.slice(1, 3)].join(" ");
}

function quote(text: string): string {
  return text ? `: ${text.split("\n").slice(-5).join(" / ")}` : "";
}

function lastError(lines: string[]): string {
  const json = lines.findLast((l) => l.startsWith("{"));
  try {
    return json ? String(JSON.parse(json).error ?? "") : "";
  } catch {
    return "";
  }
}

/**
 * Calls `fn` with each line of `stream` as it arrives (without the newline).
 *
 * @param stream A child's stdout or stderr.
 * @param fn What to do with a line.
 * @returns A promise that settles once the stream ends.
 */
export async function forEachLine(
  stream: ReadableStream<Uint8Array>,
  fn: (line: string) => void,
): Promise<void> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop()!;
    parts.forEach(fn);
  }
  if (rest) fn(rest);
}

/**
 * Builds the C references if needed and starts `bench/out/sockbench` with
 * `args` as a peer. See `bench/c/sockbench.c` for the roles and options.
 *
 * @param args `KIND ROLE ADDR [options]`, e.g. `["udp", "server", "0"]`.
 * @param options CPU pinning and the ready timeout.
 * @returns The running peer.
 * @throws {Error} As {@linkcode buildC} and {@linkcode spawnPeer} do.
 */
export async function spawnC(args: string[], options?: SpawnOptions): Promise<Peer> {
  const dir = await buildC();
  return spawnPeer([dir + "sockbench", ...args], options);
}

/**
 * Runs `script` in a second Deno process with the bench permissions, as a
 * peer: it must call {@linkcode peerReady} and, at the end, {@linkcode peerResult}.
 *
 * @param script The script's path or file URL.
 * @param args Arguments for the script (`Deno.args`).
 * @param options CPU pinning and the ready timeout.
 * @returns The running peer.
 * @throws {Error} As {@linkcode spawnPeer} does.
 */
export function spawnDeno(
  script: string | URL,
  args: string[] = [],
  options?: SpawnOptions,
): Promise<Peer> {
  return spawnPeer(denoArgv(script, args), options);
}

/**
 * The command line that runs `script` with `args` in a child Deno with the
 * bench's permissions.
 *
 * @param script The file, as a path or a file URL.
 * @param args Its arguments.
 * @returns The argv, the Deno executable first.
 */
export function denoArgv(script: string | URL, args: string[] = []): string[] {
  const path = script instanceof URL ? urlPath(script) : script;
  return [Deno.execPath(), "run", "--quiet", ...BENCH_FLAGS, path, ...args];
}

/**
 * Announces, from a peer script, that it is ready to be talked to.
 *
 * @param detail Printed after `ready`, e.g. the port it bound.
 */
export function peerReady(detail?: string | number): void {
  console.log(detail === undefined ? "ready" : `ready ${detail}`);
}

/**
 * Prints a peer script's result as its one JSON line.
 *
 * @param result Fields as in {@linkcode PeerResult}; `error` marks a failure.
 */
export function peerResult(result: PeerResult): void {
  console.log(JSON.stringify(result));
}

/**
 * The entry point of a bench file that is also its own peer program: with
 * `peer ROLE ARGS...` as its arguments it runs `runPeer(ROLE, ARGS)` and turns
 * a thrown error into an error result line and exit status 1; otherwise it
 * runs `main()`.
 *
 * @param runPeer The peer roles.
 * @param main The bench itself.
 * @returns A promise that settles when either is done.
 */
export async function peerOrMain(
  runPeer: (role: string, args: string[]) => Promise<void>,
  main: () => Promise<void>,
): Promise<void> {
  if (Deno.args[0] !== "peer") return await main();
  try {
    await runPeer(Deno.args[1], Deno.args.slice(2));
  } catch (err) {
    peerResult({ error: err instanceof Error ? err.message : String(err) });
    Deno.exit(1);
  }
}

/**
 * The record of `size` bytes every sender in the benchmarks sends (the same
 * pattern as the C references' payload).
 *
 * @param size Its length.
 * @returns A fresh buffer.
 */
export function record(size: number): Uint8Array {
  const r = new Uint8Array(size);
  for (let i = 0; i < size; i++) r[i] = (i * 31 + 7) & 0xff;
  return r;
}

/**
 * The median of `xs` (the mean of the middle two for an even count).
 *
 * @param xs The samples; not modified.
 * @returns The median.
 * @throws {RangeError} If `xs` is empty.
 */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError("median: no samples");
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Whether `x` has the shape of a {@linkcode Row}.
 *
 * @param x Anything, typically a parsed JSON line.
 * @returns `true` for a row.
 */
export function isRow(x: unknown): x is Row {
  if (typeof x !== "object" || x === null) return false;
  const r = x as Record<string, unknown>;
  return typeof r.group === "string" && typeof r.case === "string" &&
    typeof r.unit === "string" && (r.better === "lower" || r.better === "higher") &&
    typeof r.values === "object" && r.values !== null &&
    Object.values(r.values).every((v) => v === null || typeof v === "number") &&
    (r.note === undefined || typeof r.note === "string");
}

/**
 * Prints one result row: a JSON line when the bench file was started with
 * `--json` (as `bench/run.ts` does), a readable line otherwise.
 *
 * @param row The result.
 * @param json Whether to print JSON (default: `--json` is among `Deno.args`).
 * @throws {TypeError} If `row` is not a valid row (say, a value is `NaN`).
 */
export function emit(row: Row, json: boolean = Deno.args.includes("--json")): void {
  if (!isRow(row)) throw new TypeError("emit: not a valid row");
  const bad = Object.entries(row.values).find(([, v]) => v !== null && !Number.isFinite(v));
  if (bad) throw new TypeError(`emit: ${row.case}: the value of ${bad[0]} is ${bad[1]}`);
  if (json) {
    console.log(JSON.stringify(row));
    return;
  }
  const values = Object.entries(row.values)
    .map(([k, v]) => `${k} ${v === null ? "—" : formatNumber(v)}`)
    .join(", ");
  const note = row.note ? ` (${row.note})` : "";
  console.log(
    `${row.group} | ${row.case}${note} | ${row.unit}, ${row.better} is better | ${values}`,
  );
}

/**
 * Formats a measured value for a table: three significant digits below 100,
 * whole numbers with thousands separators above.
 *
 * @param v The value.
 * @returns The text.
 */
export function formatNumber(v: number): string {
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString("en-US");
  return Number(v.toPrecision(3)).toString();
}
