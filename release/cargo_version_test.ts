import assert from "node:assert/strict";
import { join } from "node:path";
import { bumpCargoVersion, bumpWorkspaceVersion } from "./cargo_version.ts";

const MANIFEST = `[workspace]
members = ["crates/*"]
# version = "0.1.0" in a comment stays

[workspace.package]
# The lock-step version.
version = "0.1.0"   # trailing comment
edition = "2024"

[workspace.dependencies]
prost = { version = "0.1.0" }
`;

Deno.test("bumpWorkspaceVersion() changes [workspace.package] version and no other byte", () => {
  const next = bumpWorkspaceVersion(MANIFEST, "0.1.0", "0.2.0");
  assert.equal(
    next,
    MANIFEST.replace('version = "0.1.0"   #', 'version = "0.2.0"   #'),
  );
});

Deno.test("bumpWorkspaceVersion() refuses a manifest that does not hold the version it is told", () => {
  assert.throws(
    () => bumpWorkspaceVersion(MANIFEST, "0.3.0", "0.4.0"),
    /^Error: Cannot bump Cargo\.toml: \[workspace\.package\] version is "0\.1\.0", not "0\.3\.0"\nHint: /,
  );
  assert.throws(
    () => bumpWorkspaceVersion('[package]\nversion = "0.1.0"\n', "0.1.0", "0.2.0"),
    /version is null, not "0\.1\.0"/,
  );
});

Deno.test("bumpWorkspaceVersion() refuses a version it cannot edit as one line", () => {
  // The dotted form: parsed as the same table, but no `version =` line under the header.
  const dotted = '[workspace]\npackage.version = "0.1.0"\n';
  assert.throws(
    () => bumpWorkspaceVersion(dotted, "0.1.0", "0.2.0"),
    /^Error: Cannot bump Cargo\.toml: its \[workspace\.package\] version is not written as one/,
  );
});

Deno.test("bumpCargoVersion() moves Cargo.toml and the workspace's entry in Cargo.lock, with Cargo itself", async () => {
  const dir = await Deno.makeTempDir({ prefix: "krepis-bump-" });
  try {
    await Deno.mkdir(join(dir, "crates", "one", "src"), { recursive: true });
    await Deno.writeTextFile(
      join(dir, "Cargo.toml"),
      '[workspace]\nresolver = "3"\nmembers = ["crates/*"]\n\n[workspace.package]\nversion = "0.1.0"\nedition = "2024"\n',
    );
    await Deno.writeTextFile(
      join(dir, "crates", "one", "Cargo.toml"),
      '[package]\nname = "one"\nversion.workspace = true\nedition.workspace = true\n',
    );
    await Deno.writeTextFile(join(dir, "crates", "one", "src", "lib.rs"), "");
    const lock = await new Deno.Command("cargo", {
      args: ["generate-lockfile", "--offline"],
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.ok(lock.success, new TextDecoder().decode(lock.stderr));
    await bumpCargoVersion(dir, "0.1.0", "0.2.0");
    assert.match(await Deno.readTextFile(join(dir, "Cargo.toml")), /\nversion = "0\.2\.0"\n/);
    assert.match(
      await Deno.readTextFile(join(dir, "Cargo.lock")),
      /name = "one"\nversion = "0\.2\.0"/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
