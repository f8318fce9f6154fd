import assert from "node:assert/strict";
import { join } from "node:path";
import {
  acquireSettings,
  aptView,
  BUILD_STD_ARGS,
  buildStdEnv,
  buildStdToolchain,
  damage,
  debianArchive,
  ensureBuildStdToolchain,
  matchingPackage,
  rustVersion,
  upstreamVersion,
} from "./build_std.ts";
import { installPlan, needed, TOOLS } from "./setup.ts";
import { toolsDir } from "./aarch64_emulator.ts";

Deno.test("upstreamVersion() drops the epoch, the Debian revision and the repack suffix", () => {
  assert.equal(upstreamVersion("1.95.0+dfsg1-2~bpo13+1"), "1.95.0");
  assert.equal(upstreamVersion("1:1.95.0+dfsg1-2"), "1.95.0");
  assert.equal(upstreamVersion("1.95.0~beta.3+dfsg1-1~exp1"), "1.95.0");
  assert.equal(upstreamVersion("1.95.1-1"), "1.95.1");
});

Deno.test("rustVersion() reads stable releases and refuses nightlies and betas", () => {
  assert.equal(rustVersion("rustc 1.95.0 (59807616e 2026-04-14)"), "1.95.0");
  assert.equal(rustVersion("rustc 1.96.0-nightly (abc 2026-04-01)"), null);
  assert.equal(rustVersion("rustc 1.96.0-beta.3 (abc 2026-04-01)"), null);
  assert.equal(rustVersion("cargo 1.95.0"), null);
});

Deno.test("matchingPackage() picks the newest rust-src whose upstream version is the toolchain's", () => {
  const madison = [
    "  rust-src | 1.96.1+dfsg1-2~bpo13+1 | http://mirror.example/debian trixie-backports/main amd64 Packages",
    "  rust-src | 1.95.0+dfsg1-3~bpo13+1 | http://mirror.example/debian trixie-backports/main amd64 Packages",
    "  rust-src | 1.95.0+dfsg1-2~bpo13+1 | http://mirror.example/debian trixie-backports/main amd64 Packages",
    "  rust-src | 1.9.5+dfsg1-1 | http://mirror.example/debian trixie-backports/main amd64 Packages",
  ].join("\n");
  assert.equal(matchingPackage(madison, "1.95.0"), "1.95.0+dfsg1-3~bpo13+1");
  assert.equal(matchingPackage(madison, "1.96.1"), "1.96.1+dfsg1-2~bpo13+1");
  assert.equal(matchingPackage(madison, "1.95.1"), null);
  assert.equal(matchingPackage("", "1.95.0"), null);
});

Deno.test("aptView() keeps apt's lists, cache, status and sources in its own directory", () => {
  const dir = join("private", "apt");
  const view = aptView(dir, { uri: "http://mirror.example/debian", keyring: "/k.gpg" }, false);
  for (
    const key of ["Dir::State::Lists", "Dir::State::status", "Dir::Cache", "Dir::Etc::SourceList"]
  ) {
    const line = view.conf.split("\n").find((l) => l.startsWith(`${key} `));
    assert.ok(line?.includes(dir), `${key}: ${line}`);
  }
  // The system's parts and main file are never read: both point into the private folder.
  for (const key of ["Dir::Etc::Parts", "Dir::Etc::Main"]) {
    const line = view.conf.split("\n").find((l) => l.startsWith(`${key} `));
    assert.ok(line?.includes(dir), `${key}: ${line}`);
  }
  assert.ok(!view.conf.includes("Sandbox"));
  const carried = aptView(dir, { uri: "u", keyring: "k" }, false, [
    `Acquire::Check-Valid-Until "false";`,
    `Acquire::Languages "en";`,
  ]).conf;
  assert.ok(carried.includes(`Acquire::Check-Valid-Until "false";`), carried);
  assert.ok(!carried.includes(`Acquire::Languages "en";`), carried);
  assert.ok(
    aptView(dir, { uri: "u", keyring: "k" }, true).conf.includes(`APT::Sandbox::User "root";`),
  );
  assert.equal(
    view.sources,
    "deb [signed-by=/k.gpg] http://mirror.example/debian trixie-backports main\n",
  );
});

Deno.test("acquireSettings() keeps the system's Acquire:: lines only, never its hooks", () => {
  const dump = [
    `APT::Update::Post-Invoke-Success "";`,
    `APT::Update::Post-Invoke-Success:: "appstreamcli refresh";`,
    `Acquire::Check-Valid-Until "false";`,
    `Acquire::http::Proxy "http://proxy.example:3128";`,
    `DPkg::Post-Invoke:: "touch /tmp/x";`,
    `Acquire::Retries "3";`,
    `Acquire::odd "half`,
  ].join("\n");
  assert.deepEqual(acquireSettings(dump), [
    `Acquire::Check-Valid-Until "false";`,
    `Acquire::http::Proxy "http://proxy.example:3128";`,
    `Acquire::Retries "3";`,
  ]);
});

Deno.test("debianArchive() finds the Debian archive in one-line and deb822 sources, skipping security and others", async () => {
  const etc = await Deno.makeTempDir();
  try {
    assert.equal(await debianArchive(etc), null);
    await Deno.mkdir(join(etc, "sources.list.d"));
    await Deno.writeTextFile(
      join(etc, "sources.list.d", "a-other.list"),
      "deb https://other.example/apt cloud-sdk main\n",
    );
    await Deno.writeTextFile(
      join(etc, "sources.list.d", "b-debian.sources"),
      [
        "Types: deb",
        "URIs: http://security.example/debian-security",
        "Suites: bookworm-security",
        "Components: main",
        "",
        "Types: deb",
        "# a comment",
        "URIs: http://mirror.example/debian/",
        "Suites: bookworm bookworm-updates",
        "Components: main",
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg",
        "",
      ].join("\n"),
    );
    await Deno.writeTextFile(
      join(etc, "sources.list.d", "c.disabled"),
      "deb http://x.example/debian sid main\n",
    );
    assert.deepEqual(await debianArchive(etc), {
      uri: "http://mirror.example/debian",
      keyring: "/usr/share/keyrings/debian-archive-keyring.gpg",
    });
    // sources.list comes first; its signed-by option is kept.
    await Deno.writeTextFile(
      join(etc, "sources.list"),
      "# deb http://old.example/debian buster main\ndeb [arch=amd64 signed-by=/k.gpg] http://first.example/debian trixie main contrib\n",
    );
    assert.deepEqual(await debianArchive(etc), {
      uri: "http://first.example/debian",
      keyring: "/k.gpg",
    });
  } finally {
    await Deno.remove(etc, { recursive: true });
  }
});

/** A fake prepared copy: the programs, the std's key files and a stamp made like the real one. */
async function fakeCopy(sysroot: string, version: string): Promise<string> {
  const library = join(sysroot, "lib", "rustlib", "src", "rust", "library");
  const exe = Deno.build.os === "windows" ? ".exe" : "";
  await Deno.mkdir(join(sysroot, "bin"), { recursive: true });
  await Deno.writeTextFile(join(sysroot, "bin", `rustc${exe}`), "rustc");
  await Deno.writeTextFile(join(sysroot, "bin", `cargo${exe}`), "cargo");
  const files: Record<string, string> = {
    "Cargo.lock": "# lock\n",
    [join("std", "src", "lib.rs")]: "//! std\n",
    [join("core", "src", "lib.rs")]: "//! core\n",
    [join("alloc", "src", "lib.rs")]: "//! alloc\n",
  };
  let bytes = 0;
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(join(library, path, ".."), { recursive: true });
    await Deno.writeTextFile(join(library, path), text);
    bytes += text.length;
  }
  await Deno.writeTextFile(
    join(sysroot, "krepis-build-std.json"),
    JSON.stringify({ version, package: "rust-src=x", sha256: "0", files: 4, bytes }),
  );
  return library;
}

Deno.test("damage() passes an intact copy and names a missing file, a changed source or another version", async () => {
  const sysroot = await Deno.makeTempDir();
  try {
    const library = await fakeCopy(sysroot, "1.95.0");
    assert.equal(await damage(sysroot, "1.95.0"), null);
    assert.match((await damage(sysroot, "1.96.0"))!, /made for 1\.95\.0, not 1\.96\.0/);
    await Deno.writeTextFile(join(library, "std", "src", "lib.rs"), "//! std, edited\n");
    assert.match((await damage(sysroot, "1.95.0"))!, /bytes were unpacked/);
    await Deno.remove(join(library, "core", "src", "lib.rs"));
    assert.match((await damage(sysroot, "1.95.0"))!, /lib\.rs is missing/);
    await Deno.remove(join(sysroot, "krepis-build-std.json"));
    assert.match((await damage(sysroot, "1.95.0"))!, /no stamp/);
  } finally {
    await Deno.remove(sysroot, { recursive: true });
  }
});

Deno.test("damage() names a missing link to rust-objcopy's LLVM library", async () => {
  const sysroot = await Deno.makeTempDir();
  try {
    await fakeCopy(sysroot, "1.95.0");
    const exe = Deno.build.os === "windows" ? ".exe" : "";
    const host = join(sysroot, "lib", "rustlib", "x86_64-unknown-linux-gnu");
    await Deno.mkdir(join(host, "bin"), { recursive: true });
    await Deno.writeTextFile(join(host, "bin", `rust-objcopy${exe}`), "objcopy");
    await Deno.writeTextFile(join(sysroot, "lib", "libLLVM.so.22.1-rust-1.95.0-stable"), "llvm");
    assert.match(
      (await damage(sysroot, "1.95.0"))!,
      /libLLVM\.so\.22\.1-rust-1\.95\.0-stable is missing \(rust-objcopy's LLVM library\)/,
    );
    await Deno.mkdir(join(host, "lib"));
    await Deno.link(
      join(sysroot, "lib", "libLLVM.so.22.1-rust-1.95.0-stable"),
      join(host, "lib", "libLLVM.so.22.1-rust-1.95.0-stable"),
    );
    assert.equal(await damage(sysroot, "1.95.0"), null);
  } finally {
    await Deno.remove(sysroot, { recursive: true });
  }
});

Deno.test("buildStdEnv() sets RUSTC to the copy, allows -Z on stable and puts the copy's bin first", () => {
  const sysroot = join("tools", "build-std", "1.95.0", "toolchain");
  const rustc = join(sysroot, "bin", "rustc");
  const env = buildStdEnv({
    cargo: join(sysroot, "bin", "cargo"),
    rustc,
    sysroot,
    version: "1.95.0",
  }, "/usr/bin");
  assert.equal(env.RUSTC, rustc);
  assert.equal(env.RUSTC_BOOTSTRAP, "1");
  assert.equal(env.RUSTC_WRAPPER, "");
  assert.ok(env.PATH.startsWith(join(sysroot, "bin")) && env.PATH.endsWith("/usr/bin"));
  assert.ok(BUILD_STD_ARGS.some((a) => a.startsWith("-Zbuild-std=") && a.includes("std")));
});

Deno.test("setup installs the std source for macOS and Windows builds on Linux only", () => {
  const t = TOOLS.find((t) => t.name === "std source")!;
  assert.deepEqual(installPlan(t, { os: "linux", arch: "x86_64" }), [{ buildStd: true }]);
  assert.ok("unavailable" in installPlan(t, { os: "darwin", arch: "aarch64" }));
  assert.ok("unavailable" in installPlan(t, { os: "windows", arch: "x86_64" }));
  const linux = Deno.build.os === "linux";
  assert.equal(needed(t, { targets: ["aarch64-apple-darwin"] }), linux);
  assert.equal(needed(t, { targets: ["x86_64-pc-windows-msvc"] }), linux);
  assert.equal(needed(t, { targets: ["x86_64-unknown-linux-gnu"] }), false);
});

async function hasApt(): Promise<boolean> {
  try {
    return (await new Deno.Command("apt-get", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .output()).success && (await debianArchive()) !== null;
  } catch {
    return false;
  }
}

Deno.test({
  name:
    "ensureBuildStdToolchain() refuses a version folder holding files it did not make, and leaves them",
  // The refusal comes after rustc -V and the archive lookup: Debian-like Linux only.
  ignore: Deno.build.os !== "linux" || !(await hasApt()),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "build-std-foreign-" });
    try {
      const rustc = new TextDecoder().decode(
        (await new Deno.Command("rustc", { args: ["-V"], stdout: "piped" }).output()).stdout,
      );
      const version = rustVersion(rustc);
      assert.ok(version, `not a stable rustc: ${rustc}`);
      const mine = join(dir, version, "apt", "apt.conf");
      await Deno.mkdir(join(dir, version, "apt"), { recursive: true });
      await Deno.writeTextFile(mine, "a user's file");
      await assert.rejects(
        () => ensureBuildStdToolchain(() => {}, dir),
        (error: Error) =>
          /^Cannot prepare the std source in .*: it holds files deno task setup did not make/
            .test(error.message) && error.message.includes("\nHint: "),
      );
      assert.equal(await Deno.readTextFile(mine), "a user's file");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "ensureBuildStdToolchain() makes the copy through the private apt view, and makes a damaged copy again",
  // Debian's rust-src comes through apt-get from the system's Debian archive: Debian-like Linux only.
  ignore: Deno.build.os !== "linux" || !(await hasApt()),
  async fn() {
    // Beside the real copies: on the same file system as rustup's toolchain, so it is hard-linked, not copied.
    await Deno.mkdir(toolsDir(), { recursive: true });
    const dir = await Deno.makeTempDir({ dir: toolsDir(), prefix: "build-std-test-" });
    try {
      const lines: string[] = [];
      const made = await ensureBuildStdToolchain((line) => lines.push(line), dir);
      assert.deepEqual(await buildStdToolchain(dir), made);
      const version =
        (await new Deno.Command(made.rustc, { args: ["-V"], stdout: "piped" }).output()).stdout;
      assert.match(
        new TextDecoder().decode(version),
        new RegExp(`^rustc ${made.version.replaceAll(".", "\\.")} `),
      );
      const conf = await Deno.readTextFile(join(dir, made.version, "apt", "apt.conf"));
      assert.ok(conf.includes(join(dir, made.version, "apt", "lists")), conf);
      const libRs = join(
        made.sysroot,
        "lib",
        "rustlib",
        "src",
        "rust",
        "library",
        "core",
        "src",
        "lib.rs",
      );
      await Deno.remove(libRs);
      assert.equal(await buildStdToolchain(dir), null);
      lines.length = 0;
      assert.deepEqual(await ensureBuildStdToolchain((line) => lines.push(line), dir), made);
      assert.ok(
        lines.some((l) => l.includes("damaged") && l.includes("lib.rs is missing")),
        lines.join("\n"),
      );
      assert.ok((await Deno.stat(libRs)).isFile);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
