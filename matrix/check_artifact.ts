/**
 * `deno task check-artifact <file> --target <triple>`: the post-build checks
 * every built kernel must pass before it ships.
 *
 * - the file format and CPU read from the binary header (ELF, Mach-O, PE)
 *   match the target, and the file is a shared library;
 * - on Linux, the highest `GLIBC_x.y` symbol version required is at most the
 *   target's glibc floor;
 * - the exported `krepis_*` symbols are exactly the loader's symbol table,
 *   and nothing else is exported but the C API of a linked crate that
 *   rustc's export list names on every OS ({@linkcode DEPENDENCY_C_API}):
 *   a linker that ignores that list (zig's, for Mach-O) would export
 *   every Rust and C symbol;
 * - the ABI fingerprint the loader expects is embedded in the file;
 * - the imported libraries (ELF `DT_NEEDED`, PE import and delay-load DLLs,
 *   Mach-O `LC_LOAD_DYLIB`) are listed, and any a fresh machine of the OS
 *   lacks is refused (rules in `artifact/imports.ts`: no MSVC runtime DLL on
 *   Windows, only glibc and libgcc on Linux, only system libraries and
 *   frameworks on macOS);
 * - on macOS, the install name (`LC_ID_DYLIB`) is `@rpath/<release file
 *   name>` and the minimum macOS version is at most the table's
 *   `macosDeploymentTarget`;
 * - on macOS targets, the code signature's page hashes match the file
 *   (verified from the bytes on any OS; required on arm64, which maps only
 *   signed code), and on a Mac `codesign -v` accepts it too;
 * - with `release`, a Mach-O file is stripped (no local or debug symbols
 *   left);
 * - the size is reported.
 *
 * @module
 */

import { commandLine, exitUsage, invocationPath, printError } from "../lib/task.ts";
import { ABI_FINGERPRINT, SYMBOLS } from "../loader/_gen/ffi.ts";
import { type BinaryInfo, inspectBinary } from "./artifact/inspect.ts";
import { compareGlibc } from "./artifact/elf.ts";
import { compareVersions } from "./artifact/binary.ts";
import { refuseImport } from "./artifact/imports.ts";
import { verifyCodeSignature } from "./artifact/codesign.ts";
import { loadTargetTable, type TargetRow, targetRow } from "./targets.ts";

/** The outcome of the checks. */
export interface ArtifactReport {
  /** What the header says. */
  info: BinaryInfo;
  /** Bytes of the file. */
  size: number;
  /** The highest glibc version required (Linux), else null. */
  glibcMax: string | null;
  /** What became of the code signature check: `valid (codesign -v)`, or why it was not checked. */
  codeSignature: string;
  /** One `expected …, found …` line per failed check; empty when all pass. */
  problems: string[];
}

/**
 * Exports allowed besides the loader's symbols: the C API that the `brotli`
 * crate (pulled in by the server engine's compression) defines with
 * `#[no_mangle]`, which rustc's export list for a cdylib includes on every
 * OS (the Linux build exports it too).
 */
export const DEPENDENCY_C_API: RegExp = /^C?Br(otli|occoli)[A-Z]\w*$/;

/** Symbols a Mach-O linker defines in every dylib (zig's leaves them external). */
const MACHO_LINKER_SYMBOLS = new Set(["_mh_dylib_header", "__dso_handle"]);

/** Options for {@linkcode checkArtifact}. */
export interface CheckOptions {
  /** A release build: a Mach-O file must be stripped. @default {false} */
  release?: boolean;
}

/** Options for {@linkcode checkArtifactFile} and {@linkcode checkCodeSignature}. */
export interface CheckFileOptions {
  /** The OS this runs on; `codesign -v` runs only on `darwin`. @default {Deno.build.os} */
  os?: typeof Deno.build.os;
  /** The codesign command. @default {"codesign"} */
  codesign?: string;
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
 * @param options `release`: the file must be stripped (Mach-O).
 * @returns The report; `problems` lists what failed.
 */
export function checkArtifact(
  bytes: Uint8Array,
  target: TargetRow,
  symbols: readonly string[] = Object.keys(SYMBOLS),
  fingerprint: string = ABI_FINGERPRINT,
  options: CheckOptions = {},
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
  const foreign = info.exports.filter((name) =>
    !name.startsWith("krepis_") && !DEPENDENCY_C_API.test(name) &&
    !(info.format === "macho" && MACHO_LINKER_SYMBOLS.has(name))
  );
  if (foreign.length) {
    problems.push(
      `exports: expected only the loader's symbols (and brotli's C API), found ${foreign.length} more: ${
        foreign.slice(0, 5).join(", ")
      }${foreign.length > 5 ? ", …" : ""}`,
    );
  }
  if (!includesAscii(bytes, fingerprint)) {
    problems.push(`ABI fingerprint: expected ${fingerprint.slice(0, 16)}… embedded, found none`);
  }
  const refused = info.imports.flatMap((name) => {
    const reason = refuseImport(info.format, name);
    return reason ? [`${name} (${reason})`] : [];
  });
  if (refused.length) {
    problems.push(`imports: expected only system libraries, found ${refused.join(", ")}`);
  }
  if (info.format === "macho") {
    const installName = `@rpath/${target.file}`;
    if (info.installName !== installName) {
      problems.push(`install name: expected ${installName}, found ${info.installName ?? "none"}`);
    }
    const floor = target.macosDeploymentTarget;
    if (floor && (!info.minMacos || compareVersions(info.minMacos, floor) > 0)) {
      problems.push(
        `minimum macOS: expected at most ${floor} (the table's macosDeploymentTarget), found ${
          info.minMacos ?? "none"
        }`,
      );
    }
    if (options.release && (info.localSymbols || info.debugSymbols)) {
      problems.push(
        `stripped: expected no local or debug symbols in a release build, found ${info.localSymbols} local, ${info.debugSymbols} debug`,
      );
    }
  }
  let codeSignature = Deno.build.os === "darwin"
    ? "not checked (bytes only: checkArtifactFile runs codesign -v)"
    : "not checked (not on macOS)";
  if (info.format === "macho") {
    const signature = verifyCodeSignature(bytes);
    if (!signature.signed) {
      codeSignature = "none";
      if (info.arch === "aarch64") {
        problems.push(
          "code signature: expected one (arm64 macOS maps only signed code), found none",
        );
      } else if (options.release) {
        // The release build signs both CPUs ad hoc (build.rs: -adhoc_codesign), so a
        // missing signature on x86_64 means the link lost the flag.
        problems.push(
          "code signature: expected one in a release build (the build signs every macOS dylib ad hoc), found none",
        );
      }
    } else if (signature.problem) {
      codeSignature = "invalid";
      problems.push(
        `code signature: expected every page hash to match, found ${signature.problem}`,
      );
    } else {
      codeSignature = `valid (${signature.adhoc ? "ad hoc" : "with an identity"}${
        signature.linkerSigned ? ", by the linker" : ""
      }; ${signature.pages} ${signature.hash} page hashes verified)`;
    }
  }
  return { info, size: bytes.length, glibcMax, codeSignature, problems };
}

/**
 * The code signature line when the byte-level check (Mach-O) and
 * `codesign -v` (on a Mac) both say something; only one when the other
 * did not run.
 */
export function mergeSignature(fromBytes: string, fromCodesign: string): string {
  if (fromBytes.startsWith("not checked")) return fromCodesign;
  if (fromCodesign.startsWith("not checked")) return fromBytes;
  return `${fromBytes}; ${fromCodesign}`;
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

/** What {@linkcode checkCodeSignature} found. */
export interface CodeSignatureCheck {
  /** For the report: `valid (codesign -v)`, `invalid`, or why it was not checked. */
  codeSignature: string;
  /** An `expected …, found …` line when the check failed, else null. */
  problem: string | null;
}

/**
 * On a Mac, runs `codesign -v` on a library: Apple Silicon refuses to map
 * code without a valid signature; the linker signs ad hoc, and a later
 * rewrite of the file (`strip`, `install_name_tool`) can break it.
 * Elsewhere the signature is not checked, and the result says so.
 *
 * @param path The library.
 * @param options The OS and codesign command (for tests).
 * @returns What the report shows, and the problem if any.
 */
export async function checkCodeSignature(
  path: string,
  options: CheckFileOptions = {},
): Promise<CodeSignatureCheck> {
  if ((options.os ?? Deno.build.os) !== "darwin") {
    return { codeSignature: "not checked (not on macOS)", problem: null };
  }
  try {
    const output = await new Deno.Command(options.codesign ?? "codesign", {
      args: ["-v", path],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (output.success) return { codeSignature: "valid (codesign -v)", problem: null };
    const said = new TextDecoder().decode(output.stderr).trim().replaceAll("\n", " ");
    return {
      codeSignature: "invalid",
      problem: `code signature: expected codesign -v to accept it, found exit code ${output.code}${
        said ? `: ${said}` : ""
      }`,
    };
  } catch (error) {
    return {
      codeSignature: "not checked (codesign did not run)",
      problem: `code signature: expected codesign -v to run, found ${(error as Error).message}`,
    };
  }
}

/**
 * Runs every post-build check on a library file: {@linkcode checkArtifact}
 * on its bytes, then {@linkcode checkCodeSignature} on the file.
 *
 * @param path The library.
 * @param target The target row it was built for.
 * @param options The OS and codesign command (for tests).
 * @returns The report; `problems` lists what failed.
 * @throws {Error} When the file cannot be read or is no shared library format.
 */
export async function checkArtifactFile(
  path: string,
  target: TargetRow,
  options: CheckFileOptions & CheckOptions = {},
): Promise<ArtifactReport> {
  const report = checkArtifact(await Deno.readFile(path), target, undefined, undefined, options);
  const signature = await checkCodeSignature(path, options);
  report.codeSignature = signature.problem
    ? signature.codeSignature
    : mergeSignature(report.codeSignature, signature.codeSignature);
  if (signature.problem) report.problems.push(signature.problem);
  return report;
}

/** Renders a report as lines for people. */
export function formatReport(path: string, target: TargetRow, report: ArtifactReport): string {
  const { info } = report;
  const line = (label: string, text: string) => `  ${label.padEnd(15)} ${text}`;
  const lines = [
    `${path} (${target.triple})`,
    line("format", `${info.format}, ${info.arch}${info.sharedLibrary ? ", shared library" : ""}`),
    line("size", `${report.size} bytes`),
    line(
      "exports",
      `${info.exports.filter((n) => n.startsWith("krepis_")).length} krepis_* symbols, ${
        info.exports.filter((n) => !n.startsWith("krepis_")).length
      } others`,
    ),
    line("imports", info.imports.length ? info.imports.join(", ") : "none"),
  ];
  if (target.glibcFloor) {
    lines.push(line("glibc", `needs ${report.glibcMax ?? "none"} (floor ${target.glibcFloor})`));
  }
  if (info.format === "macho") {
    lines.push(line("install name", info.installName ?? "none"));
    lines.push(
      line(
        "symbols",
        info.localSymbols || info.debugSymbols
          ? `${info.localSymbols} local, ${info.debugSymbols} debug (not stripped)`
          : "stripped (no local or debug symbols)",
      ),
    );
  }
  if (target.macosDeploymentTarget) {
    lines.push(
      line(
        "minimum macOS",
        `${info.minMacos ?? "none"} (deployment target ${target.macosDeploymentTarget})`,
      ),
    );
  }
  lines.push(line("code signature", report.codeSignature));
  for (const problem of report.problems) lines.push(line("FAIL", problem));
  return lines.join("\n");
}

if (import.meta.main) {
  const { values, positionals } = commandLine({
    name: "deno task check-artifact",
    summary: "run the post-build checks every built kernel must pass before it ships",
    usage: ["<file> --target <triple> [--release]"],
    maxPositionals: 1,
    options: {
      target: {
        type: "string",
        value: "<triple>",
        help: "the row of matrix/targets.json the file was built for (required)",
      },
      release: {
        type: "boolean",
        help: "a release build: a Mach-O file must also be stripped",
      },
    },
    exitCodes: {
      0: "every check passed",
      1: "a check failed (each FAIL line says which), or the file or target is unknown",
      2: "usage error",
    },
    more: `Checks: format and CPU, shared library, the glibc floor (Linux), the exported
krepis_* symbols and nothing else (but brotli's C API), the embedded ABI fingerprint,
the imported libraries, the install name, minimum macOS and the code signature's page
hashes (macOS; on a Mac \`codesign -v\` too), and with --release that a Mach-O file is
stripped.`,
  });
  const [path] = positionals;
  if (!path || !values.target) {
    exitUsage(
      "Cannot check an artifact: usage is `deno task check-artifact <file> --target <triple>`\nHint: `deno task check-artifact --help` lists the options",
    );
  }
  let target;
  try {
    target = targetRow(await loadTargetTable(), values.target);
  } catch (error) {
    exitUsage((error as Error).message);
  }
  let report;
  try {
    report = await checkArtifactFile(invocationPath(path), target, { release: values.release });
  } catch (error) {
    printError(
      error instanceof Deno.errors.NotFound
        ? `Cannot check ${path}: no such file\nHint: deno task build writes dist/<triple>/<file>`
        : (error as Error).message.startsWith("Cannot ")
        ? (error as Error).message
        : `Cannot check ${path}: ${(error as Error).message}`,
    );
    Deno.exit(1);
  }
  console.log(formatReport(path, target, report));
  if (report.problems.length) {
    printError(`Cannot accept ${path} for ${target.triple}: ${report.problems.join("; ")}`);
    Deno.exit(1);
  }
}
