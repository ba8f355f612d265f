// Helpers shared by the test files. One place for each: look here before
// writing another.

import assert from "node:assert/strict";
import { theReactor } from "../ffi/reactor.ts";

/** Rejects with a message naming `what` if `promise` has not settled in `ms`. */
export async function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A fresh temporary directory, removed with everything in it on dispose. */
export function tempDir(prefix = "bsd-"): { path: string } & Disposable {
  const path = Deno.makeTempDirSync({ prefix });
  return {
    path,
    [Symbol.dispose]() {
      Deno.removeSync(path, { recursive: true });
    },
  };
}

/** SHA-256 of the concatenation of `chunks`, as hex. */
export function sha256(...chunks: Uint8Array[]): Promise<string> {
  return sha256Of(chunks);
}

// Takes the array itself: spreading 200,000 chunks into a call overflows the stack.
async function sha256Of(chunks: readonly Uint8Array[]): Promise<string> {
  let total = 0;
  for (const c of chunks) total += c.length;
  const all = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", all)));
}

/** An incremental digest over many records, cheap enough for 100,000 of them. */
export class RunningDigest {
  #parts: Uint8Array[] = [];
  #count = 0;
  /** Adds one record, length-prefixed so boundaries count. */
  add(record: Uint8Array): void {
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, record.length);
    this.#parts.push(len, record.slice());
    this.#count++;
  }
  /** How many records were added. */
  get count(): number {
    return this.#count;
  }
  /** The SHA-256 of everything added. */
  digest(): Promise<string> {
    return sha256Of(this.#parts);
  }
}

/** A seeded pseudo-random generator (mulberry32), so failures reproduce. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` bytes from the seeded generator `rand`. */
export function randomBytes(rand: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (rand() * 256) | 0;
  return out;
}

/**
 * Reads a file under /proc through `cat`: Deno 2.9 asks for --allow-all to
 * read /proc itself, and the test task spells out narrower permissions.
 */
export function procText(path: string): string {
  const out = new Deno.Command("cat", { args: [path], stderr: "null" }).outputSync();
  if (!out.success) throw new Error(`cannot read ${path}`);
  return new TextDecoder().decode(out.stdout);
}

/** The number of threads of this process. */
export function threadCount(): number {
  const status = procText(`/proc/${Deno.pid}/status`);
  return Number(/^Threads:\s+(\d+)/m.exec(status)![1]);
}

/** Whether this process holds capability number `bit` (see capabilities(7)). */
function hasCap(bit: bigint): boolean {
  const status = procText(`/proc/${Deno.pid}/status`);
  const eff = BigInt("0x" + /^CapEff:\s+([0-9a-f]+)/m.exec(status)![1]);
  return (eff & (1n << bit)) !== 0n;
}

/** Whether this process may open raw sockets (root with CAP_NET_RAW). */
export function hasCapNetRaw(): boolean {
  return hasCap(13n);
}

/** Whether this process may administer the network (namespaces, veth). */
export function hasCapNetAdmin(): boolean {
  return hasCap(12n);
}

/** What a test may need that a machine may lack. */
export type Requirement = "CAP_NET_RAW" | "CAP_NET_ADMIN" | "python3" | "gcc" | "node" | "npm";

/**
 * Options for a test that needs privileges or programs: it is ignored (and
 * counted as skipped in Deno's summary) when any is missing, and says which.
 */
export function needs(...what: Requirement[]): { ignore: boolean } {
  const missing = what.filter((w) =>
    !(w === "CAP_NET_RAW"
      ? hasCapNetRaw()
      : w === "CAP_NET_ADMIN"
      ? hasCapNetAdmin()
      : commandExists(w))
  );
  if (missing.length > 0) {
    console.error(`skipping a test: it needs ${missing.join(", ")}, which this process lacks`);
  }
  return { ignore: missing.length > 0 };
}

function commandExists(cmd: string): boolean {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/**
 * Starts `python3 -c script` with `args`, its stdout piped and stderr
 * inherited. The returned object kills the process on dispose.
 */
export function python(script: string, ...args: string[]): Deno.ChildProcess & AsyncDisposable {
  const child = new Deno.Command("python3", {
    args: ["-u", "-c", script, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  return killOnDispose(child);
}

/** `child`, made to be killed (SIGKILL) and awaited when disposed of. */
export function killOnDispose(child: Deno.ChildProcess): Deno.ChildProcess & AsyncDisposable {
  return Object.assign(child, {
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGKILL");
      } catch { /* already exited */ }
      await child.status;
    },
  });
}

/** Reads lines from a child's stdout, one at a time. */
export function lines(stream: ReadableStream<Uint8Array>): AsyncIterator<string> {
  return stream.pipeThrough(new TextDecoderStream()).pipeThrough(
    new TransformStream<string, string>(
      {
        buffer: "",
        transform(chunk, controller) {
          this.buffer += chunk;
          const parts = this.buffer.split("\n");
          this.buffer = parts.pop()!;
          for (const p of parts) controller.enqueue(p);
        },
      } as Transformer<string, string> & { buffer: string },
    ),
  )[Symbol.asyncIterator]();
}

/** The next line from `it`, failing after `ms`. */
export async function nextLine(it: AsyncIterator<string>, ms = 5000): Promise<string> {
  const r = await deadline(it.next(), ms, "a line from the peer");
  if (r.done) throw new Error("the peer closed its output");
  return r.value;
}

/**
 * `deno run <flags> <script> <args>` with the running Deno binary, its stdout
 * piped, stdin and stderr as given (default: none and inherited); `prefix`
 * (such as `setpriv ...`) runs it. Flags are exactly those given: none means
 * no permissions.
 */
export function denoRun(
  script: string,
  options: {
    flags?: string[];
    args?: string[];
    prefix?: string[];
    stdin?: "piped" | "null";
    stderr?: "piped" | "inherit";
  } = {},
): Deno.Command {
  const argv = [
    ...(options.prefix ?? []),
    Deno.execPath(),
    "run",
    "--quiet",
    "--no-prompt",
    ...(options.flags ?? []),
    script,
    ...(options.args ?? []),
  ];
  return new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: options.stdin ?? "null",
    stdout: "piped",
    stderr: options.stderr ?? "inherit",
  });
}

/** `setpriv` arguments that run a command without CAP_NET_RAW. */
export const DROP_NET_RAW: readonly string[] = [
  "setpriv",
  "--inh-caps=-all",
  "--ambient-caps=-all",
  "--bounding-set=-net_raw",
];

/**
 * Runs `script` in a child Deno (as {@linkcode denoRun}), waits at most 30 s
 * for it to exit successfully (a child that hangs is killed), and returns
 * the last line of its output parsed as JSON.
 */
export async function denoJson(
  script: string,
  options: { flags?: string[]; args?: string[]; prefix?: string[] } = {},
): Promise<Record<string, unknown>> {
  const what = [script.split("/").at(-1), ...(options.args ?? [])].join(" ");
  const child = denoRun(script, { ...options, stderr: "piped" }).spawn();
  let out: Deno.CommandOutput;
  try {
    out = await deadline(child.output(), 30_000, `${what} to exit`);
  } catch (err) {
    child.kill("SIGKILL");
    await child.output();
    throw err;
  }
  const decoder = new TextDecoder();
  assert.ok(out.success, `${what} exited with ${out.code}: ${decoder.decode(out.stderr)}`);
  return JSON.parse(decoder.decode(out.stdout).trim().split("\n").at(-1)!);
}

/** Lower-case hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The bytes of an even-length hex string. */
export function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * Runs `python3 -c script args…` to completion, with `input` on stdin, and
 * returns its stdout; fails if it exits non-zero or runs past `ms`. With
 * `netns`, it runs in a fresh network namespace (`unshare --net`, needs
 * CAP_NET_ADMIN) after the shell commands `netns` (e.g. `ip link set lo up`);
 * the namespace goes away with the process.
 */
export async function pythonOutput(
  script: string,
  args: string[] = [],
  options: { input?: string; netns?: string; ms?: number } = {},
): Promise<string> {
  const argv = options.netns === undefined ? ["python3", "-c", script, ...args] : [
    "unshare",
    "--net",
    "sh",
    "-c",
    `${options.netns} && exec python3 -c "$@"`,
    "sh",
    script,
    ...args,
  ];
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(options.input ?? ""));
  await writer.close();
  let out: Deno.CommandOutput;
  try {
    out = await deadline(child.output(), options.ms ?? 30_000, "a python3 peer");
  } catch (e) {
    child.kill("SIGKILL");
    await child.status;
    throw e;
  }
  if (!out.success) throw new Error(`python3 exited with code ${out.code}`);
  return new TextDecoder().decode(out.stdout);
}

let fcntl: ((fd: number, cmd: number) => number) | undefined;

/** Whether `fd` is open, asked with `fcntl(F_GETFD)`, which opens nothing (needs --allow-ffi). */
export function isOpenFd(fd: number): boolean {
  fcntl ??= Deno.dlopen("libc.so.6", {
    fcntl: { parameters: ["i32", "i32"], result: "i32" },
  }).symbols.fcntl;
  const F_GETFD = 1;
  return fcntl(fd, F_GETFD) >= 0;
}

/**
 * How many descriptors below 65,536 are open. It opens nothing while it
 * counts (a listing of /proc through `ls` would count that child's pipes), so
 * it is exact.
 */
export function descriptorCount(): number {
  let n = 0;
  for (let fd = 0; fd < 65536; fd++) if (isOpenFd(fd)) n++;
  return n;
}

let affinity:
  | { get(pid: number, mask: Uint8Array): number; set(pid: number, mask: Uint8Array): number }
  | undefined;

/**
 * Runs `body` with this (the JS) thread on CPU 0 and process `pid` on CPU 1,
 * so the peer's answers never come from preempting this thread on a shared
 * CPU, and returns how many socket events the engine reported meanwhile: a
 * receive that waits is woken by one, a receive that finds its record (or
 * spins until it comes) is not. Returns null, running nothing, on a machine
 * with fewer than two CPUs.
 */
export async function engineEventsOnSeparateCpus(
  pid: number,
  body: () => Promise<void>,
): Promise<number | null> {
  affinity ??= (() => {
    const lib = Deno.dlopen("libc.so.6", {
      sched_getaffinity: { parameters: ["i32", "usize", "buffer"], result: "i32" },
      sched_setaffinity: { parameters: ["i32", "usize", "buffer"], result: "i32" },
    }).symbols;
    return {
      get: (pid: number, mask: Uint8Array) => lib.sched_getaffinity(pid, BigInt(mask.length), mask),
      set: (pid: number, mask: Uint8Array) => lib.sched_setaffinity(pid, BigInt(mask.length), mask),
    };
  })();
  const saved = new Uint8Array(128);
  if (affinity.get(0, saved) !== 0) throw new Error("sched_getaffinity failed");
  if ((saved[0] & 3) !== 3) return null;
  const cpu = (n: number) => {
    const mask = new Uint8Array(128);
    mask[0] = 1 << n;
    return mask;
  };
  if (affinity.set(pid, cpu(1)) !== 0) throw new Error(`cannot move process ${pid} to CPU 1`);
  if (affinity.set(0, cpu(0)) !== 0) throw new Error("cannot move this thread to CPU 0");
  const reactor = theReactor();
  try {
    const before = reactor.eventCount;
    await body();
    return reactor.eventCount - before;
  } finally {
    affinity.set(0, saved);
  }
}

/**
 * Checks what `busyPoll` is for, given `eventsDuring(busyPoll)`, which runs
 * `trips` round trips against a peer through
 * {@linkcode engineEventsOnSeparateCpus} and returns its count: without
 * busyPoll every reply is waited for (an engine event each), with the
 * largest budget (so a slow machine still answers within it) almost none
 * is. On a machine with one CPU it reports an ignored step instead.
 */
export async function assertBusyPollSparesWaits(
  t: Deno.TestContext,
  trips: number,
  eventsDuring: (busyPoll?: number) => Promise<number | null>,
): Promise<void> {
  const waited = await eventsDuring();
  if (waited === null) {
    await t.step({ name: "needs two CPUs (skipped: this machine has one)", ignore: true, fn() {} });
    return;
  }
  const spun = await eventsDuring(10_000);
  assert.ok(waited >= trips * 0.9, `${waited} engine events for ${trips} replies waited for`);
  assert.ok(spun !== null && spun <= trips * 0.1, `${spun} events for ${trips} replies, busyPoll`);
}

/** The descriptors of this process, by number, with what each points at. */
export function fdTable(): Map<number, string> {
  // Read by a child: Deno 2.9 asks for --allow-all to read /proc directly.
  const script = `cd /proc/${Deno.pid}/fd && for f in *; do echo "$f $(readlink "$f")"; done`;
  const out = new Deno.Command("sh", { args: ["-c", script], stderr: "null" }).outputSync();
  const table = new Map<number, string>();
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    const [fd, target] = line.split(" ");
    if (target) table.set(Number(fd), target);
  }
  return table;
}

/**
 * How many of this process's descriptors are sockets: what the engine opens.
 * (The whole count also moves with Deno's own cache files.)
 */
export function socketFdCount(): number {
  return [...fdTable().values()].filter((target) => target.startsWith("socket:")).length;
}

let fileCalls:
  | {
    open(path: Uint8Array, flags: number): number;
    close(fd: number): number;
    getrlimit(resource: number, limit: Uint8Array): number;
    setrlimit(resource: number, limit: Uint8Array): number;
  }
  | undefined;

/** Test-only libc calls the package has no reason to offer (needs --allow-ffi). */
function files(): NonNullable<typeof fileCalls> {
  return fileCalls ??= Deno.dlopen("libc.so.6", {
    open: { parameters: ["buffer", "i32"], result: "i32" },
    close: { parameters: ["i32"], result: "i32" },
    getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
    setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  }).symbols;
}

/** Opens `path` read-only, close-on-exec, as a bare descriptor to pass around. */
export function openFd(path: string): number {
  const O_RDONLY_CLOEXEC = 0o2000000;
  const fd = files().open(new TextEncoder().encode(path + "\0"), O_RDONLY_CLOEXEC);
  assert.ok(fd >= 0, `open ${path} failed`);
  return fd;
}

/** Closes a descriptor from {@linkcode openFd}. */
export function closeFd(fd: number): void {
  files().close(fd);
}

/** The text of the file behind descriptor `fd`, reopened through /proc. */
export function fdText(fd: number): string {
  return procText(`/proc/${Deno.pid}/fd/${fd}`);
}

/** Whether descriptor `fd` of this process is close-on-exec. */
export function isCloseOnExec(fd: number): boolean {
  const info = procText(`/proc/${Deno.pid}/fdinfo/${fd}`);
  return (parseInt(/^flags:\s+([0-7]+)/m.exec(info)![1], 8) & 0o2000000) !== 0;
}

/**
 * Runs `body` (synchronously) with this process's limit of open files
 * lowered so that exactly `room` more descriptors fit, the lowest free
 * numbers, then puts the limit back: a receive of a queued record completes
 * synchronously, so it runs under the lower limit (needs --allow-ffi).
 */
export function withDescriptorRoom<T>(room: number, body: () => T): T {
  const RLIMIT_NOFILE = 7;
  const limit = new BigUint64Array(2);
  assert.equal(files().getrlimit(RLIMIT_NOFILE, new Uint8Array(limit.buffer)), 0);
  let free = 0, n = 0;
  for (; free < room; n++) if (!isOpenFd(n)) free++;
  const lowered = new BigUint64Array([BigInt(n), limit[1]]);
  assert.equal(files().setrlimit(RLIMIT_NOFILE, new Uint8Array(lowered.buffer)), 0);
  try {
    return body();
  } finally {
    files().setrlimit(RLIMIT_NOFILE, new Uint8Array(limit.buffer));
  }
}

/** Whether this machine should give the engine its io_uring doorbell. */
export function uringExpected(): boolean {
  const [major, minor] = Deno.osRelease().split(".").map(Number);
  if (major < 6 || (major === 6 && minor < 1)) return false;
  try {
    if (Deno.readTextFileSync("/proc/sys/kernel/io_uring_disabled").trim() !== "0") return false;
  } catch {
    // Kernels before 6.6 have no such switch: io_uring is on.
  }
  // deno-lint-ignore no-explicit-any
  return typeof (globalThis as any).process?.binding === "function";
}
