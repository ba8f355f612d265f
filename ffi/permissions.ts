// Deno's permission model, honoured by the FFI socket types as the built-ins
// honour it, so FFI does not become a way around --allow-net/--allow-write.
// Checked with querySync before any system call; never prompts.

function requirePermission(
  descriptor: Deno.PermissionDescriptor,
  what: string,
  flag: string,
): void {
  if (Deno.permissions.querySync(descriptor).state !== "granted") {
    throw new Deno.errors.NotCapable(`Requires ${what}, run again with the ${flag} flag`);
  }
}

/** Net access to an IP host (`host:port` when a port is known). */
export function requireNet(hostname: string, port?: number): void {
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  const target = port === undefined ? host : `${host}:${port}`;
  requirePermission({ name: "net", host: target }, `net access to "${target}"`, "--allow-net");
}

/**
 * What Deno 2.9 asks of its own Unix sockets: read and write access to the
 * path and net access to `unix:<path>`; an abstract name needs unscoped net
 * access. An unnamed (autobound) socket needs nothing more than FFI.
 */
export function requireUnix(path: string): void {
  if (path === "") return;
  if (path.startsWith("\0")) {
    requirePermission(
      { name: "net" },
      "net access for an abstract Unix socket name",
      "--allow-net",
    );
    return;
  }
  requirePermission({ name: "read", path }, `read access to "${path}"`, "--allow-read");
  requirePermission({ name: "write", path }, `write access to "${path}"`, "--allow-write");
  requirePermission(
    { name: "net", host: `unix:${path}` },
    `net access to "unix:${path}"`,
    "--allow-net",
  );
}

/** Unscoped net access, for sockets that see every host (AF_PACKET). */
export function requireAnyNet(what: string): void {
  requirePermission({ name: "net" }, `net access to ${what}`, "--allow-net");
}

// A permission revoked while a socket is open takes effect on its next send,
// as with Deno's own sockets. Querying per send would cost more than the send,
// and Deno narrows a permission only through revoke and revokeSync, so both
// are counted: a check stays valid while the count is unchanged. An async
// revoke counts when called and again when done, so a send racing it checks
// once more after it has landed.
// The counting starts with the first permit, not at import: importing the
// module changes nothing global, and no permit exists to go stale before.
let revocations = 0;
let watching = false;

function watchRevocations(): void {
  if (watching) return;
  watching = true;
  const permissions = Deno.permissions as unknown as {
    revoke(desc: Deno.PermissionDescriptor): Promise<Deno.PermissionStatus>;
    revokeSync?(desc: Deno.PermissionDescriptor): Deno.PermissionStatus;
  };
  const revoke = permissions.revoke;
  permissions.revoke = function (desc) {
    revocations++;
    return revoke.call(this, desc).finally(() => revocations++);
  };
  const revokeSync = permissions.revokeSync;
  if (typeof revokeSync === "function") {
    permissions.revokeSync = function (desc) {
      try {
        return revokeSync.call(this, desc);
      } finally {
        revocations++;
      }
    };
  }
}

/** A permission check a socket keeps, valid until the next revocation. */
export interface Permit {
  /** The revocation count it was checked at; -1 before the first check. */
  checkedAt: number;
  /** Runs the check: throws `NotCapable` when the permission is missing. */
  check(): void;
}

/** A permit that needs no check (an unnamed peer, or a backend Deno checks itself). */
export const NO_CHECK: Permit = { checkedAt: Infinity, check() {} };

/** Makes a permit for `check`, checked on its first use. */
export function permit(check: () => void): Permit {
  watchRevocations();
  return { checkedAt: -1, check };
}

/** Runs `p`'s check unless nothing was revoked since it last passed. */
export function requirePermit(p: Permit): void {
  if (p.checkedAt === revocations || p.checkedAt === Infinity) return;
  p.check();
  p.checkedAt = revocations;
}

/**
 * The permit to send to a peer: Unix path permissions for a path (none for an
 * unnamed peer), net access to `host:port` for an IP endpoint.
 */
export function peerPermit(peer: { path: string } | { hostname: string; port: number }): Permit {
  if ("path" in peer) {
    const path = peer.path;
    return path === "" ? NO_CHECK : permit(() => requireUnix(path));
  }
  const { hostname, port } = peer;
  return permit(() => requireNet(hostname, port));
}
