// Classic BPF programs as the kernel takes them for SO_ATTACH_FILTER: an
// array of `struct sock_filter` behind a `struct sock_fprog` (layouts in
// structs.ts). Pure: importing this file loads no native code.

import { BPF_MAXINSNS, HOST_LITTLE_ENDIAN } from "./constants.ts";
import { SOCK_FILTER, SOCK_FPROG } from "./structs.ts";

/** One instruction as `struct sock_filter` holds it; bpf.ts's `BpfInstruction` has this shape. */
export interface SockFilter {
  readonly code: number;
  readonly jt: number;
  readonly jf: number;
  readonly k: number;
}

/**
 * Lays `program` out as an array of `struct sock_filter`, in host byte
 * order. The caller has validated it (bpf.ts `validateFilter`); only its
 * length is checked here.
 */
export function encodeFilter(program: readonly SockFilter[]): Uint8Array {
  if (program.length < 1 || program.length > BPF_MAXINSNS) {
    throw new RangeError(`a filter has 1 to ${BPF_MAXINSNS} instructions, not ${program.length}`);
  }
  const out = new Uint8Array(program.length * SOCK_FILTER.size);
  const view = new DataView(out.buffer);
  program.forEach(({ code, jt, jf, k }, i) => {
    const at = i * SOCK_FILTER.size;
    view.setUint16(at + SOCK_FILTER.code, code, HOST_LITTLE_ENDIAN);
    view.setUint8(at + SOCK_FILTER.jt, jt);
    view.setUint8(at + SOCK_FILTER.jf, jf);
    view.setUint32(at + SOCK_FILTER.k, k, HOST_LITTLE_ENDIAN);
  });
  return out;
}

/**
 * The `struct sock_fprog` that points at `filter` (bytes from
 * {@linkcode encodeFilter}) living at `address`, the value of its pointer. The
 * caller keeps `filter` alive until the setsockopt call returns.
 */
export function encodeFprog(filter: Uint8Array, address: bigint): Uint8Array {
  const n = filter.length / SOCK_FILTER.size;
  if (!Number.isInteger(n) || n < 1 || n > BPF_MAXINSNS) {
    throw new RangeError(
      `sock_fprog: filter is ${filter.length} bytes, not 1 to ${BPF_MAXINSNS} instructions`,
    );
  }
  const out = new Uint8Array(SOCK_FPROG.size);
  const view = new DataView(out.buffer);
  view.setUint16(SOCK_FPROG.len, n, HOST_LITTLE_ENDIAN);
  view.setBigUint64(SOCK_FPROG.filter, address, HOST_LITTLE_ENDIAN);
  return out;
}
