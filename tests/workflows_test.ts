/**
 * The generated workflows: not stale, clean under actionlint, derived from
 * the target table, and made of `deno task …` steps that exist.
 */

import assert from "node:assert/strict";
import { parse } from "yaml";
import { REPO_ROOT } from "../tools/cargo_build.ts";
import { actionlintPath } from "../tools/actionlint.ts";
import { renderWorkflows, TEST_RUNNERS } from "../matrix/gen_workflows.ts";
import { loadTargetTable } from "../matrix/targets.ts";

/** Tasks a workflow names that the release-step work will add; each must not exist yet. */
const PENDING_TASKS: string[] = [];

const workflows = await renderWorkflows();

Deno.test("the committed workflows are what matrix:gen renders from the table", async () => {
  for (const [path, text] of workflows) {
    const committed = await Deno.readTextFile(`${REPO_ROOT}/${path}`);
    assert.ok(committed === text, `${path} is stale: run \`deno task matrix:gen\` and commit`);
  }
});

Deno.test("actionlint finds nothing in the workflows", async () => {
  const actionlint = await actionlintPath();
  assert.ok(actionlint, "actionlint is not installed: run `deno task setup`");
  const output = await new Deno.Command(actionlint, {
    args: [...workflows.keys()],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(
    output.success,
    new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr),
  );
});

Deno.test("actionlint is not a check that cannot fail: a broken workflow is reported", async () => {
  const actionlint = await actionlintPath();
  assert.ok(actionlint);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/.github/workflows`, { recursive: true });
    const broken = workflows.get(".github/workflows/ci.yml")!.replace(
      "runs-on: ${{ matrix.os }}",
      "runs-on: ${{ matrix.oss }}",
    );
    await Deno.writeTextFile(`${dir}/.github/workflows/ci.yml`, broken);
    const output = await new Deno.Command(actionlint, {
      args: [".github/workflows/ci.yml"],
      cwd: dir,
      stdout: "piped",
    }).output();
    assert.equal(output.success, false);
    assert.match(new TextDecoder().decode(output.stdout), /oss/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("every run step is a deno task that exists", async () => {
  const tasks = Object.keys(JSON.parse(await Deno.readTextFile(`${REPO_ROOT}/deno.json`)).tasks);
  for (const [path, text] of workflows) {
    const jobs = parse(text).jobs as Record<string, { steps: { run?: string }[] }>;
    for (const [job, { steps }] of Object.entries(jobs)) {
      for (const step of steps.filter((s) => s.run)) {
        const match = step.run!.match(/^deno task ([\w:-]+)/);
        assert.ok(match, `${path} ${job}: "${step.run}" is not a deno task`);
        const task = match[1];
        if (PENDING_TASKS.includes(task)) continue;
        assert.ok(tasks.includes(task), `${path} ${job}: deno task ${task} does not exist`);
      }
    }
  }
  for (const task of PENDING_TASKS) {
    assert.ok(!tasks.includes(task), `${task} exists now: remove it from PENDING_TASKS`);
  }
});

Deno.test("the build matrix is the target table, each target on its native runner", async () => {
  const rows = await loadTargetTable();
  for (const name of ["ci.yml", "release.yml"]) {
    const build = parse(workflows.get(`.github/workflows/${name}`)!).jobs.build;
    assert.deepEqual(
      build.strategy.matrix.include,
      rows.map((row) => ({ target: row.triple, runner: row.runner, file: row.file })),
    );
  }
  const test = parse(workflows.get(".github/workflows/ci.yml")!).jobs.test;
  assert.deepEqual(test.strategy.matrix.os, [...TEST_RUNNERS]);
  const release = parse(workflows.get(".github/workflows/release.yml")!);
  assert.deepEqual(release.on, { push: { tags: ["v*"] } });
  assert.deepEqual(Object.keys(release.jobs), ["plan", "build", "publish"]);
  assert.equal(
    release.jobs.publish.steps.at(-1).run.startsWith("deno task release publish"),
    true,
    "the release step comes last",
  );
});
