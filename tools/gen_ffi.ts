/**
 * Renders `loader/_ffi.ts` (the Deno symbol table, the ABI version, the ABI
 * fingerprint and the result codes) from `include/krepis.h`, the header
 * cbindgen renders from the kernel's Rust source. Signatures are never
 * copied by hand.
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
  const define = (name: string) => {
    const match = header.match(new RegExp(`^#define ${name} (\\d+)$`, "m"));
    if (!match) throw new Error(`Cannot parse krepis.h: no #define ${name}`);
    return Number(match[1]);
  };
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
    major: define("KREPIS_ABI_MAJOR"),
    minor: define("KREPIS_ABI_MINOR"),
    fingerprint: await abiFingerprint(header, proto),
    functions,
    results,
  };
}

/**
 * Maps a C type from the header to a Deno FFI type. Pointer parameters are
 * `"buffer"` (a typed array or null is passed); pointer results are
 * `"pointer"`.
 *
 * @param type A C type, e.g. `const uint8_t *`.
 * @param position Whether the type is a parameter or the result.
 * @returns The Deno FFI native type.
 * @throws {Error} For a type the loader does not know how to pass.
 */
export function denoType(type: string, position: "param" | "result"): string {
  if (type.endsWith("*")) return position === "param" ? "buffer" : "pointer";
  const scalars: Record<string, string> = {
    void: "void",
    bool: "bool",
    uint8_t: "u8",
    int8_t: "i8",
    uint16_t: "u16",
    int16_t: "i16",
    uint32_t: "u32",
    int32_t: "i32",
    uint64_t: "u64",
    int64_t: "i64",
    size_t: "usize",
    KrepisResult: "u32",
  };
  const mapped = scalars[type];
  if (!mapped) throw new Error(`Cannot map C type "${type}" to a Deno FFI type`);
  return mapped;
}

/**
 * Renders the text of `loader/_ffi.ts` (unformatted; `deno fmt` it).
 *
 * @param header The text of krepis.h.
 * @param proto The text of krepis.proto (for the fingerprint).
 * @returns TypeScript source.
 */
export async function renderFfiModule(header: string, proto: string): Promise<string> {
  const abi = await parseHeader(header, proto);
  const symbols = abi.functions.map((f) => {
    const params = f.params.map((p) => JSON.stringify(denoType(p.type, "param"))).join(", ");
    const result = JSON.stringify(denoType(f.returns, "result"));
    const signature = `${f.returns} ${f.name}(${
      f.params.map((p) => `${p.type} ${p.name}`).join(", ") || "void"
    })`;
    return `  /** \`${
      signature.replace(/\s+\*/g, " *")
    }\` */\n  ${f.name}: { parameters: [${params}], result: ${result} },`;
  });
  const results = abi.results.map(([name, value]) => `  ${value}: ${JSON.stringify(name)},`);
  return `// Generated by tools/gen_ffi.ts from crates/krepis-kernel/include/krepis.h
// and proto/krepis.proto.
// Do not edit: run \`deno task gen\`. tests/codegen_test.ts fails when stale.

/** The ABI major version of the header this loader was generated from. */
export const ABI_MAJOR = ${abi.major};

/** The ABI minor version of the header this loader was generated from. */
export const ABI_MINOR = ${abi.minor};

/** SHA-256 of the header's normalized declarations and the schema. */
export const ABI_FINGERPRINT = ${JSON.stringify(abi.fingerprint)};

/** Every kernel export, typed for \`Deno.dlopen\`. */
export const SYMBOLS = {
${symbols.join("\n")}
} as const;

/** Result code values and their names (without the \`KREPIS_RESULT_\` prefix). */
export const RESULT_NAMES: Readonly<Record<number, string>> = {
${results.join("\n")}
};
`;
}
