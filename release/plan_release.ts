/**
 * The release as a plan (data) before any action: the per-target fragments
 * that `deno task build` wrote (`dist/<dir>/fragment.json` beside the
 * files), checked against the target table and each other, merged into one
 * manifest and the list of files to publish.
 *
 * @module
 */

import { type Manifest, MANIFEST_SCHEMA_VERSION, type ManifestTarget } from "../loader/release.ts";
import type { FragmentSource } from "../matrix/fragment.ts";
import type { TargetRow } from "../matrix/targets.ts";
import { type PackedFile, sha256Hex } from "../matrix/pack_artifact.ts";

/** What a release publishes. */
export interface ReleasePlan {
  manifest: Manifest;
  files: PackedFile[];
}

/**
 * Merges fragments into a release plan.
 *
 * @param sources The fragments.
 * @param rows The target table.
 * @param targets The triples to publish. @default every target in the table
 * @returns The manifest and the files (re-hashed from disk).
 * @throws {Error} When a target is missing, not in the table, or its files
 *   differ from its fragment, or fragments disagree on version or ABI.
 */
export async function planRelease(
  sources: FragmentSource[],
  rows: TargetRow[],
  targets?: string[],
): Promise<ReleasePlan> {
  const wanted = [...new Set(targets ?? rows.map((row) => row.triple))];
  if (wanted.length === 0) {
    throw new Error(
      "Cannot plan the release: no targets were named\nHint: --targets takes a comma-separated list of triples",
    );
  }
  const unknown = wanted.filter((triple) => !rows.some((row) => row.triple === triple));
  if (unknown.length) {
    throw new Error(
      `Cannot plan the release: ${
        unknown.join(", ")
      } is not in matrix/targets.json\nHint: targets are ${rows.map((r) => r.triple).join(", ")}`,
    );
  }
  const found = new Map<string, FragmentSource>();
  for (const source of sources) {
    const triple = source.fragment.target.triple;
    const other = found.get(triple);
    if (other) {
      throw new Error(
        `Cannot plan the release: two builds of ${triple} (${other.dir} and ${source.dir})\nHint: remove the stale one; the release must not pick one silently`,
      );
    }
    found.set(triple, source);
  }
  const missing = wanted.filter((triple) => !found.has(triple));
  if (missing.length) {
    throw new Error(
      `Cannot plan the release: no build for ${missing.join(", ")} (found ${
        [...found.keys()].join(", ") || "none"
      })\nHint: build every target, or publish a subset with --targets`,
    );
  }
  const chosen = wanted.map((triple) => found.get(triple)!);
  const [first] = chosen;
  const disagree = chosen.filter((s) =>
    s.fragment.version !== first.fragment.version ||
    s.fragment.abi.major !== first.fragment.abi.major ||
    s.fragment.abi.minor !== first.fragment.abi.minor ||
    s.fragment.abi.fingerprint !== first.fragment.abi.fingerprint
  );
  if (disagree.length) {
    const show = (s: FragmentSource) =>
      `${s.fragment.target.triple}: ${s.fragment.version}, ABI ${s.fragment.abi.major}.${s.fragment.abi.minor} ${
        s.fragment.abi.fingerprint.slice(0, 16)
      }`;
    throw new Error(
      `Cannot plan the release: the builds disagree (${show(first)}; ${
        disagree.map(show).join("; ")
      })\nHint: rebuild every target from one commit`,
    );
  }
  const files: PackedFile[] = [];
  const entries: ManifestTarget[] = [];
  for (const source of chosen) {
    const entry = source.fragment.target;
    const row = rows.find((r) => r.triple === entry.triple)!;
    const expected = [row.file, `${row.file}.zst`, `${row.file}.gz`];
    const listed = [entry, entry.compressed.zstd, entry.compressed.gzip];
    for (const [i, item] of listed.entries()) {
      if (!item || item.file !== expected[i]) {
        throw new Error(
          `Cannot plan the release: the ${entry.triple} fragment names ${
            item?.file ?? "nothing"
          }, the table expects ${
            expected[i]
          }\nHint: rebuild it with \`deno task build --target ${entry.triple}\``,
        );
      }
      const bytes = await Deno.readFile(`${source.dir}/${item.file}`);
      const sha256 = sha256Hex(bytes);
      if (bytes.length !== item.size || sha256 !== item.sha256) {
        throw new Error(
          `Cannot plan the release: ${source.dir}/${item.file} has ${bytes.length} bytes with SHA-256 ${sha256}, its fragment says ${item.size} bytes with ${item.sha256}\nHint: rebuild ${entry.triple}; the file changed after the build`,
        );
      }
      files.push({ name: item.file, bytes });
    }
    entries.push(entry);
  }
  // Table order, so the manifest does not depend on directory listing order.
  entries.sort((a, b) =>
    rows.findIndex((r) => r.triple === a.triple) - rows.findIndex((r) => r.triple === b.triple)
  );
  return {
    manifest: {
      schema: MANIFEST_SCHEMA_VERSION,
      version: first.fragment.version,
      abi: first.fragment.abi,
      targets: entries,
    },
    files,
  };
}
