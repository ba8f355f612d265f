/**
 * A D-Bus method call that carries a file descriptor, spoken over a Unix
 * stream with `@bsd/sockets` and no D-Bus library.
 *
 * D-Bus passes descriptors (type code `h`) as `SCM_RIGHTS` data riding with
 * the message's bytes: logind's `Inhibit`, portals and PipeWire all use it.
 * This client authenticates with `AUTH EXTERNAL` (the bus checks the uid the
 * kernel reports for our socket), asks for `NEGOTIATE_UNIX_FD`, says
 * `Hello`, then calls a method whose one argument is a descriptor: its own
 * standard input. It prints the string the method returns.
 *
 * It speaks just enough of the wire format for that: little-endian messages,
 * the header fields a method call needs, string, unsigned and `h` values.
 *
 * Run it against a bus and a service that has a method `(h) → s`, for
 * example the test's service (tests/peers/dbus_service.py, a python3-dbus
 * service that reads the descriptor it is given and returns what it read):
 *
 * ```sh
 * deno run --allow-ffi --allow-read --allow-write --allow-net --allow-sys=uid \
 *   examples/dbus_fd.ts /tmp/bus/socket org.bsd.Test /org/bsd/Test org.bsd.Test.ReadFd < notes.txt
 * ```
 *
 * Linux only.
 *
 * @module
 */

import { connectStream, type StreamConn } from "@bsd/sockets/stream";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A D-Bus value this client writes: the type code decides the encoding. */
type Value = { type: "s" | "o" | "g"; value: string } | { type: "u" | "h"; value: number };

/** Little-endian D-Bus marshalling into a growing buffer, with its alignment rules. */
class Writer {
  #bytes: number[] = [];

  get length(): number {
    return this.#bytes.length;
  }

  align(n: number): void {
    while (this.#bytes.length % n !== 0) this.#bytes.push(0);
  }

  byte(b: number): void {
    this.#bytes.push(b & 0xff);
  }

  u32(n: number): void {
    this.align(4);
    this.#bytes.push(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
  }

  /** A string or object path: u32 length, UTF-8, NUL. */
  string(s: string): void {
    const b = enc.encode(s);
    this.u32(b.length);
    this.#bytes.push(...b, 0);
  }

  /** A signature: byte length, ASCII, NUL. */
  signature(s: string): void {
    this.byte(s.length);
    this.#bytes.push(...enc.encode(s), 0);
  }

  value(v: Value): void {
    const { type, value } = v;
    if (typeof value === "number") this.u32(value);
    else if (type === "g") this.signature(value);
    else this.string(value);
  }

  /** Overwrites the u32 at `offset` (an array length known only once written). */
  patchU32(offset: number, n: number): void {
    for (let i = 0; i < 4; i++) this.#bytes[offset + i] = (n >>> (8 * i)) & 0xff;
  }

  bytes(): Uint8Array {
    return new Uint8Array(this.#bytes);
  }
}

const HEADER = { path: 1, interface: 2, member: 3, errorName: 4, replySerial: 5 } as const;
const FIELD = { destination: 6, signature: 8, unixFds: 9 } as const;
const TYPE = { methodCall: 1, methodReturn: 2, error: 3, signal: 4 } as const;

interface Call {
  destination: string;
  path: string;
  interface: string;
  member: string;
  /** The body's arguments, in order. */
  args?: Value[];
  /** How many descriptors ride with the message (the `h` values index them). */
  fds?: number;
}

/** Encodes a method call with serial `serial`. */
function encodeCall(serial: number, call: Call): Uint8Array {
  const body = new Writer();
  for (const arg of call.args ?? []) body.value(arg);
  const fields: [number, Value][] = [
    [HEADER.path, { type: "o", value: call.path }],
    [HEADER.interface, { type: "s", value: call.interface }],
    [HEADER.member, { type: "s", value: call.member }],
    [FIELD.destination, { type: "s", value: call.destination }],
  ];
  const signature = (call.args ?? []).map((a) => a.type).join("");
  if (signature) fields.push([FIELD.signature, { type: "g", value: signature }]);
  if (call.fds) fields.push([FIELD.unixFds, { type: "u", value: call.fds }]);

  const w = new Writer();
  w.byte("l".charCodeAt(0));
  w.byte(TYPE.methodCall);
  w.byte(0); // flags
  w.byte(1); // protocol version
  w.u32(body.length);
  w.u32(serial);
  const lengthAt = w.length;
  w.u32(0);
  const start = w.length;
  for (const [code, value] of fields) {
    w.align(8); // every struct starts on 8
    w.byte(code);
    w.signature(value.type);
    w.value(value);
  }
  w.patchU32(lengthAt, w.length - start);
  w.align(8); // the body starts on 8
  const header = w.bytes();
  const out = new Uint8Array(header.length + body.length);
  out.set(header);
  out.set(body.bytes(), header.length);
  return out;
}

/** A message as this client needs it: its type, the serial it answers, its body's first string. */
interface Reply {
  type: number;
  replySerial?: number;
  errorName?: string;
  signature: string;
  body: Uint8Array;
}

/** Reads little-endian D-Bus values from one message, honouring alignment. */
class Reader {
  #view: DataView;
  #at = 0;

  constructor(readonly bytes: Uint8Array) {
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get at(): number {
    return this.#at;
  }

  align(n: number): void {
    this.#at = Math.ceil(this.#at / n) * n;
  }

  byte(): number {
    return this.#view.getUint8(this.#at++);
  }

  u32(): number {
    this.align(4);
    const n = this.#view.getUint32(this.#at, true);
    this.#at += 4;
    return n;
  }

  string(): string {
    const n = this.u32();
    const s = dec.decode(this.bytes.subarray(this.#at, this.#at + n));
    this.#at += n + 1;
    return s;
  }

  signature(): string {
    const n = this.byte();
    const s = dec.decode(this.bytes.subarray(this.#at, this.#at + n));
    this.#at += n + 1;
    return s;
  }

  /** A header field's variant; the header holds only these types. */
  variant(): string | number {
    const type = this.signature();
    if (type === "s" || type === "o") return this.string();
    if (type === "g") return this.signature();
    if (type === "u") return this.u32();
    throw new TypeError(`unexpected header field type "${type}"`);
  }
}

/** The length of the message at the start of `buf`, or 0 when its fixed header is not all there. */
function messageLength(buf: Uint8Array): number {
  if (buf.length < 16) return 0;
  const v = new DataView(buf.buffer, buf.byteOffset, 16);
  if (buf[0] !== "l".charCodeAt(0)) throw new TypeError("the bus sent a big-endian message");
  const bodyLength = v.getUint32(4, true);
  const fieldsLength = v.getUint32(12, true);
  return Math.ceil((16 + fieldsLength) / 8) * 8 + bodyLength;
}

function decodeMessage(bytes: Uint8Array): Reply {
  const r = new Reader(bytes);
  r.byte(); // endianness, checked by messageLength
  const type = r.byte();
  r.byte(); // flags
  r.byte(); // version
  const bodyLength = r.u32();
  r.u32(); // serial
  const fieldsEnd = r.u32() + r.at;
  const reply: Reply = { type, signature: "", body: new Uint8Array(0) };
  while (r.at < fieldsEnd) {
    r.align(8);
    const code = r.byte();
    const value = r.variant();
    if (code === HEADER.replySerial) reply.replySerial = value as number;
    if (code === HEADER.errorName) reply.errorName = value as string;
    if (code === FIELD.signature) reply.signature = value as string;
  }
  r.align(8);
  reply.body = bytes.subarray(r.at, r.at + bodyLength);
  return reply;
}

/** A D-Bus connection: the SASL exchange, then whole messages in and out. */
class Bus {
  #conn: StreamConn;
  #pending = new Uint8Array(0);
  #serial = 0;

  private constructor(conn: StreamConn) {
    this.#conn = conn;
  }

  static async connect(path: string): Promise<Bus> {
    // The FFI backend: descriptors and peerCredentials need the socket's fd.
    const conn = await connectStream({ path, backend: "ffi" });
    const bus = new Bus(conn);
    try {
      await bus.#authenticate();
    } catch (err) {
      conn.close();
      throw err;
    }
    return bus;
  }

  async #line(): Promise<string> {
    for (;;) {
      const end = this.#pending.indexOf(0x0a);
      if (end >= 0) {
        const line = dec.decode(this.#pending.subarray(0, end)).replace(/\r$/, "");
        this.#pending = this.#pending.slice(end + 1);
        return line;
      }
      await this.#more();
    }
  }

  async #more(): Promise<void> {
    const m = await this.#conn.receive();
    if (m === null) throw new Deno.errors.UnexpectedEof("the bus closed the connection");
    const joined = new Uint8Array(this.#pending.length + m.data.length);
    joined.set(this.#pending);
    joined.set(m.data, this.#pending.length);
    this.#pending = joined;
  }

  async #authenticate(): Promise<void> {
    // EXTERNAL: we claim the uid the kernel will vouch for through SO_PEERCRED.
    const uid = String(Deno.uid());
    const hex = [...enc.encode(uid)].map((b) => b.toString(16).padStart(2, "0")).join("");
    await this.#conn.write(enc.encode(`\0AUTH EXTERNAL ${hex}\r\n`));
    const ok = await this.#line();
    if (!ok.startsWith("OK ")) throw new Error(`AUTH EXTERNAL refused: ${ok}`);
    await this.#conn.write(enc.encode("NEGOTIATE_UNIX_FD\r\n"));
    const agree = await this.#line();
    if (agree !== "AGREE_UNIX_FD") throw new Error(`the bus cannot pass descriptors: ${agree}`);
    await this.#conn.write(enc.encode("BEGIN\r\n"));
  }

  /** Sends a method call, then waits for its reply, skipping signals such as NameAcquired. */
  async call(call: Call, fds: number[] = []): Promise<Reply> {
    const serial = ++this.#serial;
    await this.#conn.send(encodeCall(serial, { ...call, fds: fds.length }), { fds });
    for (;;) {
      const reply = await this.#message();
      if (reply.replySerial !== serial) continue;
      if (reply.type === TYPE.error) {
        const why = reply.signature.startsWith("s") ? new Reader(reply.body).string() : "";
        throw new Error(`${call.interface}.${call.member}: ${reply.errorName}: ${why}`);
      }
      return reply;
    }
  }

  async #message(): Promise<Reply> {
    let n;
    while ((n = messageLength(this.#pending)) === 0 || this.#pending.length < n) {
      await this.#more();
    }
    const bytes = this.#pending.slice(0, n);
    this.#pending = this.#pending.slice(n);
    return decodeMessage(bytes);
  }

  close(): void {
    this.#conn.close();
  }
}

/** The first string of a reply's body. */
function firstString(reply: Reply): string {
  if (!reply.signature.startsWith("s")) {
    throw new TypeError(`expected a string reply, got signature "${reply.signature}"`);
  }
  return new Reader(reply.body).string();
}

if (import.meta.main) {
  const [busPath, destination, path, method] = Deno.args;
  if (!busPath || !destination || !path || !method?.includes(".")) {
    console.error("usage: dbus_fd.ts <bus socket path> <destination> <object path> <iface.Method>");
    Deno.exit(2);
  }
  const dot = method.lastIndexOf(".");
  const bus = await Bus.connect(busPath);
  try {
    const hello = await bus.call({
      destination: "org.freedesktop.DBus",
      path: "/org/freedesktop/DBus",
      interface: "org.freedesktop.DBus",
      member: "Hello",
    });
    console.error(`connected as ${firstString(hello)}`);
    // Descriptor 0, our standard input: the service gets a descriptor of its
    // own for the same open file and reads it.
    const reply = await bus.call({
      destination,
      path,
      interface: method.slice(0, dot),
      member: method.slice(dot + 1),
      args: [{ type: "h", value: 0 }],
    }, [0]);
    console.log(firstString(reply));
  } finally {
    bus.close();
  }
}
