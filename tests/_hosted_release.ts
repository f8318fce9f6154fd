/**
 * Test helper: the release fixture served on loopback, a fresh private
 * cache, and the options (for `install()`) and environment (for the CLI)
 * that point at them. Dispose it to stop the host and remove the cache.
 *
 * @module
 */

import { join } from "node:path";
import { type InstallOptions, resolveTarget, VERSION } from "../loader/mod.ts";
import { ReleaseHost } from "../release/serve_dir.ts";
import { type ReleaseFixture, releaseFixture } from "./_release_fixture.ts";

/** A served release and an empty cache. */
export interface HostedRelease extends AsyncDisposable {
  fixture: ReleaseFixture;
  host: ReleaseHost;
  cacheDir: string;
  /** For `install()` and `load()`: fast retries and short timeouts. */
  options: InstallOptions;
  /** For the CLI: `KREPIS_MIRROR`, `KREPIS_CACHE_DIR`, `KREPIS_TRUSTED_KEY`. */
  env: Record<string, string>;
  /** Where this machine's library lands in the cache. */
  entryDir: string;
  finalPath: string;
}

/** Serves the shared release fixture and makes a fresh cache. */
export async function hostedRelease(): Promise<HostedRelease> {
  const fixture = await releaseFixture();
  const host = ReleaseHost.start(fixture.dir);
  const cacheDir = await Deno.makeTempDir({ prefix: "krepis-cache-" });
  const target = resolveTarget();
  const entryDir = join(cacheDir, VERSION, target.triple, fixture.entry.sha256);
  return {
    fixture,
    host,
    cacheDir,
    options: {
      mirror: host.url,
      cacheDir,
      trustedKeys: [fixture.publicKey],
      attempts: 3,
      retryDelayMs: 1,
      connectTimeoutMs: 2000,
      idleTimeoutMs: 300,
    },
    env: {
      KREPIS_MIRROR: host.url,
      KREPIS_CACHE_DIR: cacheDir,
      KREPIS_TRUSTED_KEY: fixture.publicKey,
    },
    entryDir,
    finalPath: join(entryDir, target.file),
    async [Symbol.asyncDispose]() {
      await host.close();
      await Deno.remove(cacheDir, { recursive: true }).catch(() => {});
    },
  };
}
