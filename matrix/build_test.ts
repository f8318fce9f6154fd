/**
 * Here, for real: the host target is built with the tool the table names
 * (cargo-zigbuild with the glibc floor on Linux), passes every post-build
 * check, is packed into dist/<triple>/, and passes the smoke test. For the
 * targets that cannot be built here, what the build hands cargo: the
 * command, `MACOSX_DEPLOYMENT_TARGET` from the table, `+crt-static` from
 * `.cargo/config.toml`, and the install name the build script sets.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { parse as parseToml } from "npm:smol-toml@^1.9.1";
import { LOADER_ABI, resolveTarget, VERSION } from "../loader/mod.ts";
import { SYMBOLS } from "../loader/_gen/ffi.ts";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { buildPlan, cargoCommand, cargoEnv, compileTarget, stdHint } from "./build.ts";
import { BUILD_STD_ARGS, buildStdToolchain } from "../lib/build_std.ts";
import { darwinLinker } from "../lib/macos_link.ts";
import { inspectBinary } from "./artifact/inspect.ts";
import { verifyCodeSignature } from "./artifact/codesign.ts";
import { runDeno } from "../tests/_cli.ts";
import { loadTargetTable, parseTargetTable, targetRow } from "./targets.ts";

const rows = await loadTargetTable();
const host = targetRow(rows, resolveTarget().triple);

function task(args: string[], env: Record<string, string> = {}) {
  return runDeno(["task", ...args], env);
}

Deno.test("cargoCommand() picks the table's tool, with the glibc floor for Linux gnu", () => {
  assert.deepEqual(cargoCommand(targetRow(rows, "aarch64-unknown-linux-gnu"), "release"), [
    "cargo",
    "zigbuild",
    "--locked",
    "-p",
    "krepis-kernel",
    "--release",
    "--no-default-features",
    "--features",
    "journal,server",
    "--target",
    "aarch64-unknown-linux-gnu.2.17",
  ]);
  assert.deepEqual(cargoCommand(targetRow(rows, "aarch64-pc-windows-msvc"), "dev"), [
    "cargo",
    "build",
    "--locked",
    "-p",
    "krepis-kernel",
    "--no-default-features",
    "--features",
    "journal",
    "--target",
    "aarch64-pc-windows-msvc",
  ]);
});

Deno.test("every feature the table names is a feature of the kernel crate", async () => {
  const manifest = parseToml(
    await Deno.readTextFile(`${REPO_ROOT}/crates/krepis-kernel/Cargo.toml`),
  ) as { features: Record<string, string[]> };
  const known = Object.keys(manifest.features).filter((f) => f !== "default");
  for (const row of rows) {
    for (const feature of row.features) {
      assert.ok(known.includes(feature), `${row.triple}: ${feature} is not one of ${known}`);
    }
  }
  // cargo's default set is the largest one, so that a plain `cargo build`
  // has everything a release of some target has.
  assert.deepEqual(
    [...manifest.features.default].sort(),
    [...new Set(rows.flatMap((row) => row.features))].sort(),
  );
});

Deno.test("the table refuses rows whose features are not a list of names", () => {
  const table = JSON.parse(Deno.readTextFileSync(new URL("./targets.json", import.meta.url)));
  for (const features of [undefined, "journal", ["journal", "journal"], ["Journal"], [""], [1]]) {
    const row = { ...table.targets[0], features };
    assert.throws(
      () => parseTargetTable(JSON.stringify({ targets: [row] })),
      /needs features, a list of distinct cargo feature names/,
      JSON.stringify(features),
    );
  }
});

Deno.test("cargoEnv() passes the table's MACOSX_DEPLOYMENT_TARGET to macOS builds only", () => {
  assert.deepEqual(cargoEnv(targetRow(rows, "x86_64-apple-darwin"), "darwin"), {
    CARGO_TARGET_DIR: `${REPO_ROOT}/target`,
    MACOSX_DEPLOYMENT_TARGET: "10.12",
  });
  assert.deepEqual(cargoEnv(targetRow(rows, "aarch64-apple-darwin"), "darwin"), {
    CARGO_TARGET_DIR: `${REPO_ROOT}/target`,
    MACOSX_DEPLOYMENT_TARGET: "11.0",
  });
  for (const row of rows.filter((r) => r.os !== "darwin")) {
    for (const os of ["linux", "darwin", "windows"] as const) {
      assert.deepEqual(cargoEnv(row, os), { CARGO_TARGET_DIR: `${REPO_ROOT}/target` });
    }
  }
});

Deno.test("a macOS row on another OS builds with cargo-zigbuild on a std built from source and links with rust-lld", () => {
  const row = targetRow(rows, "aarch64-apple-darwin");
  assert.equal(row.tool, "cargo", "the table (and so the macOS runners) keeps cargo");
  assert.deepEqual(buildPlan(row, "darwin"), { tool: "cargo", buildStd: false });
  assert.deepEqual(buildPlan(row, "linux"), { tool: "cargo-zigbuild", buildStd: true });
  assert.deepEqual(buildPlan(targetRow(rows, "x86_64-unknown-linux-gnu"), "linux"), {
    tool: "cargo-zigbuild",
    buildStd: false,
  });
  assert.deepEqual(cargoCommand(row, "dev", "krepis-kernel", true, "linux"), [
    "cargo",
    "zigbuild",
    "--locked",
    ...BUILD_STD_ARGS,
    "-p",
    "krepis-kernel",
    "--no-default-features",
    "--features",
    "journal,server",
    "--target",
    "aarch64-apple-darwin",
  ]);
  assert.deepEqual(cargoCommand(row, "dev", "krepis-kernel", true, "darwin")[1], "build");
  const linker = { lld: "/t/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld", syslibroot: "/s" };
  // No Rust or C flag: the code compiled is the macOS runners'; only the linker differs.
  assert.deepEqual(cargoEnv(row, "linux", linker), {
    CARGO_TARGET_DIR: `${REPO_ROOT}/target`,
    MACOSX_DEPLOYMENT_TARGET: "11.0",
    CARGO_TARGET_AARCH64_APPLE_DARWIN_LINKER: linker.lld,
    KREPIS_MACOS_SYSLIBROOT: "/s",
  });
  assert.deepEqual(cargoEnv(targetRow(rows, "x86_64-apple-darwin"), "windows", linker), {
    CARGO_TARGET_DIR: `${REPO_ROOT}/target`,
    MACOSX_DEPLOYMENT_TARGET: "10.12",
    CARGO_TARGET_X86_64_APPLE_DARWIN_LINKER: linker.lld,
    KREPIS_MACOS_SYSLIBROOT: "/s",
  });
  // On macOS the linker is Apple's, whatever is passed.
  assert.deepEqual(cargoEnv(row, "darwin", linker), {
    CARGO_TARGET_DIR: `${REPO_ROOT}/target`,
    MACOSX_DEPLOYMENT_TARGET: "11.0",
  });
  assert.throws(
    () => cargoEnv(row, "linux"),
    /^Error: Cannot build aarch64-apple-darwin on linux: no linker named\nHint: /,
  );
});

const buildStd = Deno.build.os === "darwin" ? null : await buildStdToolchain();

/** Whether `python3 -m ziglang` runs (cargo-zigbuild's zig). */
async function hasZig(): Promise<boolean> {
  try {
    return (await new Deno.Command("python3", {
      args: ["-m", "ziglang", "version"],
      stdout: "null",
      stderr: "null",
    }).output()).success;
  } catch {
    return false;
  }
}

Deno.test({
  name:
    "rust-lld off macOS links a dylib with only the listed exports, no unused library, the minimum macOS and a verified ad hoc signature",
  // Needs the toolchain copy of `deno task setup --build --target aarch64-apple-darwin` (never
  // made on macOS, which links with Apple's linker) and zig to compile the C objects.
  ignore: buildStd === null || !(await hasZig()),
  async fn() {
    const tmp = await Deno.makeTempDir();
    const tools = Deno.env.get("KREPIS_TOOLS_DIR");
    Deno.env.set("KREPIS_TOOLS_DIR", tmp);
    try {
      const linker = await darwinLinker(buildStd!.rustc, buildStd!.sysroot);
      const source = `${tmp}/fixture.c`;
      // Both functions have default visibility: only the export list keeps one out.
      await Deno.writeTextFile(
        source,
        "#include <unistd.h>\nlong kept_fn(void) { return (long)getpid(); }\nlong dropped_fn(void) { return 2; }\n",
      );
      await Deno.writeTextFile(`${tmp}/list`, "_kept_fn\n");
      for (const row of rows.filter((r) => r.os === "darwin")) {
        const arch = row.arch === "aarch64" ? "arm64" : row.arch;
        const object = `${tmp}/${row.arch}.o`;
        const zig = await new Deno.Command("python3", {
          args: [
            "-m",
            "ziglang",
            "cc",
            "-O2",
            "-target",
            `${row.arch}-macos.${row.macosDeploymentTarget}`,
            "-c",
            source,
            "-o",
            object,
          ],
          stderr: "piped",
        }).output();
        assert.ok(zig.success, new TextDecoder().decode(zig.stderr));
        const dylib = `${tmp}/${row.file}`;
        // What rustc and the kernel's build.rs hand rust-lld for a cdylib, in short.
        const lld = await new Deno.Command(linker.lld, {
          args: [
            "-flavor",
            "darwin",
            "-arch",
            arch,
            "-platform_version",
            "macos",
            row.macosDeploymentTarget!,
            row.macosDeploymentTarget!,
            "-dylib",
            "-exported_symbols_list",
            `${tmp}/list`,
            object,
            "-lSystem",
            "-lc",
            "-lm",
            "-liconv",
            "-install_name",
            `@rpath/${row.file}`,
            "-dead_strip_dylibs",
            "-adhoc_codesign",
            "-syslibroot",
            linker.syslibroot,
            "-o",
            dylib,
          ],
          stderr: "piped",
        }).output();
        assert.ok(lld.success, new TextDecoder().decode(lld.stderr));
        const bytes = await Deno.readFile(dylib);
        const info = inspectBinary(bytes, dylib);
        assert.equal(info.format, "macho");
        assert.equal(info.arch, row.arch);
        assert.deepEqual(info.exports, ["kept_fn"], row.triple);
        assert.deepEqual(info.imports, ["/usr/lib/libSystem.B.dylib"], row.triple);
        assert.equal(info.installName, `@rpath/${row.file}`);
        assert.equal(info.minMacos, row.macosDeploymentTarget);
        const signature = verifyCodeSignature(bytes);
        assert.ok(signature.signed && signature.adhoc && signature.problem === null, row.triple);
      }
    } finally {
      if (tools === undefined) Deno.env.delete("KREPIS_TOOLS_DIR");
      else Deno.env.set("KREPIS_TOOLS_DIR", tools);
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test("parseTargetTable() wants a deployment target on macOS rows and only there", () => {
  const table = (change: Record<string, unknown>, triple: string) =>
    JSON.stringify({
      targets: rows.map((row) => row.triple === triple ? { ...row, ...change } : row),
    });
  assert.throws(
    () => parseTargetTable(table({ macosDeploymentTarget: null }, "aarch64-apple-darwin")),
    /^Error: Cannot read matrix\/targets\.json: aarch64-apple-darwin needs a macosDeploymentTarget such as "11\.0", not null$/,
  );
  assert.throws(
    () => parseTargetTable(table({ macosDeploymentTarget: "eleven" }, "x86_64-apple-darwin")),
    /needs a macosDeploymentTarget such as "11\.0", not "eleven"/,
  );
  assert.throws(
    () => parseTargetTable(table({ macosDeploymentTarget: "11.0" }, "x86_64-pc-windows-msvc")),
    /^Error: Cannot read matrix\/targets\.json: x86_64-pc-windows-msvc is not a macOS target, so its macosDeploymentTarget must be null$/,
  );
});

Deno.test(".cargo/config.toml links the C runtime statically for every Windows MSVC row", async () => {
  const config = parseToml(await Deno.readTextFile(`${REPO_ROOT}/.cargo/config.toml`)) as {
    target?: Record<string, { rustflags?: string[] }>;
  };
  const windows = rows.filter((row) => row.os === "windows");
  assert.ok(windows.length > 0);
  for (const row of windows) {
    assert.ok(row.triple.endsWith("-windows-msvc"), row.triple);
    const flags = config.target?.[row.triple]?.rustflags ?? [];
    const at = flags.indexOf("target-feature=+crt-static");
    assert.ok(
      at > 0 && flags[at - 1] === "-C",
      `${row.triple}: rustflags ${JSON.stringify(flags)}`,
    );
  }
});

Deno.test("the build script's macOS install name is @rpath/ and the table's file name", async () => {
  const buildRs = await Deno.readTextFile(`${REPO_ROOT}/crates/krepis-kernel/build.rs`);
  const match = buildRs.match(/"-install_name"[^@]*"@rpath\/(libkrepis_kernel-\{target\}\.dylib)"/);
  assert.ok(match, "build.rs sets no @rpath install name");
  for (const row of rows.filter((r) => r.os === "darwin")) {
    assert.equal(match[1].replace("{target}", row.triple), row.file);
  }
});

Deno.test(`deno task build builds ${host.triple} with ${host.tool}, checks it and writes dist/`, async () => {
  const build = await task(["build", "--target", host.triple, "--profile", "release"]);
  assert.equal(build.code, 0, build.stderr);
  assert.match(
    build.stdout,
    /format {10}\w+, \w+, shared library/,
  );
  assert.match(build.stdout, /^ {2}imports {9}\S/m);
  assert.match(
    build.stdout,
    Deno.build.os === "darwin"
      ? /^ {2}code signature {2}valid \(codesign -v\)$/m
      : /^ {2}code signature {2}not checked \(not on macOS\)$/m,
  );
  assert.doesNotMatch(build.stdout, /FAIL/);
  const dir = `${REPO_ROOT}/dist/${host.triple}`;
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assert.deepEqual(
    names,
    [host.file, `${host.file}.gz`, `${host.file}.zst`, "fragment.json"].sort(),
  );
  const fragment = JSON.parse(await Deno.readTextFile(`${dir}/fragment.json`));
  assert.equal(fragment.version, VERSION);
  assert.deepEqual(fragment.abi, { ...LOADER_ABI });
  const library = await Deno.readFile(`${dir}/${host.file}`);
  assert.equal(fragment.target.size, library.length);
  assert.equal(fragment.target.sha256, createHash("sha256").update(library).digest("hex"));
  assert.equal(
    fragment.target.compressed.zstd.size,
    (await Deno.stat(`${dir}/${host.file}.zst`)).size,
  );

  const smoke = await task(["smoke", `${dir}/${host.file}`]);
  assert.equal(smoke.code, 0, smoke.stdout + smoke.stderr);
  assert.match(smoke.stdout, /smoke: \d+ passed, 0 failed\n$/);
  const exports = Object.keys(SYMBOLS).length;
  assert.match(smoke.stdout, new RegExp(`ok {3}every export called: ${exports} exports`));
});

Deno.test("deno task smoke fails on a library with another ABI", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/k.c`,
      'unsigned krepis_abi_version(void) { return 9u << 16; }\nconst char *krepis_abi_fingerprint(void) { return "x"; }\n',
    );
    const cc = await new Deno.Command("cc", {
      args: ["-shared", "-fPIC", "-o", `${dir}/k.so`, `${dir}/k.c`],
    }).output();
    assert.ok(cc.success);
    const smoke = await task(["smoke", `${dir}/k.so`]);
    assert.equal(smoke.code, 1);
    assert.match(
      smoke.stdout,
      /^FAIL load\(\) with the ABI check: Cannot load kernel .*: its ABI major 9 is not 1;/m,
    );
    assert.match(smoke.stderr, /Cannot accept .*k\.so: load\(\) with the ABI check failed/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a target no compiler here has a std for stops before cargo and says how to get one", async () => {
  // A triple no compiler knows, so no machine has its std; the rest is the aarch64 row.
  const row = {
    ...targetRow(rows, "aarch64-unknown-linux-gnu"),
    triple: "aarch64-krepis-none-test",
  };
  await assert.rejects(() => compileTarget(row, { verbose: false }), (error: Error) => {
    assert.match(
      error.message,
      /^Cannot build aarch64-krepis-none-test: no Rust compiler here has its standard library\nHint: rustup target add aarch64-krepis-none-test$/,
    );
    return true;
  });
});

Deno.test({
  name:
    "a macOS build on another OS without the prepared std source stops before cargo and names setup",
  // On macOS the macOS rows build natively, with rustup's std.
  ignore: Deno.build.os === "darwin",
  async fn() {
    const tools = await Deno.makeTempDir();
    const before = Deno.env.get("KREPIS_TOOLS_DIR");
    Deno.env.set("KREPIS_TOOLS_DIR", tools);
    try {
      const row = targetRow(rows, "aarch64-apple-darwin");
      await assert.rejects(() => compileTarget(row, { verbose: false }), (error: Error) => {
        assert.equal(
          error.message,
          "Cannot build aarch64-apple-darwin: the std source for -Zbuild-std is not prepared\nHint: deno task setup --build --target aarch64-apple-darwin",
        );
        return true;
      });
    } finally {
      if (before === undefined) Deno.env.delete("KREPIS_TOOLS_DIR");
      else Deno.env.set("KREPIS_TOOLS_DIR", before);
      await Deno.remove(tools, { recursive: true });
    }
  },
});

Deno.test("the std hint names deno task setup only for the route it knows: aarch64 Linux on x86_64 Linux", () => {
  const aarch64 = targetRow(rows, "aarch64-unknown-linux-gnu");
  const hint = stdHint(aarch64);
  assert.ok(hint.startsWith("rustup target add aarch64-unknown-linux-gnu"));
  assert.equal(
    hint.includes("deno task setup --build --target aarch64-unknown-linux-gnu"),
    Deno.build.os === "linux" && Deno.build.arch === "x86_64",
  );
  for (const row of rows.filter((r) => r.triple !== aarch64.triple)) {
    assert.equal(stdHint(row), `rustup target add ${row.triple}`);
  }
});
