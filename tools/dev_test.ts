import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { classify } from "./dev.ts";

Deno.test("classify() rebuilds for Rust, Cargo and schema changes, retests for TypeScript", () => {
  assert.equal(classify([`${REPO_ROOT}/crates/krepis-kernel/src/call.rs`]), "rebuild");
  assert.equal(classify(["proto/krepis.proto", "loader/kernel/kernel.ts"]), "rebuild");
  assert.equal(classify(["crates/krepis-kernel/Cargo.toml"]), "rebuild");
  assert.equal(classify([`${REPO_ROOT}/loader/load.ts`]), "retest");
  assert.equal(classify(["README.md"]), null);
  assert.equal(
    classify([`${REPO_ROOT}/target/debug/build/x/out/krepis.h`, "dist/x/fragment.json"]),
    null,
  );
});

Deno.test("the dev loop builds, tests, then reruns the tests when a TypeScript file changes", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", `${REPO_ROOT}/tools/dev.ts`],
    cwd: REPO_ROOT,
    env: { KREPIS_KERNEL_PATH: "" },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const waitFor = async (pattern: RegExp, count: number) => {
    const deadline = Date.now() + 120_000;
    while ((seen.match(new RegExp(pattern, "g")) ?? []).length < count) {
      const left = deadline - Date.now();
      assert.ok(left > 0, `timed out waiting for ${pattern}; saw:\n${seen}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<{ value: undefined; done: true }>((resolve) => {
        timer = setTimeout(() => resolve({ value: undefined, done: true }), left);
      });
      const { value, done } = await Promise.race([reader.read(), timeout]);
      clearTimeout(timer);
      if (done) break;
      seen += value;
    }
    assert.ok(
      (seen.match(new RegExp(pattern, "g")) ?? []).length >= count,
      `never saw ${pattern}; saw:\n${seen}`,
    );
  };
  try {
    await waitFor(/\[dev\] green in/, 1);
    assert.match(seen, /\[dev\] rebuilding the kernel/);
    // Touch (not edit) a loader test file.
    const file = join(REPO_ROOT, "loader", "_codec", "pool_test.ts");
    const now = new Date();
    await Deno.utime(file, now, now);
    await waitFor(/\[dev\] green in/, 2);
    assert.equal(
      (seen.match(/\[dev\] rebuilding the kernel/g) ?? []).length,
      1,
      "a TypeScript change does not rebuild",
    );
  } finally {
    child.kill("SIGKILL");
    await reader.cancel().catch(() => {});
    await child.status;
  }
});
