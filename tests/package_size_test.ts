/**
 * The loader package JSR gets stays small: JSR allows 20 MiB a version, and
 * every byte is a user's first download (Deno prefetches even the modules
 * imported lazily). The file list is the one `deno publish --dry-run`
 * prints, each file's size read from disk.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { JSR_VERSION_LIMIT } from "../release/jsr_host.ts";

/** The budget: 1 MiB, a twentieth of JSR's limit (about 400 KB today). */
const PACKAGE_BUDGET_BYTES = 1024 * 1024;

/** The files `deno publish --dry-run` would publish from `loader/`, and their total size. */
async function publishedFiles(): Promise<{ files: string[]; bytes: number }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["publish", "--dry-run", "--allow-dirty"],
    cwd: join(REPO_ROOT, "loader"),
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  assert.ok(output.success, text);
  const files = [...text.matchAll(/^\s+(file:\/\/\S+) \(/gm)].map((m) => fromFileUrl(m[1]));
  let bytes = 0;
  for (const file of files) bytes += (await Deno.stat(file)).size;
  return { files, bytes };
}

Deno.test("the loader package stays under its budget, far below JSR's 20 MiB", async () => {
  const { files, bytes } = await publishedFiles();
  assert.ok(files.some((file) => file.endsWith("mod.ts")), files.join("\n"));
  assert.ok(files.every((file) => !file.endsWith("_test.ts")), "no test file is published");
  assert.ok(PACKAGE_BUDGET_BYTES * 20 <= JSR_VERSION_LIMIT);
  assert.ok(
    bytes <= PACKAGE_BUDGET_BYTES,
    `@krepis/loader is ${bytes} bytes in ${files.length} files; the budget is ${PACKAGE_BUDGET_BYTES}`,
  );
});
