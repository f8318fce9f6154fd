import assert from "node:assert/strict";
import { CacheError, KernelError } from "../errors.ts";
import { summaryOf } from "./summary.ts";

Deno.test("summaryOf() gives a loader error's message without its hint, and another error's first line", () => {
  assert.equal(
    summaryOf(new CacheError("Cannot write x: the disk is full", { hint: "free space" })),
    "Cannot write x: the disk is full",
  );
  assert.equal(
    summaryOf(new KernelError("Cannot do it (FAILED)", 5, "FAILED")),
    "Cannot do it (FAILED)",
  );
  assert.equal(summaryOf(new TypeError("Cannot pass x\nHint: pass y")), "Cannot pass x");
  assert.equal(summaryOf(new Error("one line")), "one line");
  assert.equal(summaryOf("thrown text"), "thrown text");
});
