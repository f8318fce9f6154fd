/**
 * install() and load() against a real signed release served on loopback:
 * the happy path, the warm cache, offline mode and the trust rules.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
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
import { withEnv } from "./_env.ts";
import { hostedRelease } from "./_hosted_release.ts";
import { skipIf, UNDER_WINE, when, WINDOWS } from "./_tools.ts";
import { generateSigningKey, publicKeyBase64 } from "../release/minisign_sign.ts";

const target = resolveTarget();

const setup = hostedRelease;

Deno.test("install() fetches the zstd copy, verifies it and caches it read-only", async () => {
  await using t = await setup();
  const installed = await install(t.options);
  assert.equal(installed.downloaded, true);
  assert.equal(installed.sha256, t.fixture.entry.sha256);
  assert.match(installed.trust, /^signature by key [0-9A-F]{16}$/);
  assert.equal(installed.source, `${t.host.url}/v${VERSION}/${target.file}.zst`);
  const entryDir = join(t.cacheDir, VERSION, target.triple, installed.sha256);
  assert.equal(installed.path, join(entryDir, target.file));
  const bytes = await Deno.readFile(installed.path);
  assert.equal(createHash("sha256").update(bytes).digest("hex"), t.fixture.entry.sha256);
  if (Deno.build.os === "windows") {
    // No mode bits: read-only is the file attribute, which refuses every
    // writer (not under Wine, which runs as root: docs/testing.md).
    if (!UNDER_WINE) {
      await assert.rejects(
        () => Deno.writeFile(installed.path, bytes),
        Deno.errors.PermissionDenied,
      );
    }
  } else {
    assert.equal((await Deno.stat(installed.path)).mode! & 0o777, 0o444);
    assert.equal((await Deno.stat(t.cacheDir)).mode! & 0o077, 0);
  }
  // Only the manifest, its signature and the zstd copy were fetched.
  assert.deepEqual(t.host.served.map((s) => s.path.split("/").pop()), [
    "manifest.json",
    "manifest.json.minisig",
    `${target.file}.zst`,
  ]);
  const leftovers = [...Deno.readDirSync(entryDir)].map((e) => e.name).sort();
  assert.deepEqual(leftovers, [target.file, `${target.file}.stamp.json`]);
});

Deno.test("a warm cache needs no network: install() and load() serve it without a request", async () => {
  await using t = await setup();
  await install(t.options);
  const before = t.host.served.length;
  const again = await install(t.options);
  assert.equal(again.downloaded, false);
  using kernel = await withEnv("KREPIS_KERNEL_PATH", undefined, () => load(t.options));
  assert.equal(kernel.path, again.path);
  assert.equal(kernel.buildInfo().version, VERSION);
  assert.equal(t.host.served.length, before);
});

Deno.test("offline: a cached kernel loads, a missing one is an OfflineError", async () => {
  await using t = await setup();
  await assert.rejects(() => install({ ...t.options, offline: true }), (e: Error) => {
    assert.ok(e instanceof OfflineError);
    assert.match(
      e.message,
      /^Cannot install the kernel .* offline: it is not in the cache at .*\nHint: run `krepis init`/,
    );
    return true;
  });
  assert.equal(t.host.served.length, 0);
  await install(t.options);
  const offline = await install({
    ...t.options,
    offline: true,
    mirror: "https://unreachable.invalid",
  });
  assert.equal(offline.downloaded, false);
});

Deno.test("gzip is used when the zstd copy is missing (404), the raw file when both are", async () => {
  await using t = await setup();
  t.host.fault = ({ file }) =>
    file.endsWith(".zst") ? new Response("no", { status: 404 }) : undefined;
  assert.equal((await install(t.options)).source, `${t.host.url}/v${VERSION}/${target.file}.gz`);
  await Deno.remove(t.cacheDir, { recursive: true });
  t.host.fault = ({ file }) =>
    /\.(zst|gz)$/.test(file) ? new Response("no", { status: 404 }) : undefined;
  assert.equal((await install(t.options)).source, `${t.host.url}/v${VERSION}/${target.file}`);
});

Deno.test("no trusted key and no pinned checksum: the manifest is refused", async () => {
  await using t = await setup();
  await assert.rejects(() => install({ ...t.options, trustedKeys: [] }), (e: Error) => {
    assert.ok(e instanceof IntegrityError);
    assert.match(
      e.message,
      /^Cannot verify the signature of manifest.json of v.*: it was made with key [0-9A-F]{16}, which is not trusted \(no keys are trusted\)\nHint: set KREPIS_TRUSTED_KEY/,
    );
    return true;
  });
  // Only the cache's own tag: nothing downloaded was kept.
  assert.deepEqual(
    [...Deno.readDirSync(t.cacheDir)].filter((e) => e.isFile).map((e) => e.name),
    ["CACHEDIR.TAG"],
  );
});

Deno.test("pinned checksums trust the bytes without a signature, and refuse other bytes", async () => {
  await using t = await setup();
  const pinned = {
    version: VERSION,
    targets: { [target.triple]: { size: t.fixture.entry.size, sha256: t.fixture.entry.sha256 } },
  };
  const installed = await install({ ...t.options, trustedKeys: [], pinned });
  assert.equal(installed.trust, "pinned");
  await Deno.remove(t.cacheDir, { recursive: true });
  const wrong = {
    version: VERSION,
    targets: { [target.triple]: { size: t.fixture.entry.size, sha256: "0".repeat(64) } },
  };
  await assert.rejects(
    () => install({ ...t.options, trustedKeys: [], pinned: wrong }),
    (e: Error) => {
      assert.ok(e instanceof IntegrityError);
      assert.match(e.message, /is not the one pinned in @krepis\/loader/);
      return true;
    },
  );
});

Deno.test("install() refuses a target the release does not include, naming what it has", async () => {
  await using t = await setup();
  const other = target.triple === "aarch64-apple-darwin"
    ? "x86_64-apple-darwin"
    : "aarch64-apple-darwin";
  await assert.rejects(() => install({ ...t.options, target: other }), (e: Error) => {
    assert.ok(e instanceof UnsupportedPlatformError);
    assert.match(
      e.message,
      new RegExp(
        `^Cannot install the kernel for ${other}: release ${VERSION} does not include it \\(it has ${target.triple}\\)\\nHint: `,
      ),
    );
    return true;
  });
});

Deno.test(
  skipIf(
    "a cache directory writable by other users is refused",
    when(WINDOWS, "Windows has no POSIX mode bits; the loader checks them only on Linux and macOS"),
  ),
  async () => {
    await using t = await setup();
    await Deno.chmod(t.cacheDir, 0o777);
    await assert.rejects(
      () => install(t.options),
      /^CacheError: Cannot use the cache directory .*: it is writable by other users \(mode 777\)\nHint: run `chmod go-w/,
    );
  },
);

Deno.test("plain http is refused except on loopback", async () => {
  await using t = await setup();
  await assert.rejects(
    () => install({ ...t.options, mirror: "http://example.invalid/releases" }),
    /^NetworkError: Cannot download from http:\/\/example.invalid\/releases\/: only https:\/\/ is allowed \(plain http only on loopback\)\nHint: set KREPIS_MIRROR/,
  );
});

Deno.test("install() validates its options before it touches the disk or the network", async () => {
  await using t = await setup();
  await Deno.remove(t.cacheDir, { recursive: true });
  for (const version of ["../../x", "", "1.2", "v1.0.0", "1.0.0/../../x", "1.0.0\\..\\x"]) {
    await assert.rejects(() => install({ ...t.options, version }), (e: Error) => {
      assert.ok(e instanceof TypeError, String(e));
      assert.match(
        e.message,
        /^Cannot install the kernel: version .* is not a semantic version\nHint: /,
      );
      return true;
    });
  }
  await assert.rejects(
    () => install({ ...t.options, cacheDir: "" }),
    /Cannot use the cache directory "": it is empty/,
  );
  for (const deadlineMs of [0, -1, NaN, Infinity, 2 ** 31, 1e12]) {
    await assert.rejects(
      () => install({ ...t.options, deadlineMs }),
      (e: Error) => e instanceof TypeError && /deadlineMs is /.test(e.message),
      String(deadlineMs),
    );
  }
  assert.equal(await Deno.stat(t.cacheDir).then(() => true, () => false), false, "nothing created");
  assert.deepEqual(t.host.served, [], "nothing requested");
});

Deno.test(
  skipIf(
    "every spelling of a cache root gets the checks of the directories below it",
    when(WINDOWS, "Windows has no POSIX mode bits; the loader checks them only on Linux and macOS"),
  ),
  async () => {
    await using t = await setup();
    await install(t.options);
    await Deno.chmod(join(t.cacheDir, VERSION), 0o777);
    const sep = "/";
    for (
      const spelling of [
        t.cacheDir,
        `${t.cacheDir}${sep}`,
        `${t.cacheDir}${sep}${sep}`,
        `${t.cacheDir}${sep}.`,
        `${t.cacheDir}${sep}x${sep}..`,
        t.cacheDir.replace(/\/([^/]+)$/, "//$1"),
      ]
    ) {
      await assert.rejects(
        () => install({ ...t.options, cacheDir: spelling }),
        (e: Error) => e instanceof CacheError && /writable by other users/.test(e.message),
        spelling,
      );
    }
  },
);

Deno.test(
  skipIf(
    "nothing is made inside a cache root that is refused",
    when(WINDOWS, "Windows has no POSIX mode bits; the loader checks them only on Linux and macOS"),
  ),
  async () => {
    await using t = await setup();
    await Deno.chmod(t.cacheDir, 0o777);
    await assert.rejects(() => install(t.options), CacheError);
    assert.deepEqual([...Deno.readDirSync(t.cacheDir)], [], "no tag, no version directory");
    assert.deepEqual(t.host.served, []);
  },
);

Deno.test("offline, a cached manifest whose key is no longer trusted is named as such", async () => {
  await using t = await setup();
  await install(t.options);
  await assert.rejects(
    () => install({ ...t.options, offline: true, trustedKeys: [] }),
    (e: Error) => {
      assert.ok(e instanceof OfflineError);
      assert.match(
        e.message,
        /^Cannot install the kernel .* offline: the cached manifest at .* is not trusted \(Cannot verify the signature of manifest\.json: it was made with key [0-9A-F]{16}, which is not trusted/,
      );
      assert.match(e.message, /\nHint: trust its key \(KREPIS_TRUSTED_KEY or trustedKeys\)/);
      return true;
    },
  );
});

Deno.test("a cached manifest whose key is no longer trusted, with the release out of reach, is named as such", async () => {
  await using t = await setup();
  await install(t.options);
  const otherKey = publicKeyBase64(await generateSigningKey());
  // A rotated key, and the host gone: the cache cannot be used, nor fetched again.
  await t.host.close();
  // The gate points KREPIS_KERNEL_PATH at its build, which load() would take
  // instead of the cache: this test is about the cache.
  const development = Deno.env.get("KREPIS_KERNEL_PATH");
  Deno.env.delete("KREPIS_KERNEL_PATH");
  using _restore = {
    [Symbol.dispose]() {
      if (development !== undefined) Deno.env.set("KREPIS_KERNEL_PATH", development);
    },
  };
  await assert.rejects(
    () => load({ ...t.options, trustedKeys: [otherKey], attempts: 1 }),
    (e: Error) => {
      assert.ok(e instanceof IntegrityError, `${e.name}: ${e.message}`);
      assert.equal((e as IntegrityError).code, "INTEGRITY");
      assert.match(
        e.message,
        /^Cannot use the cached kernel .*: the cached manifest at .* is signed by a key that is no longer trusted \(Cannot verify the signature of manifest\.json: it was made with key [0-9A-F]{16}, which is not trusted/,
      );
      assert.match(e.message, /, and it could not be fetched again \(Cannot download /);
      assert.match(
        e.message,
        /\nHint: trust the key that signed it \(KREPIS_TRUSTED_KEY or trustedKeys\), or run `krepis init`/,
      );
      return true;
    },
  );
});
