// Errors that raw IP and link-layer sockets word alike. Private to the package.

/**
 * The answer every socket type gives a send with no destination on a
 * socket that has none: `Deno.errors.NotConnected`, saying what to do.
 */
export function notConnected(call: string, label: string, how: string): Error {
  return new Deno.errors.NotConnected(`${call} ${label}: socket is not connected; ${how}`);
}

/** Adds `hint` to a PermissionDenied from opening a socket; other errors pass unchanged. */
export function explainDenied(err: unknown, hint: string): unknown {
  if (err instanceof Deno.errors.PermissionDenied) err.message += `: ${hint}`;
  return err;
}
