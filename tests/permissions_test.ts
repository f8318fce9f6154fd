/**
 * The Deno permissions the README lists, tried in real child processes: a
 * warm load() and a cold install() work with exactly those flags, and each
 * missing one is a PermissionError naming the flag, raised at once (never
 * retried as if the network had failed).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { install, VERSION } from "../loader/mod.ts";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { hostedRelease } from "./_hosted_release.ts";
import { LOADER_ENV } from "../loader/_internal/env.ts";
import { generateSigningKey, publicKeyBase64 } from "../release/minisign_sign.ts";

const MOD = pathToFileURL(join(REPO_ROOT, "loader", "mod.ts")).href;
const SCRIPT = `
const { load, install } = await import(${JSON.stringify(MOD)});
try {
  if (Deno.args[0] === "install") {
    const i = await install({ trustedKeys: [Deno.env.get("KREPIS_TRUSTED_KEY")] });
    console.log(JSON.stringify({ ok: true, downloaded: i.downloaded }));
  } else {
    using k = await load();
    console.log(JSON.stringify({ ok: true, version: k.version }));
  }
} catch (e) {
  console.log(JSON.stringify({ ok: false, name: e.name, code: e.code, flag: e.flag, message: e.message }));
}
`;

interface Outcome {
  ok: boolean;
  name?: string;
  code?: string;
  flag?: string;
  message?: string;
  version?: string;
  downloaded?: boolean;
}

async function run(
  flags: string[],
  what: "load" | "install",
  env: Record<string, string>,
  audit?: string,
) {
  const dir = await Deno.makeTempDir();
  try {
    const script = join(dir, "probe.ts");
    await Deno.writeTextFile(script, SCRIPT);
    const out = await new Deno.Command(Deno.execPath(), {
      // No config: a script outside the repository imports the loader by
      // file path and needs nothing else (the loader imports nothing from npm).
      args: ["run", "--quiet", "--no-prompt", "--no-config", ...flags, script, what],
      // DENO_AUDIT_PERMISSIONS: Deno writes every permission check there, one JSON line each.
      env: { KREPIS_KERNEL_PATH: "", ...env, ...(audit ? { DENO_AUDIT_PERMISSIONS: audit } : {}) },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    assert.ok(text, new TextDecoder().decode(out.stderr));
    return JSON.parse(text) as Outcome;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The flags the README documents, for a cache at `cache` and a host at `host`. */
function documented(cache: string, host: string, what: "load" | "install"): string[] {
  const net = new URL(host).host;
  const flags = [
    // Scoped: the variables the loader reads, no more (none prompts).
    `--allow-env=${LOADER_ENV.join(",")}`,
    `--allow-read=${cache}`,
    // Not scoped: Deno's pointer views need --allow-ffi for any path.
    "--allow-ffi",
  ];
  if (Deno.build.os !== "windows") flags.push("--allow-sys=uid");
  if (Deno.build.os === "linux") flags[1] += ",/proc/self/maps";
  if (what === "install") flags.push(`--allow-write=${cache}`, `--allow-net=${net}`);
  return flags;
}

Deno.test("the documented permissions are enough: a cold install, then a warm load", async () => {
  await using t = await hostedRelease();
  const cold = await run(documented(t.cacheDir, t.host.url, "install"), "install", t.env);
  assert.deepEqual(cold, { ok: true, downloaded: true });
  const warm = await run(documented(t.cacheDir, t.host.url, "load"), "load", t.env);
  assert.deepEqual(warm, { ok: true, version: VERSION });
});

Deno.test("the documented permissions are enough for a cache that does not exist yet", async () => {
  await using t = await hostedRelease();
  const cache = join(t.cacheDir, "not-yet", "krepis");
  const env = { ...t.env, KREPIS_CACHE_DIR: cache };
  const cold = await run(documented(cache, t.host.url, "install"), "install", env);
  assert.deepEqual(cold, { ok: true, downloaded: true });
});

Deno.test("each missing permission is a PermissionError naming its flag", async () => {
  await using t = await hostedRelease();
  const coldFlags = documented(t.cacheDir, t.host.url, "install");
  for (
    const [missing, flag] of [["--allow-net", "--allow-net"], ["--allow-write", "--allow-write"]]
  ) {
    const flags = coldFlags.filter((f) => !f.startsWith(missing));
    const result = await run(flags, "install", t.env);
    assert.equal(result.ok, false, missing);
    assert.equal(result.name, "PermissionError", `${missing}: ${result.message}`);
    assert.equal(result.flag, flag);
    assert.match(
      result.message!,
      new RegExp(`^Cannot install the kernel: .*\\nHint: run Deno with ${flag}`),
    );
  }
  assert.equal(t.host.served.length, 0, "a refused permission is not retried as a network failure");
  await install(t.options); // warm the cache for the load cases
  const warmFlags = documented(t.cacheDir, t.host.url, "load");
  for (
    const [missing, flag] of [["--allow-ffi", "--allow-ffi"], ["--allow-env", "--allow-env"], [
      "--allow-read",
      "--allow-read",
    ]]
  ) {
    const flags = warmFlags.filter((f) => !f.startsWith(missing));
    const result = await run(flags, "load", t.env);
    assert.equal(result.ok, false, missing);
    assert.equal(result.name, "PermissionError", `${missing}: ${result.message}`);
    assert.equal(result.flag, flag);
  }
});

Deno.test("a warm load() with the documented flags names a cached manifest's key that is no longer trusted, not the write permission", async () => {
  await using t = await hostedRelease();
  await install(t.options);
  const rotated = publicKeyBase64(await generateSigningKey());
  const warm = await run(documented(t.cacheDir, t.host.url, "load"), "load", {
    ...t.env,
    KREPIS_TRUSTED_KEY: rotated,
  });
  assert.equal(warm.ok, false);
  assert.equal(warm.name, "IntegrityError", warm.message);
  assert.equal(warm.code, "INTEGRITY");
  assert.match(warm.message!, /is signed by a key that is no longer trusted/);
  assert.match(warm.message!, /\nHint: trust the key that signed it \(KREPIS_TRUSTED_KEY/);
  assert.doesNotMatch(warm.message!, /^Cannot [^\n]*: Requires write access/);
});

Deno.test("a cold install() and a warm load() read no environment variable outside the scoped --allow-env list", async () => {
  await using t = await hostedRelease();
  const dir = await Deno.makeTempDir({ prefix: "krepis-audit-" });
  try {
    const read = new Set<string>();
    for (const what of ["install", "load"] as const) {
      const audit = join(dir, `${what}.jsonl`);
      // -A: every check is made and logged, none refused.
      const result = await run(["--allow-all"], what, t.env, audit);
      assert.equal(result.ok, true, result.message);
      for (const line of (await Deno.readTextFile(audit)).split("\n").filter(Boolean)) {
        const check = JSON.parse(line) as { permission: string; value: string | null };
        if (check.permission === "env" && check.value) read.add(check.value);
      }
    }
    assert.ok(read.has("KREPIS_CACHE_DIR"), [...read].join(", "));
    assert.deepEqual(
      [...read].filter((name) => !(LOADER_ENV as readonly string[]).includes(name)),
      [],
      "read but not in LOADER_ENV (and the README's --allow-env list)",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
