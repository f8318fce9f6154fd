/**
 * Every fault we know of, injected by a release host on loopback. Each case
 * ends with a correct recovery or a clear error, and never with an
 * unverified file cached or loaded.
 */

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import {
  CacheError,
  install,
  IntegrityError,
  load,
  OfflineError,
  resolveTarget,
  UnsupportedPlatformError,
  VERSION,
} from "../loader/mod.ts";
import { formatManifest, manifestTrustedComment, parseManifest } from "../loader/release.ts";
import { signMinisign } from "../release/minisign_sign.ts";
import { partialBody } from "./_partial_body.ts";
import { type ReleaseFixture, releaseFixture } from "./_release_fixture.ts";
import { type HostedRelease, hostedRelease } from "./_hosted_release.ts";
import { ensureCacheRoot as ensureTagged } from "../loader/_install/cache_layout.ts";
import { withEnv } from "./_env.ts";
import { outputWithin, skipIf, when, WINDOWS, without } from "./_tools.ts";
import { canSymlink } from "./_fs.ts";
import { kernelPath } from "./_kernel.ts";
import { hostFeatures } from "../matrix/targets.ts";

const target = resolveTarget();
const zst = `${target.file}.zst`;

const setup = hostedRelease;

const NO_MODE_BITS = when(
  WINDOWS,
  "Windows has no POSIX mode bits; the loader checks them only on Linux and macOS",
);

const NO_SYMLINKS = when(
  !(await canSymlink()),
  "this user cannot create symlinks (Windows: needs Developer Mode or an admin)",
);

/**
 * Another installer: a child Deno process that takes the exclusive lock on
 * `path` (as the loader does, with `Deno.FsFile.lock`), says so on stdout,
 * and holds it until `release()` closes its stdin.
 */
async function holdLock(path: string): Promise<{ release(): Promise<void> }> {
  const script = `
    const file = await Deno.open(Deno.args[0], { read: true, write: true, create: true });
    await file.lock(true);
    console.log("locked");
    for await (const _ of Deno.stdin.readable) { /* until stdin closes */ }
    file.close();
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", script, path],
    cwd: dirname(path),
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const release = async () => {
    await child.stdin.close().catch(() => {});
    await child.status;
  };
  let said = "";
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    while (!said.includes("locked\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the lock holder exited before taking the lock: ${said}`);
      said += value;
    }
  } catch (error) {
    await release();
    throw error;
  } finally {
    await reader.cancel();
  }
  return { release };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Where a partial download of the zstd copy lives (named by its hash). */
function zstdPartial(t: { finalPath: string; fixture: ReleaseFixture }): string {
  return `${t.finalPath}.${t.fixture.entry.compressed.zstd!.sha256.slice(0, 16)}.partial`;
}

/** A body that never ends: 64 KiB chunks of spaces, each reported to `onChunk`. */
function endless(onChunk: (bytes: number) => void): ReadableStream<Uint8Array> {
  const chunk = new Uint8Array(64 * 1024).fill(0x20);
  return new ReadableStream({
    pull(controller) {
      onChunk(chunk.length);
      controller.enqueue(chunk);
    },
  });
}

/** Every file under `dir`, relative. */
function walk(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  try {
    for (const entry of Deno.readDirSync(dir)) {
      const path = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory) out.push(...walk(join(dir, entry.name), path));
      else out.push(path);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return out;
}

/** Nothing unverified was left where the loader would use it, and no temp file remains. */
function assertNothingCached(cacheDir: string) {
  const files = walk(cacheDir);
  assert.deepEqual(
    files.filter((f) => f.endsWith(`/${target.file}`) || f.endsWith(".tmp")),
    [],
    files.join("\n"),
  );
}

async function assertIntegrity(promise: Promise<unknown>, pattern: RegExp) {
  await assert.rejects(promise, (e: Error) => {
    assert.ok(e instanceof IntegrityError, `${e.name}: ${e.message}`);
    assert.match(e.message, pattern);
    assert.match(e.message, /^Cannot [^\n]*\nHint: /);
    return true;
  });
}

function flipped(bytes: Uint8Array, at = Math.floor(bytes.length / 2)): Uint8Array<ArrayBuffer> {
  const copy = new Uint8Array(bytes);
  copy[at] ^= 0x01;
  return copy;
}

/** A fault hook that serves another (signed) manifest and its signature. */
function serving(other: { bytes: Uint8Array<ArrayBuffer>; signature: string }) {
  return ({ file }: { file: string }) =>
    file === "manifest.json"
      ? new Response(other.bytes)
      : file === "manifest.json.minisig"
      ? new Response(other.signature)
      : undefined;
}

async function signedManifest(fixture: ReleaseFixture, edit: (m: Record<string, unknown>) => void) {
  const manifest = JSON.parse(await Deno.readTextFile(join(fixture.versionDir, "manifest.json")));
  edit(manifest);
  const bytes = new TextEncoder().encode(JSON.stringify(manifest));
  const signature = await signMinisign(
    fixture.key,
    bytes,
    manifestTrustedComment(String(manifest.version)),
  );
  return { bytes, signature };
}

Deno.test("fault: one byte flipped in the download is refused, nothing cached", async () => {
  await using t = await setup();
  t.host.fault = ({ file, body }) => file === zst ? new Response(flipped(body!)) : undefined;
  await assertIntegrity(install(t.options), /^Cannot (verify|decompress) .*\.zst/);
  assertNothingCached(t.cacheDir);
  assert.equal(t.host.requestsFor(zst).length, 1, "an integrity failure is not retried");
});

Deno.test("fault: a bit flipped anywhere in the zstd copy is refused, and never crashes the process", async () => {
  // Decompressing corrupt zstd can throw an uncatchable exception in Deno's
  // node:zlib; the loader decompresses only bytes whose hash matched, so
  // every position and bit here must end in a clean IntegrityError.
  const size = (await releaseFixture()).entry.compressed.zstd!.size;
  for (let i = 0; i < 40; i++) {
    await using t = await setup();
    const at = Math.floor((i * size) / 40) + (i % 7);
    t.host.fault = ({ file, body }) => {
      if (file !== zst) return undefined;
      const bytes = body!.slice();
      bytes[Math.min(at, bytes.length - 1)] ^= 1 << (i % 8);
      return new Response(bytes);
    };
    await assertIntegrity(install(t.options), /^Cannot verify .*\.zst: its SHA-256 /);
    assertNothingCached(t.cacheDir);
  }
});

Deno.test("fault: another target's file served under this name is refused", async () => {
  await using t = await setup();
  // Another file of the same release: the gzip copy served for the zstd one.
  t.host.fault = ({ file }) =>
    file === zst
      ? new Response(Deno.readFileSync(join(t.fixture.versionDir, `${target.file}.gz`)))
      : undefined;
  await assertIntegrity(install(t.options), /\.zst/);
  assertNothingCached(t.cacheDir);
});

Deno.test("fault: another version's manifest under v<version>/ is refused", async () => {
  await using t = await setup();
  // Signed as that release's manifest: the trusted comment gives it away.
  const other = await signedManifest(t.fixture, (m) => (m.version = "0.0.9"));
  t.host.fault = serving(other);
  await assertIntegrity(
    install(t.options),
    /its trusted comment "file:manifest\.json\\tversion:0\.0\.9" does not name manifest\.json of version /,
  );
  // Signed with this version's comment, yet describing another: its content gives it away.
  const mislabelled = {
    bytes: other.bytes,
    signature: await signMinisign(t.fixture.key, other.bytes, manifestTrustedComment(VERSION)),
  };
  t.host.fault = serving(mislabelled);
  await assertIntegrity(install(t.options), /: it describes version 0\.0\.9, not /);
  assertNothingCached(t.cacheDir);
});

Deno.test("fault: a truncated body is resumed with Range and completes", async () => {
  await using t = await setup();
  t.host.fault = ({ file, body, count }) =>
    file === zst && count === 0
      ? new Response(partialBody(body!.slice(0, 1000), "close"))
      : undefined;
  const installed = await install(t.options);
  assert.equal(installed.sha256, t.fixture.entry.sha256);
  const requests = t.host.requestsFor(zst);
  assert.deepEqual(requests.map((r) => [r.range, r.status]), [[null, 200], ["bytes=1000-", 206]]);
});

Deno.test("fault: an endless body is cut off at the manifest size + 1", async () => {
  await using t = await setup();
  let sent = 0;
  t.host.fault = ({ file }) => {
    // Compressed copies missing: the raw file (no decompressor to choke
    // first) is fetched, and its endless body must hit the size cap.
    if (file.endsWith(".zst") || file.endsWith(".gz")) return new Response("no", { status: 404 });
    if (file !== target.file) return undefined;
    return new Response(endless((n) => (sent += n)));
  };
  await assertIntegrity(
    install(t.options),
    /the server sent more than the \d+ bytes the manifest lists/,
  );
  assert.ok(
    // The host keeps producing until socket buffers fill after the client
    // cut the connection; an endless read would never end at all.
    sent < t.fixture.entry.size + 32 * 1024 * 1024,
    `the host sent ${sent} bytes`,
  );
  assertNothingCached(t.cacheDir);
});

/** An endless zstd stream of skippable frames (they decompress to nothing), 64 KiB each. */
function endlessSkippableFrames(onChunk: (bytes: number) => void): ReadableStream<Uint8Array> {
  const frame = new Uint8Array(64 * 1024);
  const view = new DataView(frame.buffer);
  view.setUint32(0, 0x184d2a50, true); // skippable frame magic
  view.setUint32(4, frame.length - 8, true); // its payload
  return new ReadableStream({
    pull(controller) {
      onChunk(frame.length);
      controller.enqueue(frame.slice());
    },
  });
}

Deno.test("fault: with a pin, an unsigned manifest's sizes and compressed copies are not used", async () => {
  await using t = await setup();
  const pinned = {
    version: VERSION,
    targets: { [target.triple]: { size: t.fixture.entry.size, sha256: t.fixture.entry.sha256 } },
  };
  const original = JSON.parse(await Deno.readTextFile(join(t.fixture.versionDir, "manifest.json")));
  for (const copy of Object.values(original.targets[0].compressed) as { size: number }[]) {
    copy.size = 2 ** 50; // a petabyte: whatever the manifest says
  }
  const unsigned = new TextEncoder().encode(JSON.stringify(original));
  let sent = 0;
  t.host.fault = ({ file }) => {
    if (file === "manifest.json") return new Response(unsigned);
    if (file === "manifest.json.minisig") return new Response("no", { status: 404 });
    if (file === zst) return new Response(endlessSkippableFrames((n) => (sent += n)));
    if (file.endsWith(".gz")) return new Response(endless((n) => (sent += n)));
    return new Response(endless((n) => (sent += n))); // the library itself, endless too
  };
  await assertIntegrity(
    install({ ...t.options, trustedKeys: [], pinned }),
    /the server sent more than the \d+ bytes the manifest lists/,
  );
  assert.deepEqual(
    t.host.requestsFor(zst),
    [],
    "no compressed copy is fetched on an unsigned manifest",
  );
  // The cut comes at the pinned size; the host overshoots only by what socket buffers hold.
  assert.ok(sent < t.fixture.entry.size + 32 * 1024 * 1024, `the host sent ${sent} bytes`);
  assertNothingCached(t.cacheDir);
  // With the real library served, the pin alone installs it.
  t.host.fault = ({ file }) =>
    file === "manifest.json"
      ? new Response(unsigned)
      : file === "manifest.json.minisig"
      ? new Response("no", { status: 404 })
      : undefined;
  const installed = await install({ ...t.options, trustedKeys: [], pinned });
  assert.equal(installed.trust, "pinned");
  assert.equal(installed.source, `${t.host.url}/v${VERSION}/${target.file}`);
});

Deno.test("fault: a Content-Length above the manifest size is refused before reading", async () => {
  await using t = await setup();
  t.host.fault = ({ file, body }) => {
    if (file !== zst) return undefined;
    // The body twice (set(), not a spread: the body is megabytes).
    const twice = new Uint8Array(body!.length * 2);
    twice.set(body!);
    twice.set(body!, body!.length);
    return new Response(twice);
  };
  await assertIntegrity(
    install(t.options),
    /the server announces \d+ bytes, the manifest says \d+/,
  );
  assertNothingCached(t.cacheDir);
});

Deno.test("fault: a server that stalls mid-body times out, then the retry resumes", async () => {
  await using t = await setup();
  const release = new AbortController();
  t.host.fault = ({ file, body, count }) =>
    file === zst && count === 0
      ? new Response(partialBody(body!.slice(0, 4096), "stall", release.signal))
      : undefined;
  try {
    const installed = await install(t.options);
    assert.equal(installed.sha256, t.fixture.entry.sha256);
    assert.deepEqual(t.host.requestsFor(zst).map((r) => r.range), [null, "bytes=4096-"]);
  } finally {
    release.abort();
  }
});

Deno.test("fault: a server that always stalls ends in a TimedOut error, nothing cached", async () => {
  await using t = await setup();
  const release = new AbortController();
  t.host.fault = ({ file, body }) =>
    file === zst
      ? new Response(partialBody(body!.slice(0, 10), "stall", release.signal))
      : undefined;
  try {
    await assert.rejects(install({ ...t.options, attempts: 2 }), (e: Error) => {
      assert.ok(e instanceof Deno.errors.TimedOut, `${e.name}: ${e.message}`);
      assert.match(e.message, /^Cannot download .*\.zst: .*no data for 300 ms.*\nHint: /);
      return true;
    });
  } finally {
    release.abort();
  }
  assertNothingCached(t.cacheDir);
});

Deno.test("fault: 404 for the manifest is a clear error, not retried", async () => {
  await using t = await setup();
  t.host.fault = ({ file }) =>
    file === "manifest.json" ? new Response("gone", { status: 404 }) : undefined;
  await assert.rejects(
    install(t.options),
    /^HttpStatusError: Cannot download .*manifest.json: the server answered 404 Not Found\nHint: check KREPIS_MIRROR/,
  );
  assert.equal(t.host.requestsFor("manifest.json").length, 1);
});

Deno.test("fault: an HTML error page with status 200 is refused (manifest and library)", async () => {
  await using t = await setup();
  const html = () => new Response("<html><body>Service unavailable</body></html>", { status: 200 });
  t.host.fault = ({ file }) => file === "manifest.json" ? html() : undefined;
  await assertIntegrity(install(t.options), /^Cannot verify the signature of manifest.json/);
  t.host.fault = ({ file }) => file === zst ? html() : undefined;
  await assertIntegrity(install(t.options), /\.zst/);
  assertNothingCached(t.cacheDir);
});

Deno.test("fault: 503, 503, then 200 succeeds after two retries", async () => {
  await using t = await setup();
  t.host.fault = ({ file, count }) =>
    file === zst && count < 2 ? new Response("busy", { status: 503 }) : undefined;
  const installed = await install(t.options);
  assert.equal(installed.sha256, t.fixture.entry.sha256);
  assert.deepEqual(t.host.requestsFor(zst).map((r) => r.status), [503, 503, 200]);
});

Deno.test("fault: a redirect to plain http off loopback is refused", async () => {
  await using t = await setup();
  t.host.fault = ({ file }) =>
    file === zst ? Response.redirect(`http://mirror.example.invalid/${zst}`, 302) : undefined;
  await assert.rejects(
    install(t.options),
    /^NetworkError: Cannot download from http:\/\/mirror.example.invalid\/.*: only https:\/\/ is allowed/,
  );
  assertNothingCached(t.cacheDir);
});

Deno.test("fault: a Range request answered with 200 starts over and completes", async () => {
  await using t = await setup();
  t.host.fault = ({ file, body, count, request }) => {
    if (file !== zst) return undefined;
    if (count === 0) return new Response(partialBody(body!.slice(0, 2000), "close"));
    assert.equal(request.headers.get("range"), "bytes=2000-");
    return new Response(body); // ignores the Range
  };
  const installed = await install(t.options);
  assert.equal(installed.sha256, t.fixture.entry.sha256);
  assert.deepEqual(t.host.requestsFor(zst).map((r) => r.status), [200, 200]);
});

Deno.test("fault: a complete .partial left behind is verified and used without a download", async () => {
  await using t = await setup();
  await Deno.mkdir(t.entryDir, { recursive: true, mode: 0o700 });
  await Deno.copyFile(join(t.fixture.versionDir, zst), zstdPartial(t));
  const installed = await install(t.options);
  assert.equal(installed.sha256, t.fixture.entry.sha256);
  assert.equal(t.host.requestsFor(zst).length, 0);
  assert.ok(!walk(t.cacheDir).some((f) => f.endsWith(".partial")));
});

Deno.test("fault: a complete but wrong .partial is discarded and downloaded afresh", async () => {
  await using t = await setup();
  await Deno.mkdir(t.entryDir, { recursive: true, mode: 0o700 });
  await Deno.writeFile(
    zstdPartial(t),
    flipped(await Deno.readFile(join(t.fixture.versionDir, zst))),
  );
  const installed = await install(t.options);
  assert.equal(installed.sha256, t.fixture.entry.sha256);
  assert.deepEqual(t.host.requestsFor(zst).map((r) => r.range), [null]);
});

Deno.test("fault: a byte flipped in the cached file later is caught and the file replaced", async () => {
  await using t = await setup();
  await install(t.options);
  const good = await Deno.readFile(t.finalPath);
  await Deno.chmod(t.finalPath, 0o644); // installed read-only (on Windows: the attribute)
  await Deno.writeFile(t.finalPath, flipped(good));
  const again = await install(t.options);
  assert.equal(again.downloaded, true, "the stamp (mtime) no longer matches");
  assert.deepEqual(await Deno.readFile(t.finalPath), good);
  // A flip that restores size and mtime still changes ctime: the stamp catches
  // it. (Deno reports ctime in whole seconds, so let one pass first.)
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await Deno.chmod(t.finalPath, 0o644); // installed read-only (on Windows: the attribute)
  const stat = await Deno.stat(t.finalPath);
  await Deno.writeFile(t.finalPath, flipped(good));
  await Deno.utime(t.finalPath, stat.atime!, stat.mtime!);
  const stampOnly = await install(t.options);
  assert.equal(stampOnly.downloaded, true, "the stamp (ctime) no longer matches");
  assert.deepEqual(await Deno.readFile(t.finalPath), good);
  using kernel = await withEnv("KREPIS_KERNEL_PATH", undefined, () => load(t.options));
  assert.equal(kernel.path, t.finalPath);
  assert.equal(kernel.version, VERSION);
});

Deno.test("fault: a flip with a forged stamp passes the stamp check but not verify: full", async () => {
  await using t = await setup();
  await install(t.options);
  const good = await Deno.readFile(t.finalPath);
  await Deno.chmod(t.finalPath, 0o644); // installed read-only (on Windows: the attribute)
  await Deno.writeFile(t.finalPath, flipped(good));
  // Someone who can write to the cache can also rewrite the stamp: the
  // documented limit of the fast check.
  const stampPath = `${t.finalPath}.stamp.json`;
  const stamp = JSON.parse(await Deno.readTextFile(stampPath));
  const now = await Deno.stat(t.finalPath);
  await Deno.chmod(stampPath, 0o644);
  await Deno.writeTextFile(
    stampPath,
    JSON.stringify({ ...stamp, mtimeMs: now.mtime!.getTime(), ctimeMs: now.ctime!.getTime() }),
  );
  assert.equal((await install({ ...t.options, offline: true })).downloaded, false);
  await assert.rejects(
    install({ ...t.options, offline: true, verify: "full" }),
    /the cached copy failed verification/,
  );
  const full = await install({ ...t.options, verify: "full" });
  assert.equal(full.downloaded, true, "verify: full re-hashes and replaces it");
  assert.deepEqual(await Deno.readFile(t.finalPath), good);
});

Deno.test(
  skipIf("fault: a cache subdirectory writable by other users is refused", NO_MODE_BITS),
  async () => {
    await using t = await setup();
    await install(t.options);
    await Deno.chmod(join(t.cacheDir, VERSION), 0o777);
    await assert.rejects(install(t.options), (e: Error) => {
      assert.ok(e instanceof CacheError, `${e.name}: ${e.message}`);
      assert.match(
        e.message,
        new RegExp(
          `^Cannot use the cache directory ${
            escapeRegExp(join(t.cacheDir, VERSION))
          }: it is writable by other users \\(mode 777\\)\\nHint: remove `,
        ),
      );
      return true;
    });
    await Deno.chmod(join(t.cacheDir, VERSION), 0o700);
    await Deno.chmod(t.entryDir, 0o777);
    await assert.rejects(install(t.options), /: it is writable by other users \(mode 777\)/);
  },
);

Deno.test(
  skipIf(
    "fault: a FIFO planted as the cached manifest does not hang the loader",
    when(WINDOWS, "Windows has no FIFOs in the file system (mkfifo)"),
  ),
  async () => {
    await using t = await setup();
    await install(t.options);
    const manifest = join(t.cacheDir, VERSION, "manifest.json");
    await Deno.remove(manifest);
    const mkfifo = await new Deno.Command("mkfifo", { args: [manifest] }).output();
    assert.ok(mkfifo.success);
    await assert.rejects(install({ ...t.options, offline: true }), OfflineError);
    const again = await install(t.options); // online: fetched and cached anew
    assert.equal(again.sha256, t.fixture.entry.sha256);
    assert.ok((await Deno.lstat(manifest)).isFile);
  },
);

Deno.test("fault: an endless or oversized manifest is refused without reading it all", async () => {
  await using t = await setup();
  let sent = 0;
  t.host.fault = ({ file }) => {
    if (file !== "manifest.json") return undefined;
    return new Response(endless((n) => (sent += n)));
  };
  await assertIntegrity(
    install(t.options),
    /^Cannot read .*manifest\.json: it is larger than 1048576 bytes/,
  );
  assert.ok(sent < 64 * 1024 * 1024, `the host sent ${sent} bytes`);
  t.host.fault = ({ file }) =>
    file === "manifest.json" ? new Response(new Uint8Array(2 * 1024 * 1024)) : undefined;
  await assertIntegrity(install(t.options), /it is larger than 1048576 bytes/);
});

Deno.test("fault: another target's installer writing the manifest keeps its temp file", async () => {
  await using t = await setup();
  // Another target's installer of the same version, mid-write: it holds the
  // version's lock and has a temp file beside manifest.json, as writeAtomic makes.
  const versionDir = join(t.cacheDir, VERSION);
  await Deno.mkdir(versionDir, { recursive: true, mode: 0o700 });
  const temp = join(versionDir, `.manifest.json.${Deno.pid + 1}-1-2.tmp`);
  await Deno.writeFile(temp, await Deno.readFile(join(t.fixture.versionDir, "manifest.json")));
  const holder = await holdLock(join(versionDir, ".lock"));
  const installing = install(t.options);
  // Time for this installer to reach the version lock (a cleanup under the
  // target's lock would have removed the temp by now).
  await new Promise((resolve) => setTimeout(resolve, 1000));
  assert.ok(
    await Deno.lstat(temp).then(() => true, () => false),
    "the other installer's temp file was deleted under this target's lock",
  );
  await holder.release();
  assert.equal((await installing).downloaded, true);
});

Deno.test(
  skipIf("fault: a symlink planted at the lock is refused, never opened", NO_SYMLINKS),
  async () => {
    await using t = await setup();
    const elsewhere = await Deno.makeTempDir();
    const victim = join(elsewhere, "victim.txt");
    await Deno.writeTextFile(victim, "keep me");
    const targetDir = join(t.cacheDir, VERSION, target.triple);
    await Deno.mkdir(targetDir, { recursive: true, mode: 0o700 });
    await Deno.symlink(victim, join(targetDir, ".lock"));
    await assert.rejects(() => install(t.options), (e: Error) => {
      assert.ok(e instanceof CacheError, String(e));
      assert.match(
        e.message,
        /^Cannot lock .*\.lock: it is a symlink, which Krepis never makes\nHint: remove it/,
      );
      return true;
    });
    assert.equal(await Deno.readTextFile(victim), "keep me");
    await Deno.remove(elsewhere, { recursive: true });
  },
);

Deno.test("fault: whatever stands where the cache's files should be is a CacheError with a hint", async () => {
  const cases: [string, (t: HostedRelease) => Promise<void>][] = [
    ["a file where the version directory should be", async (t) => {
      await Deno.writeTextFile(join(t.cacheDir, VERSION), "not a directory");
    }],
    ["a file where the target directory should be", async (t) => {
      await Deno.mkdir(join(t.cacheDir, VERSION), { mode: 0o700 });
      await Deno.writeTextFile(join(t.cacheDir, VERSION, target.triple), "x");
    }],
    ["a directory where the lock should be", async (t) => {
      await Deno.mkdir(join(t.cacheDir, VERSION, target.triple, ".lock"), {
        recursive: true,
        mode: 0o700,
      });
    }],
    ["a directory where the manifest should be", async (t) => {
      await Deno.mkdir(join(t.cacheDir, VERSION, "manifest.json"), {
        recursive: true,
        mode: 0o700,
      });
    }],
    ["a directory where the stamp should be", async (t) => {
      await Deno.mkdir(`${t.finalPath}.stamp.json`, { recursive: true, mode: 0o700 });
    }],
    ["a directory where the library should be", async (t) => {
      await Deno.mkdir(t.finalPath, { recursive: true, mode: 0o700 });
    }],
  ];
  for (const [what, plant] of cases) {
    await using t = await setup();
    await ensureTagged(t.cacheDir);
    await plant(t);
    await assert.rejects(() => install(t.options), (e: Error) => {
      assert.ok(e instanceof CacheError, `${what}: ${e.name}: ${e.message}`);
      assert.match(e.message, /^Cannot /, what);
      assert.ok(e.hint, `${what}: a hint`);
      return true;
    }, what);
  }
});

Deno.test("fault: an installer holding the lock past the deadline is a CacheError, and the waiting process can exit", async () => {
  await using t = await setup();
  const lock = join(t.cacheDir, VERSION, target.triple, ".lock");
  await Deno.mkdir(join(t.cacheDir, VERSION, target.triple), { recursive: true, mode: 0o700 });
  const holder = await holdLock(lock);
  try {
    await assert.rejects(install({ ...t.options, deadlineMs: 500 }), (e: Error) => {
      assert.ok(e instanceof CacheError, `${e.name}: ${e.message}`);
      assert.match(
        e.message,
        /^Cannot install the kernel: another installer held .*\.lock until the deadline\nHint: /,
      );
      return true;
    });
    // A whole process that gave up waiting must end while the holder still
    // holds the lock: nothing of the wait may keep it alive.
    const script = `import { install } from ${
      JSON.stringify(new URL("../loader/mod.ts", import.meta.url).href)
    };
      await install(${
      JSON.stringify({ ...t.options, deadlineMs: 500 })
    }).catch((e) => console.log(e.name));`;
    const out = await outputWithin(
      new Deno.Command(Deno.execPath(), {
        args: ["eval", "--quiet", script],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }),
    );
    assert.equal(out.signal, null, "the process waited for the lock holder instead of exiting");
    assert.equal(new TextDecoder().decode(out.stdout).trim(), "CacheError");
  } finally {
    await holder.release();
  }
  assert.equal((await install(t.options)).downloaded, true, "the lock is free again");
});

Deno.test("fault: a damaged partial from an earlier run is retried from byte 0, not blamed on the server", async () => {
  await using t = await setup();
  await Deno.mkdir(t.entryDir, { recursive: true, mode: 0o700 });
  const zstd = await Deno.readFile(join(t.fixture.versionDir, zst));
  await Deno.writeFile(zstdPartial(t), flipped(zstd.slice(0, 1000), 10));
  const installed = await install(t.options);
  assert.equal(installed.sha256, t.fixture.entry.sha256);
  assert.deepEqual(t.host.requestsFor(zst).map((r) => r.range), ["bytes=1000-", null]);
});

Deno.test("fault: a 404 for the library's last copy is not retried; 416 on resume starts over", async () => {
  await using t = await setup();
  t.host.fault = ({ file }) =>
    file.startsWith(target.file) ? new Response("gone", { status: 404 }) : undefined;
  await assert.rejects(install(t.options), /the server answered 404/);
  assert.equal(t.host.requestsFor(target.file).length, 1, "no retry on 4xx");
  t.host.fault = ({ file, request }) =>
    file === zst && request.headers.get("range") ? new Response(null, { status: 416 }) : undefined;
  await Deno.mkdir(t.entryDir, { recursive: true, mode: 0o700 });
  const zstd = await Deno.readFile(join(t.fixture.versionDir, zst));
  await Deno.writeFile(zstdPartial(t), zstd.slice(0, 500));
  const before = t.host.requestsFor(zst).length;
  const installed = await install(t.options);
  assert.equal(installed.sha256, t.fixture.entry.sha256);
  assert.deepEqual(t.host.requestsFor(zst).slice(before).map((r) => [r.range, r.status]), [[
    "bytes=500-",
    416,
  ], [
    null,
    200,
  ]]);
});

Deno.test(
  skipIf(
    "fault: symlinks planted at the partial and final paths are replaced, never followed",
    NO_SYMLINKS,
  ),
  async () => {
    await using t = await setup();
    // The victim lives outside the cache, as a user's file would.
    const elsewhere = await Deno.makeTempDir();
    const victim = join(elsewhere, "victim.txt");
    await Deno.writeTextFile(victim, "keep me");
    await Deno.mkdir(t.entryDir, { recursive: true, mode: 0o700 });
    await Deno.symlink(victim, zstdPartial(t));
    await Deno.symlink(victim, t.finalPath);
    const installed = await install(t.options);
    assert.equal(installed.downloaded, true);
    assert.equal(await Deno.readTextFile(victim), "keep me");
    assert.ok((await Deno.lstat(t.finalPath)).isFile);
    assert.equal(installed.sha256, t.fixture.entry.sha256);
    await Deno.remove(elsewhere, { recursive: true });
  },
);

Deno.test("fault: a good signature whose trusted comment names another release or file is refused", async () => {
  const original = await Deno.readFile(join((await releaseFixture()).versionDir, "manifest.json"));
  for (
    const comment of [
      manifestTrustedComment("0.0.1"),
      "file:SHA256SUMS\tversion:" + VERSION,
      "file:manifest.json",
      "timestamp:1700000000\tfile:manifest.json",
      "",
    ]
  ) {
    await using t = await setup();
    const signature = await signMinisign(t.fixture.key, original, comment);
    t.host.fault = ({ file }) =>
      file === "manifest.json.minisig" ? new Response(signature) : undefined;
    await assertIntegrity(
      install(t.options),
      /^Cannot verify the signature of manifest.json of v.*: its trusted comment .* does not name manifest.json of version /,
    );
    assertNothingCached(t.cacheDir);
  }
});

Deno.test("fault: a signed manifest listing a target twice is refused, whichever entry comes first", async () => {
  for (const order of ["good first", "bad first"]) {
    await using t = await setup();
    const twice = await signedManifest(t.fixture, (m) => {
      const targets = m.targets as Record<string, unknown>[];
      const forged = { ...targets[0], sha256: "0".repeat(64) };
      m.targets = order === "good first" ? [targets[0], forged] : [forged, targets[0]];
    });
    t.host.fault = ({ file }) =>
      file === "manifest.json"
        ? new Response(twice.bytes)
        : file === "manifest.json.minisig"
        ? new Response(twice.signature)
        : undefined;
    await assertIntegrity(
      install(t.options),
      new RegExp(`targets\\[1\\]\\.triple .*lists ${target.triple} a second time`),
    );
    assertNothingCached(t.cacheDir);
  }
});

Deno.test("fault: a manifest with a bad signature is refused", async () => {
  await using t = await setup();
  const original = await Deno.readFile(join(t.fixture.versionDir, "manifest.json"));
  const tampered = new TextEncoder().encode(
    new TextDecoder().decode(original).replace('"size": ', '"size":  '),
  );
  t.host.fault = ({ file }) => file === "manifest.json" ? new Response(tampered) : undefined;
  await assertIntegrity(
    install(t.options),
    /^Cannot verify the signature of manifest.json .*: the signature by key [0-9A-F]{16} does not match its contents/,
  );
  assertNothingCached(t.cacheDir);
});

Deno.test("fault: a signed manifest without this target is a clear UnsupportedPlatformError", async () => {
  await using t = await setup();
  const other = await signedManifest(t.fixture, (m) => (m.targets = []));
  t.host.fault = serving(other);
  await assert.rejects(
    install(t.options),
    (e: Error) => e instanceof UnsupportedPlatformError && /does not include it/.test(e.message),
  );
});

Deno.test("fault: a signed manifest with a ../ file name is refused", async () => {
  await using t = await setup();
  const other = await signedManifest(t.fixture, (m) => {
    (m.targets as { file: string }[])[0].file = `../../${target.file}`;
  });
  t.host.fault = serving(other);
  await assertIntegrity(
    install(t.options),
    /: targets\[0\]\.file is "\.\.\/\.\.\/.*", not a plain file name/,
  );
});

Deno.test("fault: a signed manifest with an unknown schema version is refused", async () => {
  await using t = await setup();
  const other = await signedManifest(t.fixture, (m) => (m.schema = 2));
  t.host.fault = serving(other);
  await assertIntegrity(
    install(t.options),
    /^Cannot read the release manifest: schema 2 is not the supported schema 1/,
  );
});

Deno.test("parseManifest() names the malformed field; formatManifest() round-trips", async () => {
  const fixture = await releaseFixture();
  const text = await Deno.readTextFile(join(fixture.versionDir, "manifest.json"));
  assert.equal(formatManifest(parseManifest(text)), text);
  const broken = JSON.parse(text);
  broken.targets[0].compressed.zstd.sha256 = "XYZ";
  assert.throws(
    () => parseManifest(JSON.stringify(broken)),
    /targets\[0\]\.compressed\.zstd\.sha256 is "XYZ", not 64 lowercase hex digits/,
  );
  delete broken.abi;
  assert.throws(() => parseManifest(JSON.stringify(broken)), /: abi is not an object/);
  assert.throws(() => parseManifest("<html>"), /: the manifest is not JSON/);
});

/** A process's descriptor limit in the flood test, well below the clients it gets. */
const FLOOD_LIMIT = 256;
const FLOOD_CLIENTS = 400;

Deno.test(
  skipIf(
    "fault: a flood of clients past the descriptor limit is refused, and the host stays alive and serving",
    when(
      !((await hostFeatures())?.includes("server") ?? true),
      `the ${Deno.build.target} kernel has no server engine`,
    ) ??
      // prlimit (util-linux) sets the child's descriptor limit; macOS and Windows have none.
      without("prlimit", "prlimit (util-linux) is not installed here"),
  ),
  async () => {
    // The host: a Deno process with FLOOD_LIMIT descriptors, serving an
    // upstream (which also reports the proxy's stats) and the engine in front.
    const script = `
      import { load } from ${JSON.stringify(new URL("../loader/mod.ts", import.meta.url).href)};
      const kernel = await load({ path: ${JSON.stringify(await kernelPath())} });
      let proxy;
      const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) =>
        new URL(request.url).pathname === "/stats" ? Response.json(proxy.stats()) : new Response("alive"));
      proxy = kernel.server.start({ upstreams: [\`127.0.0.1:\${upstream.addr.port}\`] });
      console.log(JSON.stringify({ proxy: proxy.address.port, upstream: upstream.addr.port, cap: proxy.maxConnections }));
    `;
    const child = new Deno.Command("prlimit", {
      args: [
        `--nofile=${FLOOD_LIMIT}:${FLOOD_LIMIT}`,
        "--",
        Deno.execPath(),
        "run",
        "--quiet",
        "--allow-all",
        "-",
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(script));
    await writer.close();
    const stderr = new Response(child.stderr).text();
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const flood: Deno.Conn[] = [];
    let exited = false;
    const status = child.status.then((status) => {
      exited = true;
      return status;
    });
    try {
      const first = await Promise.race([
        lines.read(),
        status.then(async () => assert.fail(`the host did not start: ${await stderr}`)),
      ]);
      const { proxy, upstream, cap } = JSON.parse(first.value!);
      const stats = async () =>
        await (await fetch(`http://127.0.0.1:${upstream}/stats`, {
          signal: AbortSignal.timeout(5_000),
        })).json();
      for (let i = 0; i < FLOOD_CLIENTS; i++) {
        flood.push(await Deno.connect({ hostname: "127.0.0.1", port: proxy }));
      }
      // Every client past the cap is refused at once; bounded: 100 checks.
      let seen = await stats();
      for (let i = 0; i < 100 && seen.refusedConnections < FLOOD_CLIENTS - cap; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        seen = await stats();
      }
      // Full: one more client is told so, and the host still answers directly.
      const refused = await fetch(`http://127.0.0.1:${proxy}/`, {
        signal: AbortSignal.timeout(5_000),
      })
        .then(
          async (response) => [response.status, await response.text()],
          (error) => [0, String(error)],
        );
      assert.ok(refused[0] === 503 || refused[0] === 0, `past the cap: ${refused}`);
      for (const connection of flood.splice(0)) connection.close();
      for (let i = 0; i < 100 && (await stats()).activeConnections > 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const response = await fetch(`http://127.0.0.1:${proxy}/`, {
        signal: AbortSignal.timeout(5_000),
      });
      assert.deepEqual([response.status, await response.text()], [200, "alive"]);
      assert.equal(exited, false, "the host exited");
      // What held it: the cap, a quarter of the descriptor limit, and the refusals past it.
      assert.equal(cap, FLOOD_LIMIT / 4, "the default cap is a quarter of the descriptor limit");
      assert.equal(seen.activeConnections, cap);
      assert.equal(seen.refusedConnections, FLOOD_CLIENTS - cap);
    } finally {
      for (const connection of flood) connection.close();
      if (!exited) child.kill("SIGKILL");
      await status;
      await stderr;
      lines.releaseLock();
    }
  },
);
