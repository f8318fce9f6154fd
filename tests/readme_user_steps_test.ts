/**
 * The README's user path is the one `deno task rehearse` runs: its
 * 30-second example is the rehearsal's program, and each command of its
 * "Install" and "In 30 seconds" sections is one of the rehearsal's user
 * steps, written with `<cache>` and `<host>` for the rehearsal's folders and
 * without the `--root` the rehearsal adds to keep the machine clean.
 * tests/rehearse_test.ts runs those steps against a published release.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { USER_PROGRAM, userSteps } from "../tools/_user_steps.ts";

const readme = await Deno.readTextFile(join(REPO_ROOT, "README.md"));

/** The lines of the README's fenced blocks of a language, comments after `#` removed. */
function blockLines(language: string): string[] {
  const blocks = [...readme.matchAll(new RegExp("^```" + language + "\\n([\\s\\S]*?)^```", "gm"))];
  return blocks.flatMap((m) => m[1].split("\n")).map((line) => line.replace(/\s+#.*$/, "").trim())
    .filter(Boolean);
}

Deno.test("the README's 30-second example is the program the rehearsal runs", () => {
  const blocks = [...readme.matchAll(/^```ts\n([\s\S]*?)^```/gm)].map((m) => m[1]);
  assert.ok(blocks.includes(USER_PROGRAM), `a ts block of the README is\n${USER_PROGRAM}`);
});

Deno.test("every user step the rehearsal runs is in the README, as a user types it", () => {
  const lines = blockLines("sh");
  for (const step of userSteps("<cache>", "<host>", "krepis", undefined, "linux")) {
    const typed = step.command.map((part) => part === Deno.execPath() ? "deno" : part).join(" ");
    assert.ok(lines.includes(typed), `the README gives \`${typed}\` (${step.name})`);
  }
});

Deno.test("the README tells users about the 24-hour age gate and its workarounds", () => {
  for (
    const text of ["--min-dep-age=0", "NPM_CONFIG_MIN_RELEASE_AGE=0", '"minimumDependencyAge"']
  ) {
    assert.ok(readme.includes(text), text);
  }
});
