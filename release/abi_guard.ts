/**
 * The ABI guard: compares the kernel's exported surface with the previous
 * release's (both read from `include/krepis.h`, which cbindgen renders from
 * the source) and refuses a change the ABI version does not announce:
 * additions need at least a minor bump, removals and changed signatures a
 * major bump.
 *
 * @module
 */

import { type HeaderAbi, parseHeader } from "../lib/header.ts";

/** What changed between two surfaces. */
export interface AbiChange {
  added: string[];
  removed: string[];
  changed: string[];
}

function signatures(abi: HeaderAbi): Map<string, string> {
  return new Map(
    abi.functions.map((f) => [f.name, `${f.returns}(${f.params.map((p) => p.type).join(",")})`]),
  );
}

/** The symbols added, removed and changed from `before` to `after`. */
export function diffAbi(before: HeaderAbi, after: HeaderAbi): AbiChange {
  const a = signatures(before);
  const b = signatures(after);
  return {
    added: [...b.keys()].filter((name) => !a.has(name)),
    removed: [...a.keys()].filter((name) => !b.has(name)),
    changed: [...b.keys()].filter((name) => a.has(name) && a.get(name) !== b.get(name)),
  };
}

/**
 * Checks that the ABI version moved as the surface did.
 *
 * @param previous The previous release's krepis.h and krepis.proto.
 * @param current This tree's krepis.h and krepis.proto.
 * @returns The change, when it is announced.
 * @throws {Error} Naming the symbols, when the bump is missing or too small.
 */
export async function guardAbi(
  previous: { header: string; proto: string },
  current: { header: string; proto: string },
): Promise<AbiChange> {
  const before = await parseHeader(previous.header, previous.proto);
  const after = await parseHeader(current.header, current.proto);
  const change = diffAbi(before, after);
  const from = `${before.major}.${before.minor}`;
  const to = `${after.major}.${after.minor}`;
  const breaking = change.removed.length + change.changed.length > 0;
  const surfaceMoved = breaking || change.added.length > 0 ||
    before.fingerprint !== after.fingerprint;
  const list = [
    change.removed.length ? `removed ${change.removed.join(", ")}` : "",
    change.changed.length ? `changed ${change.changed.join(", ")}` : "",
    change.added.length ? `added ${change.added.join(", ")}` : "",
  ].filter(Boolean).join("; ") || "the fingerprint changed (types or schema)";
  if (breaking && after.major <= before.major) {
    throw new Error(
      `Cannot release: the ABI changed incompatibly (${list}) but its version stayed ${from} → ${to}\nHint: bump KREPIS_ABI_MAJOR in crates/krepis-kernel/src/abi.rs`,
    );
  }
  if (surfaceMoved && after.major === before.major && after.minor <= before.minor) {
    throw new Error(
      `Cannot release: the ABI changed (${list}) but its version stayed ${from} → ${to}\nHint: bump KREPIS_ABI_MINOR in crates/krepis-kernel/src/abi.rs (KREPIS_ABI_MAJOR for incompatible changes)`,
    );
  }
  return change;
}

/** What `abidiff` (Debian abigail-tools) said about two libraries. */
export interface AbidiffResult {
  /** False when abidiff is not installed. */
  ran: boolean;
  /** Exit bit 4: the ABI changed. */
  changed: boolean;
  /** Exit bit 8: an incompatible change (something removed or changed). */
  incompatible: boolean;
  /** abidiff's report. */
  report: string;
}

/**
 * Compares two builds of the kernel with `abidiff` (debug builds give it the
 * DWARF it needs to compare signatures, not only symbol names).
 *
 * @param previous The previous release's library.
 * @param current This tree's library.
 * @returns What abidiff found, or `ran: false` without abidiff.
 * @throws {Error} When abidiff itself fails (bad input).
 */
export async function runAbidiff(previous: string, current: string): Promise<AbidiffResult> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("abidiff", {
      args: [previous, current],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return { ran: false, changed: false, incompatible: false, report: "" };
    }
    throw error;
  }
  const report = new TextDecoder().decode(output.stdout).trim();
  if (output.code & 3) {
    throw new Error(
      `Cannot compare the ABI with abidiff: ${
        new TextDecoder().decode(output.stderr).trim() || report
      }`,
    );
  }
  return {
    ran: true,
    changed: (output.code & 4) !== 0,
    incompatible: (output.code & 8) !== 0,
    report,
  };
}

/**
 * Refuses what abidiff found unless the ABI version announces it.
 *
 * @param result abidiff's finding.
 * @param before The previous ABI version.
 * @param after This tree's ABI version.
 * @throws {Error} With abidiff's report, when the bump is missing or too small.
 */
export function checkAbidiff(
  result: AbidiffResult,
  before: { major: number; minor: number },
  after: { major: number; minor: number },
): void {
  if (!result.ran || !result.changed) return;
  const versions = `${before.major}.${before.minor} → ${after.major}.${after.minor}`;
  if (result.incompatible && after.major <= before.major) {
    throw new Error(
      `Cannot release: abidiff finds an incompatible ABI change but the ABI version stayed ${versions}\n${result.report}\nHint: bump KREPIS_ABI_MAJOR in crates/krepis-kernel/src/abi.rs`,
    );
  }
  if (after.major === before.major && after.minor <= before.minor) {
    throw new Error(
      `Cannot release: abidiff finds an ABI change but the ABI version stayed ${versions}\n${result.report}\nHint: bump KREPIS_ABI_MINOR in crates/krepis-kernel/src/abi.rs`,
    );
  }
}
