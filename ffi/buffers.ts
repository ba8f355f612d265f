// Buffers as C sees them: the address of a buffer's bytes, and the pinning
// that keeps a buffer reached only through a struct alive until its call
// returns. The buffers arrive checked (`checkBuffer` in _internal/checks.ts).
// Pure: importing this file loads no native code (pointerOf asks the runtime
// for an address, which needs --allow-ffi only when called).

/** The address of `b`'s first byte (0 for an empty buffer). */
export function pointerOf(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
}

/**
 * Buffers the kernel reaches only through a pointer inside a struct (msghdr,
 * mmsghdr, sock_fprog). Nothing else may reference them once their address
 * is taken, and a GC before the call would free them,
 * so each is pinned here from creation until the call that reads it returns.
 */
const pinned = new Set<Uint8Array>();

/** Runs `call` with `buffers` pinned. */
export function withPinned<T>(buffers: readonly Uint8Array[], call: () => T): T {
  for (const b of buffers) pinned.add(b);
  try {
    return call();
  } finally {
    for (const b of buffers) pinned.delete(b);
  }
}
