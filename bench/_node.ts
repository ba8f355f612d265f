/**
 * Node.js contenders for the bench: an npm package installed into a
 * temporary directory for one run (never into the repository), and the
 * command line that runs a Node peer script with that package on its
 * `NODE_PATH`.
 *
 * Anything missing (node, npm, the network, a prebuilt binary for this
 * platform) makes {@linkcode installNodePackage} return the reason instead of
 * throwing, so a bench prints one line saying its Node rows are skipped and
 * goes on.
 *
 * @example Install node-unix-socket for a run, or learn why not
 * ```ts ignore
 * import { installNodePackage, nodeArgv } from "./_node.ts";
 *
 * const node = await installNodePackage("node-unix-socket");
 * if ("skipped" in node) console.error(`Node rows skipped: ${node.skipped}`);
 * else {
 *   console.log(nodeArgv(node, "bench/node/seqpacket_peer.mjs", ["sink", "/tmp/x.sock", "10"]));
 *   node.remove();
 * }
 * ```
 *
 * @module
 */

/** A package installed for this run. */
export interface NodeInstall {
  /** The node executable that loads it. */
  node: string;
  /** The temporary directory holding `node_modules/`. */
  dir: string;
  /** The installed package's version. */
  version: string;
  /** Deletes the temporary directory. */
  remove(): void;
}

/** Options of {@linkcode installNodePackage}. */
export interface NodeInstallOptions {
  /** The node executable (default `"node"`, found on PATH). */
  node?: string;
  /** The npm executable (default `"npm"`, found on PATH). */
  npm?: string;
  /** Give up on npm after this long (default 45 s). */
  timeoutMs?: number;
  /** Install from npm's cache only, without touching the network. */
  offline?: boolean;
}

/**
 * Installs `name` with npm into a fresh temporary directory and checks that
 * node can load it.
 *
 * @param name The npm package, e.g. `"node-unix-socket"`.
 * @param options Which node and npm, a time limit, offline.
 * @returns The install, or `{ skipped }` with a one-line reason; the directory is removed then.
 */
export async function installNodePackage(
  name: string,
  options: NodeInstallOptions = {},
): Promise<NodeInstall | { skipped: string }> {
  const node = options.node ?? "node";
  const npm = options.npm ?? "npm";
  const timeoutMs = options.timeoutMs ?? 45_000;
  const nodeVersion = await run(node, ["--version"], 10_000);
  if (!nodeVersion.ok) return { skipped: `node is not available (${nodeVersion.text})` };
  const npmVersion = await run(npm, ["--version"], 30_000);
  if (!npmVersion.ok) return { skipped: `npm is not available (${npmVersion.text})` };

  const dir = Deno.makeTempDirSync({ prefix: "bsd-bench-node-" });
  const remove = (): void => {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch { /* already gone */ }
  };
  const args = [
    "install",
    "--prefix",
    dir,
    "--no-save",
    "--no-audit",
    "--no-fund",
    "--no-update-notifier",
    "--loglevel=error",
    "--ignore-scripts",
    "--fetch-retries=1",
    "--fetch-timeout=20000",
    ...(options.offline ? ["--offline"] : []),
    name,
  ];
  const installed = await run(npm, args, timeoutMs);
  if (!installed.ok) {
    remove();
    return { skipped: `npm install ${name} failed (${installed.text})` };
  }
  const probe = `console.log(require(${JSON.stringify(name + "/package.json")}).version);` +
    `require(${JSON.stringify(name)});`;
  const loaded = await run(node, ["-e", probe], 30_000, { NODE_PATH: `${dir}/node_modules` });
  if (!loaded.ok) {
    remove();
    return { skipped: `node cannot load ${name} (${loaded.text})` };
  }
  return { node, dir, version: loaded.text, remove };
}

/**
 * The command line that runs a Node peer script with the installed package
 * on its module path.
 *
 * @param install What {@linkcode installNodePackage} returned.
 * @param script The script's path.
 * @param args Its arguments.
 * @returns The argv, starting with `env` so the peer's environment is set.
 */
export function nodeArgv(install: NodeInstall, script: string, args: string[]): string[] {
  return ["env", `NODE_PATH=${install.dir}/node_modules`, install.node, script, ...args];
}

/** Runs a command to completion; `text` is its trimmed stdout, or why it failed. */
async function run(
  cmd: string,
  args: string[],
  timeoutMs: number,
  env?: Record<string, string>,
): Promise<{ ok: boolean; text: string }> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, {
      args,
      env,
      stdin: "null",
      signal: AbortSignal.timeout(timeoutMs),
    }).output();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return { ok: false, text: `${cmd} not found on PATH` };
    return { ok: false, text: err instanceof Error ? err.message : String(err) };
  }
  const decode = (b: Uint8Array): string => new TextDecoder().decode(b).trim();
  if (out.success) return { ok: true, text: decode(out.stdout) };
  const why = out.signal
    ? `killed by ${out.signal} after the ${timeoutMs / 1000} s limit`
    : `exit status ${out.code}`;
  const last = decode(out.stderr).split("\n").filter((l) => l.trim()).at(-1);
  return { ok: false, text: last ? `${why}: ${last}` : why };
}
