// AF_PACKET's memory-mapped receive ring (TPACKET_V3), as tcpdump uses it:
// the kernel copies each frame into a block of a ring shared with this
// process, and wakes the socket once per block (when it is full or its
// timeout expires), so a capture costs no system call per frame.
//
// Layouts (linux/if_packet.h, the same on x86_64 and aarch64):
//   struct tpacket_req3 { u32 block_size, block_nr, frame_size, frame_nr,
//                         retire_blk_tov, sizeof_priv, feature_req_word; }
//   struct tpacket_block_desc { u32 version; u32 offset_to_priv;
//     struct tpacket_hdr_v1 { u32 block_status; u32 num_pkts;
//       u32 offset_to_first_pkt; u32 blk_len; u64 seq_num; ts first, last; } }
//   struct tpacket3_hdr { u32 tp_next_offset, tp_sec, tp_nsec, tp_snaplen,
//     tp_len, tp_status; u16 tp_mac, tp_net; hv1 (12 bytes); u8 pad[8]; }
//   then, at TPACKET_ALIGN(sizeof(tpacket3_hdr)) = 48, the sockaddr_ll.

import {
  EAGAIN,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
  SIZEOF_SOCKADDR_LL,
  TP_STATUS_KERNEL,
  TP_STATUS_USER,
  TPACKET_V3,
} from "./constants.ts";
import { errnoError } from "./errors.ts";
import { errno, libc } from "./libc.ts";
import type { FdSocket, Received, RecordSource } from "./socket.ts";

/** Each block: 1 MiB holds any frame (a 64 KiB GRO frame included) and thousands of small ones. */
const BLOCK_SIZE = 1 << 20;
/** The granularity the kernel checks frames against; any divisor of the block size. */
const FRAME_SIZE = 2048;
/** A block that is not full is handed over after this long, so a quiet link still delivers. */
const BLOCK_TIMEOUT_MS = 8;
const MIN_BLOCKS = 4;
/** Records moved to the inbox per fill, so it never grows to a whole block's count. */
const BATCH = 64;

const BLOCK_STATUS = 8;
const BLOCK_PACKETS = 12;
const BLOCK_FIRST = 16;
const PACKET_NEXT = 0;
const PACKET_SNAPLEN = 12;
const PACKET_LEN = 16;
const PACKET_MAC = 24;
const PACKET_ADDRESS = 48;

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
  const req = new Uint8Array(28);
  const v = new DataView(req.buffer);
  v.setUint32(0, BLOCK_SIZE, true);
  v.setUint32(4, blocks, true);
  v.setUint32(8, FRAME_SIZE, true);
  v.setUint32(12, (BLOCK_SIZE / FRAME_SIZE) * blocks, true);
  v.setUint32(16, BLOCK_TIMEOUT_MS, true);
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
      if (this.#left < 0) {
        // Atomics: the kernel publishes a block by its status word, after
        // the frames; read the status before them.
        if ((Atomics.load(this.#words, (block + BLOCK_STATUS) / 4) & TP_STATUS_USER) === 0) break;
        this.#left = this.#view.getUint32(block + BLOCK_PACKETS, true);
        this.#offset = block + this.#view.getUint32(block + BLOCK_FIRST, true);
      }
      while (this.#left > 0 && moved < BATCH) {
        inbox.push(this.#frame(this.#offset));
        this.#offset += this.#view.getUint32(this.#offset + PACKET_NEXT, true);
        this.#left--;
        moved++;
      }
      if (this.#left === 0) {
        Atomics.store(this.#words, (block + BLOCK_STATUS) / 4, TP_STATUS_KERNEL);
        this.#block = (this.#block + 1) % this.#blocks;
        this.#left = -1;
      }
    }
    return moved > 0 ? 0 : EAGAIN;
  }

  #frame(at: number): Received<A> {
    const v = this.#view;
    const snaplen = v.getUint32(at + PACKET_SNAPLEN, true);
    const start = at + v.getUint16(at + PACKET_MAC, true);
    const name = this.#bytes.subarray(
      at + PACKET_ADDRESS,
      at + PACKET_ADDRESS + SIZEOF_SOCKADDR_LL,
    );
    return {
      data: this.#bytes.slice(start, start + snaplen),
      from: this.#decode(name, SIZEOF_SOCKADDR_LL),
      truncated: v.getUint32(at + PACKET_LEN, true) > snaplen,
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
