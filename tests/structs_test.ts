// ffi/structs.ts against the C compiler: every table's size and field offsets
// are printed by a small C program built from the tables themselves, so a
// field added to a table without its C name fails here.

import assert from "node:assert/strict";
import * as structs from "../ffi/structs.ts";
import { needs, tempDir } from "./_helpers.ts";

type Table = Readonly<Record<string, number>>;

/**
 * Each table's C type and, per field, its C member (`offsetof`) or, after
 * `=`, a C expression for a position the struct does not name.
 */
const C: Record<string, { type: string; fields: Record<string, string> }> = {
  IOVEC: { type: "struct iovec", fields: { base: "iov_base", len: "iov_len" } },
  MSGHDR: {
    type: "struct msghdr",
    fields: {
      name: "msg_name",
      namelen: "msg_namelen",
      iov: "msg_iov",
      iovlen: "msg_iovlen",
      control: "msg_control",
      controllen: "msg_controllen",
      flags: "msg_flags",
    },
  },
  MMSGHDR: { type: "struct mmsghdr", fields: { hdr: "msg_hdr", len: "msg_len" } },
  CMSGHDR: {
    type: "struct cmsghdr",
    fields: { len: "cmsg_len", level: "cmsg_level", type: "cmsg_type", data: "=CMSG_LEN(0)" },
  },
  UCRED: { type: "struct ucred", fields: { pid: "pid", uid: "uid", gid: "gid" } },
  IP_MREQN: {
    type: "struct ip_mreqn",
    fields: { multiaddr: "imr_multiaddr", address: "imr_address", ifindex: "imr_ifindex" },
  },
  IPV6_MREQ: {
    type: "struct ipv6_mreq",
    fields: { multiaddr: "ipv6mr_multiaddr", ifindex: "ipv6mr_interface" },
  },
  IN_PKTINFO: {
    type: "struct in_pktinfo",
    fields: { ifindex: "ipi_ifindex", specDst: "ipi_spec_dst", addr: "ipi_addr" },
  },
  IN6_PKTINFO: {
    type: "struct in6_pktinfo",
    fields: { addr: "ipi6_addr", ifindex: "ipi6_ifindex" },
  },
  TIMESPEC: { type: "struct timespec", fields: { sec: "tv_sec", nsec: "tv_nsec" } },
  SOCK_FILTER: {
    type: "struct sock_filter",
    fields: { code: "code", jt: "jt", jf: "jf", k: "k" },
  },
  SOCK_FPROG: { type: "struct sock_fprog", fields: { len: "len", filter: "filter" } },
  TPACKET_STATS: {
    type: "struct tpacket_stats",
    fields: { packets: "tp_packets", drops: "tp_drops" },
  },
  TPACKET_REQ3: {
    type: "struct tpacket_req3",
    fields: {
      blockSize: "tp_block_size",
      blockNr: "tp_block_nr",
      frameSize: "tp_frame_size",
      frameNr: "tp_frame_nr",
      retireBlkTov: "tp_retire_blk_tov",
      sizeofPriv: "tp_sizeof_priv",
      featureReqWord: "tp_feature_req_word",
    },
  },
  TPACKET_BLOCK_DESC: {
    type: "struct tpacket_block_desc",
    fields: {
      version: "version",
      offsetToPriv: "offset_to_priv",
      blockStatus: "hdr.bh1.block_status",
      numPkts: "hdr.bh1.num_pkts",
      offsetToFirstPkt: "hdr.bh1.offset_to_first_pkt",
      blkLen: "hdr.bh1.blk_len",
      seqNum: "hdr.bh1.seq_num",
    },
  },
  TPACKET3_HDR: {
    type: "struct tpacket3_hdr",
    fields: {
      nextOffset: "tp_next_offset",
      sec: "tp_sec",
      nsec: "tp_nsec",
      snaplen: "tp_snaplen",
      len: "tp_len",
      status: "tp_status",
      mac: "tp_mac",
      net: "tp_net",
      address: "=TPACKET_ALIGN(sizeof(struct tpacket3_hdr))",
    },
  },
  TCP_INFO_LAYOUT: {
    type: "struct tcp_info",
    // The C names are the table's, snake_cased, after `tcpi_`.
    fields: Object.fromEntries(
      Object.keys(structs.TCP_INFO_LAYOUT).map((k) => [
        k,
        "tcpi_" + k.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase()),
      ]),
    ),
  },
  SOCKADDR_IN: {
    type: "struct sockaddr_in",
    fields: { family: "sin_family", port: "sin_port", addr: "sin_addr" },
  },
  SOCKADDR_IN6: {
    type: "struct sockaddr_in6",
    fields: {
      family: "sin6_family",
      port: "sin6_port",
      flowinfo: "sin6_flowinfo",
      addr: "sin6_addr",
      scopeId: "sin6_scope_id",
    },
  },
  SOCKADDR_UN: { type: "struct sockaddr_un", fields: { family: "sun_family", path: "sun_path" } },
  SOCKADDR_LL: {
    type: "struct sockaddr_ll",
    fields: {
      family: "sll_family",
      protocol: "sll_protocol",
      ifindex: "sll_ifindex",
      hatype: "sll_hatype",
      pkttype: "sll_pkttype",
      halen: "sll_halen",
      addr: "sll_addr",
    },
  },
  SOCKADDR_NL: {
    type: "struct sockaddr_nl",
    fields: { family: "nl_family", pid: "nl_pid", groups: "nl_groups" },
  },
  SOCKADDR_STORAGE: { type: "struct sockaddr_storage", fields: { family: "ss_family" } },
};

/** The control-message helpers, each with the C macro it stands for, at a few sizes. */
const MACROS: [string, (n: number) => number, number][] = [
  ["CMSG_ALIGN", structs.cmsgAlign, 12],
  ["CMSG_SPACE", structs.cmsgSpace, 12],
  ["CMSG_SPACE", structs.cmsgSpace, 4 * 253],
  ["CMSG_LEN", structs.cmsgLen, 12],
  ["CMSG_LEN", structs.cmsgLen, 4 * 3],
];

/** Every exported table (an object of numbers) by name. */
function tables(): [string, Table][] {
  return Object.entries(structs).filter(([, v]) =>
    typeof v === "object" && Object.values(v).every((x) => typeof x === "number")
  ) as [string, Table][];
}

/** `name value` lines: what the tables and helpers say. */
function expected(): string[] {
  const lines: string[] = [];
  for (const [name, table] of tables()) {
    for (const [field, value] of Object.entries(table)) lines.push(`${name}.${field} ${value}`);
  }
  for (const [macro, f, n] of MACROS) lines.push(`${macro}(${n}) ${f(n)}`);
  return lines;
}

/** The C program printing the same lines from the system headers. */
function program(): string {
  const out = [
    "#define _GNU_SOURCE",
    "#include <stdio.h>",
    "#include <stddef.h>",
    "#include <time.h>",
    "#include <sys/socket.h>",
    "#include <sys/uio.h>",
    "#include <sys/un.h>",
    "#include <netinet/in.h>",
    "#include <linux/filter.h>",
    "#include <linux/if_packet.h>",
    "#include <linux/netlink.h>",
    "#include <linux/tcp.h>",
    "int main(void) {",
  ];
  for (const [name, table] of tables()) {
    const c = C[name];
    for (const field of Object.keys(table)) {
      const member = field === "size" ? "=sizeof(" + c.type + ")" : c.fields[field];
      const expr = member.startsWith("=") ? member.slice(1) : `offsetof(${c.type}, ${member})`;
      out.push(`  printf("${name}.${field} %zu\\n", (size_t)(${expr}));`);
    }
  }
  for (const [macro, , n] of MACROS) {
    out.push(`  printf("${macro}(${n}) %zu\\n", (size_t)${macro}(${n}));`);
  }
  out.push("  return 0;", "}");
  return out.join("\n") + "\n";
}

Deno.test("ffi/structs.ts names a C member for every field of every table", () => {
  const names = tables().map(([name]) => name);
  assert.ok(names.includes("MSGHDR") && names.includes("CMSGHDR"));
  for (const [name, table] of tables()) {
    assert.ok(C[name], `${name} has no C type in this test`);
    for (const field of Object.keys(table)) {
      if (field !== "size") assert.ok(C[name].fields[field], `${name}.${field} has no C member`);
    }
  }
});

Deno.test({
  name: "ffi/structs.ts: sizes, offsets and CMSG_* helpers match what gcc says",
  ...needs("gcc"),
  async fn() {
    using dir = tempDir();
    const src = `${dir.path}/structs.c`, bin = `${dir.path}/structs`;
    Deno.writeTextFileSync(src, program());
    const cc = await new Deno.Command("gcc", {
      args: ["-Wall", "-Werror", "-o", bin, src],
      stderr: "piped",
    }).output();
    assert.ok(cc.success, new TextDecoder().decode(cc.stderr));
    const run = await new Deno.Command(bin, { stdout: "piped" }).output();
    assert.ok(run.success);
    const got = new TextDecoder().decode(run.stdout).trimEnd().split("\n");
    assert.deepEqual(got, expected());
  },
});
