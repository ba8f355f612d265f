// AF_PACKET's memory-mapped receive ring (TPACKET_V3), as tcpdump uses it:
// the kernel copies each frame into a block of a ring shared with this
// process, and wakes the socket once per block (when it is full or its
// timeout expires), so a capture costs no system call per frame.
//
// The layouts (tpacket_req3, tpacket_block_desc, tpacket3_hdr) are in structs.ts.

import {
  EAGAIN,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
  TP_STATUS_KERNEL,
  TP_STATUS_USER,
  TPACKET_V3,
} from "./constants.ts";
import { errnoError } from "./errors.ts";
import { errno, libc } from "./libc.ts";
import type { FdSocket, Received, RecordSource } from "./socket.ts";
import { SOCKADDR_LL, TPACKET3_HDR, TPACKET_BLOCK_DESC, TPACKET_REQ3 } from "./structs.ts";

/** Each block: 1 MiB holds any frame (a 64 KiB GRO frame included) and thousands of small ones. */
const BLOCK_SIZE = 1 << 20;
/** The granularity the kernel checks frames against; any divisor of the block size. */
const FRAME_SIZE = 2048;
/** A block that is not full is handed over after this long, so a quiet link still delivers. */
const BLOCK_TIMEOUT_MS = 8;
const MIN_BLOCKS = 4;
/** Records moved to the inbox per fill, so it never grows to a whole block's count. */
const BATCH = 64;

const MAP_FAILED = 0xffffffffffffffffn;

/** The ring size for a requested buffer size: whole blocks, at least four. */
export function ringBlocks(bytes: number | undefined): number {
  return Math.max(MIN_BLOCKS, Math.ceil((bytes ?? 0) / BLOCK_SIZE));
}

/**
 * Gives `sock` (an AF_PACKET socket, not yet bound) a receive ring of
 * `blocks` blocks; its receives read frames from the ring from then on,
 * their senders named by the socket's own decoder.
 */
export function useReceiveRing<A>(sock: FdSocket<A>, blocks: number): void {
  sock.setOption("packetVersion", TPACKET_V3);
  const req = new Uint8Array(TPACKET_REQ3.size);
  const v = new DataView(req.buffer);
  v.setUint32(TPACKET_REQ3.blockSize, BLOCK_SIZE, true);
  v.setUint32(TPACKET_REQ3.blockNr, blocks, true);
  v.setUint32(TPACKET_REQ3.frameSize, FRAME_SIZE, true);
  v.setUint32(TPACKET_REQ3.frameNr, (BLOCK_SIZE / FRAME_SIZE) * blocks, true);
  v.setUint32(TPACKET_REQ3.retireBlkTov, BLOCK_TIMEOUT_MS, true);
  sock.setOption("packetReceiveRing", req);
  sock.useSource((fd, decode) => new Ring(fd, blocks, decode, sock.label));
}

class Ring<A> implements RecordSource<A> {
  readonly #base: Deno.PointerObject;
  readonly #length: number;
  readonly #blocks: number;
  readonly #decode: (name: Uint8Array, length: number) => A | null;
  #bytes: Uint8Array;
  #view: DataView;
  #words: Int32Array;
  /** The block being read, the packets left in it, and the next packet's offset. */
  #block = 0;
  #left = -1;
  #offset = 0;

  constructor(
    fd: number,
    blocks: number,
    decode: (name: Uint8Array, length: number) => A | null,
    label: string,
  ) {
    this.#length = BLOCK_SIZE * blocks;
    const base = libc().mmap(
      null,
      BigInt(this.#length),
      PROT_READ | PROT_WRITE,
      MAP_SHARED,
      fd,
      0n,
    );
    if (base === null || BigInt(Deno.UnsafePointer.value(base)) === MAP_FAILED) {
      throw errnoError(errno(), "mmap", label);
    }
    this.#base = base;
    this.#blocks = blocks;
    this.#decode = decode;
    // A view of the mapping itself: read in place, copied out per frame, and
    // dropped before the mapping goes.
    const buffer = Deno.UnsafePointerView.getArrayBuffer(base, this.#length);
    this.#bytes = new Uint8Array(buffer);
    this.#view = new DataView(buffer);
    this.#words = new Int32Array(buffer);
  }

  fill(inbox: Received<A>[]): number {
    let moved = 0;
    while (moved < BATCH) {
      const block = this.#block * BLOCK_SIZE;
      const statusWord = (block + TPACKET_BLOCK_DESC.blockStatus) / 4;
      if (this.#left < 0) {
        // Atomics: the kernel publishes a block by its status word, after
        // the frames; read the status before them.
        if ((Atomics.load(this.#words, statusWord) & TP_STATUS_USER) === 0) break;
        this.#left = this.#view.getUint32(block + TPACKET_BLOCK_DESC.numPkts, true);
        this.#offset = block +
          this.#view.getUint32(block + TPACKET_BLOCK_DESC.offsetToFirstPkt, true);
      }
      while (this.#left > 0 && moved < BATCH) {
        inbox.push(this.#frame(this.#offset));
        this.#offset += this.#view.getUint32(this.#offset + TPACKET3_HDR.nextOffset, true);
        this.#left--;
        moved++;
      }
      if (this.#left === 0) {
        Atomics.store(this.#words, statusWord, TP_STATUS_KERNEL);
        this.#block = (this.#block + 1) % this.#blocks;
        this.#left = -1;
      }
    }
    return moved > 0 ? 0 : EAGAIN;
  }

  #frame(at: number): Received<A> {
    const v = this.#view;
    const snaplen = v.getUint32(at + TPACKET3_HDR.snaplen, true);
    const start = at + v.getUint16(at + TPACKET3_HDR.mac, true);
    const address = at + TPACKET3_HDR.address;
    const name = this.#bytes.subarray(address, address + SOCKADDR_LL.size);
    return {
      data: this.#bytes.slice(start, start + snaplen),
      from: this.#decode(name, SOCKADDR_LL.size),
      truncated: v.getUint32(at + TPACKET3_HDR.len, true) > snaplen,
    };
  }

  release(): void {
    const empty = new ArrayBuffer(0);
    this.#bytes = new Uint8Array(empty);
    this.#view = new DataView(empty);
    this.#words = new Int32Array(empty);
    libc().munmap(this.#base, BigInt(this.#length));
  }
}
