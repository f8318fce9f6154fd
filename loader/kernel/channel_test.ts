import assert from "node:assert/strict";
import { kernelText } from "./channel.ts";

Deno.test("kernelText() splits the kernel's text at its hint line, and leaves a text without one whole", () => {
  assert.deepEqual(kernelText("Cannot open x: busy\nHint: wait for the other process"), {
    message: "Cannot open x: busy",
    hint: "wait for the other process",
  });
  assert.deepEqual(kernelText("Cannot open x: busy"), { message: "Cannot open x: busy" });
  // Only the first hint line splits; a message's own lines stay in the message.
  assert.deepEqual(kernelText("Cannot a: b\nsecond line\nHint: h1\nHint: h2"), {
    message: "Cannot a: b\nsecond line",
    hint: "h1\nHint: h2",
  });
  assert.deepEqual(kernelText(""), { message: "" });
});
