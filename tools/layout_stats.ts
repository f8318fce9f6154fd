/**
 * Numbers about the loader's layout, read from the import statements:
 *
 * - `root files`: the non-test `.ts` files at the top of `loader/`;
 * - `private imports from outside`: import statements in a file outside
 *   `loader/` whose target is a private file of `loader/` (below one of its
 *   folders, or named with a leading `_`), counted for all files and for
 *   non-test files, and how many of those reach a generated file in
 *   `loader/_gen/`, which the layering test allows;
 * - `load() walk`: a depth-first walk of the imports of `loader/load.ts`
 *   (non-test files of `loader/`, each file's imports in source order, a
 *   file's imports walked the first time it is entered). A stop is each
 *   entry into a file; a return is a stop at a file the walk entered before
 *   and has left. The same walk is counted again by folder: a return there is
 *   entering a folder of `loader/` the walk had left.
 *
 * Usage: `deno run --allow-read tools/layout_stats.ts [repository root]`
 *
 * @module
 */

import { join, relative } from "node:path";

const root = Deno.args[0] ?? join(import.meta.dirname!, "..");

function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
}

function specifiers(text: string): string[] {
  const pattern =
    /^\s*(?:import|export)\b[^;()"']*?\bfrom\s*["']([^"']+)["']|^\s*import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/gm;
  return [...code(text).matchAll(pattern)].map((m) => m[1] ?? m[2] ?? m[3]);
}

function imports(path: string, text: string): string[] {
  return specifiers(text).filter((s) => s.startsWith(".") && s.endsWith(".ts")).map((s) =>
    relative(root, join(root, path, "..", s)).replaceAll("\\", "/")
  );
}

async function* files(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(join(root, dir))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) {
      if (!["target", "node_modules", ".git", "dist", ".krepis"].includes(entry.name)) {
        yield* files(path);
      }
    } else if (entry.name.endsWith(".ts")) yield path;
  }
}

/** A file of `loader/` below one of its folders, or named with a leading `_`. */
const isPrivate = (path: string) =>
  path.split("/").length > 2 || path.split("/")[1].startsWith("_");

let rootFiles = 0;
for await (const entry of Deno.readDir(join(root, "loader"))) {
  if (entry.isFile && entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) rootFiles++;
}

let outside = 0;
let outsideNonTest = 0;
let generated = 0;
const graph = new Map<string, string[]>();
for await (const top of Deno.readDir(root)) {
  if (!top.isDirectory || top.name.startsWith(".") || top.name === "target") continue;
  for await (const path of files(top.name)) {
    const targets = imports(path, await Deno.readTextFile(join(root, path)));
    if (top.name === "loader") {
      if (!path.endsWith("_test.ts")) graph.set(path, targets);
      continue;
    }
    for (const target of targets) {
      if (target.startsWith("loader/") && isPrivate(target)) {
        outside++;
        if (!path.endsWith("_test.ts") && !path.startsWith("tests/")) outsideNonTest++;
        if (target.startsWith("loader/_gen/")) generated++;
      }
    }
  }
}

/** Every position of the walk, steps back into the importer included. */
const positions: string[] = [];
let stops = 0;
let returns = 0;
const entered = new Set<string>();
function walk(path: string) {
  positions.push(path);
  stops++;
  if (entered.has(path)) {
    returns++;
    return;
  }
  entered.add(path);
  for (const next of graph.get(path) ?? []) {
    if (!graph.has(next)) continue;
    walk(next);
    positions.push(path);
  }
}
walk("loader/load.ts");
const folder = (path: string) => path.split("/").slice(0, -1).join("/");
let folderReturns = 0;
const left = new Set<string>();
let current = folder(positions[0]);
for (const path of positions.slice(1)) {
  const next = folder(path);
  if (next === current) continue;
  left.add(current);
  if (left.has(next)) folderReturns++;
  current = next;
}

console.log(`root files of loader/ (non-test .ts): ${rootFiles}`);
console.log(
  `imports from outside loader/ into its private files: ${outside}, ${outsideNonTest} from non-test files (into loader/_gen/: ${generated})`,
);
console.log(
  `load() import walk: ${stops} stops, ${returns} returns to a file already left; ${folderReturns} re-entries into a folder already left`,
);
