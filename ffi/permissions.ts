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
