/**
 * Formats TypeScript source with the repository's `deno fmt` settings, so
 * generated modules are byte-identical to what `deno fmt --check` accepts.
 *
 * @module
 */

import { REPO_ROOT } from "./cargo_build.ts";

/**
 * Formats `source` as the file at `path` (relative to the repo root) would be.
 *
 * @param source TypeScript source.
 * @returns The formatted source.
 * @throws {Error} When deno fmt rejects the source.
 */
export async function formatTs(source: string): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext=ts", "-"],
    cwd: REPO_ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(source));
  await writer.close();
  const output = await child.output();
  if (!output.success) {
    throw new Error(`Cannot format generated code: ${new TextDecoder().decode(output.stderr)}`);
  }
  return new TextDecoder().decode(output.stdout);
}
