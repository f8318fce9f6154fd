import assert from "node:assert/strict";
import { allocate } from "./pool.ts";

Deno.test("allocate() hands out zeroed regions that never overlap, across slabs", () => {
  const seen: Uint8Array[] = [];
  for (let i = 0; i < 100; i++) {
    const view = allocate(1000 + i);
    assert.equal(view.length, 1000 + i);
    assert.ok(view.every((b) => b === 0));
    view.fill(i + 1);
    seen.push(view);
  }
  seen.forEach((view, i) =>
    assert.ok(view.every((b) => b === i + 1), `region ${i} was overwritten`)
  );
});

Deno.test("allocate() gives large results their own buffer", () => {
  const view = allocate(8192);
  assert.equal(view.byteOffset, 0);
  assert.equal(view.buffer.byteLength, 8192);
});
