import assert from "node:assert/strict";
import { join } from "node:path";
import { collectVersions, describeDisagreement, type VersionCopy } from "../lib/versions.ts";
import { load } from "../loader/mod.ts";
import { kernelPath } from "./_kernel.ts";

Deno.test("every copy of the lock-step version agrees, the compiled kernel included", async () => {
  const copies: VersionCopy[] = await collectVersions();
  assert.ok(
    copies.length >= 3,
    `expected Cargo, a crate and a deno.json member, got ${copies.length}`,
  );
  using kernel = await load({ path: await kernelPath() });
  copies.push({ source: "krepis_version() of the built kernel", version: kernel.version });
  copies.push({ source: "buildInfo().version", version: kernel.buildInfo().version });
  assert.equal(describeDisagreement(copies), "");
});

Deno.test("describeDisagreement() names every copy that disagrees", () => {
  const message = describeDisagreement([
    { source: "Cargo.toml [workspace.package]", version: "0.2.0" },
    { source: "crates/a/Cargo.toml", version: "0.2.0" },
    { source: "loader/deno.json", version: "0.1.0" },
    { source: "krepis_version()", version: "0.1.9" },
  ]);
  assert.match(message, /^Cannot accept the versions: 2 copies disagree with Cargo.toml/);
  assert.match(message, /\n {2}loader\/deno.json: 0\.1\.0\n {2}krepis_version\(\): 0\.1\.9\n/);
  assert.doesNotMatch(message, /crates\/a/);
});

Deno.test("collectVersions() flags a crate that does not inherit the workspace version", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(root, "crates", "a"), { recursive: true });
    await Deno.mkdir(join(root, "pkg"));
    await Deno.writeTextFile(
      join(root, "Cargo.toml"),
      '[workspace]\nmembers = ["crates/*"]\n[workspace.package]\nversion = "1.2.3"\n',
    );
    await Deno.writeTextFile(
      join(root, "crates", "a", "Cargo.toml"),
      '[package]\nname = "a"\nversion = "1.2.3"\n',
    );
    await Deno.writeTextFile(join(root, "deno.json"), '{ "workspace": ["./pkg"] }');
    await Deno.writeTextFile(join(root, "pkg", "deno.json"), '{ "version": "1.2.4" }');
    const message = describeDisagreement(await collectVersions(root));
    assert.match(message, /crates\/a\/Cargo.toml: 1\.2\.3 \(not inherited from the workspace\)/);
    assert.match(message, /pkg\/deno.json: 1\.2\.4/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
