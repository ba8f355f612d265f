// The one accept loop (_internal/accept_loop.ts) over a scripted engine: no
// sockets, so each rule shows on its own.

import assert from "node:assert/strict";
import { AcceptLoop, type ListenerEngine } from "../_internal/accept_loop.ts";

class Conn {
  closed = false;
  constructor(readonly id: number) {}
  close(): void {
    this.closed = true;
  }
}

/** An engine whose accepts settle when the test says, recording every call. */
class ScriptedEngine implements ListenerEngine<Conn> {
  readonly backend = "builtin" as const;
  readonly fd = null;
  readonly calls: string[] = [];
  #pending: { resolve(c: Conn): void; reject(e: Error): void } | null = null;

  accept(): Promise<Conn> {
    assert.equal(this.#pending, null, "one engine accept at a time");
    this.calls.push("accept");
    return new Promise((resolve, reject) => this.#pending = { resolve, reject });
  }
  get accepting(): boolean {
    return this.#pending !== null;
  }
  /** Settles the accept in flight, and lets the loop's reactions run. */
  async arrive(result: Conn | Error): Promise<void> {
    const pending = this.#pending!;
    this.#pending = null;
    if (result instanceof Error) pending.reject(result);
    else pending.resolve(result);
    for (let i = 0; i < 3; i++) await Promise.resolve();
  }
  ref(): void {
    this.calls.push("ref");
  }
  unref(): void {
    this.calls.push("unref");
  }
  close(): void {
    this.calls.push("close");
  }
}

function loopOver(engine: ScriptedEngine): AcceptLoop<Conn, Conn> {
  return new AcceptLoop(engine, (c) => c, "test");
}

Deno.test("AcceptLoop: no engine accept until someone waits; overlapping accepts get connections oldest first", async () => {
  const engine = new ScriptedEngine();
  const loop = loopOver(engine);
  assert.equal(engine.accepting, false);
  const first = loop.accept(undefined);
  const second = loop.accept(undefined);
  assert.equal(engine.accepting, true);
  await engine.arrive(new Conn(1));
  assert.equal(engine.accepting, true, "the second waiter starts the next accept");
  await engine.arrive(new Conn(2));
  assert.equal((await first).id, 1);
  assert.equal((await second).id, 2);
  assert.equal(engine.accepting, false, "nobody waits: no accept in flight");
  assert.equal(engine.calls.filter((c) => c === "accept").length, 2);
  loop.close();
});

Deno.test("AcceptLoop: an aborted accept rejects with its reason; what arrives later goes to the next accept", async () => {
  const engine = new ScriptedEngine();
  const loop = loopOver(engine);
  const controller = new AbortController();
  const aborted = loop.accept(controller.signal);
  const reason = new Error("stop");
  controller.abort(reason);
  await assert.rejects(aborted, (e) => e === reason);
  assert.equal(engine.calls.at(-1), "unref", "nobody waits: the accept in flight holds nothing");
  await engine.arrive(new Conn(7));
  assert.equal((await loop.accept(undefined)).id, 7);
  await assert.rejects(loop.accept(AbortSignal.abort()), { name: "AbortError" });
  loop.close();
});

Deno.test("AcceptLoop: a failed accept goes to one waiter; the next waiter gets the next connection", async () => {
  const engine = new ScriptedEngine();
  const loop = loopOver(engine);
  const failing = loop.accept(undefined);
  const next = loop.accept(undefined);
  await engine.arrive(new Error("EMFILE"));
  await assert.rejects(failing, { message: "EMFILE" });
  await engine.arrive(new Conn(3));
  assert.equal((await next).id, 3);
  loop.close();
});

Deno.test("AcceptLoop: ref() holds the process only while someone waits; unref() never", async () => {
  const engine = new ScriptedEngine();
  const loop = loopOver(engine);
  const waiting = loop.accept(undefined);
  assert.equal(engine.calls.at(-1), "ref");
  loop.unref();
  assert.equal(engine.calls.at(-1), "unref");
  loop.ref();
  assert.equal(engine.calls.at(-1), "ref");
  await engine.arrive(new Conn(1));
  await waiting;
  assert.equal(engine.calls.at(-1), "unref", "served: nobody waits any more");
  loop.close();
});

Deno.test("AcceptLoop.close(): pending accepts reject BadResource, a connection accepted after is closed", async () => {
  const engine = new ScriptedEngine();
  const loop = loopOver(engine);
  const waiting = loop.accept(undefined);
  loop.close();
  loop.close();
  assert.equal(engine.calls.filter((c) => c === "close").length, 1);
  await assert.rejects(waiting, Deno.errors.BadResource);
  const late = new Conn(2);
  await engine.arrive(late);
  assert.equal(late.closed, true, "accepted after close: closed");
  await assert.rejects(loop.accept(undefined), Deno.errors.BadResource);
  const iterated: Conn[] = [];
  for await (const c of loop.connections()) iterated.push(c);
  assert.deepEqual(iterated, [], "iteration ends without throwing once closed");
});

Deno.test("AcceptLoop.close() closes a connection that arrived while nobody waited", async () => {
  const engine = new ScriptedEngine();
  const loop = loopOver(engine);
  const controller = new AbortController();
  const aborted = loop.accept(controller.signal);
  controller.abort();
  await assert.rejects(aborted);
  const kept = new Conn(1);
  await engine.arrive(kept);
  assert.equal(kept.closed, false);
  loop.close();
  assert.equal(kept.closed, true);
});
