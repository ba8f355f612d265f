// The socket file a listener or datagram socket created: remembered right
// after bind by device and inode, so closing removes that file and never one
// that replaced it. Private to the package.

/** The socket file just bound: its absolute name, device and inode. */
export interface OwnedSocketFile {
  path: string;
  dev: number;
  ino: number | null;
}

/**
 * Remembers the file just bound at `path`; `null` for an unnamed socket, an
 * abstract name, or a file already gone.
 */
export function ownSocketFile(path: string): OwnedSocketFile | null {
  if (path === "" || path.startsWith("\0")) return null;
  let absolute = path;
  if (!path.startsWith("/")) {
    // Removing it later must not depend on the working directory then.
    try {
      absolute = `${Deno.cwd()}/${path}`;
    } catch {
      // No read access to the cwd: the name stays relative, the identity still holds.
    }
  }
  try {
    const st = Deno.lstatSync(absolute);
    return { path: absolute, dev: st.dev, ino: st.ino };
  } catch {
    return null;
  }
}

/** Whether `st` describes the remembered file (same device and inode). */
export function isOwnSocketFile(st: Deno.FileInfo, owned: OwnedSocketFile | null): boolean {
  return owned !== null && st.dev === owned.dev && st.ino === owned.ino;
}

/** Removes the remembered file if it is still the one this socket created. */
export function removeOwnSocketFile(owned: OwnedSocketFile | null): void {
  if (owned === null) return;
  try {
    if (isOwnSocketFile(Deno.lstatSync(owned.path), owned)) Deno.removeSync(owned.path);
  } catch {
    // Already gone, or no longer ours to look at: leave it.
  }
}
