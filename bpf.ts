/**
 * Classic BPF socket filters: the instruction set of `linux/filter.h`, a
 * validator that rejects what the kernel would reject, and a builder for the
 * filters people write most often.
 *
 * A filter runs in the kernel on every packet a socket would receive and
 * returns how many bytes of it to keep; 0 drops the packet before it is
 * queued. This module only builds and checks programs: it does no I/O and needs
 * no permission. Attaching one is `setFilter(program)` on a raw or packet
 * socket (`@bsd/sockets/raw`, which re-exports this module).
 *
 * @example Keep only DNS replies on an Ethernet packet socket
 * ```ts
 * import { compileFilter, validateFilter } from "@bsd/sockets/raw";
 *
 * const program = compileFilter({ ipProtocol: "udp", srcPort: 53 }, { link: "ethernet" });
 * validateFilter(program); // what setFilter() checks before any system call
 * console.log(program.length);
 * ```
 *
 * @module
 */

import { checkInteger } from "./_internal/checks.ts";
import { BPF_MAXINSNS, ETHER_TYPE_NUMBERS, IP_PROTOCOL_NUMBERS } from "./ffi/constants.ts";

/**
 * One classic BPF instruction, as `struct sock_filter` holds it.
 *
 * `code` (16 bits) is the operation, or'ed together from the fields of
 * {@linkcode BPF}; `jt` and `jf` (8 bits each) are how many instructions a
 * conditional jump skips when the test is true or false; `k` (32 bits,
 * unsigned) is the constant operand: an offset, a value or a return value.
 *
 * @example A load of the EtherType from an Ethernet frame
 * ```ts
 * import { BPF, type BpfInstruction } from "@bsd/sockets/raw";
 *
 * const load: BpfInstruction = { code: BPF.LD | BPF.H | BPF.ABS, jt: 0, jf: 0, k: 12 };
 * ```
 */
export interface BpfInstruction {
  /** The operation: class, size, mode, ALU or jump operation and source bits. */
  code: number;
  /** Instructions to skip when a conditional jump's test is true (0–255). */
  jt: number;
  /** Instructions to skip when a conditional jump's test is false (0–255). */
  jf: number;
  /** The constant operand, an unsigned 32-bit integer. */
  k: number;
}

/**
 * A classic BPF program: 1 to 4,096 instructions ending in a return.
 *
 * @example Accept every packet
 * ```ts
 * import { BPF, bpfStatement, type BpfProgram } from "@bsd/sockets/raw";
 *
 * const all: BpfProgram = [bpfStatement(BPF.RET | BPF.K, 0xffffffff)];
 * ```
 */
export type BpfProgram = readonly BpfInstruction[];

/**
 * The names and values of {@linkcode BPF}.
 *
 * @example Name a code
 * ```ts
 * import { BPF, type BpfCodes } from "@bsd/sockets/raw";
 *
 * const codes: BpfCodes = BPF;
 * console.log((codes.RET | codes.K).toString(16)); // "6"
 * ```
 */
export interface BpfCodes {
  /** Class: load into A. */
  readonly LD: number;
  /** Class: load into X. */
  readonly LDX: number;
  /** Class: store A in scratch word k. */
  readonly ST: number;
  /** Class: store X in scratch word k. */
  readonly STX: number;
  /** Class: arithmetic on A. */
  readonly ALU: number;
  /** Class: jump. */
  readonly JMP: number;
  /** Class: return (bytes to keep; 0 drops). */
  readonly RET: number;
  /** Class: register transfer. */
  readonly MISC: number;
  /** Size: 32 bits. */
  readonly W: number;
  /** Size: 16 bits. */
  readonly H: number;
  /** Size: 8 bits. */
  readonly B: number;
  /** Mode: the constant k. */
  readonly IMM: number;
  /** Mode: packet[k]. */
  readonly ABS: number;
  /** Mode: packet[X + k]. */
  readonly IND: number;
  /** Mode: scratch word k. */
  readonly MEM: number;
  /** Mode: the packet length. */
  readonly LEN: number;
  /** Mode (`LDX | B` only): 4 × (packet[k] & 0xf). */
  readonly MSH: number;
  /** ALU: A + operand. */
  readonly ADD: number;
  /** ALU: A − operand. */
  readonly SUB: number;
  /** ALU: A × operand. */
  readonly MUL: number;
  /** ALU: A ÷ operand (unsigned). */
  readonly DIV: number;
  /** ALU: A | operand. */
  readonly OR: number;
  /** ALU: A & operand. */
  readonly AND: number;
  /** ALU: A << operand. */
  readonly LSH: number;
  /** ALU: A >>> operand. */
  readonly RSH: number;
  /** ALU: −A. */
  readonly NEG: number;
  /** ALU: A mod operand. */
  readonly MOD: number;
  /** ALU: A ^ operand. */
  readonly XOR: number;
  /** Jump: always, k instructions. */
  readonly JA: number;
  /** Jump: if A = operand. */
  readonly JEQ: number;
  /** Jump: if A > operand (unsigned). */
  readonly JGT: number;
  /** Jump: if A ≥ operand (unsigned). */
  readonly JGE: number;
  /** Jump: if A & operand ≠ 0. */
  readonly JSET: number;
  /** Source: the constant k (and `RET | K` returns k). */
  readonly K: number;
  /** Source: the index register X. */
  readonly X: number;
  /** `RET | A`: return the accumulator. */
  readonly A: number;
  /** MISC: X = A. */
  readonly TAX: number;
  /** MISC: A = X. */
  readonly TXA: number;
  /** The most instructions a program may have: 4,096. */
  readonly MAXINSNS: number;
  /** The number of 32-bit scratch words: 16. */
  readonly MEMWORDS: number;
  /** Where ancillary data starts (`SKF_AD_OFF`, −0x1000 as unsigned). */
  readonly AD_OFF: number;
  /** Ancillary: the EtherType, host order. */
  readonly AD_PROTOCOL: number;
  /** Ancillary: the packet type (host, broadcast…). */
  readonly AD_PKTTYPE: number;
  /** Ancillary: the interface index. */
  readonly AD_IFINDEX: number;
  /** Ancillary: find a netlink attribute. */
  readonly AD_NLATTR: number;
  /** Ancillary: find a nested netlink attribute. */
  readonly AD_NLATTR_NEST: number;
  /** Ancillary: the packet mark. */
  readonly AD_MARK: number;
  /** Ancillary: the receive queue. */
  readonly AD_QUEUE: number;
  /** Ancillary: the hardware type (`ARPHRD_*`). */
  readonly AD_HATYPE: number;
  /** Ancillary: the receive hash. */
  readonly AD_RXHASH: number;
  /** Ancillary: the current CPU. */
  readonly AD_CPU: number;
  /** Ancillary: A ^ X. */
  readonly AD_ALU_XOR_X: number;
  /** Ancillary: the stripped VLAN tag. */
  readonly AD_VLAN_TAG: number;
  /** Ancillary: whether a VLAN tag was stripped. */
  readonly AD_VLAN_TAG_PRESENT: number;
  /** Ancillary: the payload offset. */
  readonly AD_PAY_OFFSET: number;
  /** Ancillary: a random number. */
  readonly AD_RANDOM: number;
  /** Ancillary: the VLAN protocol. */
  readonly AD_VLAN_TPID: number;
  /** Base for loads relative to the network header (`SKF_NET_OFF`, as unsigned). */
  readonly NET_OFF: number;
  /** Base for loads relative to the link-layer header (`SKF_LL_OFF`, as unsigned). */
  readonly LL_OFF: number;
}

/**
 * The fields classic BPF instruction codes are made of, and the kernel's
 * limits and special offsets, as in `linux/filter.h` and `linux/bpf_common.h`.
 *
 * A code is the bitwise or of:
 *
 * - a class (bits 0–2): `LD`, `LDX`, `ST`, `STX`, `ALU`, `JMP`, `RET`, `MISC`;
 * - for loads, a size (bits 3–4): `W` (32-bit), `H` (16-bit), `B` (8-bit), and
 *   a mode (bits 5–7): `IMM` (A = k), `ABS` (A = packet[k]), `IND`
 *   (A = packet[X + k]), `MEM` (A = M[k]), `LEN` (A = packet length), `MSH`
 *   (`LDX | B | MSH`: X = 4 × (packet[k] & 0xf), the IPv4 header length);
 * - for `ALU` and `JMP`, an operation (bits 4–7): `ADD`, `SUB`, `MUL`, `DIV`,
 *   `MOD`, `OR`, `AND`, `XOR`, `LSH`, `RSH`, `NEG`; `JA`, `JEQ`, `JGT`, `JGE`,
 *   `JSET`, and a source (bit 3): `K` (the constant) or `X` (the index register);
 * - for `RET`, the value returned (bits 3–4): `K` or `A`;
 * - for `MISC`, `TAX` (X = A) or `TXA` (A = X).
 *
 * Loads are big-endian (network order). A load past the end of the packet
 * ends the program with 0 (drop). `ABS` loads from `AD_OFF + AD_PROTOCOL` and
 * the other `AD_*` offsets read ancillary data instead of the packet (for
 * `AD_PROTOCOL`: the EtherType in host order); `NET_OFF + n` and `LL_OFF + n`
 * read relative to the network and link-layer headers. All offsets are given
 * as unsigned 32-bit numbers, so `BPF.AD_OFF + BPF.AD_PROTOCOL` is a valid `k`.
 *
 * @see {@link https://www.kernel.org/doc/html/latest/networking/filter.html}
 *
 * @example Load the IPv4 protocol byte of an Ethernet frame
 * ```ts
 * import { BPF, bpfStatement } from "@bsd/sockets/raw";
 *
 * const loadProtocol = bpfStatement(BPF.LD | BPF.B | BPF.ABS, 14 + 9);
 * ```
 */
export const BPF: BpfCodes = Object.freeze({
  // classes
  LD: 0x00,
  LDX: 0x01,
  ST: 0x02,
  STX: 0x03,
  ALU: 0x04,
  JMP: 0x05,
  RET: 0x06,
  MISC: 0x07,
  // load sizes
  W: 0x00,
  H: 0x08,
  B: 0x10,
  // load modes
  IMM: 0x00,
  ABS: 0x20,
  IND: 0x40,
  MEM: 0x60,
  LEN: 0x80,
  MSH: 0xa0,
  // ALU operations
  ADD: 0x00,
  SUB: 0x10,
  MUL: 0x20,
  DIV: 0x30,
  OR: 0x40,
  AND: 0x50,
  LSH: 0x60,
  RSH: 0x70,
  NEG: 0x80,
  MOD: 0x90,
  XOR: 0xa0,
  // jump operations
  JA: 0x00,
  JEQ: 0x10,
  JGT: 0x20,
  JGE: 0x30,
  JSET: 0x40,
  // operand sources, and what RET returns
  K: 0x00,
  X: 0x08,
  A: 0x10,
  // MISC operations
  TAX: 0x00,
  TXA: 0x80,
  // limits
  MAXINSNS: BPF_MAXINSNS,
  MEMWORDS: 16,
  // special load offsets (SKF_*), as unsigned 32-bit numbers
  AD_OFF: 0xfffff000,
  AD_PROTOCOL: 0,
  AD_PKTTYPE: 4,
  AD_IFINDEX: 8,
  AD_NLATTR: 12,
  AD_NLATTR_NEST: 16,
  AD_MARK: 20,
  AD_QUEUE: 24,
  AD_HATYPE: 28,
  AD_RXHASH: 32,
  AD_CPU: 36,
  AD_ALU_XOR_X: 40,
  AD_VLAN_TAG: 44,
  AD_VLAN_TAG_PRESENT: 48,
  AD_PAY_OFFSET: 52,
  AD_RANDOM: 56,
  AD_VLAN_TPID: 60,
  NET_OFF: 0xfff00000,
  LL_OFF: 0xffe00000,
});

/** What {@linkcode compileFilter} programs return for a packet they accept: all of it. */
const ACCEPT = 0xffffffff;
const REJECT = 0;

/**
 * Builds an instruction that does not jump (`BPF_STMT` in C).
 *
 * @param code The operation, or'ed from {@linkcode BPF} fields.
 * @param k The constant operand, an unsigned 32-bit integer.
 * @returns The instruction, with `jt` and `jf` 0.
 * @throws {TypeError} If `code` or `k` is not an integer.
 * @throws {RangeError} If `code` is over 16 bits or `k` over 32 bits, or either is negative.
 *
 * @example Return the whole packet
 * ```ts
 * import { BPF, bpfStatement } from "@bsd/sockets/raw";
 *
 * const accept = bpfStatement(BPF.RET | BPF.K, 0xffffffff);
 * ```
 */
export function bpfStatement(code: number, k: number): BpfInstruction {
  return {
    code: checkField(code, "code", 0xffff, "bpfStatement"),
    jt: 0,
    jf: 0,
    k: checkField(k, "k", 0xffffffff, "bpfStatement"),
  };
}

/**
 * Builds a jump instruction (`BPF_JUMP` in C).
 *
 * For a conditional jump, `jt` and `jf` count the instructions skipped after
 * this one (0 falls through); for `JMP | JA`, `k` does and `jt`/`jf` are 0.
 *
 * @param code The operation, such as `BPF.JMP | BPF.JEQ | BPF.K`.
 * @param k The constant compared with A, or the distance of a `JA`.
 * @param jt Instructions skipped when the test is true, 0–255.
 * @param jf Instructions skipped when the test is false, 0–255.
 * @returns The instruction.
 * @throws {TypeError} If an argument is not an integer.
 * @throws {RangeError} If an argument is outside its field (16, 32, 8 and 8 bits unsigned).
 *
 * @example Skip one instruction unless A is the IPv4 EtherType
 * ```ts
 * import { BPF, bpfJump } from "@bsd/sockets/raw";
 *
 * const isIPv4 = bpfJump(BPF.JMP | BPF.JEQ | BPF.K, 0x0800, 0, 1);
 * ```
 */
export function bpfJump(code: number, k: number, jt: number, jf: number): BpfInstruction {
  return {
    code: checkField(code, "code", 0xffff, "bpfJump"),
    jt: checkField(jt, "jt", 0xff, "bpfJump"),
    jf: checkField(jf, "jf", 0xff, "bpfJump"),
    k: checkField(k, "k", 0xffffffff, "bpfJump"),
  };
}

function checkField(value: unknown, name: string, max: number, where: string): number {
  return checkInteger(`${where}: ${name}`, value, 0, max);
}

// Every code Linux's classic BPF checker accepts (net/core/filter.c).
const ALLOWED_CODES: ReadonlySet<number> = (() => {
  const b = BPF;
  const codes: number[] = [];
  for (const op of [b.ADD, b.SUB, b.MUL, b.DIV, b.MOD, b.AND, b.OR, b.XOR, b.LSH, b.RSH]) {
    codes.push(b.ALU | op | b.K, b.ALU | op | b.X);
  }
  codes.push(b.ALU | b.NEG);
  for (const size of [b.W, b.H, b.B]) codes.push(b.LD | size | b.ABS, b.LD | size | b.IND);
  codes.push(b.LD | b.W | b.LEN, b.LD | b.W | b.MEM, b.LD | b.IMM);
  codes.push(b.LDX | b.W | b.IMM, b.LDX | b.W | b.MEM, b.LDX | b.W | b.LEN, b.LDX | b.B | b.MSH);
  codes.push(b.ST, b.STX, b.MISC | b.TAX, b.MISC | b.TXA, b.RET | b.K, b.RET | b.A);
  codes.push(b.JMP | b.JA);
  for (const op of [b.JEQ, b.JGT, b.JGE, b.JSET]) codes.push(b.JMP | op | b.K, b.JMP | op | b.X);
  return new Set(codes);
})();

const ANCILLARY: ReadonlySet<number> = new Set(
  Array.from({ length: 16 }, (_, i) => BPF.AD_OFF + 4 * i),
);

/**
 * Checks a classic BPF program the way Linux does when it is attached, so a
 * bad program fails here with a reason instead of as `EINVAL` from the kernel.
 *
 * Rejected: an empty program or one over 4,096 instructions; a field outside
 * its range (`code` 16, `jt`/`jf` 8, `k` 32 bits unsigned); an operation Linux
 * does not know; a jump past the last instruction; a last instruction that is
 * not `RET | K` or `RET | A`; division or modulo by a constant 0; a shift by a
 * constant of 32 or more; a scratch-memory index over 15; a read of scratch
 * memory that no path has written; an unknown ancillary load.
 *
 * @param program The instructions.
 * @throws {TypeError} If `program` is not an array of instructions with integer fields.
 * @throws {RangeError} If the program breaks one of the rules above; the message
 * names the instruction.
 *
 * @example Catch a jump past the end
 * ```ts
 * import { BPF, bpfJump, bpfStatement, validateFilter } from "@bsd/sockets/raw";
 * import { throws } from "node:assert/strict";
 *
 * const broken = [
 *   bpfJump(BPF.JMP | BPF.JEQ | BPF.K, 1, 0, 5),
 *   bpfStatement(BPF.RET | BPF.K, 0),
 * ];
 * throws(() => validateFilter(broken), RangeError);
 * ```
 */
export function validateFilter(program: BpfProgram): void {
  if (!Array.isArray(program)) {
    throw new TypeError(`BPF program must be an array of instructions, got ${typeof program}`);
  }
  const n = program.length;
  if (n === 0) {
    throw new RangeError("BPF program is empty: it needs at least a return instruction");
  }
  if (n > BPF_MAXINSNS) {
    throw new RangeError(`BPF program has ${n} instructions, over the limit of ${BPF_MAXINSNS}`);
  }
  for (let pc = 0; pc < n; pc++) checkInstruction(program[pc], pc, n);
  const last = program[n - 1].code;
  if (last !== (BPF.RET | BPF.K) && last !== (BPF.RET | BPF.A)) {
    throw new RangeError(
      `BPF instruction ${n - 1} (code ${hex(last)}) ends the program but is not a return`,
    );
  }
  checkScratchMemory(program);
}

function checkInstruction(insn: unknown, pc: number, n: number): void {
  if (typeof insn !== "object" || insn === null) {
    throw new TypeError(`BPF instruction ${pc} must be an object, got ${describe(insn)}`);
  }
  const { code, jt, jf, k } = insn as Record<string, unknown>;
  const where = `BPF instruction ${pc}`;
  checkField(code, "code", 0xffff, where);
  checkField(jt, "jt", 0xff, where);
  checkField(jf, "jf", 0xff, where);
  checkField(k, "k", 0xffffffff, where);
  const i = insn as BpfInstruction;
  if (!ALLOWED_CODES.has(i.code)) {
    throw new RangeError(`${where}: code ${hex(i.code)} is not a classic BPF operation`);
  }
  const b = BPF;
  switch (i.code) {
    case b.ALU | b.DIV | b.K:
    case b.ALU | b.MOD | b.K:
      if (i.k === 0) throw new RangeError(`${where} divides by the constant 0`);
      break;
    case b.ALU | b.LSH | b.K:
    case b.ALU | b.RSH | b.K:
      if (i.k >= 32) throw new RangeError(`${where} shifts by ${i.k}, over the limit of 31`);
      break;
    case b.LD | b.W | b.MEM:
    case b.LDX | b.W | b.MEM:
    case b.ST:
    case b.STX:
      if (i.k >= b.MEMWORDS) {
        throw new RangeError(
          `${where} uses scratch memory word ${i.k}, over the limit of ${b.MEMWORDS - 1}`,
        );
      }
      break;
    case b.LD | b.W | b.ABS:
    case b.LD | b.H | b.ABS:
    case b.LD | b.B | b.ABS:
      if (i.k >= b.AD_OFF && !ANCILLARY.has(i.k)) {
        throw new RangeError(`${where} loads unknown ancillary data at offset ${hex(i.k)}`);
      }
      break;
    case b.JMP | b.JA:
      if (i.k >= n - pc - 1) {
        throw new RangeError(
          `${where} jumps to ${pc + 1 + i.k}, past the end of the ${n}-instruction program`,
        );
      }
      break;
    default:
      if ((i.code & 0x07) === b.JMP) {
        const far = pc + 1 + Math.max(i.jt, i.jf);
        if (far >= n) {
          throw new RangeError(
            `${where} jumps to ${far}, past the end of the ${n}-instruction program`,
          );
        }
      }
  }
}

// Linux refuses a program that may read a scratch word before writing it,
// following each jump with the words written on every path that reaches it.
function checkScratchMemory(program: BpfProgram): void {
  const b = BPF;
  const n = program.length;
  const known = new Uint16Array(n).fill(0xffff);
  let written = 0;
  for (let pc = 0; pc < n; pc++) {
    written &= known[pc];
    const { code, jt, jf, k } = program[pc];
    switch (code) {
      case b.ST:
      case b.STX:
        written |= 1 << k;
        break;
      case b.LD | b.W | b.MEM:
      case b.LDX | b.W | b.MEM:
        if (!(written & (1 << k))) {
          throw new RangeError(
            `BPF instruction ${pc} reads scratch memory word ${k} before any path writes it`,
          );
        }
        break;
      case b.JMP | b.JA:
        known[pc + 1 + k] &= written;
        written = 0xffff;
        break;
      default:
        if ((code & 0x07) === b.JMP) {
          known[pc + 1 + jt] &= written;
          known[pc + 1 + jf] &= written;
          written = 0xffff;
        }
    }
  }
}

function hex(n: number): string {
  return "0x" + n.toString(16).padStart(2, "0");
}

function describe(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
}

/**
 * What {@linkcode compileFilter} matches. Every condition given must hold;
 * an empty match accepts every packet.
 *
 * @example UDP to or from port 53, over IPv4 or IPv6
 * ```ts
 * import type { FilterMatch } from "@bsd/sockets/raw";
 *
 * const dns: FilterMatch = { ipProtocol: "udp", port: 53 };
 * ```
 */
export interface FilterMatch {
  /**
   * The EtherType (`"ipv4"` 0x0800, `"ipv6"` 0x86dd, `"arp"` 0x0806, or any
   * 16-bit number). When not given, IP conditions match IPv4 and IPv6 alike.
   */
  etherType?: number | "ipv4" | "ipv6" | "arp";
  /**
   * The IP protocol (IPv4 protocol field, IPv6 next header): `"icmp"` 1,
   * `"tcp"` 6, `"udp"` 17, `"icmpv6"` 58, or any 8-bit number. An IPv6 packet
   * with extension headers before it does not match.
   */
  ipProtocol?: number | "icmp" | "tcp" | "udp" | "icmpv6";
  /** A port that is either the source or the destination port. */
  port?: number;
  /** The source port. */
  srcPort?: number;
  /** The destination port. */
  dstPort?: number;
  /** The ICMP or ICMPv6 message type, such as 8 (echo request) or 128. */
  icmpType?: number;
}

/**
 * Where the packets a filter sees begin.
 *
 * @example For an `AF_PACKET` socket opened with `cooked: true`
 * ```ts
 * import type { CompileFilterOptions } from "@bsd/sockets/raw";
 *
 * const options: CompileFilterOptions = { link: "cooked" };
 * ```
 */
export interface CompileFilterOptions {
  /**
   * `"ethernet"`: an Ethernet header first (packet sockets, the default
   * `openPacket`); `"cooked"`: the network header first, the EtherType known
   * only to the kernel (`openPacket({ cooked: true })`); `"ip"`: an IPv4 header
   * first (raw IPv4 sockets; raw IPv6 sockets see no IP header and are not
   * supported).
   */
  link: "ethernet" | "cooked" | "ip";
}

// The names a filter match takes: those of the socket options, less "all"
// and "raw", which match nothing in particular.
const { ipv4, ipv6, arp } = ETHER_TYPE_NUMBERS;
const ETHER_TYPES = { ipv4, ipv6, arp } as const;
const { icmp, tcp, udp, icmpv6 } = IP_PROTOCOL_NUMBERS;
const IP_PROTOCOLS = { icmp, tcp, udp, icmpv6 } as const;
// Protocols whose header starts with a 16-bit source and destination port:
// TCP, UDP, DCCP, SCTP, UDP-Lite.
const PORT_PROTOCOLS: ReadonlySet<number> = new Set([6, 17, 33, 132, 136]);
const MATCH_KEYS: ReadonlySet<string> = new Set([
  "etherType",
  "ipProtocol",
  "port",
  "srcPort",
  "dstPort",
  "icmpType",
]);

/**
 * Compiles a match on EtherType, IP protocol, ports and ICMP type into a
 * classic BPF program, ready for `setFilter`.
 *
 * The program returns 0 (drop) for a packet that does not match and
 * 0xffffffff for one that does, which keeps the whole packet however large
 * (offloaded packets on loopback can exceed 64 KiB). For IPv4 it skips the
 * variable-length header (options included), and a fragment other than the
 * first never matches a port or ICMP-type condition, since it carries no
 * transport header. For IPv6 the protocol must be the fixed header's next
 * header: packets with extension headers do not match. A truncated packet
 * does not match. On `"ethernet"` links the EtherType is read at offset 12, so
 * an in-band 802.1Q tag (one the driver did not strip) hides the IP header.
 * Ports given without `ipProtocol` mean TCP or UDP; without `etherType`,
 * `"icmp"` means IPv4 only and `"icmpv6"` IPv6 only, and other IP conditions
 * match both.
 *
 * Needs no permission.
 *
 * @param match The conditions; all given must hold.
 * @param options Where the packet starts: see {@linkcode CompileFilterOptions}.
 * @returns A frozen program that passes {@linkcode validateFilter}.
 * @throws {TypeError} For an unknown key, name or link, or conditions that
 * cannot go together (ports with a protocol that has none, an ICMP type
 * without `"icmp"`/`"icmpv6"`, IP conditions with a non-IP EtherType).
 * @throws {RangeError} For a number outside its field, or an EtherType other
 * than IPv4 or ICMPv6 on an `"ip"` link.
 *
 * @example ICMP echo requests on a raw IPv4 socket
 * ```ts
 * import { compileFilter } from "@bsd/sockets/raw";
 *
 * const program = compileFilter({ ipProtocol: "icmp", icmpType: 8 }, { link: "ip" });
 * console.log(program.at(-1)); // { code: 6, jt: 0, jf: 0, k: 0 }
 * ```
 */
export function compileFilter(match: FilterMatch, options: CompileFilterOptions): BpfProgram {
  if (typeof match !== "object" || match === null || Array.isArray(match)) {
    throw new TypeError(`compileFilter: match must be an object, got ${describe(match)}`);
  }
  for (const key of Object.keys(match)) {
    if (!MATCH_KEYS.has(key)) {
      throw new TypeError(
        `compileFilter: unknown match key ${JSON.stringify(key)}, expected one of ${
          [...MATCH_KEYS].join(", ")
        }`,
      );
    }
  }
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`compileFilter: options must be an object, got ${describe(options)}`);
  }
  const link = options.link;
  if (link !== "ethernet" && link !== "cooked" && link !== "ip") {
    throw new TypeError(
      `compileFilter: link must be "ethernet", "cooked" or "ip", got ${JSON.stringify(link)}`,
    );
  }
  const etherType = byName(match.etherType, "etherType", ETHER_TYPES, 0xffff);
  const protocol = byName(match.ipProtocol, "ipProtocol", IP_PROTOCOLS, 0xff);
  const ports = {
    either: optionalField(match.port, "port", 0xffff),
    src: optionalField(match.srcPort, "srcPort", 0xffff),
    dst: optionalField(match.dstPort, "dstPort", 0xffff),
  };
  const icmpType = optionalField(match.icmpType, "icmpType", 0xff);
  const hasPorts = ports.either !== undefined || ports.src !== undefined ||
    ports.dst !== undefined;

  if (hasPorts && protocol !== undefined && !PORT_PROTOCOLS.has(protocol)) {
    throw new TypeError(`compileFilter: ipProtocol ${protocol} has no ports to match`);
  }
  if (
    icmpType !== undefined && protocol !== IP_PROTOCOLS.icmp && protocol !== IP_PROTOCOLS.icmpv6
  ) {
    throw new TypeError('compileFilter: icmpType needs ipProtocol "icmp" or "icmpv6"');
  }
  const ipConditions = protocol !== undefined || hasPorts || icmpType !== undefined;

  let families: (4 | 6)[];
  if (link === "ip") {
    if (etherType !== undefined && etherType !== ETHER_TYPES.ipv4) {
      throw new RangeError(
        `compileFilter: a link of "ip" carries only IPv4, so etherType ${
          hex(etherType)
        } never matches`,
      );
    }
    if (protocol === IP_PROTOCOLS.icmpv6) {
      throw new RangeError(
        'compileFilter: a link of "ip" carries only IPv4, so ICMPv6 never matches',
      );
    }
    families = [4];
  } else if (etherType === ETHER_TYPES.ipv4) families = [4];
  else if (etherType === ETHER_TYPES.ipv6) families = [6];
  else if (etherType !== undefined) {
    if (ipConditions) {
      throw new TypeError(
        `compileFilter: etherType ${hex(etherType)} is not IP, so IP conditions cannot match`,
      );
    }
    families = [];
  } else if (!ipConditions) families = [];
  else if (protocol === IP_PROTOCOLS.icmp) families = [4];
  else if (protocol === IP_PROTOCOLS.icmpv6) families = [6];
  else families = [4, 6];

  const asm = new Assembler();
  const network = link === "ethernet" ? 14 : 0;
  if (link !== "ip" && (etherType !== undefined || ipConditions)) {
    asm.statement(
      BPF.LD | BPF.H | BPF.ABS,
      link === "ethernet" ? 12 : BPF.AD_OFF + BPF.AD_PROTOCOL,
    );
    if (families.length === 0) asm.jump(BPF.JEQ, etherType!, 0, "reject");
    else if (families.length === 1) {
      asm.jump(BPF.JEQ, families[0] === 4 ? ETHER_TYPES.ipv4 : ETHER_TYPES.ipv6, 0, "reject");
    } else {
      asm.jump(BPF.JEQ, ETHER_TYPES.ipv4, "ipv4", 0);
      asm.jump(BPF.JEQ, ETHER_TYPES.ipv6, "ipv6", "reject");
    }
  }
  if (families.length === 0) asm.statement(BPF.RET | BPF.K, ACCEPT);
  for (const family of families) {
    asm.label(`ipv${family}`);
    const protocols = protocol !== undefined
      ? [protocol]
      : hasPorts
      ? [IP_PROTOCOLS.tcp, IP_PROTOCOLS.udp]
      : [];
    if (protocols.length > 0) {
      asm.statement(BPF.LD | BPF.B | BPF.ABS, network + (family === 4 ? 9 : 6));
      protocols.forEach((p, i) => {
        const last = i === protocols.length - 1;
        asm.jump(BPF.JEQ, p, last ? 0 : `transport${family}`, last ? "reject" : 0);
      });
      asm.label(`transport${family}`);
    }
    if (hasPorts || icmpType !== undefined) {
      // Loads relative to the transport header: through X for IPv4, whose
      // header length varies, at a fixed offset for IPv6.
      let mode: number = BPF.IND;
      let base = network;
      if (family === 4) {
        asm.statement(BPF.LD | BPF.H | BPF.ABS, network + 6);
        asm.jump(BPF.JSET, 0x1fff, "reject", 0);
        asm.statement(BPF.LDX | BPF.B | BPF.MSH, network);
      } else {
        mode = BPF.ABS;
        base = network + 40;
      }
      if (ports.either !== undefined) {
        asm.statement(BPF.LD | BPF.H | mode, base);
        asm.jump(BPF.JEQ, ports.either, `port${family}`, 0);
        asm.statement(BPF.LD | BPF.H | mode, base + 2);
        asm.jump(BPF.JEQ, ports.either, 0, "reject");
        asm.label(`port${family}`);
      }
      if (ports.src !== undefined) {
        asm.statement(BPF.LD | BPF.H | mode, base);
        asm.jump(BPF.JEQ, ports.src, 0, "reject");
      }
      if (ports.dst !== undefined) {
        asm.statement(BPF.LD | BPF.H | mode, base + 2);
        asm.jump(BPF.JEQ, ports.dst, 0, "reject");
      }
      if (icmpType !== undefined) {
        asm.statement(BPF.LD | BPF.B | mode, base);
        asm.jump(BPF.JEQ, icmpType, 0, "reject");
      }
    }
    asm.statement(BPF.RET | BPF.K, ACCEPT);
  }
  if (asm.uses("reject")) {
    asm.label("reject");
    asm.statement(BPF.RET | BPF.K, REJECT);
  }
  return asm.assemble();
}

function byName<T extends Record<string, number>>(
  value: unknown,
  what: string,
  names: T,
  max: number,
): number | undefined {
  if (typeof value === "string") {
    if (Object.hasOwn(names, value)) return names[value];
    throw new TypeError(
      `compileFilter: ${what} must be a number or one of ${
        Object.keys(names).map((n) => JSON.stringify(n)).join(", ")
      }, got ${JSON.stringify(value)}`,
    );
  }
  return optionalField(value, what, max);
}

function optionalField(value: unknown, what: string, max: number): number | undefined {
  return value === undefined ? undefined : checkField(value, what, max, "compileFilter");
}

// A jump target: a number of instructions to skip, or a label placed later.
type Target = number | string;

// Forward-only assembly with labels, so the code above reads as a decision
// list instead of hand-counted offsets.
class Assembler {
  #code: { code: number; k: number; jt: Target; jf: Target }[] = [];
  #labels = new Map<string, number>();

  statement(code: number, k: number): void {
    this.#code.push({ code, k, jt: 0, jf: 0 });
  }

  jump(op: number, k: number, jt: Target, jf: Target): void {
    this.#code.push({ code: BPF.JMP | op | BPF.K, k, jt, jf });
  }

  label(name: string): void {
    this.#labels.set(name, this.#code.length);
  }

  uses(name: string): boolean {
    return this.#code.some((i) => i.jt === name || i.jf === name);
  }

  assemble(): BpfProgram {
    const out = this.#code.map((insn, pc) =>
      Object.freeze({
        code: insn.code,
        jt: this.#resolve(insn.jt, pc),
        jf: this.#resolve(insn.jf, pc),
        k: insn.k >>> 0,
      })
    );
    validateFilter(out);
    return Object.freeze(out);
  }

  #resolve(target: Target, pc: number): number {
    if (typeof target === "number") return target;
    const at = this.#labels.get(target);
    if (at === undefined || at <= pc || at - pc - 1 > 0xff) {
      throw new Error(`compileFilter: internal error: cannot jump from ${pc} to ${target}`);
    }
    return at - pc - 1;
  }
}
