// The receive arena: recvmmsg slots (data, sender names, control data, the
// iovecs and mmsghdrs that point at them) built once, their pointers computed
// once, and shared by every socket, since a receive is a synchronous call and
// each fill's records are copied out before the next call (at the latest:
// read(p) leaves them in place until then, see Arena.lend).

import { AF_UNIX, SO_SNDBUF, SOCK_CLOEXEC, SOCK_DGRAM, SOL_SOCKET } from "./constants.ts";
import { type Control, CONTROL_SIZE, type ControlData, parseControl } from "./control.ts";
import { pointerOf } from "./buffers.ts";
import { libc } from "./libc.ts";
import { IOVEC, MMSGHDR, MSGHDR, SOCKADDR_STORAGE } from "./structs.ts";

/**
 * A read-ahead slot holds any IP record whole: a UDP payload, a raw IPv4
 * packet and a raw IPv6 payload are at most 65,535 bytes, and a link-layer
 * frame adds its header to an IPv6 packet of that size.
 */
export const SLOT_SIZE = 65536 + 256;
/** The virtual memory the Unix arena may take; the kernel commits only the pages records touch. */
const UNIX_ARENA_BYTES = 128 << 20;

/** `slots` recvmmsg slots of `slotSize` bytes each, with room for names and control data. */
export class Arena {
  readonly slots: number;
  readonly slotSize: number;
  /** The records, `slotSize` bytes apart. */
  readonly data: Uint8Array;
  /** The mmsghdr array recvmmsg takes. */
  readonly headers: Uint8Array;
  readonly #headersView: DataView;
  // The kernel reaches these only through the headers' pointers: the fields keep them alive.
  readonly #names: Uint8Array;
  readonly #controlView: DataView;
  readonly #iovecs: Uint8Array;

  constructor(slots: number, slotSize: number) {
    this.slots = slots;
    this.slotSize = slotSize;
    this.data = new Uint8Array(slots * slotSize);
    this.#names = new Uint8Array(slots * SOCKADDR_STORAGE.size);
    const controlBytes = new Uint8Array(slots * CONTROL_SIZE);
    this.#controlView = new DataView(controlBytes.buffer);
    this.#iovecs = new Uint8Array(slots * IOVEC.size);
    this.headers = new Uint8Array(slots * MMSGHDR.size);
    this.#headersView = new DataView(this.headers.buffer);
    const iov = new DataView(this.#iovecs.buffer);
    const data = pointerOf(this.data), names = pointerOf(this.#names);
    const control = pointerOf(controlBytes), iovecs = pointerOf(this.#iovecs);
    for (let i = 0; i < slots; i++) {
      const v = i * IOVEC.size;
      iov.setBigUint64(v + IOVEC.base, data + BigInt(i * slotSize), true);
      iov.setBigUint64(v + IOVEC.len, BigInt(slotSize), true);
      const h = i * MMSGHDR.size + MMSGHDR.hdr;
      const hv = this.#headersView;
      hv.setBigUint64(h + MSGHDR.name, names + BigInt(i * SOCKADDR_STORAGE.size), true);
      hv.setBigUint64(h + MSGHDR.iov, iovecs + BigInt(v), true);
      hv.setBigUint64(h + MSGHDR.iovlen, 1n, true);
      hv.setBigUint64(h + MSGHDR.control, control + BigInt(i * CONTROL_SIZE), true);
    }
  }

  /**
   * Copies out the records a socket left in this arena as views (see
   * {@linkcode Arena.lend}); called before the arena is filled again.
   */
  #lender: (() => void) | undefined;

  /**
   * Lets a socket keep its last fill's records as views into this arena
   * instead of copies: `materialise` copies them out, and runs before the
   * next call that fills the arena, whichever socket makes it.
   */
  lend(materialise: () => void): void {
    this.#lender = materialise;
  }

  /** Slots whose in/out lengths the kernel rewrote in the last call. */
  #dirty = 0;
  /** The control length every clean slot holds. */
  #controlLength = -1;

  /**
   * Resets the in/out lengths before a call of `n` slots. Only the slots the
   * last call filled were rewritten by the kernel, so only those are reset,
   * unless the control length changes (another kind of socket uses the arena).
   */
  prepare(n: number, wantControl: boolean): void {
    const lender = this.#lender;
    if (lender !== undefined) {
      this.#lender = undefined;
      lender();
    }
    const v = this.#headersView;
    const controlLength = wantControl ? CONTROL_SIZE : 0;
    const upto = controlLength === this.#controlLength ? Math.min(this.#dirty, n) : this.slots;
    for (let i = 0; i < upto; i++) {
      const h = i * MMSGHDR.size + MMSGHDR.hdr;
      v.setUint32(h + MSGHDR.namelen, SOCKADDR_STORAGE.size, true);
      // msg_controllen is a size_t: its high half stays 0.
      v.setUint32(h + MSGHDR.controllen, controlLength, true);
      v.setUint32(h + MSGHDR.controllen + 4, 0, true);
    }
    this.#controlLength = controlLength;
    // Slots past `n` that an earlier, wider call filled are still dirty.
    if (upto === this.slots || this.#dirty <= n) this.#dirty = 0;
  }

  /** Records how many slots the call that followed `prepare` filled. */
  filled(n: number): void {
    this.#dirty = Math.max(this.#dirty, n);
  }

  /** Slot `i`'s received length (`msg_len`). */
  length(i: number): number {
    return this.#headersView.getUint32(i * MMSGHDR.size + MMSGHDR.len, true);
  }

  /** Slot `i`'s `msg_flags`. */
  flags(i: number): number {
    return this.#headersView.getInt32(i * MMSGHDR.size + MMSGHDR.hdr + MSGHDR.flags, true);
  }

  /** Slot `i`'s control length (`msg_controllen`, a size_t never above CONTROL_SIZE). */
  controlLength(i: number): number {
    return this.#headersView.getUint32(i * MMSGHDR.size + MMSGHDR.hdr + MSGHDR.controllen, true);
  }

  /** Slot `i`'s sender name length (`msg_namelen`). */
  nameLength(i: number): number {
    return this.#headersView.getUint32(i * MMSGHDR.size + MMSGHDR.hdr + MSGHDR.namelen, true);
  }

  /** Slot `i`'s sender name. */
  name(i: number): Uint8Array {
    const base = i * SOCKADDR_STORAGE.size;
    return this.#names.subarray(base, base + SOCKADDR_STORAGE.size);
  }

  /** Whether slot `i`'s sender name is `name`, byte for byte. */
  sameName(i: number, length: number, name: Uint8Array): boolean {
    if (length !== name.length) return false;
    const names = this.#names, base = i * SOCKADDR_STORAGE.size;
    for (let k = 0; k < length; k++) if (names[base + k] !== name[k]) return false;
    return true;
  }

  /** Parses slot `i`'s `length` bytes of control data into `into` (see control.ts). */
  parseControl(i: number, length: number, control: Control | undefined, into: ControlData): void {
    parseControl(this.#controlView, i * CONTROL_SIZE, length, control, into);
  }
}

let sharedArena: Arena | undefined;
let unixArena: Arena | undefined;
const bigArenas = new Map<number, Arena>();

let unixRecordMax: number | undefined;

/**
 * The largest record a Unix socket can be sent by a sender without
 * CAP_NET_ADMIN: the sender's buffer bounds it, and no buffer set with
 * SO_SNDBUF passes twice `net.core.wmem_max`. Asked once of a socket of our
 * own, set past that ceiling (so no file is read).
 */
function largestUnixRecord(): number {
  if (unixRecordMax !== undefined) return unixRecordMax;
  const c = libc();
  let bytes = 0;
  const fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    const value = new Uint8Array(4);
    const length = new Uint8Array(4);
    new DataView(value.buffer).setInt32(0, 0x3fffffff, true);
    if (c.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, value, 4) === 0) {
      new DataView(length.buffer).setUint32(0, 4, true);
      if (c.getsockopt(fd, SOL_SOCKET, SO_SNDBUF, value, length) === 0) {
        bytes = new DataView(value.buffer).getInt32(0, true);
      }
    }
    c.close(fd);
  }
  return unixRecordMax = Math.max(SLOT_SIZE, bytes);
}

/**
 * The arena a receive of at most `maxSize` bytes reads into. Its slots past
 * the first hold records read ahead for later receives, whose `maxSize` is
 * not known yet, so each slot must hold any record whole: IP records fit
 * 64 KiB; Unix records can be as long as the sender's buffer, so the Unix
 * arena's slots are that large (virtual memory, committed only where written).
 */
export function arenaFor(maxSize: number, unix: boolean): Arena {
  if (unix) {
    const slotSize = largestUnixRecord();
    if (maxSize <= slotSize) {
      const slots = Math.max(2, Math.min(32, Math.floor(UNIX_ARENA_BYTES / slotSize)));
      return unixArena ??= new Arena(slots, slotSize);
    }
  } else if (maxSize <= SLOT_SIZE) return sharedArena ??= new Arena(32, SLOT_SIZE);
  // A receive larger than a slot reads one record into a buffer of its own
  // size; the last few sizes are kept so a loop of large receives allocates once.
  let arena = bigArenas.get(maxSize);
  if (!arena) {
    if (bigArenas.size >= 4) bigArenas.delete(bigArenas.keys().next().value!);
    arena = new Arena(1, maxSize);
    bigArenas.set(maxSize, arena);
  }
  return arena;
}
