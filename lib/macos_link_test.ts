/**
 * The macOS linker off macOS (lib/macos_link.ts): how zig's and rustc's
 * answers are read, and the syslibroot made for real in a temporary folder.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  darwinLinker,
  ensureSyslibroot,
  LIBICONV_TBD,
  libSystemForLld,
  rustcHost,
  rustLldPath,
  zigLibDir,
} from "./macos_link.ts";
import { buildStdToolchain } from "./build_std.ts";

Deno.test("zigLibDir() reads zig env's ZON and older zig's JSON, and nothing else", () => {
  assert.equal(
    zigLibDir(
      '.{\n    .zig_exe = "/z/zig",\n    .lib_dir = "/z/lib",\n    .version = "0.17.1",\n}',
    ),
    "/z/lib",
  );
  assert.equal(
    zigLibDir('{"zig_exe":"/z/zig","lib_dir":"/y/lib","std_dir":"/y/lib/std"}'),
    "/y/lib",
  );
  assert.equal(zigLibDir("error: unknown command: env"), null);
  assert.equal(zigLibDir(""), null);
});

Deno.test("libSystemForLld() drops the architecture variants lld does not know and keeps the rest", () => {
  const zig = `--- !tapi-tbd
tbd-version:     4
targets:         [ x86_64-macos, x86_64-maccatalyst, arm64e-macos, arm64e-maccatalyst,
                   arm64e.x1-macos, arm64e.x1-maccatalyst ]
install-name:    '/usr/lib/libSystem.B.dylib'
exports:
  - targets:         [ arm64e.x1-macos, arm64-macos, x86_64h-macos ]
    symbols:         [ _memcpy ]
...
`;
  assert.equal(
    libSystemForLld(zig),
    `--- !tapi-tbd
tbd-version:     4
targets:         [ x86_64-macos, x86_64-maccatalyst, arm64e-macos, arm64e-maccatalyst ]
install-name:    '/usr/lib/libSystem.B.dylib'
exports:
  - targets:         [ arm64-macos, x86_64h-macos ]
    symbols:         [ _memcpy ]
...
`,
  );
  assert.equal(libSystemForLld("no lists here\n"), "no lists here\n");
});

Deno.test("rustcHost() and rustLldPath() find rust-lld under the toolchain's host triple", () => {
  const verbose =
    "rustc 1.95.0 (abc 2026-01-01)\nbinary: rustc\nhost: x86_64-unknown-linux-gnu\nrelease: 1.95.0\n";
  assert.equal(rustcHost(verbose), "x86_64-unknown-linux-gnu");
  assert.equal(rustcHost("rustc 1.95.0"), null);
  assert.equal(
    rustLldPath("/t", "x86_64-unknown-linux-gnu"),
    join("/t", "lib", "rustlib", "x86_64-unknown-linux-gnu", "bin", "rust-lld"),
  );
  assert.equal(
    rustLldPath("/t", "x86_64-pc-windows-msvc"),
    join("/t", "lib", "rustlib", "x86_64-pc-windows-msvc", "bin", "rust-lld.exe"),
  );
});

Deno.test("ensureSyslibroot() writes zig's libSystem (also as libc and libm) and the iconv stub, and repairs a changed stub", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const libSystem = join(tmp, "libSystem.tbd");
    await Deno.writeTextFile(
      libSystem,
      "--- !tapi-tbd\ninstall-name: '/usr/lib/libSystem.B.dylib'\n",
    );
    const dir = join(tmp, "root");
    assert.equal(await ensureSyslibroot(dir, libSystem), dir);
    const lib = join(dir, "usr", "lib");
    for (const name of ["libSystem.tbd", "libc.tbd", "libm.tbd"]) {
      assert.equal(
        await Deno.readTextFile(join(lib, name)),
        libSystemForLld(await Deno.readTextFile(libSystem)),
        name,
      );
    }
    assert.equal(await Deno.readTextFile(join(lib, "libiconv.tbd")), LIBICONV_TBD);
    assert.match(LIBICONV_TBD, /install-name:\s+'\/usr\/lib\/libiconv\.2\.dylib'/);
    // A damaged stub and a newer zig's libSystem are both written again.
    await Deno.writeTextFile(join(lib, "libiconv.tbd"), "damaged");
    await Deno.writeTextFile(
      libSystem,
      "--- !tapi-tbd\ninstall-name: '/usr/lib/libSystem.B.dylib'\n# newer\n",
    );
    await ensureSyslibroot(dir, libSystem);
    assert.equal(await Deno.readTextFile(join(lib, "libiconv.tbd")), LIBICONV_TBD);
    assert.match(await Deno.readTextFile(join(lib, "libSystem.tbd")), /# newer/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("ensureSyslibroot() refuses a folder it did not make and leaves it as it was", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const libSystem = join(tmp, "libSystem.tbd");
    await Deno.writeTextFile(libSystem, "--- !tapi-tbd\n");
    const dir = join(tmp, "someone-elses");
    await Deno.mkdir(join(dir, "usr", "lib"), { recursive: true });
    await Deno.writeTextFile(join(dir, "usr", "lib", "libiconv.tbd"), "theirs");
    await assert.rejects(() => ensureSyslibroot(dir, libSystem), (error: Error) => {
      assert.match(
        error.message,
        /^Cannot use .* as the macOS syslibroot: it was not made by deno task build \(no krepis-syslibroot\.made\)\nHint: /,
      );
      return true;
    });
    assert.equal(await Deno.readTextFile(join(dir, "usr", "lib", "libiconv.tbd")), "theirs");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

const toolchain = Deno.build.os === "darwin" ? null : await buildStdToolchain();

Deno.test({
  name: "darwinLinker() names the prepared toolchain's rust-lld, which runs as ld64.lld",
  // Needs the toolchain copy `deno task setup --build --target aarch64-apple-darwin` makes
  // (macOS builds its own rows natively and never makes it).
  ignore: toolchain === null,
  async fn() {
    const tools = await Deno.makeTempDir();
    const before = Deno.env.get("KREPIS_TOOLS_DIR");
    Deno.env.set("KREPIS_TOOLS_DIR", tools);
    try {
      const linker = await darwinLinker(toolchain!.rustc, toolchain!.sysroot);
      assert.equal(linker.syslibroot, join(tools, "macos-syslibroot"));
      assert.match(
        await Deno.readTextFile(join(linker.syslibroot, "usr", "lib", "libSystem.tbd")),
        /install-name:\s+'\/usr\/lib\/libSystem\.B\.dylib'/,
      );
      const version = await new Deno.Command(linker.lld, {
        args: ["-flavor", "darwin", "--version"],
        stdout: "piped",
      }).output();
      assert.ok(version.success);
      assert.match(new TextDecoder().decode(version.stdout), /^LLD \d+/);
    } finally {
      if (before === undefined) Deno.env.delete("KREPIS_TOOLS_DIR");
      else Deno.env.set("KREPIS_TOOLS_DIR", before);
      await Deno.remove(tools, { recursive: true });
    }
  },
});
