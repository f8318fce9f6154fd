/**
 * Publishing to a GitHub Release with the real octokit client against a
 * local stand-in whose requests and responses are checked against GitHub's
 * OpenAPI description.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { GitHubApi } from "./github_stand_in.ts";
import { publishToGitHub } from "./github_host.ts";
import type { PackedFile } from "../matrix/pack_artifact.ts";

const encoder = new TextEncoder();
const files: PackedFile[] = [
  "lib.so",
  "lib.so.zst",
  "lib.so.gz",
  "manifest.json",
  "manifest.json.minisig",
  "SHA256SUMS",
]
  .map((name, i) => ({ name, bytes: encoder.encode(`${name} `.repeat(100 + i)) }));

async function withApi(body: (api: GitHubApi) => Promise<void>) {
  const api = new GitHubApi();
  try {
    await body(api);
    assert.deepEqual(api.violations, [], "every exchange matches GitHub's OpenAPI description");
  } finally {
    await api.close();
  }
}

const options = (api: GitHubApi) => ({
  repository: "krepis/krepis",
  tag: "v0.1.0",
  token: "test-token",
  retries: 0,
  throttle: false,
  apiUrl: api.url,
});

Deno.test("publishToGitHub() creates the release and uploads every asset; a re-run changes nothing", async () => {
  await withApi(async (api) => {
    const first = await publishToGitHub(files, options(api));
    assert.equal(first.created, true);
    assert.deepEqual(first.uploaded, files.map((f) => f.name));
    const stored = api.releases.get("v0.1.0")!.assets;
    assert.deepEqual(stored.map((a) => a.name), files.map((f) => f.name));
    assert.deepEqual(stored.map((a) => a.bytes), files.map((f) => f.bytes));
    const uploads = api.uploads;
    const again = await publishToGitHub(files, options(api));
    assert.equal(again.created, false);
    assert.deepEqual([again.uploaded, again.replaced], [[], []]);
    assert.deepEqual(again.kept, files.map((f) => f.name));
    assert.equal(api.uploads, uploads, "no upload on a re-run");
  });
});

Deno.test("publishToGitHub(): a failure in the middle of the uploads, then a re-run, leaves no duplicate or missing asset", async () => {
  await withApi(async (api) => {
    api.failUpload = { from: 4, status: 502 };
    await assert.rejects(
      publishToGitHub(files, options(api)),
      /^Error: Cannot upload manifest\.json: GitHub answered 502/,
    );
    assert.equal(api.releases.get("v0.1.0")!.assets.length, 3);
    api.failUpload = null;
    const rerun = await publishToGitHub(files, options(api));
    assert.equal(rerun.created, false);
    assert.deepEqual(rerun.kept, files.slice(0, 3).map((f) => f.name));
    assert.deepEqual(rerun.uploaded, files.slice(3).map((f) => f.name));
    const names = api.releases.get("v0.1.0")!.assets.map((a) => a.name);
    assert.deepEqual(names.sort(), files.map((f) => f.name).sort());
  });
});

Deno.test("publishToGitHub() refuses to change a published asset's bytes, and changes nothing", async () => {
  await withApi(async (api) => {
    await publishToGitHub(files, options(api));
    const changed = files.map((f) =>
      f.name === "lib.so.gz" ? { ...f, bytes: encoder.encode("rebuilt") } : f
    );
    await assert.rejects(
      () => publishToGitHub(changed, options(api)),
      /^Error: Cannot publish lib\.so\.gz to v0\.1\.0: the release already has it with other bytes .*a published version never changes\nHint: release a new version/,
    );
    assert.ok(!api.requests.some((r) => r.startsWith("DELETE ")), "nothing deleted");
    const gz = api.releases.get("v0.1.0")!.assets.find((a) => a.name === "lib.so.gz")!;
    assert.equal(
      new TextDecoder().decode(gz.bytes),
      new TextDecoder().decode(files.find((f) => f.name === "lib.so.gz")!.bytes),
    );
  });
});

Deno.test("publishToGitHub() replaces an upload that never completed (state open)", async () => {
  await withApi(async (api) => {
    await publishToGitHub(files, options(api));
    const gz = api.releases.get("v0.1.0")!.assets.find((a) => a.name === "lib.so.gz")!;
    gz.state = "open";
    gz.bytes = gz.bytes.slice(0, 2);
    const result = await publishToGitHub(files, options(api));
    assert.deepEqual(result.replaced, ["lib.so.gz"]);
    assert.ok(api.requests.some((r) => r.startsWith("DELETE ") && r.includes("/releases/assets/")));
    const assets = api.releases.get("v0.1.0")!.assets.filter((a) => a.name === "lib.so.gz");
    assert.equal(assets.length, 1);
    assert.equal(assets[0].state ?? "uploaded", "uploaded");
  });
});

Deno.test("publishToGitHub() takes a 422 already_exists with the same bytes as done", async () => {
  await withApi(async (api) => {
    await publishToGitHub(files.slice(0, 1), options(api));
    const release = api.releases.get("v0.1.0")!;
    // Another run uploads lib.so.zst after our listing, before our upload.
    const result = await publishToGitHub(files.slice(0, 2), {
      ...options(api),
      log: (line) => {
        if (line.startsWith("keep lib.so ")) {
          release.assets.push({
            id: 999,
            name: "lib.so.zst",
            bytes: files[1].bytes,
            digest: digest(files[1].bytes),
          });
        }
      },
    });
    assert.deepEqual(result.uploaded, ["lib.so.zst"]);
    assert.equal(release.assets.filter((a) => a.name === "lib.so.zst").length, 1);
    assert.equal(
      release.assets.find((a) => a.name === "lib.so.zst")!.id,
      999,
      "the racing upload was kept",
    );
  });
});

Deno.test("publishToGitHub() refuses a 422 already_exists with other bytes", async () => {
  await withApi(async (api) => {
    await publishToGitHub(files.slice(0, 1), options(api));
    const release = api.releases.get("v0.1.0")!;
    const other = encoder.encode("other bytes");
    await assert.rejects(
      publishToGitHub(files.slice(0, 2), {
        ...options(api),
        log: (line) => {
          if (line.startsWith("keep lib.so ")) {
            release.assets.push({
              id: 998,
              name: "lib.so.zst",
              bytes: other,
              digest: digest(other),
            });
          }
        },
      }),
      /^Error: Cannot upload lib\.so\.zst: another upload with other bytes won the race, and a published version never changes\nHint: /,
    );
  });
});

function digest(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

Deno.test("publishToGitHub() refuses an invalid repository and reports GitHub's refusal", async () => {
  await assert.rejects(
    publishToGitHub(files, { repository: "nope", tag: "v1", token: "t" }),
    /is not owner\/repo/,
  );
  await withApi(async (api) => {
    await assert.rejects(
      publishToGitHub(files, { ...options(api), repository: "someone/else" }),
      /^Error: Cannot (get the release|create the release)/,
    );
  });
});

Deno.test("publishToGitHub() with no answer at all says it cannot reach the API, not that GitHub refused", async () => {
  // A loopback port with nothing listening: the connection is refused, as offline.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closed = `http://127.0.0.1:${listener.addr.port}`;
  listener.close();
  await assert.rejects(
    publishToGitHub(files, {
      repository: "krepis/krepis",
      tag: "v0.1.0",
      token: "test-token",
      retries: 0,
      throttle: false,
      apiUrl: closed,
    }),
    (error: Error) => {
      assert.match(
        error.message,
        new RegExp(
          `^Cannot reach the GitHub API at ${closed} to get the release for v0\\.1\\.0: \\S.*\nHint: check the network, a proxy \\(HTTPS_PROXY\\), or --api-url$`,
        ),
      );
      assert.doesNotMatch(error.message, /answered 500|error sending request for url/);
      return true;
    },
  );
});
