import assert from "node:assert/strict";
import path from "node:path";
import { absolute, basename, dirname, join } from "./_path.ts";

Deno.test("the warm-path helpers agree with node:path on POSIX paths", () => {
  if (Deno.build.os === "windows") return;
  for (const parts of [["/a", "b", "c.so"], ["/a/", "/b/", "c"], ["rel", "x"]]) {
    assert.equal(join(...parts), path.join(...parts));
  }
  for (const p of ["/a/b/c.so", "/a", "rel/x", "x"]) {
    assert.equal(dirname(p), path.dirname(p));
    assert.equal(basename(p), path.basename(p));
  }
  assert.equal(absolute("/abs/lib.so"), "/abs/lib.so");
  assert.equal(absolute("rel/lib.so"), path.resolve("rel/lib.so"));
});
