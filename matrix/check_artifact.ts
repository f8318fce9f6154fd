/**
 * `deno task check-artifact <file> --target <triple>`: the post-build checks
 * every built kernel must pass before it ships.
 *
 * - the file format and CPU read from the binary header (ELF, Mach-O, PE)
 *   match the target, and the file is a shared library;
 * - on Linux, the highest `GLIBC_x.y` symbol version required is at most the
 *   target's glibc floor;
 * - the exported `krepis_*` symbols are exactly the loader's symbol table;
 * - the ABI fingerprint the loader expects is embedded in the file;
 * - the size is reported.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ABI_FINGERPRINT, SYMBOLS } from "../loader/_ffi.ts";
import { type BinaryInfo, inspectBinary } from "./artifact/inspect.ts";
import { compareGlibc } from "./artifact/elf.ts";
import { loadTargetTable, type TargetRow, targetRow } from "./targets.ts";

/** The outcome of the checks. */
export interface ArtifactReport {
  /** What the header says. */
  info: BinaryInfo;
  /** Bytes of the file. */
  size: number;
  /** The highest glibc version required (Linux), else null. */
  glibcMax: string | null;
  /** One `expected …, found …` line per failed check; empty when all pass. */
  problems: string[];
}

const FORMATS: Record<string, BinaryInfo["format"]> = {
  linux: "elf",
  darwin: "macho",
  windows: "pe",
};

/**
 * Runs every post-build check on a library's bytes.
 *
 * @param bytes The file.
 * @param target The target row it was built for.
 * @param symbols The symbols the loader binds. @default the loader's table
 * @param fingerprint The ABI fingerprint the loader expects. @default the loader's
 * @returns The report; `problems` lists what failed.
 */
export function checkArtifact(
  bytes: Uint8Array,
  target: TargetRow,
  symbols: readonly string[] = Object.keys(SYMBOLS),
  fingerprint: string = ABI_FINGERPRINT,
): ArtifactReport {
  const info = inspectBinary(bytes, target.file);
  const problems: string[] = [];
  const format = FORMATS[target.os];
  if (info.format !== format) problems.push(`format: expected ${format}, found ${info.format}`);
  if (info.arch !== target.arch) {
    problems.push(`architecture: expected ${target.arch}, found ${info.arch}`);
  }
  if (!info.sharedLibrary) {
    problems.push("file type: expected a shared library, found another kind of image");
  }
  const glibcMax = info.glibcVersions.at(-1) ?? null;
  if (target.glibcFloor && glibcMax && compareGlibc(glibcMax, `GLIBC_${target.glibcFloor}`) > 0) {
    const tooNew = info.glibcVersions.filter((v) =>
      compareGlibc(v, `GLIBC_${target.glibcFloor}`) > 0
    );
    problems.push(`glibc: expected at most GLIBC_${target.glibcFloor}, found ${tooNew.join(", ")}`);
  }
  const exported = new Set(info.exports.filter((name) => name.startsWith("krepis_")));
  const missing = symbols.filter((name) => !exported.has(name));
  const extra = [...exported].filter((name) => !symbols.includes(name));
  if (missing.length || extra.length) {
    problems.push(
      `exports: expected exactly the loader's ${symbols.length} krepis_* symbols, found ${
        [
          missing.length ? `missing ${missing.join(", ")}` : "",
          extra.length ? `extra ${extra.join(", ")}` : "",
        ]
          .filter(Boolean).join("; ")
      }`,
    );
  }
  if (!includesAscii(bytes, fingerprint)) {
    problems.push(`ABI fingerprint: expected ${fingerprint.slice(0, 16)}… embedded, found none`);
  }
  return { info, size: bytes.length, glibcMax, problems };
}

function includesAscii(bytes: Uint8Array, text: string): boolean {
  const needle = new TextEncoder().encode(text);
  const first = needle[0];
  outer: for (
    let i = bytes.indexOf(first);
    i !== -1 && i <= bytes.length - needle.length;
    i = bytes.indexOf(first, i + 1)
  ) {
    for (let j = 1; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

/** Renders a report as lines for people. */
export function formatReport(path: string, target: TargetRow, report: ArtifactReport): string {
  const lines = [
    `${path} (${target.triple})`,
    `  format       ${report.info.format}, ${report.info.arch}${
      report.info.sharedLibrary ? ", shared library" : ""
    }`,
    `  size         ${report.size} bytes`,
    `  exports      ${
      report.info.exports.filter((n) => n.startsWith("krepis_")).length
    } krepis_* symbols`,
  ];
  if (target.glibcFloor) {
    lines.push(`  glibc        needs ${report.glibcMax ?? "none"} (floor ${target.glibcFloor})`);
  }
  for (const problem of report.problems) lines.push(`  FAIL         ${problem}`);
  return lines.join("\n");
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: { target: { type: "string" } },
  });
  const [path] = positionals;
  if (!path || !values.target) {
    console.error(
      "Cannot check an artifact: usage is `deno task check-artifact <file> --target <triple>`",
    );
    Deno.exit(2);
  }
  const target = targetRow(await loadTargetTable(), values.target);
  const report = checkArtifact(await Deno.readFile(path), target);
  console.log(formatReport(path, target, report));
  if (report.problems.length) {
    console.error(`Cannot accept ${path} for ${target.triple}: ${report.problems.join("; ")}`);
    Deno.exit(1);
  }
}
