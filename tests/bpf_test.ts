import assert from "node:assert/strict";
import {
  BPF,
  bpfJump,
  type BpfProgram,
  bpfStatement,
  compileFilter,
  type CompileFilterOptions,
  type FilterMatch,
  validateFilter,
} from "../bpf.ts";
import { encodeFilter, encodeFprog } from "../ffi/filter.ts";
import { SOCK_FILTER, SOCK_FPROG } from "../ffi/structs.ts";
import { deadline, needs, prng, pythonOutput, tempDir, toHex } from "./_helpers.ts";

// ---------------------------------------------------------------------------
// A small classic-BPF interpreter, written from linux/filter.h semantics, so
// compiled programs can be run against crafted packets.

/** Runs `program` over `packet`; `protocol` is what the ancillary protocol load returns. */
function run(program: BpfProgram, packet: Uint8Array, protocol = 0): number {
  let a = 0;
  let x = 0;
  const mem = new Uint32Array(16);
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  const load = (offset: number, size: number): number | null => {
    if (offset >= BPF.AD_OFF) {
      if (offset === BPF.AD_OFF + BPF.AD_PROTOCOL) return protocol;
      throw new Error(`interpreter: unsupported ancillary load ${offset.toString(16)}`);
    }
    if (offset + size > packet.length) return null;
    return size === 4
      ? view.getUint32(offset)
      : size === 2
      ? view.getUint16(offset)
      : view.getUint8(offset);
  };
  const sizeOf = (code: number): number => ({ 0x00: 4, 0x08: 2, 0x10: 1 })[code & 0x18]!;
  for (let pc = 0; pc < program.length; pc++) {
    const { code, jt, jf, k } = program[pc];
    const mode = code & 0xe0;
    switch (code & 0x07) {
      case BPF.LD: {
        if (mode === BPF.IMM) a = k;
        else if (mode === BPF.MEM) a = mem[k];
        else if (mode === BPF.LEN) a = packet.length;
        else {
          const v = load(mode === BPF.IND ? (x + k) >>> 0 : k, sizeOf(code));
          if (v === null) return 0;
          a = v;
        }
        break;
      }
      case BPF.LDX: {
        if (mode === BPF.IMM) x = k;
        else if (mode === BPF.MEM) x = mem[k];
        else if (mode === BPF.LEN) x = packet.length;
        else if (mode === BPF.MSH) {
          const v = load(k, 1);
          if (v === null) return 0;
          x = (v & 0xf) * 4;
        } else throw new Error(`interpreter: bad LDX ${code}`);
        break;
      }
      case BPF.ST:
        mem[k] = a;
        break;
      case BPF.STX:
        mem[k] = x;
        break;
      case BPF.ALU: {
        const s = code & BPF.X ? x : k;
        switch (code & 0xf0) {
          case BPF.ADD:
            a = (a + s) >>> 0;
            break;
          case BPF.SUB:
            a = (a - s) >>> 0;
            break;
          case BPF.MUL:
            a = Math.imul(a, s) >>> 0;
            break;
          case BPF.DIV:
            if (s === 0) return 0;
            a = Math.floor(a / s);
            break;
          case BPF.MOD:
            if (s === 0) return 0;
            a = a % s;
            break;
          case BPF.AND:
            a = (a & s) >>> 0;
            break;
          case BPF.OR:
            a = (a | s) >>> 0;
            break;
          case BPF.XOR:
            a = (a ^ s) >>> 0;
            break;
          case BPF.LSH:
            a = (a << (s & 31)) >>> 0;
            break;
          case BPF.RSH:
            a = a >>> (s & 31);
            break;
          case BPF.NEG:
            a = -a >>> 0;
            break;
        }
        break;
      }
      case BPF.JMP: {
        const op = code & 0xf0;
        if (op === BPF.JA) {
          pc += k;
          break;
        }
        const s = code & BPF.X ? x : k;
        const taken = op === BPF.JEQ
          ? a === s
          : op === BPF.JGT
          ? a > s
          : op === BPF.JGE
          ? a >= s
          : (a & s) !== 0;
        pc += taken ? jt : jf;
        break;
      }
      case BPF.RET:
        return (code & 0x18) === BPF.A ? a : k;
      case BPF.MISC:
        if ((code & 0xf8) === BPF.TXA) a = x;
        else x = a;
        break;
    }
  }
  throw new Error("interpreter: the program ran off its end");
}

// ---------------------------------------------------------------------------
// Crafted packets.

interface PacketSpec {
  family: 4 | 6 | "arp";
  protocol?: number;
  srcPort?: number;
  dstPort?: number;
  icmpType?: number;
  /** Bytes of IPv4 options (a multiple of 4). */
  options?: number;
  /** Fragment offset in 8-byte units; a non-first fragment carries no transport header. */
  fragment?: number;
  moreFragments?: boolean;
  /** Cut the packet to this many bytes of the network layer. */
  cut?: number;
}

const ETHERTYPE = { 4: 0x0800, 6: 0x86dd, arp: 0x0806 } as const;

function transportHeader(p: PacketSpec): Uint8Array {
  const t = new Uint8Array(20);
  const v = new DataView(t.buffer);
  if (p.protocol === 1 || p.protocol === 58) {
    t[0] = p.icmpType ?? 0;
  } else {
    v.setUint16(0, p.srcPort ?? 0);
    v.setUint16(2, p.dstPort ?? 0);
  }
  return t;
}

/** The packet from its network header on. */
function networkPacket(p: PacketSpec): Uint8Array {
  let out: Uint8Array;
  if (p.family === "arp") {
    out = new Uint8Array(28);
    out.set([0, 1, 8, 0, 6, 4, 0, 1]);
  } else if (p.family === 4) {
    const options = p.options ?? 0;
    const hl = 20 + options;
    // A later fragment holds payload bytes; make them look like the ports
    // asked for, so only the fragment test can keep it from matching.
    const body = transportHeader(p);
    out = new Uint8Array(hl + body.length);
    const v = new DataView(out.buffer);
    out[0] = 0x40 | (hl / 4);
    v.setUint16(2, out.length);
    v.setUint16(6, (p.moreFragments ? 0x2000 : 0) | (p.fragment ?? 0));
    out[8] = 64;
    out[9] = p.protocol ?? 0;
    out.set([127, 0, 0, 1, 127, 0, 0, 2], 12);
    for (let i = 20; i < hl; i++) out[i] = 1; // NOP options
    out.set(body, hl);
  } else {
    const body = transportHeader(p);
    out = new Uint8Array(40 + body.length);
    const v = new DataView(out.buffer);
    out[0] = 0x60;
    v.setUint16(4, body.length);
    out[6] = p.protocol ?? 0;
    out[7] = 64;
    out[23] = 1;
    out[39] = 2;
    out.set(body, 40);
  }
  return p.cut === undefined ? out : out.subarray(0, p.cut);
}

function ethernetFrame(p: PacketSpec): Uint8Array {
  const net = networkPacket(p);
  const frame = new Uint8Array(14 + net.length);
  frame.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
  new DataView(frame.buffer).setUint16(12, ETHERTYPE[p.family]);
  frame.set(net, 14);
  return frame;
}

/** Runs a compiled program as the kernel would present `p` on `link`; true if accepted. */
function accepts(program: BpfProgram, p: PacketSpec, link: CompileFilterOptions["link"]): boolean {
  const verdict = link === "ethernet"
    ? run(program, ethernetFrame(p))
    : run(program, networkPacket(p), ETHERTYPE[p.family]);
  assert.ok(verdict === 0 || verdict === 0xffffffff, `verdict ${verdict}`);
  return verdict !== 0;
}

/** What `match` should accept, worked out from the packet's description. */
function expected(m: FilterMatch, p: PacketSpec): boolean {
  const names: Record<string, number> = { ipv4: 0x0800, ipv6: 0x86dd, arp: 0x0806 };
  const protos: Record<string, number> = { icmp: 1, tcp: 6, udp: 17, icmpv6: 58 };
  const etherType = typeof m.etherType === "string" ? names[m.etherType] : m.etherType;
  const protocol = typeof m.ipProtocol === "string" ? protos[m.ipProtocol] : m.ipProtocol;
  if (etherType !== undefined && etherType !== ETHERTYPE[p.family]) return false;
  const hasPorts = m.port !== undefined || m.srcPort !== undefined || m.dstPort !== undefined;
  const transport = hasPorts || m.icmpType !== undefined;
  if (protocol === undefined && !transport) return true;
  if (p.family === "arp") return false;
  if (etherType === undefined && protocol === 1 && p.family === 6) return false;
  if (etherType === undefined && protocol === 58 && p.family === 4) return false;
  if (protocol !== undefined && p.protocol !== protocol) return false;
  if (protocol === undefined && p.protocol !== 6 && p.protocol !== 17) return false;
  if (!transport) return true;
  if (p.family === 4 && (p.fragment ?? 0) !== 0) return false;
  if (m.port !== undefined && p.srcPort !== m.port && p.dstPort !== m.port) return false;
  if (m.srcPort !== undefined && p.srcPort !== m.srcPort) return false;
  if (m.dstPort !== undefined && p.dstPort !== m.dstPort) return false;
  if (m.icmpType !== undefined && p.icmpType !== m.icmpType) return false;
  return true;
}

const MATCHES: FilterMatch[] = [
  {},
  { etherType: "ipv4" },
  { etherType: "ipv6" },
  { etherType: "arp" },
  { etherType: 0x0800 },
  { ipProtocol: "udp" },
  { ipProtocol: "tcp" },
  { ipProtocol: 132 },
  { ipProtocol: 47 },
  { ipProtocol: "icmp" },
  { ipProtocol: "icmpv6" },
  { etherType: "ipv6", ipProtocol: "udp" },
  { etherType: "ipv4", ipProtocol: "tcp", dstPort: 80 },
  { port: 53 },
  { ipProtocol: "udp", port: 53 },
  { ipProtocol: "udp", srcPort: 53 },
  { ipProtocol: "tcp", dstPort: 443 },
  { srcPort: 1234, dstPort: 53 },
  { ipProtocol: "udp", port: 53, srcPort: 1234 },
  { ipProtocol: 132, dstPort: 80 },
  { ipProtocol: "icmp", icmpType: 8 },
  { ipProtocol: "icmp", icmpType: 0 },
  { ipProtocol: "icmpv6", icmpType: 128 },
  { etherType: "ipv6", ipProtocol: "icmpv6", icmpType: 129 },
  { ipProtocol: 1, icmpType: 3 },
  { dstPort: 0 },
  { port: 65535 },
];

/** Whether `m` can be compiled for `link`: an "ip" link carries IPv4 only. */
function applicable(m: FilterMatch, link: CompileFilterOptions["link"]): boolean {
  if (link !== "ip") return true;
  const v4 = m.etherType === undefined || m.etherType === "ipv4" || m.etherType === 0x0800;
  return v4 && m.ipProtocol !== "icmpv6";
}

function packetSpecs(): PacketSpec[] {
  const specs: PacketSpec[] = [{ family: "arp" }];
  const bodies: Omit<PacketSpec, "family">[] = [
    { protocol: 17, srcPort: 1234, dstPort: 53 },
    { protocol: 17, srcPort: 53, dstPort: 40000 },
    { protocol: 6, srcPort: 50000, dstPort: 443 },
    { protocol: 6, srcPort: 50000, dstPort: 80 },
    { protocol: 6, srcPort: 65535, dstPort: 0 },
    { protocol: 132, srcPort: 9, dstPort: 80 },
    { protocol: 47, srcPort: 1234, dstPort: 53 },
    { protocol: 1, icmpType: 8 },
    { protocol: 1, icmpType: 0 },
    { protocol: 1, icmpType: 3 },
    { protocol: 58, icmpType: 128 },
    { protocol: 58, icmpType: 129 },
  ];
  for (const body of bodies) {
    specs.push({ family: 6, ...body });
    for (const options of [0, 4, 40]) {
      specs.push({ family: 4, options, ...body });
      specs.push({ family: 4, options, moreFragments: true, ...body });
      specs.push({ family: 4, options, fragment: 185, moreFragments: true, ...body });
      specs.push({ family: 4, options, fragment: 1, ...body });
    }
  }
  return specs;
}

Deno.test("compileFilter() accepts exactly the matching packets on every link", () => {
  const specs = packetSpecs();
  let checked = 0;
  let accepted = 0;
  for (const link of ["ethernet", "cooked", "ip"] as const) {
    for (const m of MATCHES.filter((m) => applicable(m, link))) {
      const program = compileFilter(m, { link });
      validateFilter(program);
      for (const p of specs) {
        if (link === "ip" && p.family !== 4) continue;
        const want = expected(m, p);
        assert.equal(
          accepts(program, p, link),
          want,
          `${link} ${JSON.stringify(m)} on ${JSON.stringify(p)}`,
        );
        checked++;
        if (want) accepted++;
      }
    }
  }
  // Both verdicts must be well represented, or the matrix proves little.
  assert.ok(checked > 5000, `checked ${checked}`);
  assert.ok(accepted > 1000 && checked - accepted > 1000, `accepted ${accepted} of ${checked}`);
});

Deno.test("compileFilter() skips IPv4 options to find the ports", () => {
  const program = compileFilter({ ipProtocol: "udp", dstPort: 53 }, { link: "ethernet" });
  for (const options of [0, 4, 8, 40]) {
    assert.equal(
      accepts(program, { family: 4, protocol: 17, dstPort: 53, options }, "ethernet"),
      true,
    );
    assert.equal(
      accepts(program, { family: 4, protocol: 17, dstPort: 54, options }, "ethernet"),
      false,
    );
  }
  // A fixed offset would read the options as the ports: 0x0101 = 257.
  const trap = compileFilter({ ipProtocol: "udp", srcPort: 257 }, { link: "ip" });
  assert.equal(accepts(trap, { family: 4, protocol: 17, srcPort: 1, options: 4 }, "ip"), false);
});

Deno.test("compileFilter() matches ports in a first fragment, never in a later one", () => {
  const program = compileFilter({ ipProtocol: "udp", dstPort: 53 }, { link: "cooked" });
  const base = { family: 4, protocol: 17, dstPort: 53 } as const;
  assert.equal(accepts(program, { ...base, moreFragments: true }, "cooked"), true);
  assert.equal(accepts(program, { ...base, fragment: 185, moreFragments: true }, "cooked"), false);
  assert.equal(accepts(program, { ...base, fragment: 0x1fff }, "cooked"), false);
  // Without a port condition, fragments match on the protocol alone.
  const protocolOnly = compileFilter({ ipProtocol: "udp" }, { link: "cooked" });
  assert.equal(accepts(protocolOnly, { ...base, fragment: 185 }, "cooked"), true);
});

Deno.test("compileFilter() rejects truncated packets and IPv6 extension headers", () => {
  const program = compileFilter({ ipProtocol: "udp", dstPort: 53 }, { link: "ethernet" });
  const udp4 = { family: 4, protocol: 17, dstPort: 53 } as const;
  assert.equal(accepts(program, { ...udp4, cut: 24 }, "ethernet"), true);
  assert.equal(accepts(program, { ...udp4, cut: 23 }, "ethernet"), false);
  assert.equal(accepts(program, { ...udp4, cut: 10 }, "ethernet"), false);
  const udp6 = { family: 6, protocol: 17, dstPort: 53 } as const;
  assert.equal(accepts(program, { ...udp6, cut: 44 }, "ethernet"), true);
  assert.equal(accepts(program, { ...udp6, cut: 43 }, "ethernet"), false);
  // Hop-by-hop options (next header 0) before UDP: not matched.
  assert.equal(accepts(program, { ...udp6, protocol: 0 }, "ethernet"), false);
});

Deno.test("compileFilter() reads the EtherType from ancillary data on cooked links", () => {
  const program = compileFilter({ etherType: "arp" }, { link: "cooked" });
  assert.deepEqual(program[0], {
    code: BPF.LD | BPF.H | BPF.ABS,
    jt: 0,
    jf: 0,
    k: 0xfffff000,
  });
  const arp = networkPacket({ family: "arp" });
  assert.equal(run(program, arp, 0x0806), 0xffffffff);
  assert.equal(run(program, arp, 0x0800), 0);
});

Deno.test("compileFilter() returns frozen, minimal programs", () => {
  const all = compileFilter({}, { link: "ethernet" });
  assert.deepEqual(all, [{ code: BPF.RET | BPF.K, jt: 0, jf: 0, k: 0xffffffff }]);
  assert.ok(Object.isFrozen(all) && Object.isFrozen(all[0]));
  assert.equal(compileFilter({ etherType: "ipv4" }, { link: "ip" }).length, 1);
  // The classic tcpdump shape for "udp dst port 53" on Ethernet, IPv4 only.
  const dns = compileFilter({ etherType: "ipv4", ipProtocol: "udp", dstPort: 53 }, {
    link: "ethernet",
  });
  assert.deepEqual(dns.map((i) => [i.code, i.jt, i.jf, i.k]), [
    [0x28, 0, 0, 12],
    [0x15, 0, 8, 0x0800],
    [0x30, 0, 0, 23],
    [0x15, 0, 6, 17],
    [0x28, 0, 0, 20],
    [0x45, 4, 0, 0x1fff],
    [0xb1, 0, 0, 14],
    [0x48, 0, 0, 16],
    [0x15, 0, 1, 53],
    [0x06, 0, 0, 0xffffffff],
    [0x06, 0, 0, 0],
  ]);
});

Deno.test("compileFilter() refuses bad matches with TypeError or RangeError", () => {
  const ip = { link: "ip" } as const;
  const eth = { link: "ethernet" } as const;
  const bad: [() => unknown, ErrorConstructor, RegExp][] = [
    [() => compileFilter(null as unknown as FilterMatch, eth), TypeError, /match must be/],
    [() => compileFilter({ protocol: "udp" } as FilterMatch, eth), TypeError, /unknown match key/],
    [
      () => compileFilter({}, { link: "wifi" } as unknown as CompileFilterOptions),
      TypeError,
      /link/,
    ],
    [() => compileFilter({}, undefined as unknown as CompileFilterOptions), TypeError, /options/],
    [() => compileFilter({ etherType: "ip" as "ipv4" }, eth), TypeError, /etherType/],
    [() => compileFilter({ ipProtocol: "sctp" as "tcp" }, eth), TypeError, /ipProtocol/],
    [() => compileFilter({ etherType: 0x10000 }, eth), RangeError, /etherType/],
    [() => compileFilter({ ipProtocol: 256 }, eth), RangeError, /ipProtocol/],
    [() => compileFilter({ port: 65536 }, eth), RangeError, /port/],
    [() => compileFilter({ srcPort: -1 }, eth), RangeError, /srcPort/],
    [() => compileFilter({ dstPort: 1.5 }, eth), TypeError, /dstPort/],
    [() => compileFilter({ dstPort: "53" as unknown as number }, eth), TypeError, /dstPort/],
    [() => compileFilter({ ipProtocol: "icmp", icmpType: 256 }, eth), RangeError, /icmpType/],
    [() => compileFilter({ icmpType: 8 }, eth), TypeError, /icmpType needs/],
    [() => compileFilter({ ipProtocol: "icmp", port: 1 }, eth), TypeError, /no ports/],
    [() => compileFilter({ etherType: "arp", ipProtocol: "udp" }, eth), TypeError, /not IP/],
    [() => compileFilter({ etherType: "ipv6" }, ip), RangeError, /only IPv4/],
    [() => compileFilter({ ipProtocol: "icmpv6" }, ip), RangeError, /ICMPv6 never matches/],
  ];
  for (const [call, cls, message] of bad) {
    assert.throws(call, (e: Error) => {
      assert.ok(e instanceof cls, `${e.name}: ${e.message}`);
      assert.match(e.message, message);
      return true;
    });
  }
});

// ---------------------------------------------------------------------------
// Constructors and validation.

Deno.test("BPF holds the linux/filter.h codes and is frozen", () => {
  assert.ok(Object.isFrozen(BPF));
  assert.equal(BPF.LD | BPF.H | BPF.ABS, 0x28);
  assert.equal(BPF.LDX | BPF.B | BPF.MSH, 0xb1);
  assert.equal(BPF.JMP | BPF.JEQ | BPF.K, 0x15);
  assert.equal(BPF.JMP | BPF.JSET | BPF.K, 0x45);
  assert.equal(BPF.RET | BPF.A, 0x16);
  assert.equal(BPF.MISC | BPF.TXA, 0x87);
  assert.equal(BPF.AD_OFF + BPF.AD_PROTOCOL, 0xfffff000);
  assert.equal(BPF.MAXINSNS, 4096);
});

Deno.test("bpfStatement() and bpfJump() build instructions and check their fields", () => {
  assert.deepEqual(bpfStatement(0x06, 0xffffffff), { code: 6, jt: 0, jf: 0, k: 0xffffffff });
  assert.deepEqual(bpfJump(0x15, 0x86dd, 3, 255), { code: 0x15, jt: 3, jf: 255, k: 0x86dd });
  assert.throws(() => bpfStatement(0x10000, 0), RangeError);
  assert.throws(() => bpfStatement(6, -1), RangeError);
  assert.throws(() => bpfStatement(6, 2 ** 32), RangeError);
  assert.throws(() => bpfStatement(6, NaN), TypeError);
  assert.throws(() => bpfStatement("6" as unknown as number, 0), TypeError);
  assert.throws(() => bpfJump(0x15, 0, 256, 0), /bpfJump: jt must be between 0 and 255, got 256/);
  assert.throws(() => bpfJump(0x15, 0, 0, 0.5), TypeError);
});

const RET0 = { code: 0x06, jt: 0, jf: 0, k: 0 };

Deno.test("validateFilter() accepts 1 and 4,096 instructions, refuses 0 and 4,097", () => {
  validateFilter([RET0]);
  validateFilter(Array(4096).fill(RET0));
  assert.throws(() => validateFilter([]), /BPF program is empty/);
  assert.throws(
    () => validateFilter(Array(4097).fill(RET0)),
    /BPF program has 4097 instructions, over the limit of 4096/,
  );
});

Deno.test("validateFilter() refuses jumps past the end, naming the instruction", () => {
  const jeq = (jt: number, jf: number) => ({ code: 0x15, jt, jf, k: 0 });
  validateFilter([jeq(1, 0), RET0, RET0]);
  assert.throws(() => validateFilter([jeq(2, 0), RET0, RET0]), RangeError);
  assert.throws(
    () => validateFilter([RET0, jeq(0, 1), RET0]),
    /BPF instruction 1 jumps to 3, past the end of the 3-instruction program/,
  );
  validateFilter([{ code: 0x05, jt: 0, jf: 0, k: 1 }, RET0, RET0]);
  assert.throws(() => validateFilter([{ code: 0x05, jt: 0, jf: 0, k: 2 }, RET0, RET0]), RangeError);
  assert.throws(
    () => validateFilter([{ code: 0x05, jt: 0, jf: 0, k: 2 ** 32 - 1 }, RET0]),
    RangeError,
  );
});

Deno.test("validateFilter() refuses a program whose last instruction is not a return", () => {
  assert.throws(
    () => validateFilter([RET0, { code: 0x28, jt: 0, jf: 0, k: 12 }]),
    /BPF instruction 1 \(code 0x28\) ends the program but is not a return/,
  );
  validateFilter([{ code: BPF.RET | BPF.A, jt: 0, jf: 0, k: 0 }]);
  assert.throws(() => validateFilter([{ code: BPF.RET | BPF.X, jt: 0, jf: 0, k: 0 }]), RangeError);
});

Deno.test("validateFilter() refuses fields outside u16/u8/u8/u32 and wrong shapes", () => {
  const cases: [unknown, ErrorConstructor, RegExp][] = [
    [
      [{ ...RET0, code: 0x10000 }],
      RangeError,
      /instruction 0: code must be between 0 and 65535/,
    ],
    [[{ ...RET0, code: -1 }], RangeError, /code/],
    [[{ ...RET0, jt: 256 }], RangeError, /jt must be between 0 and 255, got 256/],
    [[{ ...RET0, jf: -1 }], RangeError, /jf/],
    [[{ ...RET0, k: 2 ** 32 }], RangeError, /k must be between 0 and 4294967295/],
    [[{ ...RET0, k: 0.5 }], TypeError, /k must be an integer, got 0.5/],
    [[{ ...RET0, k: "0" }], TypeError, /k must be an integer, got "0"/],
    [[{ code: 6, jt: 0, jf: 0 }], TypeError, /k must be an integer, got undefined/],
    [[RET0, null], TypeError, /BPF instruction 1 must be an object, got null/],
    [[7], TypeError, /must be an object, got number/],
    [RET0, TypeError, /must be an array/],
    ["ret", TypeError, /must be an array/],
  ];
  for (const [program, cls, message] of cases) {
    assert.throws(() => validateFilter(program as BpfProgram), (e: Error) => {
      assert.ok(e instanceof cls, `${JSON.stringify(program)}: ${e.name}: ${e.message}`);
      assert.match(e.message, message);
      return true;
    });
  }
});

Deno.test("validateFilter() refuses what the kernel's checker refuses", () => {
  const ins = (code: number, k = 0) => ({ code, jt: 0, jf: 0, k });
  const cases: [BpfProgram, RegExp][] = [
    [[ins(0xffff), RET0], /code 0xffff is not a classic BPF operation/],
    [[ins(BPF.RET | BPF.X)], /not a classic BPF operation/],
    [[ins(BPF.ALU | BPF.DIV | BPF.K, 0), RET0], /divides by the constant 0/],
    [[ins(BPF.ALU | BPF.MOD | BPF.K, 0), RET0], /divides by the constant 0/],
    [[ins(BPF.ALU | BPF.LSH | BPF.K, 32), RET0], /shifts by 32/],
    [[ins(BPF.ST, 16), RET0], /scratch memory word 16, over the limit of 15/],
    [[ins(BPF.LD | BPF.MEM, 3), RET0], /reads scratch memory word 3 before any path writes it/],
    [
      [ins(BPF.LD | BPF.W | BPF.ABS, 0xfffff002), RET0],
      /unknown ancillary data at offset 0xfffff002/,
    ],
    [[ins(BPF.LD | BPF.W | BPF.ABS, 0xfffff040), RET0], /unknown ancillary/],
    // Written on one path only: the read after the join is refused.
    [[
      bpfJump(BPF.JMP | BPF.JEQ | BPF.K, 0, 0, 1),
      ins(BPF.ST, 2),
      ins(BPF.LD | BPF.MEM, 2),
      RET0,
    ], /instruction 2 reads scratch memory word 2/],
  ];
  for (const [program, message] of cases) {
    assert.throws(() => validateFilter(program), (e: Error) => {
      assert.ok(e instanceof RangeError, `${e.name}: ${e.message}`);
      assert.match(e.message, message);
      return true;
    });
  }
  // Written on both paths, or before the jump: fine.
  validateFilter([
    ins(BPF.ST, 2),
    bpfJump(BPF.JMP | BPF.JEQ | BPF.K, 0, 0, 1),
    ins(BPF.ST, 5),
    ins(BPF.LD | BPF.MEM, 2),
    RET0,
  ]);
  validateFilter([
    ins(BPF.LD | BPF.H | BPF.ABS, 0xfffff000),
    ins(BPF.ALU | BPF.RSH | BPF.K, 31),
    RET0,
  ]);
});

// ---------------------------------------------------------------------------
// The C layout.

Deno.test("encodeFilter() lays out struct sock_filter: u16 code, u8 jt, u8 jf, u32 k", () => {
  const bytes = encodeFilter([
    bpfStatement(0x28, 12),
    bpfJump(0x15, 0x0800, 1, 2),
    bpfStatement(0x06, 0),
    bpfStatement(0x06, 0),
    bpfStatement(0x06, 0xfffffffe),
  ]);
  assert.equal(SOCK_FILTER.size, 8);
  // deno-fmt-ignore
  assert.deepEqual(bytes, new Uint8Array([
    0x28, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00,
    0x15, 0x00, 0x01, 0x02, 0x00, 0x08, 0x00, 0x00,
    0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x06, 0x00, 0x00, 0x00, 0xfe, 0xff, 0xff, 0xff,
  ]));
  assert.throws(() => encodeFilter([]), RangeError);
});

Deno.test({
  name: "encodeFilter() matches Python's native struct.pack('HBBI') byte for byte",
  ...needs("python3"),
  async fn() {
    const program = compileFilter({ ipProtocol: "udp", port: 53 }, { link: "ethernet" });
    const script = `import json, struct, sys
prog = json.loads(sys.argv[1])
sys.stdout.write(b"".join(struct.pack("HBBI", *i) for i in prog).hex())`;
    const out = await pythonOutput(script, [
      JSON.stringify(program.map((i) => [i.code, i.jt, i.jf, i.k])),
    ]);
    assert.equal(out, toHex(encodeFilter(program)));
  },
});

Deno.test("encodeFprog() lays out struct sock_fprog: u16 len, padding, pointer", () => {
  const filter = encodeFilter([RET0, RET0, RET0]);
  const fprog = encodeFprog(filter, 0x0123456789abcdefn);
  assert.equal(SOCK_FPROG.size, 16);
  // deno-fmt-ignore
  assert.deepEqual(fprog, new Uint8Array([
    3, 0, 0, 0, 0, 0, 0, 0, 0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01,
  ]));
  assert.throws(() => encodeFprog(new Uint8Array(0), 1n), /0 bytes, not 1 to 4096 instructions/);
  assert.throws(() => encodeFprog(new Uint8Array(12), 1n), RangeError);
  assert.throws(() => encodeFprog(new Uint8Array(8 * 4097), 1n), RangeError);
});

// ---------------------------------------------------------------------------
// The real kernel.

// Reads programs from stdin, each a u32 instruction count (host order) and
// that many struct sock_filter, attaches each to a UDP socket and prints
// "ok" or "errno N" per program.
const ATTACH_C = `
#include <errno.h>
#include <linux/filter.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <netinet/in.h>

int main(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) { perror("socket"); return 2; }
  uint32_t n;
  while (fread(&n, sizeof n, 1, stdin) == 1) {
    struct sock_filter *insns = calloc(n ? n : 1, sizeof *insns);
    if (n && fread(insns, sizeof *insns, n, stdin) != n) { fprintf(stderr, "short read\\n"); return 2; }
    struct sock_fprog prog = { .len = (unsigned short)n, .filter = insns };
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) == 0) printf("ok\\n");
    else printf("errno %d\\n", errno);
    free(insns);
  }
  return 0;
}
`;

/** Compiles the attach helper once per test run. */
async function attachHelper(dir: string): Promise<string> {
  const src = `${dir}/attach.c`;
  const bin = `${dir}/attach`;
  await Deno.writeTextFile(src, ATTACH_C);
  const cc = await new Deno.Command("gcc", { args: ["-O1", "-o", bin, src], stderr: "inherit" })
    .output();
  assert.ok(cc.success, "gcc failed to build the attach helper");
  return bin;
}

/** Packs instructions the way C lays them out, without validating: the test's own encoder. */
function packUnchecked(program: readonly BpfInstructionLike[]): Uint8Array {
  const out = new Uint8Array(4 + program.length * 8);
  const v = new DataView(out.buffer);
  v.setUint32(0, program.length, true);
  program.forEach((i, n) => {
    v.setUint16(4 + n * 8, i.code, true);
    v.setUint8(6 + n * 8, i.jt);
    v.setUint8(7 + n * 8, i.jf);
    v.setUint32(8 + n * 8, i.k, true);
  });
  return out;
}
type BpfInstructionLike = { code: number; jt: number; jf: number; k: number };

/** Feeds each record to the helper; returns one "ok"/"errno N" line per record. */
async function kernelVerdicts(bin: string, records: Uint8Array[]): Promise<string[]> {
  const child = new Deno.Command(bin, { stdin: "piped", stdout: "piped", stderr: "inherit" })
    .spawn();
  const writer = child.stdin.getWriter();
  const written = (async () => {
    for (const r of records) await writer.write(r);
    await writer.close();
  })();
  const out = await deadline(child.output(), 30_000, "the attach helper");
  await written;
  assert.ok(out.success, "the attach helper failed");
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  assert.equal(lines.length, records.length);
  return lines;
}

function withCount(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length / 8, true);
  out.set(bytes, 4);
  return out;
}

Deno.test("the kernel accepts encodeFilter() output and refuses broken programs with EINVAL", async () => {
  using dir = tempDir();
  const bin = await attachHelper(dir.path);
  const good: BpfProgram[] = [];
  for (const link of ["ethernet", "cooked", "ip"] as const) {
    for (const m of MATCHES.filter((m) => applicable(m, link))) {
      good.push(compileFilter(m, { link }));
    }
  }
  const broken: BpfInstructionLike[][] = [
    [],
    Array(4097).fill(RET0),
    [{ code: 0x15, jt: 1, jf: 0, k: 0 }, RET0],
    [{ code: 0x05, jt: 0, jf: 0, k: 1 }, RET0],
    [RET0, { code: 0x28, jt: 0, jf: 0, k: 12 }],
    [{ code: 0xffff, jt: 0, jf: 0, k: 0 }, RET0],
  ];
  const verdicts = await kernelVerdicts(bin, [
    ...good.map((p) => withCount(encodeFilter(p))),
    ...broken.map(packUnchecked),
  ]);
  assert.deepEqual(verdicts.slice(0, good.length), good.map(() => "ok"));
  assert.deepEqual(verdicts.slice(good.length), broken.map(() => "errno 22"));
  for (const p of broken) assert.throws(() => validateFilter(p), RangeError);
});

Deno.test("validateFilter() agrees with the kernel on 3,000 random programs", async () => {
  using dir = tempDir();
  const bin = await attachHelper(dir.path);
  const rand = prng(0x5eed_bbf);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const known = [
    0x00,
    0x01,
    0x02,
    0x03,
    0x04,
    0x05,
    0x06,
    0x07,
    0x0c,
    0x14,
    0x15,
    0x16,
    0x1c,
    0x1d,
    0x20,
    0x24,
    0x25,
    0x28,
    0x2c,
    0x30,
    0x34,
    0x35,
    0x3c,
    0x3d,
    0x40,
    0x44,
    0x45,
    0x48,
    0x4c,
    0x50,
    0x54,
    0x5c,
    0x60,
    0x61,
    0x64,
    0x6c,
    0x74,
    0x7c,
    0x80,
    0x81,
    0x84,
    0x87,
    0x94,
    0x9c,
    0xa4,
    0xac,
    0xb1,
    0x0e,
    0x1e,
    0x41,
    0x89,
    0xa1,
  ];
  const ks = [
    0,
    1,
    2,
    3,
    12,
    15,
    16,
    31,
    32,
    0x800,
    0xfffff000,
    0xfffff004,
    0xfffff002,
    0xfffff03c,
    0xfffff040,
    0xfff00000,
    0xffffffff,
  ];
  const programs: BpfInstructionLike[][] = [];
  for (let n = 0; n < 3000; n++) {
    const len = 1 + Math.floor(rand() * 6);
    const program: BpfInstructionLike[] = [];
    for (let i = 0; i < len; i++) {
      const code = rand() < 0.9 ? pick(known) : Math.floor(rand() * 0x10000);
      const k = rand() < 0.8 ? pick(ks) : Math.floor(rand() * 2 ** 32);
      program.push({ code, jt: Math.floor(rand() * 5), jf: Math.floor(rand() * 5), k });
    }
    // Most random programs fail early; give half of them a valid ending.
    if (rand() < 0.5) program[len - 1] = { code: pick([0x06, 0x16]), jt: 0, jf: 0, k: pick(ks) };
    programs.push(program);
  }
  const verdicts = await kernelVerdicts(bin, programs.map(packUnchecked));
  let accepted = 0;
  programs.forEach((program, i) => {
    let ours = "ok";
    try {
      validateFilter(program);
    } catch (e) {
      assert.ok(e instanceof RangeError, `${e}`);
      ours = "errno 22";
    }
    assert.equal(ours, verdicts[i], `program ${JSON.stringify(program)}`);
    if (ours === "ok") accepted++;
  });
  console.log(`accepted ${accepted}`);
  assert.ok(accepted > 100 && accepted < 2900, `accepted ${accepted}`);
});

// Inside a fresh network namespace (lo with a 1280-byte MTU, so large
// datagrams fragment), attaches the filters given as hex to an Ethernet
// packet socket, a cooked packet socket and a raw IPv4 UDP socket, sends UDP
// to ports P (wanted) and Q (not) over IPv4, IPv4 with options, fragmented
// IPv4 and IPv6, and reports which markers each socket saw. The last datagram
// ("end") is awaited as the sign that everything before it was filtered.
const LOOPBACK_PY = `
import ctypes, json, select, socket, struct, sys, time
filters, P, Q = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
keep = []
def attach(s, code):
    code = bytes.fromhex(code)
    buf = ctypes.create_string_buffer(code, len(code))
    keep.append(buf)
    s.setsockopt(socket.SOL_SOCKET, 26, struct.pack("HL", len(code) // 8, ctypes.addressof(buf)))
socks = {}
for name, kind in (("ethernet", socket.SOCK_RAW), ("cooked", socket.SOCK_DGRAM)):
    s = socket.socket(socket.AF_PACKET, kind, 0)  # protocol 0: nothing arrives before the filter
    attach(s, filters[name])
    s.bind(("lo", 3))
    socks[name] = s
socks["ip"] = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
attach(socks["ip"], filters["ip"])
sinks = []
for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    for port in (P, Q):
        r = socket.socket(fam, socket.SOCK_DGRAM); r.bind((host, port)); sinks.append(r)
s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s4.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER = IP_PMTUDISC_DONT: fragment
s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
opt = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
opt.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, b"\\x01\\x01\\x01\\x00")
s4.sendto(b"yes-v4", ("127.0.0.1", P)); s4.sendto(b"no-v4", ("127.0.0.1", Q))
s6.sendto(b"yes-v6", ("::1", P)); s6.sendto(b"no-v6", ("::1", Q))
opt.sendto(b"yes-opt", ("127.0.0.1", P)); opt.sendto(b"no-opt", ("127.0.0.1", Q))
# Later fragments hold P at every 4-byte boundary, where a filter that
# forgot the fragment offset would read a destination port.
tail = struct.pack("!HH", P, P) * 750
s4.sendto(b"yes-frag" + tail, ("127.0.0.1", P))
s4.sendto(b"no-frag\\x00" + tail, ("127.0.0.1", Q))
s4.sendto(b"end", ("127.0.0.1", P))
markers = [b"yes-v4", b"no-v4", b"yes-v6", b"no-v6", b"yes-opt", b"no-opt", b"yes-frag", b"no-frag", b"end"]
report = {}
for name, s in socks.items():
    seen, done, limit = {}, False, time.monotonic() + 10
    while not done and time.monotonic() < limit:
        if not select.select([s], [], [], 0.5)[0]: continue
        data, addr = s.recvfrom(70000)
        label = next((m.decode() for m in markers if m in data), "tail" if tail[:64] in data else "other")
        if label == "yes-opt" and name != "ip":
            label += "-ihl%d" % (data[14 if name == "ethernet" else 0] & 15)
        if label.startswith("yes-frag") and name == "ip" and len(data) >= 3028:
            label = "yes-frag-whole"
        seen[label] = seen.get(label, 0) + 1
        # Packet sockets see each datagram leave and arrive; wait for the arrival.
        done = label == "end" and (name == "ip" or addr[2] == socket.PACKET_HOST)
    report[name] = {"seen": sorted(seen), "done": done}
print(json.dumps(report))
`;

Deno.test({
  name: "compileFilter() programs filter real loopback traffic on all three links",
  ...needs("CAP_NET_ADMIN", "CAP_NET_RAW", "python3"),
  async fn() {
    const match: FilterMatch = { ipProtocol: "udp", dstPort: 40053 };
    const filters = Object.fromEntries(
      (["ethernet", "cooked", "ip"] as const).map((link) => [
        link,
        toHex(encodeFilter(compileFilter(match, { link }))),
      ]),
    );
    const out = await pythonOutput(LOOPBACK_PY, [JSON.stringify(filters), "40053", "40054"], {
      netns: "ip link set lo mtu 1280 up",
    });
    const report = JSON.parse(out);
    const link = ["end", "yes-frag", "yes-opt-ihl6", "yes-v4", "yes-v6"];
    assert.deepEqual(report, {
      ethernet: { seen: link, done: true },
      cooked: { seen: link, done: true },
      // Raw sockets get reassembled datagrams, IPv4 only.
      ip: { seen: ["end", "yes-frag-whole", "yes-opt", "yes-v4"], done: true },
    });
  },
});
