import assert from "node:assert/strict";
import { delimiter, join } from "node:path";
import { preferRustupCargo } from "./toolchain.ts";

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
