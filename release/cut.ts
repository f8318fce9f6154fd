/**
 * `deno task release <patch|minor|major|X.Y.Z> [--execute]`: cuts a release.
 * A dry run by default: it prints every file change, command and push it
 * would make, and changes nothing. With `--execute` it does them.
 *
 * Preflight refuses: a dirty tree, another branch than the release branch,
 * an existing tag, versions that disagree today, an ABI change the ABI
 * version does not announce (against the previous `v*` tag). Then the plan
 * is printed. The test gate (`deno task test` by default) runs after the
 * plan, before anything is changed: always with `--execute`, in a dry run
 * only when `--gate` names one. Then: bump the lock-step version
 * (Cargo.toml's `[workspace.package]`, Cargo.lock by `cargo update
 * --workspace`, every deno.json member),
 * check every copy and the built kernel's `krepis_version()` agree with the
 * tag, commit `release: vX.Y.Z`, create the annotated tag with notes grouped
 * by commit type, and push both to `origin`. The tag starts `release.yml`;
 * the last lines say what it does and where to follow it.
 *
 * `origin` must be reachable for `--execute`; a dry run says when it is not
 * and goes on.
 *
 * @module
 */

import { join } from "node:path";
import semver from "npm:semver@^7.7.3";
import { cargoBuild } from "../lib/cargo_build.ts";
import { outputWithin } from "../lib/process.ts";
import { headerAbiVersion } from "../lib/header.ts";
import { collectVersions, describeDisagreement } from "../lib/versions.ts";
import { checkAbidiff, guardAbi, runAbidiff } from "./abi_guard.ts";
import { commitSubjects, renderNotes } from "./release_notes.ts";
import { bumpCargoVersion } from "./cargo_version.ts";

/** The test gate `--execute` runs when none is given. */
export const DEFAULT_GATE = "deno task test";

/** Options for {@linkcode cutRelease}. */
export interface CutOptions {
  /** The repository. */
  root: string;
  /** `patch`, `minor`, `major` or an explicit version. */
  bump: string;
  /** Do it (default: print the plan only). @default {false} */
  execute?: boolean;
  /** The release branch. @default {"main"} */
  branch?: string;
  /**
   * The test gate, a shell command run in `root` after the plan is printed
   * and before anything is changed. `execute` runs it (default
   * {@linkcode DEFAULT_GATE}); a dry run runs it only when it is given.
   */
  gate?: string;
  /** Target directory for the version-check build. @default {`<root>/target`} */
  targetDir?: string;
  /** The previous release's Linux library, for `abidiff` (when installed). @default {none: headers only} */
  previousLibrary?: string;
  /** One line per planned or done action. @default {console.log} */
  log?: (line: string) => void;
}

/** One action of the plan. */
export interface Action {
  /** What it changes: a file, a command, a push. */
  kind: "edit" | "command" | "push" | "check";
  /** What a person reads in the dry run. */
  describe: string;
  run: () => Promise<void>;
}

/** What preflight found: the versions and the previous release's tag. */
interface Preflight {
  from: string;
  version: string;
  tag: string;
  previous: string | null;
}

/** The longest any git command may take (a fetch from an unresponsive origin is killed). */
const GIT_LIMIT_MS = 60_000;

async function gitOutput(
  root: string,
  args: string[],
): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  // Never a prompt: no stdin, no terminal prompt for credentials, and a time limit.
  const out = await outputWithin(
    new Deno.Command("git", {
      args,
      cwd: root,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { GIT_TERMINAL_PROMPT: "0" },
    }),
    GIT_LIMIT_MS,
  );
  if (out.signal) {
    return {
      ok: false,
      stdout: "",
      stderr: `git ${args[0]} took longer than ${GIT_LIMIT_MS / 1000} s and was stopped`,
    };
  }
  const decoder = new TextDecoder();
  return {
    ok: out.success,
    stdout: decoder.decode(out.stdout).trim(),
    stderr: decoder.decode(out.stderr).trim(),
  };
}

async function git(root: string, args: string[], allowFail = false): Promise<string> {
  const out = await gitOutput(root, args);
  if (!out.ok && !allowFail) throw new Error(`Cannot run git ${args.join(" ")}: ${out.stderr}`);
  return out.stdout;
}

async function sh(root: string, command: string): Promise<boolean> {
  const out = await new Deno.Command("sh", {
    args: ["-c", command],
    cwd: root,
    stdout: "inherit",
    stderr: "inherit",
  })
    .output();
  return out.success;
}

/** The newest `vX.Y.Z` tag reachable from HEAD, or null. */
async function previousTag(root: string): Promise<string | null> {
  const tags = (await git(root, ["tag", "--merged", "HEAD", "--list", "v*"])).split("\n").filter((
    t,
  ) => semver.valid(t.slice(1)));
  return tags.sort((a, b) => semver.rcompare(a.slice(1), b.slice(1)))[0] ?? null;
}

/**
 * The page where a GitHub repository's workflow runs are listed, from its
 * remote URL (`https://github.com/o/r.git`, `git@github.com:o/r.git`,
 * `ssh://git@github.com/o/r`), or null when the remote is not on GitHub.
 *
 * @param remote A git remote URL.
 * @returns `https://github.com/<owner>/<repo>/actions`, or null.
 */
export function githubActionsUrl(remote: string): string | null {
  const match = remote.trim().match(
    /^(?:https?:\/\/(?:[^@/]+@)?github\.com\/|git@github\.com:|ssh:\/\/git@github\.com(?::\d+)?\/)([\w.-]+)\/([\w.-]+?)(?:\.git)?\/?$/,
  );
  return match ? `https://github.com/${match[1]}/${match[2]}/actions` : null;
}

/**
 * Plans (and with `execute`, performs) a release: preflight, the plan, the
 * gate, then the actions.
 *
 * @param options What to release and how.
 * @returns The new version and the plan's actions.
 * @throws {Error} A `Cannot …` message when a preflight check, the gate or a step fails.
 */
export async function cutRelease(
  options: CutOptions,
): Promise<{ version: string; actions: Action[] }> {
  const { root } = options;
  const log = options.log ?? console.log;
  const branch = options.branch ?? "main";
  const found = await preflight(options, branch, log);
  const { from, version, tag } = found;
  const notes = renderNotes(version, await commitSubjects(root, found.previous));
  const actions = await planActions(options, branch, found, notes);
  log(
    `release ${from} → ${version}${
      options.execute ? "" : " (dry run: nothing is changed; --execute does it)"
    }`,
  );
  for (const action of actions) log(`plan ${action.kind.padEnd(7)} ${action.describe}`);
  await runGate(options, log);
  if (!options.execute) {
    log(`\nnotes for ${tag}:\n${notes}`);
    return { version, actions };
  }
  for (const action of actions) {
    log(`do   ${action.kind.padEnd(7)} ${action.describe}`);
    await action.run();
  }
  for (const line of await nextSteps(root, tag, version)) log(line);
  return { version, actions };
}

/** The checks before anything: nothing here changes anything. */
async function preflight(
  options: CutOptions,
  branch: string,
  log: (line: string) => void,
): Promise<Preflight> {
  const { root } = options;
  const status = await git(root, ["status", "--porcelain"]);
  if (status) {
    throw new Error(
      `Cannot release: the working tree has uncommitted changes\n${status}\nHint: commit or stash them first`,
    );
  }
  const current = await git(root, ["rev-parse", "--abbrev-ref", "HEAD"]);
  if (current !== branch) {
    throw new Error(
      `Cannot release from ${current}: releases are cut on ${branch}\nHint: git switch ${branch}`,
    );
  }
  const copies = await collectVersions(root);
  const disagreement = describeDisagreement(copies);
  if (disagreement) {
    throw new Error(disagreement.replace(/^Cannot accept the versions/, "Cannot release"));
  }
  const from = copies[0].version;
  const version = ["patch", "minor", "major"].includes(options.bump)
    ? semver.inc(from, options.bump as semver.ReleaseType)
    : semver.valid(options.bump);
  if (!version || !semver.gt(version, from)) {
    throw new Error(
      `Cannot release ${options.bump}: it is not a version above ${from}\nHint: use patch, minor, major or X.Y.Z`,
    );
  }
  const tag = `v${version}`;
  const reachable = await checkOrigin(options, branch, log);
  if (
    await git(root, ["tag", "--list", tag]) ||
    (reachable && await git(root, ["ls-remote", "--tags", "origin", `refs/tags/${tag}`]))
  ) {
    const unpushed = (await git(root, ["log", "-1", "--format=%s"])) === `release: ${tag}`;
    throw new Error(
      `Cannot release ${tag}: the tag already exists\nHint: ${
        unpushed
          ? `a previous run stopped before pushing: git push --atomic origin ${branch} ${tag}`
          : "pick the next version"
      }`,
    );
  }
  const previous = await previousTag(root);
  await checkAbi(options, previous, log);
  return { from, version, tag, previous };
}

/**
 * origin must be reachable and must not be ahead: the push at the end is
 * atomic, so a failed run leaves origin as it was. A dry run only says when
 * it cannot reach it.
 *
 * @returns Whether origin answered.
 */
async function checkOrigin(
  options: CutOptions,
  branch: string,
  log: (line: string) => void,
): Promise<boolean> {
  const { root } = options;
  const fetched = await gitOutput(root, ["fetch", "--quiet", "origin", branch]);
  if (!fetched.ok) {
    const reason = fetched.stderr.split("\n")[0].replace(/^fatal: /, "") || "git fetch failed";
    if (options.execute) {
      throw new Error(
        `Cannot release: origin is unreachable (${reason})\nHint: the release ends with a push to origin; check the network and \`git remote get-url origin\`, then run it again`,
      );
    }
    log(`origin: unreachable (${reason}); --execute will refuse until it is reachable`);
    return false;
  }
  const behind = await git(root, ["rev-list", "--count", `HEAD..origin/${branch}`]);
  if (behind !== "0") {
    throw new Error(
      `Cannot release: origin/${branch} has ${behind} commit(s) this tree lacks\nHint: git pull --rebase origin ${branch}`,
    );
  }
  return true;
}

/** Refuses an ABI change the ABI version does not announce (headers, and abidiff when asked). */
async function checkAbi(
  options: CutOptions,
  previous: string | null,
  log: (line: string) => void,
): Promise<void> {
  const { root } = options;
  const header = "crates/krepis-kernel/include/krepis.h";
  const proto = "proto/krepis.proto";
  if (previous) {
    const change = await guardAbi(
      {
        header: await git(root, ["show", `${previous}:${header}`]),
        proto: await git(root, ["show", `${previous}:${proto}`]),
      },
      {
        header: await Deno.readTextFile(`${root}/${header}`),
        proto: await Deno.readTextFile(`${root}/${proto}`),
      },
    );
    log(
      `abi: against ${previous}: ${change.added.length} added, ${change.removed.length} removed, ${change.changed.length} changed`,
    );
  } else {
    log("abi: no previous release to compare with");
  }
  if (!options.previousLibrary) return;
  const given = await Deno.stat(options.previousLibrary).catch(() => null);
  if (!given?.isFile) {
    throw new Error(
      `Cannot compare with --previous-lib ${options.previousLibrary}: no such file\nHint: give the previous release's Linux library (from its GitHub Release), or leave --previous-lib out`,
    );
  }
  const { library } = await cargoBuild({
    cwd: root,
    verbose: false,
    env: options.targetDir ? { CARGO_TARGET_DIR: options.targetDir } : {},
  });
  const result = await runAbidiff(options.previousLibrary, library);
  if (!result.ran) {
    log(
      "abidiff: not installed (apt-get install abigail-tools); the header comparison stands alone",
    );
    return;
  }
  const current = await Deno.readTextFile(`${root}/${header}`);
  const previousHeader = previous ? await git(root, ["show", `${previous}:${header}`]) : current;
  checkAbidiff(result, headerAbiVersion(previousHeader), headerAbiVersion(current));
  log(`abidiff: ${result.changed ? "a change the ABI version announces" : "no change"}`);
}

/**
 * Runs the test gate, saying what it runs and why; in a dry run without
 * `gate`, says that it does not.
 */
async function runGate(options: CutOptions, log: (line: string) => void): Promise<void> {
  if (!options.execute && options.gate === undefined) {
    log(
      `gate: not run in a dry run; --execute runs \`${DEFAULT_GATE}\` first, or pass --gate <cmd> to run one now`,
    );
    return;
  }
  const gate = options.gate ?? DEFAULT_GATE;
  log(
    options.execute
      ? `gate: running \`${gate}\` before anything is changed (--execute)`
      : `gate: running \`${gate}\` (--gate asks for it; the dry run still changes nothing)`,
  );
  if (!(await sh(options.root, gate))) {
    throw new Error(
      `Cannot release: the test gate \`${gate}\` failed\nHint: run \`${gate}\` and fix what it reports; nothing was changed`,
    );
  }
  log(`gate: \`${gate}\` passed`);
}

/** The top of a new CHANGELOG.md. */
export const CHANGELOG_HEADER = `# Changelog

Written by the release step (\`deno task release <version> --execute\`) from the notes of each
release's tag: the commits since the previous tag, grouped by conventional-commit type.
`;

/**
 * Puts a release's notes on top of the changelog, under its header (a
 * version already there is left as it is, so a re-run adds nothing).
 *
 * @param changelog The changelog's text.
 * @param notes The release's notes (`## vX.Y.Z` and its sections).
 * @returns The new text.
 */
export function addToChangelog(changelog: string, notes: string): string {
  const heading = notes.split("\n", 1)[0];
  if (changelog.split("\n").includes(heading)) return changelog;
  const at = changelog.search(/^## /m);
  const head = at < 0 ? changelog.trimEnd() + "\n\n" : changelog.slice(0, at);
  const rest = at < 0 ? "" : "\n" + changelog.slice(at);
  return `${head}${notes.trimEnd()}\n${rest}`;
}

/** The release's actions, in order: bump, check, changelog, commit, tag, push. */
async function planActions(
  options: CutOptions,
  branch: string,
  { from, version, tag }: Preflight,
  notes: string,
): Promise<Action[]> {
  const { root } = options;
  const members =
    (JSON.parse(await Deno.readTextFile(`${root}/deno.json`)).workspace ?? []) as string[];
  return [
    {
      kind: "edit",
      describe:
        `Cargo.toml: [workspace.package] version "${from}" → "${version}", then cargo update --workspace (Cargo.lock)`,
      run: () => bumpCargoVersion(root, from, version),
    },
    ...members.map((member): Action => {
      const path = `${member.replace(/^\.\//, "")}/deno.json`;
      return {
        kind: "edit",
        describe: `${path}: "version": "${from}" → "${version}"`,
        run: async () => {
          const text = await Deno.readTextFile(`${root}/${path}`);
          const next = text.replace(/("version"\s*:\s*")[^"]*(")/, `$1${version}$2`);
          if (next === text) throw new Error(`Cannot bump ${path}: it has no "version" field`);
          await Deno.writeTextFile(`${root}/${path}`, next);
        },
      };
    }),
    {
      kind: "check",
      describe:
        `every version copy, the tag and the built kernel's krepis_version() are ${version}`,
      run: async () => {
        const now = await collectVersions(root);
        now.push({ source: "the tag", version: tag.slice(1) });
        const { library } = await cargoBuild({
          cwd: root,
          verbose: false,
          env: options.targetDir ? { CARGO_TARGET_DIR: options.targetDir } : {},
        });
        const lib = Deno.dlopen(library, { krepis_version: { parameters: [], result: "pointer" } });
        try {
          const pointer = lib.symbols.krepis_version();
          now.push({
            source: "krepis_version() of the built kernel",
            version: pointer ? Deno.UnsafePointerView.getCString(pointer) : "(NULL)",
          });
        } finally {
          lib.close();
        }
        const problem = describeDisagreement(now);
        if (problem) throw new Error(problem);
      },
    },
    {
      kind: "edit",
      describe: `CHANGELOG.md: the notes of ${tag} on top`,
      run: async () => {
        const path = join(root, "CHANGELOG.md");
        const text = await Deno.readTextFile(path).catch((error) => {
          if (error instanceof Deno.errors.NotFound) return CHANGELOG_HEADER;
          throw error;
        });
        await Deno.writeTextFile(path, addToChangelog(text, notes));
        await git(root, ["add", "CHANGELOG.md"]);
      },
    },
    {
      kind: "command",
      describe: `git commit -am "release: ${tag}"`,
      run: async () => void await git(root, ["commit", "-am", `release: ${tag}`]),
    },
    {
      kind: "command",
      describe: `git tag -a ${tag} (notes: ${
        notes.split("\n").filter((l) => l.startsWith("- ")).length
      } entries)`,
      // verbatim: the notes' Markdown headings start with "#", which git would strip.
      run: async () => void await git(root, ["tag", "-a", "--cleanup=verbatim", tag, "-m", notes]),
    },
    {
      kind: "push",
      describe:
        `git push --atomic origin ${branch} ${tag}   (both or neither; the tag starts release.yml)`,
      run: async () => void await git(root, ["push", "--atomic", "origin", branch, tag]),
    },
  ];
}

/** What the pushed tag starts, and where to follow it. */
async function nextSteps(root: string, tag: string, version: string): Promise<string[]> {
  const remote = await git(root, ["config", "--get", "remote.origin.url"], true);
  const actions = githubActionsUrl(remote);
  return [
    "",
    `next: the tag ${tag} starts .github/workflows/release.yml, which`,
    `  1. checks that every version copy agrees with ${tag};`,
    "  2. builds, checks and smoke-tests the kernel on every target of matrix/targets.json;",
    `  3. attests their provenance and publishes the GitHub Release ${tag}: every library (with`,
    "     .zst and .gz copies), SHA256SUMS, and manifest.json signed with the KREPIS_SIGNING_KEY",
    "     secret (manifest.json.minisig);",
    `  4. pins those checksums into the loader it then publishes to JSR as @krepis/loader ${version}.`,
    actions
      ? `follow it at ${actions}`
      : "follow it in the Actions tab of the repository (origin is not a GitHub URL)",
  ];
}
