/**
 * The folders' one direction, as docs/architecture.md's "Layering" section writes it
 * down: each non-test module imports only from the folders below its own
 * (and its own), and from `loader/` only through its published entry
 * points and the generated files named here. Inside `loader/`, the wings
 * stay apart: `_install/` and `kernel/` never import each other, `_gen/`
 * imports only `_codec/` and `types.ts`, only `cli.ts` reaches `_cli/`, and
 * `_install/` imports nothing that only Krepis knows (its version, ABI,
 * keys, pins, environment, target table), and the wings import from
 * `loader/` itself only the errors, types and formats (never `install.ts`,
 * `load.ts` or `mod.ts`). One named module has an exception, with its reason
 * (`WING_EXCEPTIONS`).
 * Tests (`*_test.ts`, `tests/`) may import anything. Modules are `.ts`,
 * `.mts`, `.tsx`, `.js` and `.mjs` files; comments are left out before
 * imports are read, strings are not.
 *
 * Each rule is also checked against a planted violation in a temporary
 * tree, so a rule that stopped seeing anything would fail here.
 */

import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { REPO_ROOT } from "../lib/cargo_build.ts";

/** Who may import whom: folder → folders it may import from (besides itself). */
export const LAYERS: Record<string, string[]> = {
  loader: [],
  lib: ["loader"],
  matrix: ["loader", "lib"],
  release: ["loader", "lib", "matrix"],
  bench: ["loader", "lib", "matrix", "release"],
  tools: ["loader", "lib", "matrix", "release"],
};

/** What JSR publishes: the only doors into `loader/` from the rest of the repository. */
const LOADER_ENTRY_POINTS = ["loader/mod.ts", "loader/release.ts", "loader/cli.ts"];

/**
 * The generated files the build checks and benchmarks call a kernel with:
 * the ABI table and the protobuf codecs. Anything may import them.
 */
const GENERATED = ["loader/_gen/ffi.ts", "loader/_gen/messages.ts"];

/** The few private files one named module outside `loader/` may import, each with its reason. */
const EXCEPTIONS: Record<string, string[]> = {
  // The command-line conventions (help, suggestions, exit 2) every task shares with the CLI;
  // lib/task.ts is their one door, every task imports it.
  "lib/task.ts": ["loader/_cli/command_line.ts"],
  // The environment variables the loader reads: the user steps' scoped --allow-env list.
  "tools/_user_steps.ts": ["loader/_internal/env.ts"],
  // The benchmark measures the loader's own file hashing.
  "bench/distribution.ts": ["loader/_install/hash.ts"],
};

/**
 * What only the Krepis side of the loader knows: its version, ABI, keys,
 * pins, environment and release host. The install wing gets them passed in.
 */
const KREPIS_ONLY = [
  "loader/version.ts",
  "loader/abi.ts",
  "loader/_gen/keys.ts",
  "loader/_gen/pinned.ts",
  "loader/_internal/env.ts",
  "loader/_internal/krepis_release.ts",
  "loader/_gen/targets.ts",
  "loader/platform.ts",
];

/**
 * What the wings (`_install/`, `kernel/`) may import from `loader/` itself:
 * the errors, the shared types and formats. Never the entry points or what
 * is built on the wings (`install.ts`, `load.ts`, `mod.ts`, …).
 */
const WING_ROOT_IMPORTS = [
  "loader/errors.ts",
  "loader/manifest.ts",
  "loader/minisign.ts",
  "loader/types.ts",
  "loader/version.ts",
  "loader/abi.ts",
];

/** The imports one named wing module may make past the wings' rules, each with its reason. */
const WING_EXCEPTIONS: Record<string, string[]> = {
  // The cache layout still uses Krepis's target table; moving it behind the
  // descriptor is the open part of issue 26 item 2.
  "loader/_install/cache_layout.ts": ["loader/platform.ts", "loader/_gen/targets.ts"],
};

/** The file endings of modules the checks read. */
const MODULE_ENDINGS = [".ts", ".mts", ".tsx", ".js", ".mjs"];

async function* modules(root: string, dir: string): AsyncGenerator<string> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(join(root, dir)));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  for (const entry of entries) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* modules(root, path);
    else if (
      MODULE_ENDINGS.some((ending) =>
        entry.name.endsWith(ending) && !entry.name.endsWith(`_test${ending}`)
      )
    ) yield path;
  }
}

/** The characters after which a `/` starts a regular expression, not a division. */
const BEFORE_REGEXP = new Set([..."(,=:[!&|?{};+-*%<>~^"]);

/**
 * The code of a module without its comments (doc examples import things
 * too): line and block comments become spaces (a block comment keeps its
 * line breaks), while strings, template literals and regular expressions
 * are kept as they are, whatever `//` or `/*` they hold.
 */
export function code(text: string): string {
  let out = "";
  let i = 0;
  // Open template literals (`) and `${` inside them (}), each with its brace depth.
  const stack: { kind: "`" | "}"; braces: number }[] = [];
  let braces = 0;
  // The last character of code that is not a space, to tell a regular expression from a division.
  let last = "";
  const copy = (end: number) => {
    out += text.slice(i, end);
    i = end;
  };
  while (i < text.length) {
    const c = text[i];
    if (stack.at(-1)?.kind === "`") {
      if (c === "\\") copy(i + 2);
      else if (c === "`") braces = stack.pop()!.braces, copy(i + 1), last = "`";
      else if (c === "$" && text[i + 1] === "{") {
        stack.push({ kind: "}", braces }), braces = 0, copy(i + 2);
      } else copy(i + 1);
      continue;
    }
    if (c === "/" && text[i + 1] === "/") {
      const end = text.indexOf("\n", i);
      const stop = end === -1 ? text.length : end;
      out += " ".repeat(stop - i);
      i = stop;
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      const stop = end === -1 ? text.length : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, " ");
      i = stop;
    } else if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== c && text[j] !== "\n") j += text[j] === "\\" ? 2 : 1;
      copy(Math.min(j + 1, text.length));
      last = c;
    } else if (c === "`") {
      stack.push({ kind: "`", braces }), braces = 0, copy(i + 1);
    } else if (
      c === "/" &&
      (last === "" || BEFORE_REGEXP.has(last) ||
        /\b(?:return|typeof|case|in|of)$/.test(out.trimEnd()))
    ) {
      // A regular expression: to its closing slash, outside a [class].
      let j = i + 1;
      let inClass = false;
      while (j < text.length && text[j] !== "\n" && (inClass || text[j] !== "/")) {
        if (text[j] === "\\") j++;
        else if (text[j] === "[") inClass = true;
        else if (text[j] === "]") inClass = false;
        j++;
      }
      copy(Math.min(j + 1, text.length));
      last = "/";
    } else {
      if (c === "{") braces++;
      else if (c === "}") {
        if (braces === 0 && stack.at(-1)?.kind === "}") braces = stack.pop()!.braces;
        else braces--;
      }
      if (!/\s/.test(c)) last = c;
      copy(i + 1);
    }
  }
  return out;
}

/** Every import and export specifier of a module: static, side-effect and dynamic. */
function specifiers(text: string): string[] {
  const pattern =
    /^\s*(?:import|export)\b[^;()"']*?\bfrom\s*["']([^"']+)["']|^\s*import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/gm;
  return [...code(text).matchAll(pattern)].map((m) => m[1] ?? m[2] ?? m[3]);
}

/** Every relative specifier of a module, resolved to a repository path. */
function imports(path: string, text: string): string[] {
  return specifiers(text).filter((s) => s.startsWith(".")).map((s) =>
    relative(REPO_ROOT, join(REPO_ROOT, path, "..", s)).replaceAll("\\", "/")
  );
}

/** The specifiers that are packages: npm, JSR or a bare import-map name. */
function packages(text: string): string[] {
  return specifiers(text).filter((s) =>
    !s.startsWith(".") && !s.startsWith("node:") && !s.startsWith("file:")
  );
}

const under = (path: string, folder: string) => path.startsWith(`${folder}/`);

/** What breaks the folders' direction, for each non-test module of the tree at `root`. */
export async function folderProblems(root: string): Promise<string[]> {
  const problems: string[] = [];
  for (const [folder, allowed] of Object.entries(LAYERS)) {
    for await (const path of modules(root, folder)) {
      const text = await Deno.readTextFile(join(root, path));
      for (const target of imports(path, text)) {
        const top = target.split("/")[0];
        if (top === folder) continue;
        if (!allowed.includes(top)) problems.push(`${path} imports ${target} (${folder} → ${top})`);
        else if (
          top === "loader" && !LOADER_ENTRY_POINTS.includes(target) &&
          !GENERATED.includes(target) && !(EXCEPTIONS[path] ?? []).includes(target)
        ) {
          problems.push(
            `${path} imports the private ${target}: use one of ${LOADER_ENTRY_POINTS.join(", ")}`,
          );
        }
      }
    }
  }
  return problems;
}

/** What breaks the wings' rules inside `loader/` of the tree at `root`. */
export async function wingProblems(root: string): Promise<string[]> {
  const problems: string[] = [];
  for await (const path of modules(root, "loader")) {
    const text = await Deno.readTextFile(join(root, path));
    for (const target of imports(path, text)) {
      if ((WING_EXCEPTIONS[path] ?? []).includes(target)) continue;
      const wing = under(path, "loader/_install") || under(path, "loader/kernel");
      if (
        wing && under(target, "loader") && !target.slice("loader/".length).includes("/") &&
        !WING_ROOT_IMPORTS.includes(target)
      ) {
        problems.push(
          `${path} imports ${target}: a wing imports from loader/ only ${
            WING_ROOT_IMPORTS.join(", ")
          }`,
        );
      }
      if (under(path, "loader/_install") && under(target, "loader/kernel")) {
        problems.push(`${path} imports ${target}: the install wing never reaches the kernel's`);
      }
      if (under(path, "loader/kernel") && under(target, "loader/_install")) {
        problems.push(`${path} imports ${target}: the kernel wing never reaches the install's`);
      }
      if (
        under(path, "loader/_gen") && !under(target, "loader/_codec") &&
        target !== "loader/types.ts"
      ) {
        problems.push(
          `${path} imports ${target}: generated files import only _codec/ and types.ts`,
        );
      }
      if (under(path, "loader/_install") && KREPIS_ONLY.includes(target)) {
        problems.push(
          `${path} imports ${target}: the install wing is told about Krepis, never asks`,
        );
      }
      if (
        under(target, "loader/_cli") && path !== "loader/cli.ts" && !under(path, "loader/_cli")
      ) {
        problems.push(`${path} imports ${target}: only cli.ts reaches _cli/`);
      }
    }
  }
  return problems;
}

Deno.test("every folder imports only from the folders below it, and loader/ only through its entry points and named generated files", async () => {
  assert.deepEqual(await folderProblems(REPO_ROOT), []);
});

Deno.test("the loader's wings stay apart: _install/ and kernel/ never meet, _install/ is told about Krepis, _gen/ imports only _codec/ and types.ts, only cli.ts reaches _cli/", async () => {
  assert.deepEqual(await wingProblems(REPO_ROOT), []);
});

Deno.test("the loader imports no package (nothing from npm or JSR on the user's path)", async () => {
  const problems: string[] = [];
  for await (const path of modules(REPO_ROOT, "loader")) {
    for (const name of packages(await Deno.readTextFile(join(REPO_ROOT, path)))) {
      problems.push(`${path} imports ${name}`);
    }
  }
  assert.deepEqual(problems, []);
});

/** Writes a tree of modules (path → text) into a temporary folder, runs `check` on it. */
async function planted(
  files: Record<string, string>,
  check: (root: string) => Promise<string[]>,
): Promise<string[]> {
  const root = await Deno.makeTempDir({ prefix: "krepis-layering-" });
  try {
    for (const [path, text] of Object.entries(files)) {
      await Deno.mkdir(join(root, path, ".."), { recursive: true });
      await Deno.writeTextFile(join(root, path), text);
    }
    return await check(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("each layering rule fails on a planted violation, and passes the same tree without it", async () => {
  const cases: [string, Record<string, string>, (root: string) => Promise<string[]>][] = [
    ["a folder imports one above it", {
      "matrix/x.ts": 'import { a } from "../release/y.ts";',
    }, folderProblems],
    ["a task imports a private loader file", {
      "tools/x.ts": 'import { a } from "../loader/_install/cache.ts";',
    }, folderProblems],
    ["a named exception is only for its own module", {
      "tools/x.ts": 'import { a } from "../loader/_cli/command_line.ts";',
    }, folderProblems],
    ["the install wing imports the kernel's", {
      "loader/_install/x.ts": 'import { a } from "../kernel/channel.ts";',
    }, wingProblems],
    ["the kernel wing imports the install's", {
      "loader/kernel/x.ts": 'export { a } from "../_install/trust.ts";',
    }, wingProblems],
    ["the install wing asks for Krepis's keys", {
      "loader/_install/x.ts": 'import { PROJECT_KEYS } from "../_gen/keys.ts";',
    }, wingProblems],
    ["a generated file imports a helper", {
      "loader/_gen/x.ts": 'import { a } from "../_internal/path.ts";',
    }, wingProblems],
    ["a file other than cli.ts reaches _cli/", {
      "loader/install.ts": 'const m = await import("./_cli/progress.ts");',
    }, wingProblems],
    ["a multi-line import with a trailing comment holding a quote", {
      "matrix/x.ts": 'import {\n  a, // Krepis\'s own\n  b,\n} from "../release/y.ts";',
    }, folderProblems],
    ["an import after a string that looks like a comment", {
      "matrix/x.ts": 'const s = "/*", u = "http://x";\nimport { a } from "../release/y.ts"; // */',
    }, folderProblems],
    ["an import after a regular expression that holds a quote", {
      "matrix/x.ts": 'const r = /["\']/;\nimport { a } from "../release/y.ts";',
    }, folderProblems],
    ["a .js module imports one above it", {
      "matrix/x.js": 'import { a } from "../release/y.js";',
    }, folderProblems],
    ["a .mjs module imports one above it", {
      "matrix/x.mjs": 'export * from "../release/y.mjs";',
    }, folderProblems],
    ["a .mts module imports one above it", {
      "matrix/x.mts": 'import { a } from "../release/y.ts";',
    }, folderProblems],
    ["a .tsx module imports one above it", {
      "matrix/x.tsx": 'import { a } from "../release/y.ts";',
    }, folderProblems],
    ["the install wing imports install.ts", {
      "loader/_install/x.ts": 'import { install } from "../install.ts";',
    }, wingProblems],
    ["the kernel wing imports mod.ts", {
      "loader/kernel/x.ts": 'import { load } from "../mod.ts";',
    }, wingProblems],
    ["the install wing asks for the target table", {
      "loader/_install/x.ts": 'import { TARGETS } from "../_gen/targets.ts";',
    }, wingProblems],
    ["the install wing asks for the platform", {
      "loader/_install/x.ts": 'import { currentPlatform } from "../platform.ts";',
    }, wingProblems],
  ];
  for (const [what, files, check] of cases) {
    assert.notDeepEqual(await planted(files, check), [], what);
    // The same module with the import removed is clean: the import is what was seen.
    const clean = Object.fromEntries(Object.keys(files).map((path) => [path, "export {};\n"]));
    assert.deepEqual(await planted(clean, check), [], `${what} (without the import)`);
  }
  // What the rules allow passes in the planted tree too.
  assert.deepEqual(
    await planted({
      "lib/task.ts": 'import { a } from "../loader/_cli/command_line.ts";',
      "matrix/x.ts": 'import { SYMBOLS } from "../loader/_gen/ffi.ts";',
      "tools/y.ts": 'import { load } from "../loader/mod.ts";',
    }, folderProblems),
    [],
  );
  assert.deepEqual(
    await planted({
      "loader/_gen/x.ts":
        'import { a } from "../_codec/wire.ts";\nimport type { B } from "../types.ts";',
      "loader/cli.ts": 'import { a } from "./_cli/init.ts";',
      "loader/_cli/init.ts": 'import { a } from "./context.ts";',
      "loader/kernel/x.ts": 'import { a } from "../_codec/wire.ts";',
      "loader/kernel/y.ts":
        'import type { AbiInfo } from "../abi.ts";\nimport { E } from "../errors.ts";',
      "loader/_install/y.ts":
        'import { M } from "../manifest.ts";\nimport { v } from "../minisign.ts";',
      "loader/_install/cache_layout.ts":
        'import { TARGETS } from "../_gen/targets.ts";\nimport { t } from "../platform.ts";',
    }, wingProblems),
    [],
  );
});

Deno.test("comments are left out before imports are read, strings and regular expressions are kept", () => {
  assert.deepEqual(imports("matrix/x.ts", '// import { a } from "../release/y.ts";'), []);
  assert.deepEqual(imports("matrix/x.ts", '/*\nimport { a } from "../release/y.ts";\n*/'), []);
  assert.deepEqual(
    imports("matrix/x.ts", 'import {\n  a, // it\'s "a"\n} from "../release/y.ts";'),
    ["release/y.ts"],
  );
  // Comments become spaces: the same text with the spaces squeezed.
  const squeezed = (text: string) => code(text).replace(/\s+/g, " ").trim();
  assert.equal(
    squeezed('const s = "// not a comment"; // a comment'),
    'const s = "// not a comment";',
  );
  assert.equal(squeezed("const t = `/* ${a /* c */} */`;"), "const t = `/* ${a } */`;");
  assert.equal(squeezed("x = a / b; // c"), "x = a / b;");
  assert.equal(squeezed("x = /\\/\\//.test(s); // c"), "x = /\\/\\//.test(s);");
  assert.equal(code("a /* one\ntwo */ b").split("\n").length, 2, "a block comment keeps its lines");
});

Deno.test("the layering check sees a violation when there is one", () => {
  assert.deepEqual(imports("matrix/x.ts", 'import { a } from "../release/y.ts";'), [
    "release/y.ts",
  ]);
  assert.deepEqual(packages('import protobuf from "protobufjs/light.js";'), [
    "protobufjs/light.js",
  ]);
  assert.deepEqual(packages('import zlib from "node:zlib";'), []);
  assert.deepEqual(packages('/**\n * import { load } from "@krepis/loader";\n */'), []);
  assert.deepEqual(packages('throw untagged(root, "remove anything from");\nf("x");'), []);
  assert.deepEqual(packages('const m = await import("npm:semver");'), ["npm:semver"]);
});
