/**
 * A loader error's hint is data (`{ hint }`), never text in its message:
 * a scan of every non-test module under `loader/` for `new <Class>(` of a
 * `KrepisError` class whose message argument holds `\nHint`.
 */

import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const LOADER = new URL(".", import.meta.url);

/** The names of `KrepisError` and every class `errors.ts` derives from it. */
async function errorClasses(): Promise<string[]> {
  const text = await Deno.readTextFile(new URL("errors.ts", LOADER));
  const derived = [...text.matchAll(/export class (\w+) extends KrepisError\b/g)].map((m) => m[1]);
  return ["KrepisError", ...derived];
}

/**
 * The source text of the first argument of the call whose `(` is at `open`:
 * up to the first comma or closing bracket at the call's own depth, skipping
 * strings, template literals (with their `${…}`) and comments.
 */
export function firstArgument(text: string, open: number): string {
  // Open brackets of the expression being read; each template literal
  // (`) and each `${` inside one (}) starts its own count.
  let depth = 0;
  const stack: { kind: "`" | "}"; outer: number }[] = [];
  let i = open + 1;
  while (i < text.length) {
    const c = text[i];
    if (stack.at(-1)?.kind === "`") {
      if (c === "\\") i += 2;
      else if (c === "`") depth = stack.pop()!.outer, i++;
      else if (c === "$" && text[i + 1] === "{") {
        stack.push({ kind: "}", outer: depth }), depth = 0, i += 2;
      } else i++;
      continue;
    }
    if (c === "'" || c === '"') {
      i++;
      while (i < text.length && text[i] !== c) i += text[i] === "\\" ? 2 : 1;
      i++;
    } else if (c === "`") stack.push({ kind: "`", outer: depth }), depth = 0, i++;
    else if (c === "/" && text[i + 1] === "/") {
      const end = text.indexOf("\n", i);
      i = end === -1 ? text.length : end;
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end === -1 ? text.length : end + 2;
    } else if (c === "}" && depth === 0 && stack.at(-1)?.kind === "}") {
      depth = stack.pop()!.outer, i++;
    } else if (c === "(" || c === "[" || c === "{") depth++, i++;
    else if ((c === ")" || c === "]" || c === "}") && depth > 0) depth--, i++;
    else if ((c === "," || c === ")") && depth === 0 && stack.length === 0) break;
    else i++;
  }
  return text.slice(open + 1, i);
}

/** `file:line: Class` for each construction of one of `classes` in `text` with `\nHint` in its message. */
export function hintsInMessages(file: string, text: string, classes: readonly string[]): string[] {
  const found: string[] = [];
  const pattern = new RegExp(`\\bnew\\s+(${classes.join("|")})\\s*\\(`, "g");
  for (const match of text.matchAll(pattern)) {
    const open = match.index + match[0].length - 1;
    if (firstArgument(text, open).includes("\\nHint")) {
      const line = text.slice(0, match.index).split("\n").length;
      found.push(`${file}:${line}: ${match[1]}`);
    }
  }
  return found;
}

async function* sources(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* sources(path);
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) yield path;
  }
}

/** Every hint written into a loader error's message, in the non-test modules under `dir`. */
export async function scanForHintsInMessages(
  dir: string,
  classes: readonly string[],
): Promise<string[]> {
  const found: string[] = [];
  for await (const path of sources(dir)) {
    const file = relative(dir, path).replaceAll("\\", "/");
    found.push(...hintsInMessages(file, await Deno.readTextFile(path), classes));
  }
  return found.sort();
}

Deno.test("no loader module writes a hint into a KrepisError's message", async () => {
  const classes = await errorClasses();
  assert.ok(classes.includes("IntegrityError") && classes.includes("JournalError"), classes.join());
  assert.deepEqual(await scanForHintsInMessages(fileURLToPath(LOADER), classes), []);
});

Deno.test("the hint scan finds a hint inside a message, and only there", () => {
  const classes = ["IntegrityError", "CacheError", "KernelError"];
  const planted = [
    "throw new IntegrityError(",
    "  `Cannot read the key (${line.length} characters, ${f({ a: 1 })}): bad\\nHint: give the .pub line`,",
    ");",
    'throw new CacheError("Cannot write x: full", { hint: "free some space" });',
    'throw new TypeError("Cannot construct it\\nHint: use load()");',
    "throw new CacheError(`Cannot ${g(a, b)} it`, { cause, hint: `x\\nHint: y` });",
    'throw new CacheError("Cannot " + "write" + "\\nHint: free", {});',
    'return new KernelError([`${lead} (${name})`, ...rest].join("\\n"), code, name, { hint });',
    'throw new CacheError("Cannot construct it\\nHint: use load()", {});',
  ].join("\n");
  assert.deepEqual(hintsInMessages("planted.ts", planted, classes), [
    "planted.ts:1: IntegrityError",
    "planted.ts:7: CacheError",
    "planted.ts:9: CacheError",
  ]);
});

Deno.test("the hint scan walks a directory tree and skips tests", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "_install"));
    const bad = "throw new IntegrityError(\n  `Cannot read: bad\\nHint: fix it`,\n);\n";
    await Deno.writeTextFile(join(dir, "_install", "trust.ts"), bad);
    await Deno.writeTextFile(join(dir, "_install", "trust_test.ts"), bad);
    await Deno.writeTextFile(
      join(dir, "ok.ts"),
      'new IntegrityError("Cannot read: bad", { hint: "fix it" });\n',
    );
    assert.deepEqual(await scanForHintsInMessages(dir, ["IntegrityError"]), [
      "_install/trust.ts:1: IntegrityError",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
