import assert from "node:assert/strict";
import { installPlan, needed, TOOLS } from "./setup.ts";

const tool = (name: string) => TOOLS.find((t) => t.name === name)!;

Deno.test("the aarch64 std: rustup's target first, then Debian's rustc-web with the arm64 std, on x86_64 Linux only", () => {
  assert.deepEqual(installPlan(tool("aarch64 std"), { os: "linux", arch: "x86_64" }), [
    { rustup: "aarch64-unknown-linux-gnu" },
    { apt: "rustc-web libstd-rust-web-dev:arm64", arch: "arm64", debianOnly: true },
  ]);
  for (
    const host of [{ os: "darwin", arch: "aarch64" }, { os: "windows", arch: "x86_64" }] as const
  ) {
    const plan = installPlan(tool("aarch64 std"), host);
    assert.ok("unavailable" in plan, `${host.os}: ${JSON.stringify(plan)}`);
  }
});

Deno.test("qemu, the arm64 libc and the arm64 Deno are installed on x86_64 Linux only", () => {
  for (const name of ["qemu-aarch64", "arm64 libc", "arm64 deno"]) {
    const plan = installPlan(tool(name), { os: "linux", arch: "x86_64" });
    assert.ok(Array.isArray(plan) && plan.length === 1, name);
    for (
      const host of [{ os: "linux", arch: "aarch64" }, { os: "darwin", arch: "x86_64" }] as const
    ) {
      assert.ok("unavailable" in installPlan(tool(name), host), `${name} on ${host.os}`);
    }
  }
});

Deno.test("setup --build installs the aarch64 std only for an aarch64 Linux build, and emulation never", () => {
  assert.equal(needed(tool("aarch64 std"), { targets: ["aarch64-unknown-linux-gnu"] }), true);
  assert.equal(needed(tool("aarch64 std"), { targets: ["x86_64-unknown-linux-gnu"] }), false);
  assert.equal(
    needed(tool("aarch64 std"), {
      targets: ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"],
    }),
    true,
  );
  assert.equal(needed(tool("aarch64 std")), true, "the gate builds it for the emulated test");
  for (const name of ["qemu-aarch64", "arm64 libc", "arm64 deno"]) {
    assert.equal(needed(tool(name), { targets: ["aarch64-unknown-linux-gnu"] }), false, name);
    assert.equal(needed(tool(name)), true, name);
  }
  assert.equal(needed(tool("zig"), { targets: ["x86_64-pc-windows-msvc"] }), true);
});
