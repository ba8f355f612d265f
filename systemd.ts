/**
 * Running as a systemd service: socket activation ({@linkcode listenFds}),
 * status to the manager ({@linkcode notify}, the watchdog, reloading and
 * stopping) and structured entries in the journal ({@linkcode journal}),
 * each speaking systemd's own protocol, with no libsystemd.
 *
 * Linux only. Requires `--allow-ffi` and `--allow-env`; sending to a socket
 * path needs what a Unix socket path always needs here: read and write
 * access to the path and net access to `unix:<path>` (an abstract name:
 * `--allow-net`).
 *
 * @example Serve the sockets systemd passed, then say READY
 * ```ts ignore
 * import { listenFds, notify } from "@bsd/sockets/systemd";
 *
 * const sockets = listenFds();
 * for (const { name, socket } of sockets) console.log(name, socket.constructor.name);
 * await notify({ READY: 1, STATUS: `serving ${sockets.length} sockets` });
 * ```
 *
 * @module
 */

import { type AdoptedSocket, fromFd } from "./fd.ts";
import { checkBuffer, checkInteger, checkObject, checkUnixPath } from "./_internal/checks.ts";
import { SCM_MAX_FD } from "./ffi/constants.ts";
import { monotonicMicroseconds, sealedMemfd } from "./ffi/descriptors.ts";
import { describeAddress } from "./ffi/errors.ts";
import { requireUnix } from "./ffi/permissions.ts";
import { encodeUnix } from "./ffi/sockaddr.ts";
import { closeFds, FdSocket } from "./ffi/socket.ts";

// ---------------------------------------------------------------------------
// Socket activation

/** One descriptor systemd passed, adopted. */
export interface ListenedFd {
  /** The descriptor number (3, 4, ...); the socket owns it. */
  fd: number;
  /** Its name from `FileDescriptorName=` (`LISTEN_FDNAMES`), `"unknown"` when unnamed. */
  name: string;
  /** The socket object, as {@linkcode fromFd} made it. */
  socket: AdoptedSocket;
}

/** The first descriptor systemd passes (SD_LISTEN_FDS_START). */
const LISTEN_FDS_START = 3;
const ACTIVATION_VARIABLES = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] as const;

/** A decimal number as systemd writes it, or `TypeError` naming the variable. */
function decimal(name: string, text: string, min: number, max: number): number {
  if (!/^[0-9]{1,10}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new TypeError(
      `${name} must be a decimal number from ${min} to ${max}, got ${JSON.stringify(text)}`,
    );
  }
  return Number(text);
}

/**
 * The sockets systemd (or `systemd-socket-activate`) passed to this process:
 * from `LISTEN_PID`, which must be this process, `LISTEN_FDS` descriptors
 * starting at 3, named by `LISTEN_FDNAMES`. Each is adopted with
 * {@linkcode fromFd}, in order: listeners, accepted connections
 * (`Accept=yes`), datagram and seqpacket sockets alike. The three variables
 * are removed from the environment (whatever they held), so a child process
 * does not take the descriptors for its own.
 *
 * Requires `--allow-env` and `--allow-ffi`, and for each socket the
 * permission {@linkcode fromFd} asks for its address.
 *
 * @see {@link https://www.freedesktop.org/software/systemd/man/sd_listen_fds.html}
 * @returns The adopted sockets, in descriptor order; `[]` when the variables
 * are absent or name another process.
 * @throws {TypeError} Naming the variable when one is malformed (then nothing is adopted).
 * @throws {Deno.errors.NotSupported} Through {@linkcode fromFd}, for a kind of socket
 * the module has no class for; the sockets adopted before it are closed.
 * @throws {Deno.errors.NotCapable} Without `--allow-env`, `--allow-ffi` or an address's permission.
 *
 * @example A server that uses systemd's sockets, or its own without them
 * ```ts ignore
 * import { listenStream } from "@bsd/sockets";
 * import { listenFds } from "@bsd/sockets/systemd";
 *
 * const passed = listenFds();
 * const listener = passed.length > 0
 *   ? passed[0].socket
 *   : listenStream({ hostname: "127.0.0.1", port: 8080 });
 * console.log(listener.constructor.name);
 * listener.close();
 * ```
 */
export function listenFds(): ListenedFd[] {
  const [pidText, countText, namesText] = ACTIVATION_VARIABLES.map((v) => Deno.env.get(v));
  for (const v of ACTIVATION_VARIABLES) Deno.env.delete(v);
  if (pidText === undefined || countText === undefined) return [];
  // As sd_listen_fds: variables meant for another process are not read further.
  if (decimal("LISTEN_PID", pidText, 1, 2 ** 31 - 1) !== Deno.pid) return [];
  const count = decimal("LISTEN_FDS", countText, 0, 2 ** 31 - 1 - LISTEN_FDS_START);
  const names = namesText === undefined
    ? Array.from({ length: count }, () => "unknown")
    : namesText.split(":");
  if (names.length !== count || (count > 0 && names.some((n) => n === ""))) {
    throw new TypeError(
      `LISTEN_FDNAMES must hold ${count} non-empty names separated by ":", ` +
        `got ${JSON.stringify(namesText)}`,
    );
  }
  const adopted: ListenedFd[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const fd = LISTEN_FDS_START + i;
      adopted.push({ fd, name: names[i], socket: fromFd(fd) });
    }
  } catch (err) {
    for (const a of adopted) a.socket.close();
    throw err;
  }
  return adopted;
}

// ---------------------------------------------------------------------------
// sd_notify

/** Options for {@linkcode notify}. */
export interface NotifyOptions {
  /**
   * Descriptors for the service manager's fd store, sent with `SCM_RIGHTS`
   * (at most 253). `FDSTORE=1` is added to the state when it lacks it. This
   * process keeps its own copies open.
   */
  fds?: number[];
}

/** The state in the one form systemd reads: assignments separated by newlines. */
function stateText(state: unknown): string {
  if (typeof state === "string") {
    if (state === "" || state.includes("\0")) {
      throw new TypeError("notify: state must be a non-empty string without NUL bytes");
    }
    return state;
  }
  checkObject("notify: state", state);
  const lines = Object.entries(state).map(([key, value]) => {
    if (!/^[A-Z0-9_]+$/.test(key)) {
      throw new TypeError(`notify: state key ${JSON.stringify(key)} must be made of A-Z, 0-9, _`);
    }
    if (typeof value === "number" && Number.isFinite(value)) return `${key}=${value}`;
    if (typeof value !== "string" || /[\n\0]/.test(value)) {
      throw new TypeError(
        `notify: ${key} must be a number or a string without newlines, got ${typeof value}`,
      );
    }
    return `${key}=${value}`;
  });
  if (lines.length === 0) throw new TypeError("notify: state must hold at least one assignment");
  return lines.join("\n");
}

/** The address `$NOTIFY_SOCKET` names: a path, or `@name` for an abstract name. */
function notifyTarget(value: string): string {
  if (value.startsWith("/")) return value;
  if (value.startsWith("@") && value.length > 1) return `\0${value.slice(1)}`;
  throw new TypeError(
    `NOTIFY_SOCKET must be an absolute path or "@name", got ${JSON.stringify(value)}`,
  );
}

/**
 * Sends one datagram from a socket of its own to the Unix socket `path`;
 * `sendBuffer`, when given, is the send buffer asked for first.
 */
async function sendDatagram(
  path: string,
  data: Uint8Array,
  options: { fds?: number[]; sendBuffer?: number; to?: Uint8Array } = {},
): Promise<void> {
  if (options.to === undefined) checkUnixPath("send", path);
  const to = options.to ?? encodeUnix(path);
  requireUnix(path);
  const label = describeAddress(path);
  const socket = FdSocket.open("unix", "datagram", 0, { label });
  try {
    if (options.sendBuffer) socket.setBufferSize("send", options.sendBuffer);
    await socket.send(data, to, { fds: options.fds });
  } finally {
    socket.close();
  }
}

/**
 * Tells the service manager about the service's state (`sd_notify`): one
 * datagram to the socket `$NOTIFY_SOCKET` names (a path, or `@name` for an
 * abstract name). A string is sent as written; an object becomes
 * `KEY=value` lines in the order given, with no trailing newline, as
 * `systemd-notify` sends them: `{ READY: 1, STATUS: "serving" }` is
 * `"READY=1\nSTATUS=serving"`. Other assignments of sd_notify(3) work the
 * same way: `MAINPID`, `ERRNO`, `EXTEND_TIMEOUT_USEC`, `FDNAME`, ...
 *
 * Requires `--allow-env` and `--allow-ffi`, and for a socket path read and
 * write access to it and net access to `unix:<path>` (an abstract name:
 * `--allow-net`).
 *
 * @see {@link https://www.freedesktop.org/software/systemd/man/sd_notify.html}
 * @param state Newline-separated assignments, or an object of them.
 * @param options Descriptors for the fd store.
 * @returns `true` once sent; `false`, sending nothing, when `$NOTIFY_SOCKET` is unset.
 * @throws {TypeError} For an empty state, a key outside A-Z, 0-9 and _, a value
 * holding a newline, or a `$NOTIFY_SOCKET` that is neither a path nor `@name`.
 * @throws {RangeError} For more than 253 descriptors or one out of range.
 * @throws {Deno.errors.NotFound} When nothing is at the socket's path.
 * @throws {Deno.errors.ConnectionRefused} When no one listens at the path.
 *
 * @example Say ready, with a status line
 * ```ts
 * import { notify } from "@bsd/sockets/systemd";
 *
 * // false when not started by systemd (no $NOTIFY_SOCKET)
 * const told = await notify({ READY: 1, STATUS: "serving" });
 * console.log(told);
 * ```
 */
export async function notify(
  state: string | Record<string, string | number>,
  options: NotifyOptions = {},
): Promise<boolean> {
  let text = stateText(state);
  checkObject("notify: options", options);
  const fds = options.fds;
  if (fds !== undefined) {
    if (!Array.isArray(fds)) throw new TypeError("notify: fds must be an array of descriptors");
    if (fds.length > SCM_MAX_FD) {
      throw new RangeError(`notify: ${fds.length} descriptors is over the limit of ${SCM_MAX_FD}`);
    }
    for (const fd of fds) checkInteger("notify: a descriptor", fd, 0, 2 ** 31 - 1);
    if (fds.length > 0 && !/(^|\n)FDSTORE=1(\n|$)/.test(text)) text += "\nFDSTORE=1";
  }
  const socket = Deno.env.get("NOTIFY_SOCKET");
  if (socket === undefined || socket === "") return false;
  const path = notifyTarget(socket);
  await sendDatagram(path, new TextEncoder().encode(text), { fds });
  return true;
}

/**
 * How often the service manager expects a sign of life
 * ({@linkcode notifyWatchdog}), in microseconds: `$WATCHDOG_USEC`, when
 * `$WATCHDOG_PID` is unset or names this process (`sd_watchdog_enabled`).
 * Send one at least every half of it.
 *
 * Requires `--allow-env`.
 *
 * @see {@link https://www.freedesktop.org/software/systemd/man/sd_watchdog_enabled.html}
 * @returns The interval in microseconds, or `null` when the watchdog is off for this process.
 * @throws {TypeError} Naming the variable when `WATCHDOG_USEC` or `WATCHDOG_PID` is malformed.
 *
 * @example Ping the watchdog at half its interval
 * ```ts
 * import { notifyWatchdog, watchdogInterval } from "@bsd/sockets/systemd";
 *
 * const usec = watchdogInterval();
 * if (usec !== null) {
 *   const timer = setInterval(() => notifyWatchdog(), usec / 2000);
 *   Deno.unrefTimer(timer);
 * }
 * ```
 */
export function watchdogInterval(): number | null {
  const usecText = Deno.env.get("WATCHDOG_USEC");
  if (usecText === undefined) return null;
  if (!/^[0-9]{1,16}$/.test(usecText) || Number(usecText) === 0) {
    throw new TypeError(
      `WATCHDOG_USEC must be a positive decimal number, got ${JSON.stringify(usecText)}`,
    );
  }
  const pidText = Deno.env.get("WATCHDOG_PID");
  if (pidText !== undefined && decimal("WATCHDOG_PID", pidText, 1, 2 ** 31 - 1) !== Deno.pid) {
    return null;
  }
  return Number(usecText);
}

/**
 * Tells the service manager the service is alive: `WATCHDOG=1`.
 *
 * Requires what {@linkcode notify} requires.
 *
 * @returns What {@linkcode notify} returns.
 * @throws {Deno.errors.NotFound} When nothing is at `$NOTIFY_SOCKET`.
 *
 * @example One sign of life
 * ```ts
 * import { notifyWatchdog } from "@bsd/sockets/systemd";
 *
 * console.log(await notifyWatchdog()); // false outside systemd
 * ```
 */
export function notifyWatchdog(): Promise<boolean> {
  return notify("WATCHDOG=1");
}

/**
 * Tells the service manager the service is reloading its configuration:
 * `RELOADING=1` with `MONOTONIC_USEC` (the monotonic clock now, which a
 * `Type=notify-reload` unit requires), and `STATUS` when given. Send
 * `READY=1` once the reload is done.
 *
 * Requires what {@linkcode notify} requires.
 *
 * @param status A status line to show meanwhile.
 * @returns What {@linkcode notify} returns.
 * @throws {TypeError} When `status` holds a newline.
 * @throws {Deno.errors.NotFound} When nothing is at `$NOTIFY_SOCKET`.
 *
 * @example Reload, then say ready again
 * ```ts
 * import { notify, notifyReloading } from "@bsd/sockets/systemd";
 *
 * await notifyReloading("reading the configuration");
 * await notify({ READY: 1, STATUS: "serving" });
 * ```
 */
export function notifyReloading(status?: string): Promise<boolean> {
  const state: Record<string, string> = {
    RELOADING: "1",
    MONOTONIC_USEC: String(monotonicMicroseconds()),
  };
  if (status !== undefined) state.STATUS = status;
  return notify(state);
}

/**
 * Tells the service manager the service is shutting down: `STOPPING=1`, and
 * `STATUS` when given.
 *
 * Requires what {@linkcode notify} requires.
 *
 * @param status A status line to show meanwhile.
 * @returns What {@linkcode notify} returns.
 * @throws {TypeError} When `status` holds a newline.
 * @throws {Deno.errors.NotFound} When nothing is at `$NOTIFY_SOCKET`.
 *
 * @example Stop cleanly
 * ```ts
 * import { notifyStopping } from "@bsd/sockets/systemd";
 *
 * await notifyStopping("closing connections");
 * ```
 */
export function notifyStopping(status?: string): Promise<boolean> {
  return notify(status === undefined ? { STOPPING: 1 } : { STOPPING: 1, STATUS: status });
}

// ---------------------------------------------------------------------------
// The journal's native protocol

/** Options for {@linkcode journal}. */
export interface JournalOptions {
  /** The journal's socket. Default `/run/systemd/journal/socket`. */
  path?: string;
}

const JOURNAL_SOCKET = "/run/systemd/journal/socket";
/** The send buffer sd_journal_send asks for before a large entry (SNDBUF_SIZE). */
const JOURNAL_SEND_BUFFER = 8 * 1024 * 1024;
const MAX_FIELD_NAME = 64;
const encoder = new TextEncoder();

/** journald's rule for field names a client may send (journal_field_valid). */
function checkFieldName(name: string): void {
  if (
    name.length === 0 || name.length > MAX_FIELD_NAME || !/^[A-Z0-9_]+$/.test(name) ||
    name.startsWith("_") || /^[0-9]/.test(name)
  ) {
    throw new TypeError(
      `journal: field name ${JSON.stringify(name)} must be 1 to ${MAX_FIELD_NAME} characters ` +
        `of A-Z, 0-9 and _, not starting with _ or a digit`,
    );
  }
}

/** The entry in the native protocol: `KEY=value\n`, or `KEY\n` + u64 LE length + value + `\n`. */
function encodeEntry(fields: Record<string, string | Uint8Array>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [name, value] of Object.entries(fields)) {
    checkFieldName(name);
    if (typeof value !== "string" && !(value instanceof Uint8Array)) {
      throw new TypeError(`journal: ${name} must be a string or a Uint8Array, got ${typeof value}`);
    }
    // As every buffer argument of the module: a shared or resizable one could change under us.
    const bytes = typeof value === "string"
      ? encoder.encode(value)
      : checkBuffer(`journal: ${name}`, value);
    if (bytes.includes(0x0a)) {
      const head = new Uint8Array(name.length + 9);
      head.set(encoder.encode(name));
      head[name.length] = 0x0a;
      new DataView(head.buffer).setBigUint64(name.length + 1, BigInt(bytes.length), true);
      parts.push(head, bytes, encoder.encode("\n"));
    } else {
      parts.push(encoder.encode(`${name}=`), bytes, encoder.encode("\n"));
    }
  }
  if (parts.length === 0) throw new TypeError("journal: an entry must hold at least one field");
  const entry = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    entry.set(p, off);
    off += p.length;
  }
  return entry;
}

/** Whether the kernel refused a datagram for its size (the memfd path then carries it). */
function tooLarge(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === "EMSGSIZE" || code === "ENOBUFS";
}

/**
 * Writes one structured entry to the journal, in its native protocol (what
 * `sd_journal_send` sends): `KEY=value` lines, and the length-prefixed
 * binary form for a value holding a newline or arbitrary bytes. An entry too
 * large for one datagram, even after the send buffer is raised as
 * sd_journal_send raises it, is written to a sealed memfd that is passed
 * with `SCM_RIGHTS` instead. `MESSAGE` is the text `journalctl` shows;
 * `PRIORITY` (0–7) and `SYSLOG_IDENTIFIER` are the usual companions.
 *
 * Requires `--allow-ffi`, and read and write access to the socket's path and
 * net access to `unix:<path>`.
 *
 * @see {@link https://systemd.io/JOURNAL_NATIVE_PROTOCOL/}
 * @param fields The entry's fields; names of A-Z, 0-9 and _, at most 64
 * characters, not starting with `_` (trusted fields are journald's) or a digit.
 * @param options Another socket to write to.
 * @returns Once the entry is queued at the journal's socket.
 * @throws {TypeError} For a bad field name or value (a shared, resizable or detached
 * buffer too), or an empty entry; nothing is sent.
 * @throws {Deno.errors.NotFound} When the socket does not exist (journald is not running here).
 * @throws {Deno.errors.ConnectionRefused} When journald no longer listens on it.
 *
 * @example A structured entry
 * ```ts ignore
 * import { journal } from "@bsd/sockets/systemd";
 *
 * await journal({ MESSAGE: "user logged in", PRIORITY: "6", USER_ID: "1000" });
 * ```
 */
export async function journal(
  fields: Record<string, string | Uint8Array>,
  options: JournalOptions = {},
): Promise<void> {
  checkObject("journal: fields", fields);
  checkObject("journal: options", options);
  const entry = encodeEntry(fields);
  const path = options.path ?? JOURNAL_SOCKET;
  checkUnixPath("journal", path);
  const to = encodeUnix(path);
  try {
    try {
      await sendDatagram(path, entry, { sendBuffer: JOURNAL_SEND_BUFFER, to });
    } catch (err) {
      if (!tooLarge(err)) throw err;
      const memfd = sealedMemfd("journal-data", entry);
      try {
        await sendDatagram(path, new Uint8Array(0), { fds: [memfd], to });
      } finally {
        closeFds([memfd]);
      }
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.ConnectionRefused) {
      err.message += path === JOURNAL_SOCKET
        ? " (is systemd-journald running? Pass { path } to write to another socket)"
        : " (is systemd-journald listening on this path?)";
    }
    throw err;
  }
}
