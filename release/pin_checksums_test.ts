import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { formatTs } from "../lib/format.ts";
import { renderPinnedModule } from "./pin_checksums.ts";

Deno.test("the committed loader/_gen/pinned.ts is the release step's template with nothing pinned yet", async () => {
  const empty = await formatTs(
    renderPinnedModule({
      schema: 1,
      version: "",
      abi: { major: 0, minor: 0, fingerprint: "" },
      targets: [],
    }),
  );
  assert.equal(await Deno.readTextFile(join(REPO_ROOT, "loader", "_gen", "pinned.ts")), empty);
});

Deno.test("renderPinnedModule() pins each target's size and hash for the version", async () => {
  const text = renderPinnedModule({
    schema: 1,
    version: "1.2.3",
    abi: { major: 1, minor: 0, fingerprint: "f".repeat(64) },
    targets: [{
      triple: "x86_64-unknown-linux-gnu",
      os: "linux",
      arch: "x86_64",
      libc: "gnu",
      file: "a.so",
      size: 7,
      sha256: "a".repeat(64),
      compressed: {},
    }],
  });
  const path = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(path, text);
  const module = await import(pathToFileURL(path).href);
  await Deno.remove(path);
  assert.deepEqual(module.PINNED, {
    version: "1.2.3",
    targets: { "x86_64-unknown-linux-gnu": { size: 7, sha256: "a".repeat(64) } },
  });
});
