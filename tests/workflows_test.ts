/**
 * The generated workflows: not stale, clean under actionlint, derived from
 * the target table, made of `deno task …` steps that exist, and hygienic:
 * least-privilege permissions and a timeout on every job, superseded
 * pull-request runs cancelled but never a tag run, downloads cached, and the
 * release pipeline exercised on pull requests with publishing only for a
 * pushed `v*` tag. The `if:` and `concurrency` expressions are evaluated by a
 * small interpreter of the GitHub Actions expression syntax below, for the
 * events that start the workflows.
 */

import assert from "node:assert/strict";
import { parse } from "npm:yaml@^2.9.1";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { actionlintPath } from "../tools/actionlint.ts";
import { renderWorkflows, TEST_RUNNERS } from "../matrix/gen_workflows.ts";
import { loadTargetTable } from "../matrix/targets.ts";

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, string>;
}
interface Job {
  "runs-on": string;
  "timeout-minutes"?: number;
  permissions?: Record<string, string>;
  if?: string;
  needs?: string | string[];
  steps: Step[];
}
interface Workflow {
  on: Record<string, unknown>;
  permissions?: Record<string, string>;
  concurrency?: { group: string; "cancel-in-progress": string | boolean };
  env?: Record<string, string>;
  jobs: Record<string, Job>;
}

/** Tasks a workflow names that the release-step work will add; each must not exist yet. */
const PENDING_TASKS: string[] = [];

const workflows = await renderWorkflows();
const parsed = new Map([...workflows].map(([path, text]) => [path, parse(text) as Workflow]));
const CI = ".github/workflows/ci.yml";
const RELEASE = ".github/workflows/release.yml";

type Value = string | number | boolean | null;

/**
 * Evaluates a GitHub Actions expression (the part inside `${{ }}`, or a
 * whole `if:`): string literals, dotted context names, `!`, `==`, `!=`,
 * `&&`, `||` (which yield an operand, as in JavaScript), parentheses and
 * `startsWith()`/`endsWith()`/`contains()`. Enough for the workflows here;
 * anything else throws.
 */
function evaluate(expression: string, context: Record<string, Value>): Value {
  const tokens = expression.match(/'(?:[^']|'')*'|&&|\|\||==|!=|[!(),]|[\w.-]+|\S/g) ?? [];
  let at = 0;
  const peek = () => tokens[at];
  const take = (expected?: string) => {
    const token = tokens[at++];
    if (expected !== undefined && token !== expected) {
      throw new Error(`Cannot evaluate ${expression}: expected ${expected}, found ${token}`);
    }
    return token;
  };
  const truthy = (v: Value) => v !== null && v !== false && v !== 0 && v !== "";
  const text = (v: Value) => String(v ?? "").toLowerCase();
  const functions: Record<string, (a: Value, b: Value) => boolean> = {
    startsWith: (a, b) => text(a).startsWith(text(b)),
    endsWith: (a, b) => text(a).endsWith(text(b)),
    contains: (a, b) => text(a).includes(text(b)),
  };
  const primary = (): Value => {
    const token = take();
    if (token === "!") return !truthy(primary());
    if (token === "(") {
      const value = or();
      take(")");
      return value;
    }
    if (token.startsWith("'")) return token.slice(1, -1).replaceAll("''", "'");
    if (token in functions) {
      take("(");
      const a = or();
      take(",");
      const b = or();
      take(")");
      return functions[token](a, b);
    }
    if (token === "true" || token === "false") return token === "true";
    if (/^[A-Za-z_][\w.-]*$/.test(token)) {
      if (!(token in context)) throw new Error(`Cannot evaluate ${expression}: no ${token}`);
      return context[token];
    }
    throw new Error(`Cannot evaluate ${expression}: unexpected ${token}`);
  };
  const comparison = (): Value => {
    const left = primary();
    if (peek() === "==" || peek() === "!=") {
      const equal = take() === "==";
      return (text(left) === text(primary())) === equal;
    }
    return left;
  };
  const and = (): Value => {
    let value = comparison();
    while (peek() === "&&") {
      take();
      const right = comparison();
      value = truthy(value) ? right : value;
    }
    return value;
  };
  const or = (): Value => {
    let value = and();
    while (peek() === "||") {
      take();
      const right = and();
      value = truthy(value) ? value : right;
    }
    return value;
  };
  const value = or();
  if (at !== tokens.length) throw new Error(`Cannot evaluate ${expression}: trailing ${peek()}`);
  return value;
}

/** Evaluates every `${{ … }}` in a template (or a bare `if:` expression). */
function render(template: string | boolean, context: Record<string, Value>, bare = false): Value {
  if (typeof template === "boolean") return template;
  if (bare && !template.includes("${{")) return evaluate(template, context);
  const whole = template.match(/^\$\{\{(.*)\}\}$/s);
  if (whole && !whole[1].includes("${{")) return evaluate(whole[1], context);
  return template.replace(/\$\{\{(.*?)\}\}/g, (_, e) => String(evaluate(e, context)));
}

/** The `github` context of runs started by these events. */
const EVENTS = {
  pullRequest: { event_name: "pull_request", ref: "refs/pull/7/merge", ref_name: "7/merge" },
  mainPush: { event_name: "push", ref: "refs/heads/main", ref_name: "main" },
  tagPush: { event_name: "push", ref: "refs/tags/v1.2.3", ref_name: "v1.2.3" },
  branchPush: { event_name: "push", ref: "refs/heads/topic", ref_name: "topic" },
  dispatch: { event_name: "workflow_dispatch", ref: "refs/heads/main", ref_name: "main" },
  dispatchOnTag: { event_name: "workflow_dispatch", ref: "refs/tags/v1.2.3", ref_name: "v1.2.3" },
} as const;

function github(workflow: string, event: keyof typeof EVENTS, runId: number) {
  const context: Record<string, Value> = { "github.workflow": workflow, "github.run_id": runId };
  for (const [key, value] of Object.entries(EVENTS[event])) context[`github.${key}`] = value;
  return context;
}

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
  assert.deepEqual(release.on, { push: { tags: ["v*"] }, pull_request: {}, workflow_dispatch: {} });
  assert.deepEqual(Object.keys(release.jobs), ["plan", "build", "publish"]);
  assert.equal(
    release.jobs.publish.steps.at(-1).run.startsWith("deno task release publish"),
    true,
    "the release step comes last",
  );
});

Deno.test("the expression interpreter the workflow tests rely on gets GitHub's semantics right", () => {
  const context = github("ci", "pullRequest", 41);
  assert.equal(evaluate("github.event_name == 'PULL_REQUEST'", context), true);
  assert.equal(evaluate("github.event_name == 'push' && github.ref", context), false);
  assert.equal(
    evaluate("github.event_name == 'pull_request' && github.ref || github.run_id", context),
    "refs/pull/7/merge",
  );
  assert.equal(evaluate("!(startsWith(github.ref, 'refs/tags/'))", context), true);
  assert.equal(render("a-${{ github.run_id }}-${{ github.workflow }}", context), "a-41-ci");
  assert.throws(() => evaluate("github.nope", context), /no github\.nope/);
  assert.throws(() => evaluate("fromJSON('1')", context), /Cannot evaluate/);
});

/**
 * What is wrong with a workflow's permissions, timeouts and concurrency, one
 * line each: top-level permissions other than `{}` or `contents: read`, a job
 * without `permissions` (it would inherit the top level's) or
 * `timeout-minutes`, a job other than the release's publish asking for more
 * than `contents: read`, no `concurrency`.
 */
function hygieneProblems(path: string, workflow: Workflow): string[] {
  const problems: string[] = [];
  const top = JSON.stringify(workflow.permissions);
  if (top !== "{}" && top !== JSON.stringify({ contents: "read" })) {
    problems.push(`${path}: top-level permissions ${top ?? "missing"}`);
  }
  if (!workflow.concurrency?.group || workflow.concurrency["cancel-in-progress"] === undefined) {
    problems.push(`${path}: no concurrency group with cancel-in-progress`);
  }
  for (const [name, job] of Object.entries(workflow.jobs)) {
    const minutes = job["timeout-minutes"];
    if (typeof minutes !== "number" || minutes <= 0 || minutes > 120) {
      problems.push(`${path} ${name}: timeout-minutes ${minutes ?? "missing"}`);
    }
    const expected = path === RELEASE && name === "publish"
      ? { contents: "write", "id-token": "write", attestations: "write" }
      : { contents: "read" };
    if (JSON.stringify(job.permissions) !== JSON.stringify(expected)) {
      problems.push(
        `${path} ${name}: permissions ${JSON.stringify(job.permissions) ?? "missing"}, not ${
          JSON.stringify(expected)
        }`,
      );
    }
  }
  return problems;
}

Deno.test("every job has a timeout and only the permissions it needs; no permission at the top", () => {
  for (const [path, workflow] of parsed) assert.deepEqual(hygieneProblems(path, workflow), []);
});

Deno.test("a workflow without a job's timeout, permissions or concurrency is caught", () => {
  const broken = structuredClone(parsed.get(RELEASE)!);
  delete broken.jobs.build["timeout-minutes"];
  delete broken.jobs.plan.permissions;
  broken.jobs.build.permissions = { contents: "write" };
  broken.permissions = { contents: "write" };
  delete broken.concurrency;
  assert.deepEqual(hygieneProblems(RELEASE, broken), [
    `${RELEASE}: top-level permissions {"contents":"write"}`,
    `${RELEASE}: no concurrency group with cancel-in-progress`,
    `${RELEASE} plan: permissions missing, not {"contents":"read"}`,
    `${RELEASE} build: timeout-minutes missing`,
    `${RELEASE} build: permissions {"contents":"write"}, not {"contents":"read"}`,
  ]);
});

Deno.test("a new push to a pull request cancels its old run; no other run is ever cancelled", () => {
  for (const [path, workflow] of parsed) {
    const concurrency = workflow.concurrency;
    assert.ok(concurrency, `${path}: no concurrency`);
    const name = path.endsWith("ci.yml") ? "ci" : "release";
    const run = (event: keyof typeof EVENTS, runId: number) => {
      const context = github(name, event, runId);
      return {
        group: render(concurrency.group, context),
        cancel: render(concurrency["cancel-in-progress"], context),
      };
    };
    // Two runs for one pull request share a group, and the newer cancels the older.
    assert.equal(run("pullRequest", 1).group, run("pullRequest", 2).group);
    assert.equal(run("pullRequest", 2).cancel, true);
    // Two runs for one tag (a re-push, a re-run) or one branch: separate
    // groups, so neither cancels nor queues behind the other.
    for (
      const event of ["tagPush", "mainPush", "branchPush", "dispatch", "dispatchOnTag"] as const
    ) {
      assert.notEqual(run(event, 1).group, run(event, 2).group, `${path} ${event}`);
      assert.equal(run(event, 2).cancel, false, `${path} ${event}`);
      assert.notEqual(run(event, 1).group, run("pullRequest", 2).group, `${path} ${event}`);
    }
    // Groups are per workflow: CI on a pull request never cancels its release check.
    assert.notEqual(
      render(concurrency.group, github("ci", "pullRequest", 1)),
      render(concurrency.group, github("release", "pullRequest", 1)),
    );
  }
});

Deno.test("the release pipeline runs on pull requests and by hand; only a pushed v* tag publishes", () => {
  const release = parsed.get(RELEASE)!;
  assert.deepEqual(Object.keys(release.on).sort(), ["pull_request", "push", "workflow_dispatch"]);
  assert.deepEqual(release.on.push, { tags: ["v*"] });
  const runs = (job: Job | Step, event: keyof typeof EVENTS) =>
    job.if === undefined || render(job.if, github("release", event, 1), true) === true;
  for (const event of Object.keys(EVENTS) as (keyof typeof EVENTS)[]) {
    assert.equal(runs(release.jobs.plan, event), true, `plan on ${event}`);
    assert.equal(runs(release.jobs.build, event), true, `build on ${event}`);
    assert.equal(runs(release.jobs.publish, event), event === "tagPush", `publish on ${event}`);
    // The plan checks the versions on every run, and against the tag on a tag push.
    const checks = release.jobs.plan.steps.filter((step) =>
      step.run?.startsWith("deno task versions") && runs(step, event)
    );
    assert.deepEqual(
      checks.map((step) => step.run),
      [
        event === "tagPush"
          ? "deno task versions --tag ${{ github.ref_name }}"
          : "deno task versions",
      ],
      `plan on ${event}`,
    );
  }
  assert.deepEqual(release.jobs.publish.needs, "build");
  assert.deepEqual(release.jobs.build.needs, "plan");
});

Deno.test("every job caches Deno's downloads, and jobs that build Rust cargo's, before any deno task", async () => {
  const gitignore = await Deno.readTextFile(`${REPO_ROOT}/.gitignore`);
  const denoJson = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}/deno.json`));
  for (const [path, workflow] of parsed) {
    const denoDir = workflow.env?.DENO_DIR;
    assert.equal(denoDir, "${{ github.workspace }}/target/deno-dir", `${path}: DENO_DIR`);
    // target/ is where the cache lands: ignored by git, deno fmt and deno lint.
    assert.match(gitignore, /^\/target\/$/m);
    assert.ok(
      denoJson.fmt.exclude.includes("target/") && denoJson.lint.exclude.includes("target/"),
    );
    for (const [name, job] of Object.entries(workflow.jobs)) {
      const cacheAt = job.steps.findIndex((step) => step.uses?.startsWith("actions/cache@"));
      assert.ok(cacheAt >= 0, `${path} ${name}: no actions/cache step`);
      const cache = job.steps[cacheAt].with!;
      const paths = cache.path.split("\n");
      assert.ok(paths.includes("${{ env.DENO_DIR }}"), `${path} ${name}: Deno's cache not cached`);
      assert.match(cache.key, /\$\{\{ hashFiles\('deno\.lock'/, `${path} ${name}: key`);
      assert.ok(cache.key.startsWith(cache["restore-keys"]), `${path} ${name}: restore-keys`);
      assert.match(cache.key, /\$\{\{ runner\.os \}\}-\$\{\{ runner\.arch \}\}/);
      const buildsRust = job.steps.some((step) => step.uses?.startsWith("dtolnay/rust-toolchain@"));
      if (buildsRust) {
        for (
          const cargo of ["~/.cargo/registry/index", "~/.cargo/registry/cache", "~/.cargo/git/db"]
        ) {
          assert.ok(paths.includes(cargo), `${path} ${name}: ${cargo} not cached`);
        }
        assert.match(cache.key, /hashFiles\('deno\.lock', 'Cargo\.lock'\)/, `${path} ${name}`);
      }
      const firstTask = job.steps.findIndex((step) => step.run?.startsWith("deno task"));
      assert.ok(firstTask > cacheAt, `${path} ${name}: the cache is restored after a deno task`);
    }
  }
  // Each build matrix entry has its own key: six entries must not race to save one.
  const build = parsed.get(CI)!.jobs.build;
  const key = build.steps.find((step) => step.uses?.startsWith("actions/cache@"))!.with!.key;
  assert.match(key, /\$\{\{ matrix\.target \}\}/);
});
