/**
 * Test helper: checks a `SHA256SUMS` file (coreutils format) in TypeScript
 * with node:crypto, the way `sha256sum --strict -c` does, so the property is
 * tested on machines without coreutils too.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { outputOrNull } from "../lib/process.ts";

/** What checking a SHA256SUMS file found. */
export interface Sha256SumsCheck {
  /** Files whose hash matched. */
  ok: string[];
  /** Files whose hash did not match, or that could not be read. */
  failed: string[];
  /** Lines that are not `<64 hex>  <name>` (or `<64 hex> *<name>`). */
  malformed: string[];
}

/** Checks `<dir>/<sums>` against the files in `dir`. */
export async function checkSha256Sums(
  dir: string,
  sums = "SHA256SUMS",
): Promise<Sha256SumsCheck> {
  const result: Sha256SumsCheck = { ok: [], failed: [], malformed: [] };
  const text = await Deno.readTextFile(join(dir, sums));
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const match = /^([0-9a-f]{64}) [ *]([^/\\]+)$/.exec(line);
    if (!match) {
      result.malformed.push(line);
      continue;
    }
    const [, expected, name] = match;
    let actual: string | null = null;
    try {
      actual = createHash("sha256").update(await Deno.readFile(join(dir, name))).digest("hex");
    } catch {
      actual = null;
    }
    (actual === expected ? result.ok : result.failed).push(name);
  }
  return result;
}

let gnu: Promise<boolean> | undefined;

/**
 * Whether `sha256sum` here is GNU coreutils' (the tests rely on its
 * `--strict` flag and its `<file>: FAILED` lines).
 */
export function hasGnuSha256sum(): Promise<boolean> {
  // Not installed is null (the spawn's own throw), never a failure to load.
  gnu ??= outputOrNull(
    new Deno.Command("sha256sum", {
      args: ["--version"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }),
  ).then((out) =>
    out !== null && out.success && new TextDecoder().decode(out.stdout).includes("GNU coreutils")
  );
  return gnu;
}
