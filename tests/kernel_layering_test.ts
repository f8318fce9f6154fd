/**
 * The kernel crate's one direction (crates/krepis-kernel/src): its modules,
 * read from the `mod` declarations down from lib.rs, and who imports whom,
 * read from every path a file writes (see {@link graphOf}). The rules:
 *
 * - the layers of lib.rs's module doc, {@link LAYERS}: a module imports only
 *   modules of a lower layer, so there is no import circle either;
 * - the dispatcher (`control`) is imported only by the C boundary (`call`);
 * - `proto` is the only public module of lib.rs, and lib.rs re-exports
 *   nothing but `result::KrepisResult`;
 * - no glob import of the crate root, no `extern crate self`;
 * - `Failure`, the one error type, is defined in `result.rs` only.
 *
 * Each rule is also run on a small planted tree that breaks it, so that the
 * check is seen to fail.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../lib/cargo_build.ts";

/** The kernel crate's source folder. */
const KERNEL_SRC = join(REPO_ROOT, "crates", "krepis-kernel", "src");

/** The dispatcher, and the one module it may be imported by. */
const DISPATCHER = "control";
const DISPATCHER_IMPORTERS = ["call"];

/** What lib.rs may re-export publicly: `pub use <path>` (with no alias), the path as written from lib.rs. */
const PUBLIC_REEXPORTS = ["result::KrepisResult"];

/**
 * The kernel's layers, from the bottom up, as lib.rs's module doc lists
 * them: a module imports only modules of a lower layer (its own submodules
 * aside). Two modules of one layer import neither each other: the docs
 * allow no such edge.
 */
export const LAYERS: readonly (readonly string[])[] = [
  ["result"],
  ["panic"],
  ["error"],
  ["memory", "fault", "pin", "build_info", "proto"],
  ["view"],
  ["files"],
  ["journal"],
  ["server"],
  ["control"],
  ["ffi"],
  ["abi", "call"],
];

/** A crate read from disk: each module's path (`journal::store`, `crate` for lib.rs), its file and its code. */
export interface CrateModule {
  /** The file, relative to the source folder, with `/`. */
  file: string;
  /** The code with comments, strings and character literals blanked out. */
  code: string;
}

/** A crate's modules and the imports between them. */
export interface CrateGraph {
  /** Module path → module. */
  modules: Map<string, CrateModule>;
  /** Module path → the module paths it imports (never itself). */
  imports: Map<string, Set<string>>;
  /** What the reading itself rejects (a glob of the crate root, `extern crate self`), one line each. */
  problems: string[];
}

/**
 * Rust code with comments, string literals and character literals replaced
 * by spaces (offsets kept), so that what is left is code.
 */
export function codeOf(text: string): string {
  const out = text.split("");
  const blank = (from: number, to: number) => {
    for (let k = from; k < to; k++) if (out[k] !== "\n") out[k] = " ";
  };
  let i = 0;
  while (i < text.length) {
    const rest = text.slice(i, i + 3);
    if (rest.startsWith("//")) {
      const end = text.indexOf("\n", i);
      const stop = end < 0 ? text.length : end;
      blank(i, stop);
      i = stop;
    } else if (rest.startsWith("/*")) {
      let depth = 0;
      let j = i;
      while (j < text.length) {
        if (text.startsWith("/*", j)) {
          depth++;
          j += 2;
        } else if (text.startsWith("*/", j)) {
          depth--;
          j += 2;
          if (depth === 0) break;
        } else j++;
      }
      blank(i, j);
      i = j;
    } else if (/^(?:b?r#*")/.test(text.slice(i, i + 40)) && !/[\w]/.test(text[i - 1] ?? "")) {
      const m = /^b?r(#*)"/.exec(text.slice(i, i + 40))!;
      const close = `"${m[1]}`;
      const end = text.indexOf(close, i + m[0].length);
      const stop = end < 0 ? text.length : end + close.length;
      blank(i, stop);
      i = stop;
    } else if (text[i] === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      blank(i, j + 1);
      i = j + 1;
    } else if (text[i] === "'") {
      const m = /^'(?:\\(?:u\{[0-9a-fA-F]+\}|x[0-9a-fA-F]{2}|.)|[^\\'\n])'/.exec(
        text.slice(i, i + 12),
      );
      if (m) {
        blank(i, i + m[0].length);
        i += m[0].length;
      } else i++;
    } else i++;
  }
  return out.join("");
}

/**
 * One name a `use` tree binds: the path it names, the name it binds there
 * (the last segment or its `as` alias; `null` for `as _` and for a glob) and
 * whether it is a glob (`path::*`).
 */
export interface UseEntry {
  /** The path, e.g. `crate::journal` for `crate::journal::{self as j}`. */
  path: string;
  /** The name bound, or `null`. */
  name: string | null;
  /** Whether the entry is `path::*`. */
  glob: boolean;
}

/** The entries of a `use` tree, e.g. `crate::{a::{b, c as d}, *}` → `crate::a::b`, `crate::a::c` as `d`, `crate::*`. */
export function useTreeEntries(tree: string): UseEntry[] {
  const text = tree.replace(/\s+/g, " ").trim().replace(/\s*(::|\{|\}|,)\s*/g, "$1");
  const open = text.indexOf("{");
  if (open < 0) {
    const m = /^(.*?)(?: as (\w+))?$/.exec(text)!;
    if (m[1] === "*" || m[1].endsWith("::*")) {
      return [{ path: m[1].replace(/:*\*$/, ""), name: null, glob: true }];
    }
    const path = m[1].replace(/::self$/, "");
    const name = m[2] ?? path.split("::").pop()!;
    return [{ path, name: name === "_" ? null : name, glob: false }];
  }
  const prefix = text.slice(0, open);
  const inner = text.slice(open + 1, text.lastIndexOf("}"));
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let k = 0; k < inner.length; k++) {
    if (inner[k] === "{") depth++;
    else if (inner[k] === "}") depth--;
    else if (inner[k] === "," && depth === 0) {
      parts.push(inner.slice(start, k));
      start = k + 1;
    }
  }
  parts.push(inner.slice(start));
  return parts.filter((part) => part !== "").flatMap((part) => {
    const self = /^self(?: as (\w+))?$/.exec(part);
    if (!self) return useTreeEntries(prefix + part);
    const path = prefix.replace(/::$/, "");
    const name = self[1] ?? path.split("::").pop()!;
    return [{ path, name: name === "_" ? null : name, glob: false }];
  });
}

/** The paths a `use` tree names, e.g. `crate::{a::{b, c}, d}` → `crate::a::b`, `crate::a::c`, `crate::d`. */
export function useTreePaths(tree: string): string[] {
  return useTreeEntries(tree).map((entry) => entry.path);
}

/** Inline `mod name { … }` blocks of a file: their name and span. */
function inlineModules(code: string): { name: string; from: number; to: number }[] {
  const found: { name: string; from: number; to: number }[] = [];
  for (const m of code.matchAll(/\bmod\s+(\w+)\s*\{/g)) {
    let depth = 0;
    let k = m.index! + m[0].length - 1;
    for (; k < code.length; k++) {
      if (code[k] === "{") depth++;
      else if (code[k] === "}" && --depth === 0) break;
    }
    found.push({ name: m[1], from: m.index!, to: k });
  }
  return found;
}

/** Every path a file writes that starts with a name followed by `::` (a child module's, perhaps). */
function barePathsIn(code: string): { path: string; at: number }[] {
  const outsideUses = code.replace(/\buse\s+[^;]+;/g, (s) => " ".repeat(s.length));
  return [...outsideUses.matchAll(/(?<![\w:])\w+(?:::\w+)+/g)].map((m) => ({
    path: m[0],
    at: m.index!,
  }));
}

/** Reads the crate rooted at `src/lib.rs`, following `mod name;` declarations. */
export async function readCrate(src: string): Promise<Map<string, CrateModule>> {
  const modules = new Map<string, CrateModule>();
  async function visit(path: string, file: string, childDir: string): Promise<void> {
    // Raw identifiers (`r#control`) name the same item as the bare identifier.
    const code = codeOf(await Deno.readTextFile(join(src, ...file.split("/"))))
      .replace(/\br#(?=[A-Za-z_])/g, "");
    modules.set(path, { file, code });
    for (const m of code.matchAll(/\bmod\s+(\w+)\s*;/g)) {
      const name = m[1];
      const child = path === "crate" ? name : `${path}::${name}`;
      const flat = `${childDir}${name}.rs`;
      const nested = `${childDir}${name}/mod.rs`;
      const exists = async (f: string) => {
        try {
          return (await Deno.stat(join(src, ...f.split("/")))).isFile;
        } catch {
          return false;
        }
      };
      if (await exists(flat)) await visit(child, flat, `${childDir}${name}/`);
      else if (await exists(nested)) await visit(child, nested, `${childDir}${name}/`);
      else {throw new Error(
          `Cannot read the crate: ${file} declares mod ${name}, but neither ${flat} nor ${nested} exists`,
        );}
    }
  }
  await visit("crate", "lib.rs", "");
  return modules;
}

/** A module path's segments (`[]` for the crate root). */
const segmentsOf = (path: string): string[] => path === "crate" ? [] : path.split("::");
/** A module path from its segments. */
const pathOf = (segments: string[]): string => segments.length ? segments.join("::") : "crate";

/**
 * The import graph of a crate. Every path a file writes (in a `use` tree or
 * inline, `$crate::…` in a macro body included) is resolved as rustc does, to
 * the deepest module it names: `crate::`, `self::`, `super::` and `$crate::`
 * from where they stand; any other first segment through the names the
 * module binds: its child modules, its `use` entries (with their `as`
 * aliases) and the names its globs bring in; and each later segment through
 * the names bound in the module reached so far, so that a re-export
 * (`pub use opened::Journal`) leads to the module that defines the item.
 *
 * A glob of the crate root (`use crate::*;`, or `use super::*;` in a
 * top-level module) is resolved like any glob (it binds every top-level
 * module's name, so `control::handle()` after it imports `control`), and is
 * also rejected on its own: it puts the whole crate in scope, so that what a
 * file depends on can no longer be read from what it writes. `extern crate
 * self as k;` is rejected for the same reason (`k::control` from anywhere).
 *
 * Macros: a `macro_rules!` body is read as code of the file that defines
 * it, so `$crate::control::…` in it counts as that file's import. The files
 * where the macro is used are not traced.
 */
export function graphOf(modules: Map<string, CrateModule>): CrateGraph {
  const problems: string[] = [];
  // Scopes (a file's module or an inline module in it) → their `use` entries.
  const scopes = new Map<string, UseEntry[]>();
  const written: { module: string; file: string; scope: string[]; path: string; glob: boolean }[] =
    [];
  for (const [path, { file, code }] of modules) {
    const inline = inlineModules(code);
    // The module a path is written in: the file's, plus the inline modules
    // (`mod tests { … }`) around it.
    const scopeAt = (at: number) => [
      ...segmentsOf(path),
      ...inline.filter((m) => m.from <= at && at <= m.to).map((m) => m.name),
    ];
    if (!scopes.has(path)) scopes.set(path, []);
    for (const m of code.matchAll(/\buse\s+([^;]+);/g)) {
      const scope = scopeAt(m.index!);
      const entries = scopes.get(pathOf(scope)) ?? [];
      scopes.set(pathOf(scope), entries);
      for (const entry of useTreeEntries(m[1])) {
        entries.push(entry);
        written.push({ module: path, file, scope, path: entry.path, glob: entry.glob });
      }
    }
    for (const { path: inlinePath, at } of barePathsIn(code)) {
      written.push({ module: path, file, scope: scopeAt(at), path: inlinePath, glob: false });
    }
    if (/\bextern\s+crate\s+self\b/.test(code)) {
      problems.push(`${file}: extern crate self (names the crate root from anywhere)`);
    }
  }
  const isScope = (segments: string[]) =>
    modules.has(pathOf(segments)) || scopes.has(pathOf(segments));
  const active = new Set<string>();
  // What `name` stands for in `scope`: a path (segments from the root),
  // `null` for something outside the crate, `undefined` when unbound.
  const lookup = (scope: string[], name: string): string[] | null | undefined => {
    const child = [...scope, name];
    if (modules.has(pathOf(child))) return child;
    const guard = `${pathOf(scope)}|${name}`;
    if (active.has(guard)) return undefined;
    active.add(guard);
    try {
      const entries = scopes.get(pathOf(scope)) ?? [];
      const named = entries.find((entry) => !entry.glob && entry.name === name);
      if (named) return resolve(named.path.split("::"), scope);
      for (const entry of entries.filter((entry) => entry.glob)) {
        const from = resolve(entry.path.split("::"), scope);
        if (from && isScope(from)) {
          const found = lookup(from, name);
          if (found !== undefined) return found;
        }
      }
      return undefined;
    } finally {
      active.delete(guard);
    }
  };
  // A written path → segments from the root, or `null` when it leads
  // outside the crate (`std::…`, a local type's `Self::new`).
  const resolve = (segments: string[], scope: string[]): string[] | null => {
    let current: string[];
    let k = 1;
    if (segments[0] === "crate" || segments[0] === "$crate") current = [];
    else if (segments[0] === "self" || segments[0] === "super") {
      current = scope;
      for (k = 0; k < segments.length; k++) {
        if (segments[k] === "super") current = current.slice(0, -1);
        else if (segments[k] !== "self") break;
      }
    } else {
      const bound = lookup(scope, segments[0]);
      if (!bound) return null;
      current = bound;
    }
    for (; k < segments.length; k++) {
      if (!isScope(current)) return [...current, ...segments.slice(k)];
      const next = lookup(current, segments[k]);
      if (next === null) return current;
      current = next ?? [...current, segments[k]];
    }
    return current;
  };
  const imports = new Map<string, Set<string>>();
  for (const path of modules.keys()) imports.set(path, new Set());
  for (const { module, file, scope, path, glob } of written) {
    const full = resolve(path.split("::"), scope);
    if (!full) continue;
    if (glob && full.length === 0) {
      problems.push(`${file}: glob import of the crate root (${path}::*)`);
    }
    let target = "crate";
    for (let n = full.length; n > 0; n--) {
      if (modules.has(pathOf(full.slice(0, n)))) {
        target = pathOf(full.slice(0, n));
        break;
      }
    }
    if (target !== module) imports.get(module)!.add(target);
  }
  return { modules, imports, problems };
}

/** The import circles: strongly connected components of more than one module (Tarjan). */
export function circles(graph: CrateGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const connect = (v: string) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.imports.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of [...graph.modules.keys()].sort()) if (!index.has(v)) connect(v);
  return found;
}

/** A module path's top-level module (`journal` for `journal::store`). */
const topOf = (path: string): string => path.split("::")[0];

/** Modules other than the C boundary (and the dispatcher's own submodules) that import the dispatcher. */
export function dispatcherImporters(graph: CrateGraph): string[] {
  return [...graph.imports].filter(([path, targets]) =>
    [...targets].some((target) => topOf(target) === DISPATCHER) &&
    !DISPATCHER_IMPORTERS.includes(topOf(path)) && topOf(path) !== DISPATCHER
  ).map(([path]) => path).sort();
}

/** Public visibility: any `pub` but `pub(crate)`, `pub(super)`, `pub(self)`. */
const PUBLIC = String.raw`\bpub(?:\s*\(\s*in\s+[^)]*\)|(?!\s*\())`;

/** The modules lib.rs declares public. */
export function publicModules(graph: CrateGraph): string[] {
  const lib = graph.modules.get("crate")?.code ?? "";
  return [...lib.matchAll(new RegExp(`${PUBLIC}\\s+mod\\s+(\\w+)`, "g"))].map((m) => m[1]).sort();
}

/**
 * What lib.rs re-exports publicly beyond {@link PUBLIC_REEXPORTS}, each as
 * written (`control::*`, `control::handle as h`): a `pub use` of a private
 * module's item makes it public as surely as `pub mod` does.
 */
export function publicReexports(graph: CrateGraph): string[] {
  const lib = graph.modules.get("crate")?.code ?? "";
  const found: string[] = [];
  for (const m of lib.matchAll(new RegExp(`${PUBLIC}\\s+use\\s+([^;]+);`, "g"))) {
    for (const { path, name, glob } of useTreeEntries(m[1])) {
      const written = path.replace(/^(?:crate|self)::/, "");
      const last = written.split("::").pop();
      if (!glob && name === last && PUBLIC_REEXPORTS.includes(written)) continue;
      found.push(glob ? `${written}::*` : name === last ? written : `${written} as ${name ?? "_"}`);
    }
  }
  return found.sort();
}

/**
 * The imports that break the layer order, one line each: a module importing
 * one of its own layer or of a higher one, and a top-level module that is
 * in no layer. Imports within one top-level module, and of the crate root
 * (lib.rs, which holds only `mod` declarations and re-exports), are not
 * ranked.
 */
export function layerBreaks(graph: CrateGraph): string[] {
  const rank = (module: string) => LAYERS.findIndex((layer) => layer.includes(topOf(module)));
  const found = new Set<string>();
  for (const [path, targets] of graph.imports) {
    if (path === "crate") continue;
    if (rank(path) < 0) {
      found.add(`${topOf(path)} is in no layer`);
      continue;
    }
    for (const target of targets) {
      if (target === "crate" || topOf(target) === topOf(path) || rank(target) < 0) continue;
      if (rank(target) >= rank(path)) {
        found.add(
          `${path} imports ${target}, ${
            rank(target) === rank(path) ? "of its own layer" : "a higher layer"
          }`,
        );
      }
    }
  }
  return [...found].sort();
}

/** The files that define a type, alias or trait named `Failure`. */
export function failureDefinitions(graph: CrateGraph): string[] {
  return [...graph.modules.values()].filter(({ code }) =>
    /\b(?:struct|enum|type|trait|union)\s+Failure\b/.test(code)
  ).map(({ file }) => file).sort();
}

/** Everything the rules find wrong, one line each. */
export function violations(graph: CrateGraph): string[] {
  const problems: string[] = [];
  for (const circle of circles(graph)) problems.push(`import circle: ${circle.join(" ↔ ")}`);
  for (const path of dispatcherImporters(graph)) {
    problems.push(
      `${path} imports the dispatcher ${DISPATCHER} (only ${DISPATCHER_IMPORTERS.join(", ")} may)`,
    );
  }
  for (const name of publicModules(graph)) {
    if (name !== "proto") problems.push(`lib.rs: pub mod ${name} (only proto is public)`);
  }
  for (const written of publicReexports(graph)) {
    problems.push(
      `lib.rs: pub use ${written} (only proto is public; re-exported: ${
        PUBLIC_REEXPORTS.join(", ")
      })`,
    );
  }
  problems.push(...layerBreaks(graph), ...graph.problems);
  const failures = failureDefinitions(graph);
  if (failures.join() !== "result.rs") {
    problems.push(`Failure is defined in ${failures.join(", ") || "no file"}, not result.rs only`);
  }
  return problems;
}

/** A planted crate in a temporary folder: file → source. */
async function planted(files: Record<string, string>): Promise<CrateGraph> {
  const dir = await Deno.makeTempDir({ prefix: "krepis-kernel-layering-" });
  try {
    for (const [file, text] of Object.entries(files)) {
      const parts = file.split("/");
      if (parts.length > 1) await Deno.mkdir(join(dir, ...parts.slice(0, -1)), { recursive: true });
      await Deno.writeTextFile(join(dir, ...parts), text);
    }
    return graphOf(await readCrate(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A small crate that keeps every rule, to plant one violation in at a time. */
const GOOD: Record<string, string> = {
  "lib.rs":
    "//! Crate.\nmod call;\nmod control;\nmod files;\nmod journal;\npub mod proto;\nmod result;\n\npub use result::KrepisResult;\n",
  "result.rs": "pub enum KrepisResult { Ok }\npub struct Failure { pub code: u32 }\n",
  "proto.rs": "pub struct Request;\n",
  "call.rs":
    "use crate::control;\nuse crate::result::Failure;\npub fn f() { control::handle(); }\n",
  "control.rs":
    "use crate::files::read;\nuse crate::{journal, result::Failure};\npub fn handle() -> Result<(), Failure> { read()?; journal::open() }\n",
  "files.rs":
    '//! Uses crate::control in a comment only.\nuse crate::result::Failure;\npub fn read() -> Result<(), Failure> { let _ = "crate::control::handle"; Ok(()) }\n',
  "journal/mod.rs":
    "mod store;\nuse crate::result::Failure;\npub fn open() -> Result<(), Failure> { store::put() }\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
  "journal/store.rs":
    "use super::super::files::read;\npub fn put() -> Result<(), crate::result::Failure> { read() }\n",
};

Deno.test("the kernel crate has no import circle", async () => {
  const graph = graphOf(await readCrate(KERNEL_SRC));
  assert.ok(graph.modules.size > 10, `only ${graph.modules.size} modules found`);
  assert.ok(graph.imports.get("call")?.has("control"), "call's import of control is seen");
  assert.deepEqual(circles(graph), []);
});

Deno.test("no kernel module but the C boundary imports the dispatcher", async () => {
  assert.deepEqual(dispatcherImporters(graphOf(await readCrate(KERNEL_SRC))), []);
});

Deno.test("the kernel's lib.rs makes only proto public", async () => {
  assert.deepEqual(publicModules(graphOf(await readCrate(KERNEL_SRC))), ["proto"]);
});

Deno.test("the kernel's lib.rs re-exports only KrepisResult", async () => {
  const graph = graphOf(await readCrate(KERNEL_SRC));
  assert.ok(/\bpub\s+use\s+result::KrepisResult\s*;/.test(graph.modules.get("crate")!.code));
  assert.deepEqual(publicReexports(graph), []);
  assert.deepEqual(graph.problems, []);
});

Deno.test("the kernel's modules import only modules of a lower layer", async () => {
  const graph = graphOf(await readCrate(KERNEL_SRC));
  const topLevel = [...graph.modules.keys()].filter((path) =>
    path !== "crate" && !path.includes(":")
  );
  assert.deepEqual(LAYERS.flat().toSorted(), topLevel.toSorted(), "every module has one layer");
  assert.ok(graph.imports.get("files")?.has("view"), "files' import of view is seen");
  // The layers are lib.rs's module doc list, one bullet a layer, bottom first.
  const doc = (await Deno.readTextFile(join(KERNEL_SRC, "lib.rs"))).split("\n")
    .filter((line) => line.startsWith("//! - "))
    .map((line) => [...line.slice(0, line.indexOf(":")).matchAll(/`(\w+)`/g)].map((m) => m[1]));
  assert.deepEqual(doc, LAYERS);
  assert.deepEqual(layerBreaks(graph), []);
});

Deno.test("the kernel defines Failure in result.rs only", async () => {
  assert.deepEqual(failureDefinitions(graphOf(await readCrate(KERNEL_SRC))), ["result.rs"]);
});

Deno.test("the kernel layering check passes a planted crate that keeps every rule", async () => {
  const graph = await planted(GOOD);
  assert.deepEqual([...graph.modules.keys()].sort(), [
    "call",
    "control",
    "crate",
    "files",
    "journal",
    "journal::store",
    "proto",
    "result",
  ]);
  assert.deepEqual([...graph.imports.get("journal::store")!].sort(), ["files", "result"]);
  assert.deepEqual([...graph.imports.get("control")!].sort(), ["files", "journal", "result"]);
  assert.deepEqual(violations(graph), []);
});

Deno.test("the kernel layering check fails a planted import circle", async () => {
  const graph = await planted({
    ...GOOD,
    "files.rs":
      "use crate::result::Failure;\nuse crate::journal::open;\npub fn read() -> Result<(), Failure> { Ok(()) }\n",
  });
  assert.deepEqual(circles(graph), [["files", "journal", "journal::store"]]);
  assert.ok(violations(graph).some((v) => v.startsWith("import circle: ")));
});

Deno.test("the kernel layering check fails a planted circle through an inline path", async () => {
  const graph = await planted({
    ...GOOD,
    "result.rs":
      "pub struct Failure { pub code: u32 }\npub fn f() { crate::files::read().ok(); }\n",
  });
  assert.equal(circles(graph).length, 1);
});

Deno.test("the kernel layering check fails a planted domain import of the dispatcher", async () => {
  const graph = await planted({
    ...GOOD,
    "journal/store.rs":
      "use super::super::files::read;\nuse crate::control::handle;\npub fn put() -> Result<(), crate::result::Failure> { read() }\n",
  });
  assert.deepEqual(dispatcherImporters(graph), ["journal::store"]);
  assert.ok(violations(graph).some((v) => v.includes("imports the dispatcher")));
});

Deno.test("the kernel layering check fails a planted public module", async () => {
  for (const declaration of ["pub mod files;", "pub(in crate) mod files;"]) {
    const graph = await planted({
      ...GOOD,
      "lib.rs": GOOD["lib.rs"].replace("mod files;", declaration),
    });
    assert.deepEqual(publicModules(graph), ["files", "proto"], declaration);
    assert.ok(violations(graph).includes("lib.rs: pub mod files (only proto is public)"));
  }
  const crateOnly = await planted({
    ...GOOD,
    "lib.rs": GOOD["lib.rs"].replace("mod files;", "pub(crate) mod files;"),
  });
  assert.deepEqual(publicModules(crateOnly), ["proto"]);
});

Deno.test("the kernel layering check fails a planted second Failure", async () => {
  for (
    const definition of [
      "pub type Failure = (u32, String);",
      "pub(crate) struct Failure(u32);",
    ]
  ) {
    const graph = await planted({ ...GOOD, "control.rs": `${GOOD["control.rs"]}${definition}\n` });
    assert.deepEqual(failureDefinitions(graph), ["control.rs", "result.rs"], definition);
    assert.ok(
      violations(graph).some((v) => v.startsWith("Failure is defined in control.rs, result.rs")),
    );
  }
});

Deno.test("the kernel layering check reads use trees, comments and strings as Rust does", () => {
  assert.deepEqual(useTreePaths("crate::{a::{b, c as d}, e, f::self}"), [
    "crate::a::b",
    "crate::a::c",
    "crate::e",
    "crate::f",
  ]);
  assert.deepEqual(useTreePaths("super::*"), ["super"]);
  const code = codeOf(
    '// crate::a\nlet s = "crate::b"; let r = r#"crate::c"#; let c = \'"\'; crate::d::e();',
  );
  assert.ok(
    !code.includes("crate::a") && !code.includes("crate::b") && !code.includes("crate::c"),
    code,
  );
  assert.ok(code.includes("crate::d::e"), code);
});

/** A planted crate where `files.rs` (a domain module) reads `body`. */
const withFiles = (body: string) => planted({ ...GOOD, "files.rs": body });

Deno.test("the kernel layering check fails a planted glob import of the crate root", async () => {
  for (
    const [file, glob] of [
      ["files.rs", "use crate::*;"],
      ["files.rs", "use super::*;"],
      ["files.rs", "use self::super::*;"],
      ["journal/store.rs", "use super::super::*;"],
    ]
  ) {
    const graph = await planted({
      ...GOOD,
      [file]: `${glob}\npub fn put() -> Result<(), result::Failure> { control::handle() }\n`,
    });
    const module = file === "files.rs" ? "files" : "journal::store";
    assert.ok(graph.imports.get(module)!.has("control"), glob);
    assert.deepEqual(dispatcherImporters(graph), [module], glob);
    assert.ok(
      violations(graph).includes(
        `${file}: glob import of the crate root (${glob.slice(4, -4)}::*)`,
      ),
      glob,
    );
  }
  // A glob of a module's parent that is not the root is no violation of its own.
  const tests = await planted({
    ...GOOD,
    "journal/store.rs": `${
      GOOD["journal/store.rs"]
    }#[cfg(test)]\nmod tests {\n    use super::*;\n}\n`,
  });
  assert.deepEqual(violations(tests), []);
});

Deno.test("the kernel layering check fails a planted import through a renamed crate root", async () => {
  for (
    const rename of ["use crate as k;", "use crate::{self as k};", "use self::super as k;"]
  ) {
    const graph = await withFiles(`${rename}\npub fn read() { k::control::handle(); }\n`);
    assert.deepEqual(dispatcherImporters(graph), ["files"], rename);
  }
  const external = await planted({
    ...GOOD,
    "lib.rs": `extern crate self as k;\n${GOOD["lib.rs"]}`,
  });
  assert.ok(
    violations(external).includes("lib.rs: extern crate self (names the crate root from anywhere)"),
  );
});

Deno.test("the kernel layering check fails a planted import written with a raw identifier", async () => {
  for (
    const body of [
      "use crate::r#control;\npub fn read() { r#control::handle(); }\n",
      "pub fn read() { crate::r#control::r#handle(); }\n",
    ]
  ) {
    assert.deepEqual(dispatcherImporters(await withFiles(body)), ["files"], body);
  }
});

Deno.test("the kernel layering check resolves a path through the names a file binds with use", async () => {
  for (
    const body of [
      "use crate::journal;\npub fn f() { journal::store::put().ok(); }\n",
      "use crate::journal as j;\npub fn f() { j::store::put().ok(); }\n",
      "use crate::journal::store as s;\npub fn f() { s::put().ok(); }\n",
      "use crate::journal;\nuse journal::store;\npub fn f() { store::put().ok(); }\n",
    ]
  ) {
    const graph = await planted({ ...GOOD, "call.rs": `${GOOD["call.rs"]}${body}` });
    assert.ok(graph.imports.get("call")!.has("journal::store"), body);
  }
  // A local name that is no module (`Failure::from`) imports nothing new.
  const local = await withFiles(
    "use crate::result::Failure;\npub fn read() -> Result<(), Failure> { Err(Failure::from(1)) }\n",
  );
  assert.deepEqual([...local.imports.get("files")!], ["result"]);
});

Deno.test("the kernel layering check fails a planted public re-export in lib.rs", async () => {
  for (
    const [reexport, written] of [
      ["pub use control::handle;", "control::handle"],
      ["pub use crate::control::*;", "control::*"],
      ["pub use result::KrepisResult as Code;", "result::KrepisResult as Code"],
      ["pub(in crate) use files::{read};", "files::read"],
    ]
  ) {
    const graph = await planted({ ...GOOD, "lib.rs": `${GOOD["lib.rs"]}${reexport}\n` });
    assert.deepEqual(publicReexports(graph), [written], reexport);
    assert.ok(violations(graph).some((v) => v.startsWith(`lib.rs: pub use ${written} `)), reexport);
  }
  const crateOnly = await planted({
    ...GOOD,
    "lib.rs": `${GOOD["lib.rs"]}pub(crate) use control::handle;\n`,
  });
  assert.deepEqual(publicReexports(crateOnly), []);
});

Deno.test("the kernel layering check fails a planted $crate path in a macro body", async () => {
  for (
    const body of [
      "macro_rules! go {\n    () => { $crate::control::handle() };\n}\n",
      "macro_rules! go {\n    () => {{ use $crate::control as c; c::handle() }};\n}\n",
    ]
  ) {
    const graph = await withFiles(`${GOOD["files.rs"]}${body}`);
    assert.deepEqual(dispatcherImporters(graph), ["files"], body);
  }
});

Deno.test("the kernel layering check fails a planted import of a higher layer", async () => {
  const upward = await planted({
    ...GOOD,
    "result.rs": `use crate::proto::Request;\n${GOOD["result.rs"]}`,
  });
  assert.deepEqual(circles(upward), []);
  assert.deepEqual(layerBreaks(upward), ["result imports proto, a higher layer"]);
  assert.ok(violations(upward).includes("result imports proto, a higher layer"));
  const sideways = await planted({
    ...GOOD,
    "lib.rs": `mod abi;\n${GOOD["lib.rs"]}`,
    "abi.rs": "pub fn version() { crate::call::f(); }\n",
  });
  assert.deepEqual(layerBreaks(sideways), ["abi imports call, of its own layer"]);
  const unranked = await planted({
    ...GOOD,
    "lib.rs": `mod extra;\n${GOOD["lib.rs"]}`,
    "extra.rs": "use crate::result::Failure;\n",
  });
  assert.deepEqual(layerBreaks(unranked), ["extra is in no layer"]);
});

Deno.test("the kernel layering check reads use aliases and globs", () => {
  assert.deepEqual(useTreeEntries("crate::{self as k, a::{b as _, c}, d::*}"), [
    { path: "crate", name: "k", glob: false },
    { path: "crate::a::b", name: null, glob: false },
    { path: "crate::a::c", name: "c", glob: false },
    { path: "crate::d", name: null, glob: true },
  ]);
  assert.deepEqual(useTreeEntries("crate as k"), [{ path: "crate", name: "k", glob: false }]);
});
