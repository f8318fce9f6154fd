import assert from "node:assert/strict";
import {
  currentPlatform,
  resolveTarget,
  supportedTriples,
  UnsupportedPlatformError,
} from "./mod.ts";
import { targetByTriple } from "./release.ts";
import { libcFromMaps } from "./_internal/libc.ts";

const cases = [
  [{ os: "linux", arch: "x86_64", libc: "gnu" }, "x86_64-unknown-linux-gnu", ".so"],
  [{ os: "linux", arch: "aarch64", libc: "gnu" }, "aarch64-unknown-linux-gnu", ".so"],
  [{ os: "darwin", arch: "x86_64", libc: null }, "x86_64-apple-darwin", ".dylib"],
  [{ os: "darwin", arch: "aarch64", libc: null }, "aarch64-apple-darwin", ".dylib"],
  [{ os: "windows", arch: "x86_64", libc: null }, "x86_64-pc-windows-msvc", ".dll"],
  [{ os: "windows", arch: "aarch64", libc: null }, "aarch64-pc-windows-msvc", ".dll"],
] as const;

for (const [platform, triple, extension] of cases) {
  Deno.test(`resolveTarget() maps ${platform.os}/${platform.arch} to ${triple} (${extension})`, () => {
    const target = resolveTarget(platform);
    assert.equal(target.triple, triple);
    assert.ok(target.file.endsWith(extension) && target.file.includes(triple), target.file);
    assert.deepEqual(targetByTriple(triple), target);
  });
}

Deno.test("resolveTarget() refuses musl Linux with its own message", () => {
  assert.throws(() => resolveTarget({ os: "linux", arch: "x86_64", libc: "musl" }), (e: Error) => {
    assert.ok(e instanceof UnsupportedPlatformError);
    assert.match(
      e.message,
      /^Cannot find a kernel for this platform: linux\/x86_64 \(musl\): musl libc builds are not shipped yet\nHint: /,
    );
    return true;
  });
});

for (
  const platform of [
    { os: "linux", arch: "riscv64", libc: "gnu" as const },
    { os: "freebsd", arch: "x86_64", libc: null },
    { os: "android", arch: "aarch64", libc: null },
  ]
) {
  Deno.test(`resolveTarget() refuses ${platform.os}/${platform.arch}, listing what is supported`, () => {
    assert.throws(() => resolveTarget(platform), (e: Error) => {
      assert.ok(e instanceof UnsupportedPlatformError);
      assert.match(
        e.message,
        new RegExp(
          `^Cannot find a kernel for this platform: ${platform.os}/${platform.arch}.* is not supported\\nHint: supported targets are `,
        ),
      );
      assert.deepEqual(e.supported, supportedTriples());
      assert.equal(e.supported.length, 6);
      return true;
    });
  });
}

Deno.test("targetByTriple() refuses a triple that is not shipped", () => {
  assert.throws(() => targetByTriple("x86_64-unknown-linux-musl"), UnsupportedPlatformError);
});

Deno.test("libcFromMaps() tells glibc from musl by the mapped libraries", () => {
  assert.equal(
    libcFromMaps("7f00-7f01 r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n"),
    "gnu",
  );
  assert.equal(libcFromMaps("7f00-7f01 r-xp 0 08:01 1 /lib/ld-musl-x86_64.so.1\n"), "musl");
  assert.equal(libcFromMaps("7f00-7f01 r-xp 0 08:01 1 /usr/bin/deno\n"), null);
});

Deno.test("currentPlatform() on this machine resolves to a shipped target", () => {
  const platform = currentPlatform();
  assert.equal(platform.os, Deno.build.os);
  if (platform.os === "linux") assert.equal(platform.libc, "gnu");
  assert.equal(resolveTarget(platform).os, Deno.build.os);
});
