/**
 * The folders' one direction, as docs/architecture.md's "Layering" section writes it
 * down: each non-test module imports only from the folders below its own
 * (and its own), and from `loader/` only through its published entry
 * points and the generated files named here. Inside `loader/`, the wings
 * stay apart: `_install/` and `kernel/` never import each other, `_gen/`
 * imports only `_codec/` and `types.ts`, only `cli.ts` reaches `_cli/`, and
 * `_install/` imports nothing that only Krepis knows (its version, ABI,
 * keys, pins, environment).
 * Tests (`*_test.ts`, `tests/`) may import anything.
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
];

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
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) yield path;
  }
}

/** The code of a module without its comments (doc examples import things too). */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
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
    }, wingProblems),
    [],
  );
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
