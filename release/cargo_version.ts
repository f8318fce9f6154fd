/**
 * The Cargo half of the lock-step bump: `[workspace.package] version` in
 * `Cargo.toml`, then `Cargo.lock` by Cargo itself (`cargo update
 * --workspace`, which moves only the workspace's own packages).
 *
 * Cargo.toml is edited as text, one line, so its comments and layout stay;
 * smol-toml reads the file before and after, and the edit is refused unless
 * exactly that one value changed. This needs no tool beyond Cargo: no
 * `cargo install` (cargo-release would compile OpenSSL and libgit2 from C
 * source to do the same two edits).
 *
 * @module
 */

import { parse as parseToml } from "npm:smol-toml@^1.9.1";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";

type Table = Record<string, unknown>;

function workspaceVersion(manifest: Table): unknown {
  return ((manifest.workspace as Table | undefined)?.package as Table | undefined)?.version;
}

/**
 * `Cargo.toml`'s text with `[workspace.package] version` set to `to`, every
 * other byte kept.
 *
 * @param text The manifest's text.
 * @param from The version it must hold now.
 * @param to The new version.
 * @returns The new text.
 * @throws {Error} When the manifest does not hold `from` there, or the edit
 *   would change anything else.
 * @example
 * ```ts
 * import { bumpWorkspaceVersion } from "./cargo_version.ts";
 * const text = '[workspace.package]\nversion = "0.1.0"\n';
 * bumpWorkspaceVersion(text, "0.1.0", "0.2.0"); // '[workspace.package]\nversion = "0.2.0"\n'
 * ```
 */
export function bumpWorkspaceVersion(text: string, from: string, to: string): string {
  const before = parseToml(text) as Table;
  if (workspaceVersion(before) !== from) {
    throw new Error(
      `Cannot bump Cargo.toml: [workspace.package] version is ${
        JSON.stringify(workspaceVersion(before) ?? null)
      }, not "${from}"\nHint: every crate inherits the lock-step version from [workspace.package]`,
    );
  }
  const lines = text.split("\n");
  let inSection = false;
  let at = -1;
  for (let i = 0; i < lines.length; i++) {
    const header = lines[i].match(/^\s*\[([^\]]*)\]\s*(#.*)?\r?$/);
    if (header) {
      inSection = header[1].trim() === "workspace.package";
      continue;
    }
    if (inSection && /^\s*version\s*=/.test(lines[i])) {
      at = i;
      break;
    }
  }
  const next = at < 0 ? undefined : lines[at].replace(/^(\s*version\s*=\s*)"[^"]*"/, `$1"${to}"`);
  if (next !== undefined) lines[at] = next;
  const result = lines.join("\n");
  const after = at < 0 ? undefined : parseToml(result) as Table;
  const expected = parseToml(text) as Table;
  ((expected.workspace as Table).package as Table).version = to;
  if (!after || !isDeepStrictEqual(after, expected)) {
    throw new Error(
      `Cannot bump Cargo.toml: its [workspace.package] version is not written as one \`version = "${from}"\` line\nHint: write it so, under the [workspace.package] header`,
    );
  }
  return result;
}

/**
 * Sets the workspace version in `<root>/Cargo.toml` and moves `Cargo.lock`
 * with it (`cargo update --workspace`, offline first: the lock's other
 * packages stay as they are).
 *
 * @param root The repository.
 * @param from The version it holds now.
 * @param to The new version.
 * @throws {Error} When the manifest does not hold `from`, or Cargo fails.
 */
export async function bumpCargoVersion(root: string, from: string, to: string): Promise<void> {
  const path = join(root, "Cargo.toml");
  await Deno.writeTextFile(path, bumpWorkspaceVersion(await Deno.readTextFile(path), from, to));
  for (const extra of [["--offline"], []]) {
    const out = await new Deno.Command("cargo", {
      args: ["update", "--workspace", ...extra],
      cwd: root,
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (out.success) return;
  }
  throw new Error(
    `Cannot update Cargo.lock: cargo update --workspace failed\nHint: run it in ${root} and fix what it reports`,
  );
}
