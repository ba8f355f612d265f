// The destination and permission policy of the packet sockets that take a
// destination per send (datagram, raw): each destination is checked and
// encoded once, and its permission is checked again only after a revocation.

import { type Permit, requirePermit } from "../ffi/permissions.ts";

/** A destination as checked once, with the permission to send there. */
export interface CheckedDestination {
  permit: Permit;
}

/** How a socket type reads its destinations. */
export interface DestinationCodec<D extends CheckedDestination> {
  /** The cache key of `to`, from well-typed fields only; `""` to never remember it. */
  key(to: object): string;
  /** Checks and encodes `to`; throws `TypeError` or `RangeError` for a bad one. */
  make(to: object): D;
}

/**
 * The destinations one socket sends to. The same address object again costs
 * one comparison; a new one with a known key, a map lookup.
 */
export class DestinationCache<D extends CheckedDestination> {
  readonly #entries = new Map<string, D>();
  readonly #codec: DestinationCodec<D>;
  readonly #size: number;
  #lastTo: object | undefined;
  #last: D | undefined;

  /**
   * @param codec How to key, check and encode a destination.
   * @param size How many destinations to remember before starting afresh.
   */
  constructor(codec: DestinationCodec<D>, size: number) {
    this.#codec = codec;
    this.#size = size;
  }

  /**
   * The checked destination for `to`, its permission granted.
   *
   * @param to The address object, already known to be an object.
   * @returns The destination.
   * @throws {Deno.errors.NotCapable} When its permission is missing or was revoked.
   */
  resolve(to: object): D {
    let destination = to === this.#lastTo ? this.#last : undefined;
    if (destination === undefined) {
      const key = this.#codec.key(to);
      destination = key === "" ? undefined : this.#entries.get(key);
      if (destination === undefined) {
        destination = this.#codec.make(to);
        if (this.#entries.size >= this.#size) this.#entries.clear();
        if (key !== "") this.#entries.set(key, destination);
      }
      this.#lastTo = to;
      this.#last = destination;
    }
    requirePermit(destination.permit);
    return destination;
  }
}
