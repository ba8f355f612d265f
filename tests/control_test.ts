// ffi/control.ts: ancillary data encoded and parsed in one place, on bytes
// built here (no socket), so malformed lengths can be tried too.

import assert from "node:assert/strict";
import {
  CONTROL_SIZE,
  type ControlData,
  encodeRights,
  parseControl,
  startsWithCredentials,
} from "../ffi/control.ts";
import { SCM_CREDENTIALS, SOL_SOCKET } from "../ffi/constants.ts";
import { CMSGHDR, cmsgLen, cmsgSpace, UCRED } from "../ffi/structs.ts";

/** A control buffer holding one credentials message then `rights`'s bytes. */
function credentialsThen(pid: number, uid: number, gid: number, rights: Uint8Array): Uint8Array {
  const out = new Uint8Array(cmsgSpace(UCRED.size) + rights.length);
  const v = new DataView(out.buffer);
  v.setBigUint64(CMSGHDR.len, BigInt(cmsgLen(UCRED.size)), true);
  v.setInt32(CMSGHDR.level, SOL_SOCKET, true);
  v.setInt32(CMSGHDR.type, SCM_CREDENTIALS, true);
  v.setInt32(CMSGHDR.data + UCRED.pid, pid, true);
  v.setUint32(CMSGHDR.data + UCRED.uid, uid, true);
  v.setUint32(CMSGHDR.data + UCRED.gid, gid, true);
  out.set(rights, cmsgSpace(UCRED.size));
  return out;
}

Deno.test("encodeRights() and parseControl() round-trip descriptors", () => {
  const control = encodeRights([3, 4, 70000]);
  assert.equal(control.length, cmsgSpace(12));
  const into: ControlData = {};
  parseControl(new DataView(control.buffer), 0, control.length, undefined, into);
  assert.deepEqual(into.fds, [3, 4, 70000]);
});

Deno.test("parseControl() reads credentials only where asked, descriptors always", () => {
  const bytes = credentialsThen(1234, 1000, 100, encodeRights([7]));
  const v = new DataView(bytes.buffer);
  const asked: ControlData = {};
  parseControl(v, 0, bytes.length, "fds+credentials", asked);
  assert.deepEqual(asked, { credentials: { pid: 1234, uid: 1000, gid: 100 }, fds: [7] });
  const notAsked: ControlData = {};
  parseControl(v, 0, bytes.length, "fds", notAsked);
  assert.deepEqual(notAsked, { fds: [7] });
  assert.equal(startsWithCredentials(v, bytes.length), true);
  assert.equal(startsWithCredentials(v, cmsgLen(UCRED.size) - 1), false);
});

Deno.test("parseControl() stops at a malformed length instead of reading past it", () => {
  const control = encodeRights([5, 6]);
  const v = new DataView(control.buffer);
  // A cmsg_len with its high half set, then one that runs past the data.
  v.setUint32(CMSGHDR.len + 4, 1, true);
  const high: ControlData = {};
  parseControl(v, 0, control.length, undefined, high);
  assert.equal(high.fds, undefined);
  v.setUint32(CMSGHDR.len + 4, 0, true);
  v.setUint32(CMSGHDR.len, control.length + 8, true);
  const past: ControlData = {};
  parseControl(v, 0, control.length, undefined, past);
  assert.equal(past.fds, undefined);
  assert.ok(CONTROL_SIZE >= cmsgSpace(UCRED.size) + cmsgSpace(253 * 4));
});
