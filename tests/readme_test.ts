/**
 * The README says what the commands do: every `krepis` command and every
 * exit code it names exist, and none is missing; the README and the
 * maintainer documents in docs/ name every `deno task`, and only those.
 * Every relative link of theirs leads to a file.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { LOADER_ENV } from "../loader/_internal/env.ts";
import { EXIT_CODES } from "../loader/cli.ts";
import { COMMANDS } from "../loader/_cli/commands.ts";
import { runCli } from "./_cli.ts";

const readme = await Deno.readTextFile(join(REPO_ROOT, "README.md"));

/** The README and the maintainer documents in docs/, which it links to. */
async function allDocs(): Promise<string> {
  const texts = [readme];
  for await (const entry of Deno.readDir(join(REPO_ROOT, "docs"))) {
    if (entry.isFile && entry.name.endsWith(".md")) {
      texts.push(await Deno.readTextFile(join(REPO_ROOT, "docs", entry.name)));
    }
  }
  return texts.join("\n");
}

/** The rows of the Markdown table that follows `heading` (the cells of each). */
function rowsAfter(heading: string): string[][] {
  const start = readme.indexOf(heading);
  assert.notEqual(start, -1, `the README has "${heading}"`);
  const lines = readme.slice(start).split("\n");
  const first = lines.findIndex((l) => l.startsWith("|"));
  const rows = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith("|")) break;
    rows.push(line.split("|").slice(1, -1).map((cell) => cell.trim()));
  }
  return rows;
}

/** The first cell of each row of the table that follows `heading`. */
function tableAfter(heading: string): string[] {
  return rowsAfter(heading).map((row) => row[0]);
}

Deno.test("the README's krepis table names every command, and every command it names exists", () => {
  const rows = tableAfter("## The `krepis` command");
  const words = rows.map((row) => row.match(/^`krepis (\w+)/)?.[1]);
  assert.deepEqual(
    words.filter((w) => w === undefined),
    [],
    "every row starts with `krepis <word>",
  );
  assert.deepEqual(new Set(words), new Set(Object.keys(COMMANDS)));
});

Deno.test("the README's exit codes are the CLI's, worded as `krepis --help` words them", async () => {
  const rows = rowsAfter("On failure it prints one `error: Cannot …` line");
  assert.deepEqual(rows.map((row) => Number(row[0])), Object.values(EXIT_CODES));
  const help = (await runCli(["--help"], {})).stdout;
  const listed = [...help.slice(help.indexOf("Exit codes:")).matchAll(/^ {2}(\d+) +(.+)$/gm)];
  // The same codes, worded the same.
  assert.deepEqual(
    listed.map((m) => [Number(m[1]), m[2]]),
    rows.map((row) => [Number(row[0]), row[1]]),
  );
});

Deno.test("the README and docs/ name every deno task, and every task they name exists", async () => {
  const tasks = Object.keys(
    JSON.parse(await Deno.readTextFile(join(REPO_ROOT, "deno.json"))).tasks,
  );
  const named = new Set([...(await allDocs()).matchAll(/deno task ([\w:-]+)/g)].map((m) => m[1]));
  assert.deepEqual(tasks.filter((task) => !named.has(task)), [], "tasks the README does not name");
  assert.deepEqual([...named].filter((task) => !tasks.includes(task)), [], "named, not tasks");
});

Deno.test("the README's warm-load permissions give the scoped --allow-env list of every variable the loader reads", () => {
  const flag = `--allow-env=${LOADER_ENV.join(",")}`;
  const at = readme.indexOf(flag);
  assert.notEqual(at, -1, `the README gives ${flag}`);
  // In the 30-second example and in the permissions table.
  assert.notEqual(readme.indexOf(flag, at + flag.length), -1, "and in the permissions table");
});

Deno.test("every relative link of the README and docs/ leads to a file of the repository", async () => {
  const problems: string[] = [];
  const files = ["README.md", "SECURITY.md", "CHANGELOG.md"];
  for await (const entry of Deno.readDir(join(REPO_ROOT, "docs"))) {
    if (entry.name.endsWith(".md")) files.push(`docs/${entry.name}`);
  }
  for (const file of files) {
    const text = await Deno.readTextFile(join(REPO_ROOT, file));
    const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/")) : "";
    for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      if (/^[a-z]+:/.test(target)) continue;
      const path = join(REPO_ROOT, dir, target);
      if (!(await Deno.stat(path).then(() => true, () => false))) {
        problems.push(`${file} links to ${target}`);
      }
    }
  }
  assert.deepEqual(problems, []);
});
