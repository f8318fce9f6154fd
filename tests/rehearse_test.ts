/**
 * `deno task rehearse`, end to end, as the gate runs it: a clean clone cut
 * against a bare origin, a release build of this machine's kernel, the
 * GitHub and JSR stand-ins written to by octokit and the real `deno
 * publish`, a second publish that changes nothing, and a user's `deno add`,
 * `load()`, `deno install -g`, `krepis init`, `krepis info` and `krepis
 * version`. The work folder is kept, so the test reads what the hosts hold.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { EXIT_CODES } from "../loader/cli.ts";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { JsrHost } from "../release/jsr_host.ts";
import { ReleaseHost } from "../release/serve_dir.ts";
import { runDeno, runIn } from "./_cli.ts";
import { copyDir } from "./_fs.ts";
import { kernelPath } from "./_kernel.ts";

const STAGES = [
  "clone",
  "key",
  "cut",
  "build ",
  "publish: host, pin",
  "publish: jsr",
  "publish again",
  "user: deno add",
  "user: deno run (load())",
  "user: deno install -g",
  "user: krepis init",
  "user: krepis info",
  "user: krepis version",
];

Deno.test("deno task rehearse publishes a release and installs it as a user, on loopback", async () => {
  const keep = join(await Deno.makeTempDir({ prefix: "krepis-rehearse-test-" }), "work");
  // The kernel this repository's tests load: the rehearsed version's builds
  // must never replace it.
  const kernel = await kernelPath();
  const before = await Deno.readFile(kernel);
  try {
    const run = await runDeno(["task", "--quiet", "rehearse", "--keep", keep], {});
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.deepEqual(await Deno.readFile(kernel), before, `${kernel} is left as it was`);
    for (const stage of STAGES) {
      assert.match(
        run.stdout,
        new RegExp(`^${stage.replace(/[()]/g, "\\$&")}.* \\d+\\.\\d s$`, "m"),
      );
    }
    const version = run.stdout.match(/^rehearsed v(\S+):/m)?.[1];
    assert.ok(version, run.stdout);
    assert.match(
      run.stdout,
      /a first krepis version downloads \d+ bytes from JSR and no npm package/,
    );

    // The GitHub release holds the signed manifest, and JSR the loader with the pins.
    const manifest = JSON.parse(
      await Deno.readTextFile(join(keep, "github", `v${version}`, "manifest.json")),
    );
    assert.equal(manifest.version, version);
    const pinned = await Deno.readTextFile(
      join(keep, "jsr", "@krepis", "loader", version!, "_gen", "pinned.ts"),
    );
    for (const target of manifest.targets) assert.ok(pinned.includes(target.sha256), target.triple);
    // The cut wrote the tag's notes on top of the changelog, in the release commit.
    const changelog = await Deno.readTextFile(join(keep, "repo", "CHANGELOG.md"));
    assert.match(changelog, new RegExp(`^## v${version.replaceAll(".", "\\.")}$`, "m"));

    // The project key ships inside the package too: the rehearsal's, committed by the key stage.
    const keys = await Deno.readTextFile(
      join(keep, "jsr", "@krepis", "loader", version!, "_gen", "keys.ts"),
    );
    assert.equal(keys, await Deno.readTextFile(join(keep, "repo", "loader", "_gen", "keys.ts")));
    assert.notEqual(keys, await Deno.readTextFile(join(REPO_ROOT, "loader", "_gen", "keys.ts")));
    const requests = await Deno.readTextFile(join(keep, "jsr-requests.log"));
    assert.match(
      requests,
      new RegExp(`^POST /api/scopes/krepis/packages/loader/versions/${version} 202`, "m"),
    );
    assert.match(requests, new RegExp(`^GET /@krepis/loader/${version}_meta.json 200`, "m"));

    // The installed krepis refuses
    // a release host whose library or manifest was changed after the release: the library's hash
    // is checked against the manifest, the manifest against its signature and the pins.
    const launcher = join(
      keep,
      "user-bin",
      "bin",
      Deno.build.os === "windows" ? "krepis.cmd" : "krepis",
    );
    const target = manifest.targets[0] as {
      file: string;
      compressed: Record<string, { file: string }>;
    };
    const tamperings: Record<string, (dir: string) => Promise<void>> = {
      "a library's bytes": async (dir) => {
        for (const file of [target.file, ...Object.values(target.compressed).map((c) => c.file)]) {
          const bytes = await Deno.readFile(join(dir, file));
          bytes[Math.floor(bytes.length / 2)] ^= 0xff;
          await Deno.writeFile(join(dir, file), bytes);
        }
      },
      "the manifest's checksum": async (dir) => {
        const text = await Deno.readTextFile(join(dir, "manifest.json"));
        const sha = (manifest.targets[0] as { sha256: string }).sha256;
        await Deno.writeTextFile(join(dir, "manifest.json"), text.replaceAll(sha, "0".repeat(64)));
      },
    };
    // The kept registry, served again, gives the launcher its loader.
    const registry = await JsrHost.start({ root: join(keep, "jsr"), token: "unused" });
    try {
      for (const [what, tamper] of Object.entries(tamperings)) {
        const mirror = await Deno.makeTempDir({ prefix: "krepis-tampered-" });
        try {
          await copyDir(join(keep, "github"), mirror);
          await tamper(join(mirror, `v${version}`));
          const host = ReleaseHost.start(mirror);
          try {
            const init = await runIn(launcher, ["init"], {
              DENO_DIR: join(keep, "user-deno-dir"),
              JSR_URL: registry.url,
              KREPIS_MIRROR: host.url,
              KREPIS_CACHE_DIR: join(mirror, "cache"),
            });
            assert.equal(init.code, EXIT_CODES.integrity, `${what}:\n${init.stdout}${init.stderr}`);
          } finally {
            await host.close();
          }
        } finally {
          await Deno.remove(mirror, { recursive: true });
        }
      }
    } finally {
      await registry.close();
    }

    // The kept folder is refused as a new work folder: a rehearsal never reuses a half-done one.
    const again = await runDeno(["task", "--quiet", "rehearse", "--keep", keep], {});
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^error: Cannot rehearse in .*: the folder is not empty$/m);
  } finally {
    await Deno.remove(join(keep, ".."), { recursive: true });
  }
});
