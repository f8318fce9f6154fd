import assert from "node:assert/strict";
import { delimiter, join } from "node:path";
import { preferRustupCargo, rustcFor } from "./toolchain.ts";
import { skipIf, when } from "../tests/_tools.ts";

function fakeEnv(vars: Record<string, string>) {
  const map = new Map(Object.entries(vars));
  return {
    map,
    get: (k: string) => map.get(k),
    set: (k: string, v: string) => void map.set(k, v),
    delete: (k: string) => void map.delete(k),
  };
}

Deno.test("preferRustupCargo() puts CARGO_HOME/bin first, once, and drops RUSTC and CARGO", async () => {
  const home = await Deno.makeTempDir();
  try {
    const bin = join(home, "bin");
    await Deno.mkdir(bin);
    await Deno.writeTextFile(join(bin, Deno.build.os === "windows" ? "cargo.exe" : "cargo"), "");
    const system = Deno.build.os === "windows" ? "C:\\Windows" : "/usr/bin";
    const env = fakeEnv({
      CARGO_HOME: home,
      PATH: [system, bin, "/other"].join(delimiter),
      RUSTC: "/usr/bin/rustc",
      CARGO: "/usr/bin/cargo",
    });
    assert.equal(preferRustupCargo(env), bin);
    assert.equal(env.map.get("PATH"), [bin, system, "/other"].join(delimiter));
    assert.equal(env.map.has("RUSTC"), false);
    assert.equal(env.map.has("CARGO"), false);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("preferRustupCargo() changes nothing without rustup's cargo", async () => {
  const home = await Deno.makeTempDir();
  try {
    const env = fakeEnv({ CARGO_HOME: home, PATH: "/usr/bin", RUSTC: "/usr/bin/rustc" });
    assert.equal(preferRustupCargo(env), null);
    assert.deepEqual(Object.fromEntries(env.map), {
      CARGO_HOME: home,
      PATH: "/usr/bin",
      RUSTC: "/usr/bin/rustc",
    });
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("rustcFor() takes rustup's compiler for the host target", async () => {
  const host = Deno.build.target; // Deno's build target is a Rust triple
  const found = await rustcFor(host);
  assert.ok(found, `no rustc with the ${host} std`);
  assert.equal(found.alternative, false);
  assert.match(found.version, /^rustc \d+\.\d+\.\d+/);
});

Deno.test(
  skipIf(
    "rustcFor() falls back to another compiler that has the target's std, and says when none has",
    when(Deno.build.os === "windows", "the fake compiler is a shell script"),
  ),
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "krepis-rustc-" });
    try {
      const triple = "riscv64gc-unknown-none-elf";
      const libdir = join(dir, "lib");
      await Deno.mkdir(libdir);
      const fake = join(dir, "rustc");
      await Deno.writeTextFile(
        fake,
        `#!/bin/sh\nif [ "$1" = --version ]; then echo "rustc 9.9.9 (fake)"; else echo "${libdir}"; fi\n`,
        { mode: 0o755 },
      );
      // A libdir without a std does not count.
      assert.equal(await rustcFor(triple, [fake]), null);
      await Deno.writeTextFile(join(libdir, "libstd-0123.rlib"), "");
      assert.deepEqual(await rustcFor(triple, [join(dir, "missing"), fake]), {
        rustc: fake,
        version: "rustc 9.9.9 (fake)",
        alternative: true,
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
