/**
 * The kernel's C ABI as `include/krepis.h` declares it: the exported
 * functions, the ABI version, the result codes and the ABI fingerprint
 * (which must match `abi_fingerprint` in crates/krepis-kernel/build.rs).
 * The one parser of the header: codegen (`tools/gen_ffi.ts`) and the
 * release preflight (`release/abi_guard.ts`, `release/cut.ts`) use it.
 *
 * @module
 */

/** One exported function as the header declares it. */
export interface CFunction {
  name: string;
  returns: string;
  params: { type: string; name: string }[];
}

/** What the header says about the ABI. */
export interface HeaderAbi {
  major: number;
  minor: number;
  fingerprint: string;
  functions: CFunction[];
  results: [string, number][];
}

/**
 * Folds the header to its declarations: comments and preprocessor lines
 * removed, white space folded to single spaces. Must match
 * `normalize_header` in crates/krepis-kernel/build.rs.
 *
 * @param header The text of krepis.h.
 * @returns The normalized declarations.
 */
export function normalizeHeader(header: string): string {
  const noBlockComments = header.replace(/\/\*[\s\S]*?(\*\/|$)/g, "");
  const words: string[] = [];
  for (const line of noBlockComments.split("\n")) {
    const code = line.split("//")[0];
    if (code.trimStart().startsWith("#")) continue;
    words.push(...code.split(/\s+/).filter((w) => w.length > 0));
  }
  return words.join(" ");
}

/**
 * The ABI fingerprint: SHA-256 (hex) of the header's normalized
 * declarations and the normalized control-plane schema, joined by a newline:
 * the same digest the kernel computes at build time.
 *
 * @param header The text of krepis.h.
 * @param proto The text of krepis.proto.
 * @returns 64 lowercase hex digits.
 */
export async function abiFingerprint(header: string, proto: string): Promise<string> {
  const bytes = new TextEncoder().encode(`${normalizeHeader(header)}\n${normalizeHeader(proto)}`);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Reads the ABI version, functions and result codes from krepis.h.
 *
 * @param header The text of krepis.h.
 * @param proto The text of krepis.proto (for the fingerprint).
 * @returns The parsed ABI.
 * @throws {Error} When a define is missing or a declaration cannot be read.
 */
export async function parseHeader(header: string, proto: string): Promise<HeaderAbi> {
  const { major, minor } = headerAbiVersion(header);
  const declarations = normalizeHeader(header);
  const functions: CFunction[] = [];
  for (const match of declarations.matchAll(/([\w\s*]+?)\s*\b(krepis_\w+)\(([^)]*)\);/g)) {
    const [, returns, name, paramList] = match;
    const params = paramList.trim() === "void" ? [] : paramList.split(",").map((param) => {
      const p = param.trim().match(/^(.*?)\s*(\w+)$/);
      if (!p) throw new Error(`Cannot parse krepis.h: parameter "${param}" of ${name}`);
      return { type: p[1].trim(), name: p[2] };
    });
    functions.push({ name, returns: returns.trim(), params });
  }
  if (functions.length === 0) throw new Error("Cannot parse krepis.h: no krepis_ functions");
  const results: [string, number][] = [];
  for (const match of declarations.matchAll(/\bKREPIS_RESULT_(\w+) = (\d+)/g)) {
    results.push([match[1], Number(match[2])]);
  }
  return {
    major,
    minor,
    fingerprint: await abiFingerprint(header, proto),
    functions,
    results,
  };
}

/**
 * The ABI version the header declares (`KREPIS_ABI_MAJOR`, `KREPIS_ABI_MINOR`).
 *
 * @param header The text of krepis.h.
 * @returns Major and minor.
 * @throws {Error} When either is missing.
 */
export function headerAbiVersion(header: string): { major: number; minor: number } {
  const define = (name: string) => {
    const match = header.match(new RegExp(`^#define ${name} (\\d+)$`, "m"));
    if (!match) throw new Error(`Cannot parse krepis.h: no #define ${name}`);
    return Number(match[1]);
  };
  return { major: define("KREPIS_ABI_MAJOR"), minor: define("KREPIS_ABI_MINOR") };
}
