// The C layout of classic BPF programs: `struct sock_filter` and
// `struct sock_fprog` (linux/filter.h), for SO_ATTACH_FILTER.
// Pure: importing this file loads no native code.

import { BPF_MAXINSNS, HOST_LITTLE_ENDIAN } from "./constants.ts";

/** One instruction as `struct sock_filter` holds it; bpf.ts's `BpfInstruction` has this shape. */
export interface SockFilter {
  readonly code: number;
  readonly jt: number;
  readonly jf: number;
  readonly k: number;
}

/** `sizeof(struct sock_filter)`: u16 code, u8 jt, u8 jf, u32 k. */
export const SIZEOF_SOCK_FILTER = 8;
/** `sizeof(struct sock_fprog)` on 64-bit Linux: u16 len, 6 bytes padding, a pointer. */
export const SIZEOF_SOCK_FPROG = 16;

/**
 * Lays `program` out as an array of `struct sock_filter`, in host byte
 * order, 8 bytes per instruction. The caller has validated it (bpf.ts
 * `validateFilter`); only its length is checked here.
 */
export function encodeFilter(program: readonly SockFilter[]): Uint8Array {
  if (program.length < 1 || program.length > BPF_MAXINSNS) {
    throw new RangeError(`a filter has 1 to ${BPF_MAXINSNS} instructions, not ${program.length}`);
  }
  const out = new Uint8Array(program.length * SIZEOF_SOCK_FILTER);
  const view = new DataView(out.buffer);
  program.forEach(({ code, jt, jf, k }, i) => {
    const at = i * SIZEOF_SOCK_FILTER;
    view.setUint16(at, code, HOST_LITTLE_ENDIAN);
    view.setUint8(at + 2, jt);
    view.setUint8(at + 3, jf);
    view.setUint32(at + 4, k, HOST_LITTLE_ENDIAN);
  });
  return out;
}

/**
 * The `struct sock_fprog` that points at `filter` (bytes from
 * {@linkcode encodeFilter}) living at `address`, the value of its pointer. The
 * caller keeps `filter` alive until the setsockopt call returns.
 */
export function encodeFprog(filter: Uint8Array, address: bigint): Uint8Array {
  const n = filter.length / SIZEOF_SOCK_FILTER;
  if (!Number.isInteger(n) || n < 1 || n > BPF_MAXINSNS) {
    throw new RangeError(
      `sock_fprog: filter is ${filter.length} bytes, not 1 to ${BPF_MAXINSNS} instructions`,
    );
  }
  const out = new Uint8Array(SIZEOF_SOCK_FPROG);
  const view = new DataView(out.buffer);
  view.setUint16(0, n, HOST_LITTLE_ENDIAN);
  view.setBigUint64(8, address, HOST_LITTLE_ENDIAN);
  return out;
}
