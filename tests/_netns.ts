// Network namespaces and veth pairs for tests and benchmarks that need a
// network of their own. Every name is unique to this process, and every
// namespace and link is deleted when disposed, so a failed test leaves
// nothing behind and two runs never collide.

import { killOnDispose } from "./_helpers.ts";

let counter = 0;

/** A name no other namespace or link of this machine has: prefix, pid, counter. */
function uniqueName(prefix: string): string {
  // Interface names are at most 15 bytes: keep the pid's last 6 digits.
  return `${prefix}${Deno.pid % 1_000_000}${(counter++).toString(36)}`;
}

/** Runs a command to completion; throws with its stderr when it fails. */
function run(cmd: string[]): string {
  const out = new Deno.Command(cmd[0], { args: cmd.slice(1), stdin: "null" }).outputSync();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`${cmd.join(" ")} failed (${out.code}): ${err}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/** A network namespace made with `ip netns add`, deleted on dispose. */
export class NetNs implements Disposable {
  /** The namespace's name, as `ip netns` knows it. */
  readonly name: string;

  /**
   * Makes a namespace with its loopback up.
   *
   * @param pingGroups When given, `net.ipv4.ping_group_range` inside it (e.g. `"0 2147483647"`).
   * @param prefix The start of its name (a task's own prefix), default `bsd-t-`.
   */
  constructor(options: { pingGroups?: string; prefix?: string } = {}) {
    this.name = uniqueName(options.prefix ?? "bsd-t-");
    run(["ip", "netns", "add", this.name]);
    try {
      this.ip("link", "set", "lo", "up");
      if (options.pingGroups !== undefined) {
        this.exec(["sysctl", "-qw", `net.ipv4.ping_group_range=${options.pingGroups}`]);
      }
    } catch (err) {
      this[Symbol.dispose]();
      throw err;
    }
  }

  /** `argv` prefixed to run inside this namespace. */
  wrap(argv: readonly string[]): string[] {
    return ["ip", "netns", "exec", this.name, ...argv];
  }

  /** Runs `argv` inside the namespace and returns its stdout. */
  exec(argv: string[]): string {
    return run(this.wrap(argv));
  }

  /**
   * Starts `argv` inside the namespace with stdout piped (and stderr too when
   * asked); disposing of it kills it and waits for it to exit.
   */
  spawn(
    argv: string[],
    options: { stderr?: "piped" | "inherit" } = {},
  ): Deno.ChildProcess & AsyncDisposable {
    const [cmd, ...args] = this.wrap(argv);
    const child = new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: options.stderr ?? "inherit",
    }).spawn();
    return killOnDispose(child);
  }

  /** `ip -n NAME args…`. */
  ip(...args: string[]): string {
    return run(["ip", "-n", this.name, ...args]);
  }

  /** Deletes the namespace (and with it every interface inside). */
  [Symbol.dispose](): void {
    try {
      run(["ip", "netns", "del", this.name]);
    } catch { /* already gone */ }
  }
}

/** One end of a veth pair: its name, index and MAC address. */
export interface VethEnd {
  name: string;
  ifindex: number;
  mac: Uint8Array;
  /** The namespace it lives in, or undefined for this process's own. */
  ns?: NetNs;
}

/**
 * A veth pair with end `a` in this process's namespace (or `aNs`) and end
 * `b` in `bNs`; both up. Deleting one end deletes the pair.
 */
export class VethPair implements Disposable {
  readonly a: VethEnd;
  readonly b: VethEnd;

  constructor(bNs: NetNs, aNs?: NetNs) {
    const a = uniqueName("bva");
    const b = uniqueName("bvb");
    const ip = (ns: NetNs | undefined, ...args: string[]): string =>
      ns ? ns.ip(...args) : run(["ip", ...args]);
    ip(aNs, "link", "add", a, "type", "veth", "peer", "name", b, "netns", bNs.name);
    try {
      if (aNs === undefined) {
        // No IPv6 (no router solicitations, no addresses) and no forwarding:
        // what arrives on the end in the test's own namespace goes no further.
        run(["sysctl", "-qw", `net.ipv6.conf.${a}.disable_ipv6=1`]);
        run(["sysctl", "-qw", `net.ipv4.conf.${a}.forwarding=0`]);
      }
      ip(aNs, "link", "set", a, "up");
      bNs.ip("link", "set", b, "up");
      this.a = { ...describeLink(ip(aNs, "-j", "link", "show", a)), ns: aNs };
      this.b = { ...describeLink(bNs.ip("-j", "link", "show", b)), ns: bNs };
    } catch (err) {
      try {
        ip(aNs, "link", "del", a);
      } catch { /* never made */ }
      throw err;
    }
  }

  /** Deletes the pair. */
  [Symbol.dispose](): void {
    try {
      if (this.a.ns) this.a.ns.ip("link", "del", this.a.name);
      else run(["ip", "link", "del", this.a.name]);
    } catch { /* gone with its namespace */ }
  }
}

function describeLink(json: string): Omit<VethEnd, "ns"> {
  const [link] = JSON.parse(json) as { ifname: string; ifindex: number; address: string }[];
  return {
    name: link.ifname,
    ifindex: link.ifindex,
    mac: new Uint8Array(link.address.split(":").map((h) => parseInt(h, 16))),
  };
}
