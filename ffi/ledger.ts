// The fd ledger: how many descriptors the engine holds open for sockets,
// which ones live sockets own (so fromFd refuses to adopt one twice), and the
// finalizer that closes the descriptor of a socket dropped unclosed.

import { libc } from "./libc.ts";

/** What the ledger keeps of a socket: its descriptor, never the socket itself. */
export interface Owned {
  readonly fd: number;
  readonly closed: boolean;
}

interface Entry {
  held: Owned;
  release(held: Owned): void;
}

let openCount = 0;
const ownedFds = new Set<number>();

// The entry holds no reference to the socket, or the socket could never be collected.
const finalizer = new FinalizationRegistry<Entry>(({ held, release }) => {
  if (!held.closed) release(held);
});

/** How many descriptors the engine holds open for sockets (for leak tests). */
export function openSocketCount(): number {
  return openCount;
}

/** Whether a live socket of this module owns `fd`. */
export function isOwnedFd(fd: number): boolean {
  return ownedFds.has(fd);
}

/**
 * Enters `held.fd` as owned by `owner`; should `owner` be collected before
 * {@linkcode disown}, `release(held)` runs and must end in
 * {@linkcode closeOwned}.
 */
export function own<H extends Owned>(owner: object, held: H, release: (held: H) => void): void {
  openCount++;
  ownedFds.add(held.fd);
  finalizer.register(owner, { held, release: release as (held: Owned) => void }, held);
}

/** The owner closes `held` itself: the finalizer has nothing left to do. */
export function disown(held: Owned): void {
  finalizer.unregister(held);
}

/** Closes an owned descriptor and strikes it from the ledger. */
export function closeOwned(fd: number): void {
  ownedFds.delete(fd);
  libc().close(fd);
  openCount--;
}

/** Closes received descriptors nobody will see. */
export function closeFds(fds: number[] | undefined): void {
  if (!fds) return;
  for (const fd of fds) libc().close(fd);
}
