/**
 * The folders' one direction, as docs/architecture.md's "Layering" section writes it
 * down: each non-test module imports only from the folders below its own
 * (and its own), and from `loader/` only through its published entry
 * points. Tests (`*_test.ts`, `tests/`) may import anything.
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

/**
 * What lib/, matrix/ and release/ may import from `loader/`: what JSR
 * publishes, the generated ABI table and codecs the build checks compare
 * and call a kernel with, and the command-line conventions. tools/ and bench/ sit on top and may reach inside.
 */
const LOADER_ENTRY_POINTS = [
  "loader/mod.ts",
  "loader/release.ts",
  "loader/cli.ts",
  "loader/_gen/ffi.ts",
  "loader/_gen/messages.ts",
  // The command-line conventions (help, suggestions, exit 2) every task shares with the CLI.
  "loader/_cli/command_line.ts",
];
const INSIDE_LOADER = ["tools", "bench"];

async function* modules(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(join(REPO_ROOT, dir))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* modules(path);
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

Deno.test("every folder imports only from the folders below it, and loader/ only through its entry points", async () => {
  const problems: string[] = [];
  for (const [folder, allowed] of Object.entries(LAYERS)) {
    for await (const path of modules(folder)) {
      const text = await Deno.readTextFile(join(REPO_ROOT, path));
      for (const target of imports(path, text)) {
        const top = target.split("/")[0];
        if (top === folder) continue;
        if (!allowed.includes(top)) problems.push(`${path} imports ${target} (${folder} → ${top})`);
        else if (
          top === "loader" && !INSIDE_LOADER.includes(folder) &&
          !LOADER_ENTRY_POINTS.includes(target)
        ) {
          problems.push(`${path} imports ${target}: use one of ${LOADER_ENTRY_POINTS.join(", ")}`);
        }
      }
    }
  }
  assert.deepEqual(problems, []);
});

Deno.test("the loader imports no package (nothing from npm or JSR on the user's path)", async () => {
  const problems: string[] = [];
  for await (const path of modules("loader")) {
    for (const name of packages(await Deno.readTextFile(join(REPO_ROOT, path)))) {
      problems.push(`${path} imports ${name}`);
    }
  }
  assert.deepEqual(problems, []);
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
