// Child for tests/unified_test.ts: opens one kind of socket (Deno.args[0]),
// sends once, revokes the permission that send needed, and sends again. It
// prints one line of JSON: the bytes the peer got before the revocation, and
// the name of the error the send after it gave ("ok" if none). Run with
// scoped grants so that the revocation takes the whole grant away.

import { listenDatagram } from "../../datagram.ts";
import { connectSeqpacket, listenSeqpacket } from "../../seqpacket.ts";
import { connectStream, listenStream, type StreamBackend } from "../../stream.ts";
import { openPacket, openRaw } from "../../raw.ts";

const kind = Deno.args[0];
const dir = Deno.args[1] ?? "";
const payload = new Uint8Array(64).fill(7);

/** What a kind does: send once, then the send to retry after the revocation. */
interface Case {
  first(): Promise<number>;
  again(): Promise<unknown>;
  revoke: Deno.PermissionDescriptor;
  close(): void;
}

async function streamCase(backend: StreamBackend, accepted: boolean): Promise<Case> {
  using listener = listenStream({ hostname: "127.0.0.1", port: 0, backend });
  const client = await connectStream({ hostname: "127.0.0.1", port: listener.addr.port, backend });
  const server = await listener.accept();
  const [from, to] = accepted ? [server, client] : [client, server];
  return {
    async first() {
      await from.write(payload);
      const buf = new Uint8Array(64);
      let got = 0;
      while (got < 64) got += (await to.read(buf.subarray(got))) ?? 64;
      return got;
    },
    again: () => from.write(payload),
    revoke: { name: "net" },
    close() {
      client.close();
      server.close();
    },
  };
}

/** A case of two sockets: `send` from one, `receive` on the other. */
function pairCase(
  send: () => Promise<unknown>,
  receive: () => Promise<{ data: Uint8Array } | null>,
  revoke: Deno.PermissionDescriptor,
  sockets: Disposable[],
): Case {
  return {
    async first() {
      await send();
      return (await receive())?.data.length ?? 0;
    },
    again: send,
    revoke,
    close() {
      for (const s of sockets) s[Symbol.dispose]();
    },
  };
}

async function make(): Promise<Case> {
  switch (kind) {
    case "udp-ffi":
    case "udp-builtin":
    case "udp-connected": {
      const backend = kind === "udp-builtin" ? "builtin" : "ffi";
      const a = listenDatagram({ hostname: "127.0.0.1", port: 0, backend });
      const b = listenDatagram({ hostname: "127.0.0.1", port: 0, backend });
      if (kind === "udp-connected") await a.connect(b.localAddr);
      const send = () => kind === "udp-connected" ? a.send(payload) : a.send(payload, b.localAddr);
      return pairCase(send, () => b.receive(), { name: "net" }, [a, b]);
    }
    case "unixgram": {
      const a = listenDatagram({ path: `${dir}/a.sock`, backend: "ffi" });
      const b = listenDatagram({ path: `${dir}/b.sock`, backend: "ffi" });
      return pairCase(() => a.send(payload, b.localAddr), () => b.receive(), { name: "write" }, [
        a,
        b,
      ]);
    }
    case "seqpacket": {
      using listener = listenSeqpacket({ path: `${dir}/s.sock` });
      const client = await connectSeqpacket({ path: `${dir}/s.sock` });
      const server = await listener.accept();
      return pairCase(() => client.send(payload), () => server.receive(), { name: "write" }, [
        client,
        server,
      ]);
    }
    case "stream-ffi":
      return await streamCase("ffi", false);
    case "stream-builtin":
      return await streamCase("builtin", false);
    case "stream-accepted":
      return await streamCase("ffi", true);
    case "raw": {
      const a = openRaw({ family: "ipv6", protocol: 253 });
      const b = openRaw({ family: "ipv6", protocol: 253 });
      const to = { transport: "ip", hostname: "::1" } as const;
      return pairCase(() => a.send(payload, to), () => b.receive(), { name: "net" }, [a, b]);
    }
    case "packet": {
      const a = openPacket({ interface: "lo", protocol: 0x88b5, immediate: true });
      const b = openPacket({ interface: "lo", protocol: 0x88b5, immediate: true });
      const frame = new Uint8Array(64);
      frame.set([0x88, 0xb5], 12);
      return pairCase(() => a.send(frame), () => b.receive(), { name: "net" }, [a, b]);
    }
  }
  throw new TypeError(`revoke_child: unknown kind ${kind}`);
}

const c = await make();
const before = await c.first();
// A third argument "sync" revokes with revokeSync, the other way Deno has.
if (Deno.args[2] === "sync") Deno.permissions.revokeSync(c.revoke);
else await Deno.permissions.revoke(c.revoke);
let after = "ok";
try {
  await c.again();
} catch (err) {
  after = (err as Error).name;
}
c.close();
console.log(JSON.stringify({ before, after }));
