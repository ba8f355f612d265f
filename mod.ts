/**
 * Every BSD socket type for Deno — stream, datagram, raw and sequenced-packet —
 * behind one typed `Reader`/`Writer` interface.
 *
 * Importing this module needs no permission and loads no native code.
 *
 * @example A TCP echo on loopback
 * ```ts
 * import { connectStream, listenStream } from "@bsd/sockets";
 *
 * using listener = listenStream({ hostname: "127.0.0.1", port: 0 });
 * const served = (async () => {
 *   using conn = await listener.accept();
 *   const buf = new Uint8Array(64);
 *   const n = await conn.read(buf);
 *   if (n !== null) await conn.write(buf.subarray(0, n));
 * })();
 * using client = await connectStream({ hostname: "127.0.0.1", port: listener.addr.port });
 * await client.write(new TextEncoder().encode("ping"));
 * const reply = new Uint8Array(64);
 * const n = await client.read(reply);
 * console.log(new TextDecoder().decode(reply.subarray(0, n ?? 0))); // "ping"
 * await served;
 * ```
 *
 * @module
 */

export * from "./types.ts";
export { PacketSocketBase } from "./_internal/packet_socket.ts";
export * from "./errors.ts";
export * from "./stream.ts";
export * from "./datagram.ts";
export * from "./seqpacket.ts";
export * from "./raw.ts";
export * from "./icmp.ts";
export * from "./netlink.ts";
export * from "./fd.ts";
