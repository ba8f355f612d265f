// The face an engine shows in a public constructor's signature: a brand and
// nothing else, so that the engine's own types (FdSocket and the rest) stay
// out of the public API. Only this package makes engines; a constructor
// narrows what it is given with `isEngine` and `instanceof`. Private.

/** The brand every engine carries. */
export const ENGINE: unique symbol = Symbol("bsd-sockets engine");

/** An engine of kind `K`, as a public signature shows it. */
export interface Engine<K extends string> {
  /** The kind of engine. */
  readonly [ENGINE]: K;
}

/** Whether `x` is one of this package's engines rather than the Deno object a constructor takes. */
export function isEngine<D extends object, K extends string>(x: D | Engine<K>): x is Engine<K> {
  return ENGINE in x;
}
