import assert from "node:assert/strict";
import * as mod from "./mod.ts";
import * as release from "./release.ts";

Deno.test("the loader's main export is what a user of the kernel needs, and no release plumbing", () => {
  assert.deepEqual(Object.keys(mod).sort(), [
    "AbiMismatchError",
    "CacheError",
    "IntegrityError",
    "Journal",
    "JournalError",
    "Journals",
    "Kernel",
    "KernelError",
    "KernelView",
    "KrepisError",
    "LOADER_ABI",
    "NetworkError",
    "OfflineError",
    "PermissionError",
    "Server",
    "ServerError",
    "Servers",
    "Transaction",
    "UnsupportedPlatformError",
    "VERSION",
    "cacheRoot",
    "currentPlatform",
    "install",
    "load",
    "resolveTarget",
    "supportedTriples",
  ]);
  for (const name of Object.keys(release)) {
    assert.ok(!(name in mod), `${name} is release plumbing: it belongs to @krepis/loader/release`);
  }
});
