import assert from "node:assert/strict";
import { WaitQueue } from "../ffi/wait_queue.ts";

Deno.test("wait queue: a ready attempt settles at once, without parking", async () => {
  let changes = 0;
  const q = new WaitQueue(() => changes++);
  assert.equal(await q.tryOrPark(undefined, () => 7, () => null), 7);
  assert.equal(q.length, 0);
  assert.equal(changes, 0);
});

Deno.test("wait queue: operations settle in the order they parked, from the head only", async () => {
  const q = new WaitQueue();
  const ready: number[] = [];
  const take = () => ready.length > 0 ? ready.shift()! : undefined;
  const a = q.tryOrPark(undefined, take, () => -1);
  // b would succeed at once, but a waits ahead of it, so it parks.
  ready.push(1);
  const b = q.tryOrPark(undefined, take, () => -1);
  assert.equal(q.length, 2);
  ready.length = 0;
  ready.push(10, 20);
  assert.equal(q.run(), 2);
  assert.deepEqual([await a, await b], [10, 20]);
});

Deno.test("wait queue: run stops at the first that cannot proceed", async () => {
  const q = new WaitQueue();
  let budget = 1;
  const take = () => budget-- > 0 ? "x" : undefined;
  budget = 0;
  const a = q.park(undefined, take, () => "closed");
  const b = q.park(undefined, take, () => "closed");
  budget = 1;
  assert.equal(q.run(), 1);
  assert.equal(await a, "x");
  assert.equal(q.length, 1);
  q.close();
  assert.equal(await b, "closed");
});

Deno.test("wait queue: an attempt that throws rejects its operation and the rest go on", async () => {
  const q = new WaitQueue();
  let ready = false;
  const bad = () => {
    if (!ready) return undefined;
    throw new RangeError("attempt broke");
  };
  const a = q.park(undefined, bad, () => "closed");
  const b = q.park(undefined, () => ready ? "y" : undefined, () => "closed");
  ready = true;
  assert.equal(q.run(), 2);
  await assert.rejects(a, RangeError);
  assert.equal(await b, "y");
  assert.equal(q.length, 0);
});

Deno.test("wait queue: an abort removes only that operation and rejects with the reason", async () => {
  let changes = 0;
  const q = new WaitQueue(() => changes++);
  const ac = new AbortController();
  const a = q.park(ac.signal, () => undefined, () => null);
  const b = q.park(undefined, () => "b" as const, () => null);
  assert.equal(changes, 2);
  ac.abort(new Error("stop"));
  await assert.rejects(a, { message: "stop" });
  assert.equal(changes, 3);
  assert.equal(q.length, 1);
  q.run();
  assert.equal(await b, "b");
});

Deno.test("wait queue: an already aborted signal rejects before parking", async () => {
  let changes = 0;
  const q = new WaitQueue(() => changes++);
  await assert.rejects(
    q.park(AbortSignal.abort(new RangeError("late")), () => 1, () => 0),
    RangeError,
  );
  assert.equal(q.length, 0);
  assert.equal(changes, 0);
});

Deno.test("wait queue: close settles every waiter with onClose, errors as rejections", async () => {
  const q = new WaitQueue();
  const a = q.park(undefined, () => undefined, () => null);
  const b = q.park(undefined, () => undefined, () => new Deno.errors.BadResource("closed"));
  q.close();
  assert.equal(await a, null);
  await assert.rejects(b, Deno.errors.BadResource);
  assert.equal(q.length, 0);
});

Deno.test("wait queue: when the owner cannot watch, that operation fails and leaves the queue", async () => {
  let fail = false;
  const q = new WaitQueue(() => {
    if (fail) throw new RangeError("epoll_ctl: out of watches");
  });
  const a = q.park(undefined, () => undefined, () => null);
  fail = true;
  const ac = new AbortController();
  await assert.rejects(q.park(ac.signal, () => undefined, () => null), RangeError);
  fail = false;
  assert.equal(q.length, 1);
  q.close();
  assert.equal(await a, null);
});

Deno.test("wait queue: an attempt that closes the queue does not lose the others", async () => {
  const q = new WaitQueue();
  const b = q.park(undefined, () => undefined, () => "closed-b");
  // A second queue's head closes the first from inside its own attempt.
  const q2 = new WaitQueue();
  const a = q2.park(undefined, () => {
    q.close();
    return "a";
  }, () => "closed-a");
  q2.run();
  assert.equal(await a, "a");
  assert.equal(await b, "closed-b");
  // Inside its own queue: the head settles, closing the queue settles the rest.
  const q3 = new WaitQueue();
  const c = q3.park(undefined, () => {
    q3.close();
    return "c";
  }, () => "closed-c");
  const d = q3.park(undefined, () => "d", () => "closed-d");
  assert.equal(q3.run(), 1);
  assert.equal(await c, "c");
  assert.equal(await d, "closed-d");
  assert.equal(q3.length, 0);
});

Deno.test("wait queue: aborting the middle and the last keeps the order of the rest", async () => {
  const q = new WaitQueue();
  const order: string[] = [];
  const take = (name: string) => () => (order.push(name), name);
  let open = false;
  const gate = (name: string) => () => open ? take(name)() : undefined;
  const middle = new AbortController(), last = new AbortController();
  const a = q.park(undefined, gate("a"), () => "closed");
  const b = q.park(middle.signal, gate("b"), () => "closed");
  const c = q.park(last.signal, gate("c"), () => "closed");
  middle.abort(new Error("b"));
  last.abort(new Error("c"));
  await assert.rejects(b, { message: "b" });
  await assert.rejects(c, { message: "c" });
  assert.equal(q.length, 1);
  // A new tail after the old one left: the list's end must have moved back to a.
  const d = q.park(undefined, gate("d"), () => "closed");
  open = true;
  assert.equal(q.run(), 2);
  assert.deepEqual([await a, await d], ["a", "d"]);
  assert.deepEqual(order, ["a", "d"]);
  assert.equal(q.length, 0);
});

Deno.test("wait queue: parkOp retries through its owner, in order with closure waiters", async () => {
  const ready: number[] = [];
  const asked: [number, unknown][] = [];
  const owner = {
    retry(op: number, arg: unknown): unknown {
      asked.push([op, arg]);
      return ready.length > 0 ? ready.shift()! * (op as number) : undefined;
    },
  };
  const q = new WaitQueue();
  const a = q.parkOp<number>(undefined, owner, 2, "a", () => -1);
  const b = q.park(undefined, () => ready.length > 0 ? ready.shift()! : undefined, () => -1);
  const controller = new AbortController();
  const c = q.parkOp<number>(controller.signal, owner, 3, "c", () => -1);
  const d = q.parkOp<number>(undefined, owner, 5, "d", () => -1);
  assert.equal(q.run(), 0);
  assert.deepEqual(asked, [[2, "a"]]);
  controller.abort(new Error("stop"));
  await assert.rejects(c, /stop/);
  assert.equal(q.length, 3);
  ready.push(10, 20);
  assert.equal(q.run(), 2);
  assert.deepEqual([await a, await b], [20, 20]);
  // The aborted one was never tried again, and consumed nothing.
  assert.deepEqual(asked.map(([op]) => op), [2, 2, 5]);
  q.close();
  assert.equal(await d, -1);
});
