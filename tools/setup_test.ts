import assert from "node:assert/strict";
import { installPlan, needed, run, TOOLS } from "./setup.ts";

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

Deno.test("mmdebstrap, the Wine root and the Windows Deno are installed on x86_64 Linux only, for the gate", () => {
  for (const name of ["mmdebstrap", "wine root", "windows deno"]) {
    const plan = installPlan(tool(name), { os: "linux", arch: "x86_64" });
    assert.ok(Array.isArray(plan) && plan.length === 1, name);
    for (
      const host of [{ os: "linux", arch: "aarch64" }, { os: "windows", arch: "x86_64" }] as const
    ) {
      assert.ok("unavailable" in installPlan(tool(name), host), `${name} on ${host.os}`);
    }
    assert.equal(needed(tool(name)), true, name);
    assert.equal(needed(tool(name), { targets: ["x86_64-pc-windows-msvc"] }), false, name);
  }
  // The Wine root is made and entered as root only: for another user it is unavailable, not a failure.
  const why = tool("wine root").unavailableHere?.();
  if (Deno.build.os === "linux" && Deno.uid() !== 0) assert.match(why ?? "", /as root only/);
  else assert.equal(why, null);
  // A Windows build here needs the twin's linker and an archiver for the MSVC check.
  assert.equal(needed(tool("mingw-w64"), { targets: ["x86_64-pc-windows-msvc"] }), true);
  assert.equal(needed(tool("mingw-w64"), { targets: ["x86_64-unknown-linux-gnu"] }), false);
  assert.equal(needed(tool("llvm-lib"), { targets: ["aarch64-pc-windows-msvc"] }), true);
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

Deno.test("no tool is compiled by cargo install on any host (no C libraries built from source)", () => {
  const hosts = [
    { os: "linux", arch: "x86_64" },
    { os: "linux", arch: "aarch64" },
    { os: "darwin", arch: "aarch64" },
    { os: "darwin", arch: "x86_64" },
    { os: "windows", arch: "x86_64" },
    { os: "windows", arch: "aarch64" },
  ] as const;
  for (const t of TOOLS) {
    for (const host of hosts) {
      const plan = installPlan(t, host);
      if ("unavailable" in plan) continue;
      for (const way of plan) {
        assert.ok(!("cargo" in way), `${t.name} on ${host.os}: ${JSON.stringify(way)}`);
      }
    }
  }
  assert.equal(TOOLS.find((t) => t.name === "cargo-release"), undefined);
});

Deno.test("setup's run() lets a slow step finish, saying it is still running and how long it took", async () => {
  const lines: string[] = [];
  await run(Deno.execPath(), ["eval", "await new Promise((r) => setTimeout(r, 700))"], {
    heartbeatMs: 100,
    log: (line) => lines.push(line),
  });
  assert.match(lines[0], /^setup: .*deno.* eval /);
  assert.ok(lines.some((l) => /^setup: … still running .* \(\d+ s\)$/.test(l)), lines.join("\n"));
  assert.match(lines.at(-1)!, /: done in \d+ s$/);
});

Deno.test("setup's run() names the exit code and the time of a failed step", async () => {
  await assert.rejects(
    run(Deno.execPath(), ["eval", "Deno.exit(3)"], { log: () => {} }),
    /eval Deno\.exit\(3\) exited with 3 after \d+ s$/,
  );
});
