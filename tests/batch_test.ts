// ffi/batch.ts: the adaptive recvmmsg batch size, driven by scripted results.

import assert from "node:assert/strict";
import { BatchSize } from "../ffi/batch.ts";

Deno.test("BatchSize ramps a flooded socket up to its maximum, doubling per full call", () => {
  const b = new BatchSize(32);
  const sizes: number[] = [];
  // A single record, then every call comes back full.
  b.next(1, 1);
  for (let i = 0; i < 6; i++) {
    sizes.push(b.size);
    b.next(b.size, b.size);
  }
  assert.deepEqual(sizes, [2, 4, 8, 16, 32, 32]);
});

Deno.test("BatchSize takes what a short call got as the next size", () => {
  const b = new BatchSize(32);
  b.next(1, 1);
  b.next(2, 2);
  b.next(4, 4);
  assert.equal(b.size, 8);
  b.next(8, 3);
  assert.equal(b.size, 3);
});

Deno.test("BatchSize tries two less often each time the second slot comes back empty", () => {
  const b = new BatchSize(32);
  /** The single-record calls before each try of a batch of two. */
  const gaps: number[] = [];
  for (let round = 0; round < 8; round++) {
    let singles = 0;
    while (b.size === 1) {
      b.next(1, 1);
      singles++;
    }
    gaps.push(singles);
    b.next(2, 1); // the second slot was empty
    assert.equal(b.size, 1);
  }
  assert.deepEqual(gaps, [1, 2, 4, 8, 16, 32, 64, 64]);
});

Deno.test("BatchSize(1) never asks for more than one record", () => {
  const b = new BatchSize(1);
  for (let i = 0; i < 10; i++) {
    b.next(b.size, b.size);
    assert.equal(b.size, 1);
  }
});
