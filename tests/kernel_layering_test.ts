/**
 * The kernel crate's one direction (crates/krepis-kernel/src): its modules,
 * read from the `mod` declarations down from lib.rs, and who imports whom,
 * read from `use crate::…`, `super::…` and `self::…` paths (in `use` trees
 * and written inline). The rules:
 *
 * - no import circle: no two modules reach each other;
 * - the dispatcher (`control`) is imported only by the C boundary (`call`);
 * - `proto` is the only public module of lib.rs;
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

/** The one module the dispatcher may be imported by. */
const DISPATCHER = "control";
const DISPATCHER_IMPORTERS = ["call"];

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

/** The paths a `use` tree names, e.g. `crate::{a::{b, c}, d}` → `crate::a::b`, `crate::a::c`, `crate::d`. */
export function useTreePaths(tree: string): string[] {
  const text = tree.replace(/\s+as\s+\w+/g, "").replace(/\s+/g, "");
  const open = text.indexOf("{");
  if (open < 0) return [text.replace(/::(?:\*|self)$/, "")];
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
  return parts.filter((part) => part !== "").flatMap((part) =>
    part === "self" ? [prefix.replace(/::$/, "")] : useTreePaths(prefix + part)
  );
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

/** Every path a file writes (in `use` trees and inline), with where it is written. */
function pathsIn(code: string): { path: string; at: number }[] {
  const found: { path: string; at: number }[] = [];
  const uses = [...code.matchAll(/\buse\s+([^;]+);/g)];
  for (const m of uses) {
    for (const path of useTreePaths(m[1])) found.push({ path, at: m.index! });
  }
  found.push(...barePathsIn(code));
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
    const code = codeOf(await Deno.readTextFile(join(src, ...file.split("/"))));
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

/** The import graph of a crate: each path resolved to the deepest module it names. */
export function graphOf(modules: Map<string, CrateModule>): CrateGraph {
  const imports = new Map<string, Set<string>>();
  for (const [path, { code }] of modules) {
    const targets = new Set<string>();
    const inline = inlineModules(code);
    const here = path === "crate" ? [] : path.split("::");
    for (const { path: written, at } of pathsIn(code)) {
      // The module the path is written in: the file's, plus the inline
      // modules (`mod tests { … }`) around it.
      let current = [
        ...here,
        ...inline.filter((m) => m.from <= at && at <= m.to).map((m) => m.name),
      ];
      const segments = written.split("::");
      if (!/^(crate|super|self)$/.test(segments[0])) {
        // A path from the current module (`store::put()`, `use store::X`):
        // it imports only when it names a child module.
        if (!modules.has([...current, segments[0]].join("::"))) continue;
        segments.unshift("self");
      }
      let k = 0;
      if (segments[0] === "crate") {
        current = [];
        k = 1;
      }
      for (; k < segments.length; k++) {
        if (segments[k] === "super") current = current.slice(0, -1);
        else if (segments[k] !== "self") break;
      }
      const full = [...current, ...segments.slice(k)];
      let target = "crate";
      for (let n = full.length; n > 0; n--) {
        const candidate = full.slice(0, n).join("::");
        if (modules.has(candidate)) {
          target = candidate;
          break;
        }
      }
      if (target !== path) targets.add(target);
    }
    imports.set(path, targets);
  }
  return { modules, imports };
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

/** Modules other than the C boundary that import the dispatcher. */
export function dispatcherImporters(graph: CrateGraph): string[] {
  return [...graph.imports].filter(([path, targets]) =>
    targets.has(DISPATCHER) && !DISPATCHER_IMPORTERS.includes(path)
  ).map(([path]) => path).sort();
}

/** The modules lib.rs declares `pub` (any `pub` but `pub(crate)`, `pub(super)`, `pub(self)`). */
export function publicModules(graph: CrateGraph): string[] {
  const lib = graph.modules.get("crate")?.code ?? "";
  return [...lib.matchAll(/\bpub(?:\s*\(\s*in\s+[^)]*\)|(?!\s*\())\s+mod\s+(\w+)/g)].map((m) =>
    m[1]
  ).sort();
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
    "//! Crate.\nmod call;\nmod control;\nmod files;\nmod journal;\npub mod proto;\nmod result;\n",
  "result.rs": "pub struct Failure { pub code: u32 }\n",
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
