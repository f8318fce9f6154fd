/**
 * `deno task release <patch|minor|major|X.Y.Z> [--execute]`: cuts a release.
 * A dry run by default: it prints every file change, command and push it
 * would make, and changes nothing. With `--execute` it does them.
 *
 * Preflight refuses: a dirty tree, another branch than the release branch,
 * an existing tag, versions that disagree today, an ABI change the ABI
 * version does not announce (against the previous `v*` tag), a failing test
 * gate. Then: bump the lock-step version (cargo-release for Cargo.toml and
 * Cargo.lock, every deno.json member), check every copy and the built
 * kernel's `krepis_version()` agree with the tag, commit `release: vX.Y.Z`,
 * create the annotated tag with notes grouped by commit type, and push both
 * to `origin`. The tag starts `release.yml`.
 *
 * @module
 */

import semver from "semver";
import { cargoBuild } from "../lib/cargo_build.ts";
import { headerAbiVersion } from "../lib/header.ts";
import { collectVersions, describeDisagreement } from "../lib/versions.ts";
import { checkAbidiff, guardAbi, runAbidiff } from "./abi_guard.ts";
import { commitSubjects, renderNotes } from "./release_notes.ts";

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
  /** The test gate, a shell command run in `root`. @default {"deno task test"} */
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

async function git(root: string, args: string[], allowFail = false): Promise<string> {
  const out = await new Deno.Command("git", { args, cwd: root, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success && !allowFail) {
    throw new Error(
      `Cannot run git ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  return new TextDecoder().decode(out.stdout).trim();
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
 * Plans (and with `execute`, performs) a release.
 *
 * @param options What to release and how.
 * @returns The new version and the plan's actions.
 * @throws {Error} A `Cannot …` message when a preflight check or a step fails.
 */
export async function cutRelease(
  options: CutOptions,
): Promise<{ version: string; actions: Action[] }> {
  const { root } = options;
  const log = options.log ?? console.log;
  const branch = options.branch ?? "main";

  // Preflight: nothing here changes anything.
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
  // origin must be reachable and must not be ahead: the push below is
  // atomic, so a failed run leaves origin as it was.
  await git(root, ["fetch", "--quiet", "origin", branch]);
  const behind = await git(root, ["rev-list", "--count", `HEAD..origin/${branch}`]);
  if (behind !== "0") {
    throw new Error(
      `Cannot release: origin/${branch} has ${behind} commit(s) this tree lacks\nHint: git pull --rebase origin ${branch}`,
    );
  }
  if (
    await git(root, ["tag", "--list", tag]) ||
    await git(root, ["ls-remote", "--tags", "origin", `refs/tags/${tag}`])
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
  if (options.previousLibrary) {
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
    } else {
      const header = await Deno.readTextFile(`${root}/crates/krepis-kernel/include/krepis.h`);
      const previousHeader = previous
        ? await git(root, ["show", `${previous}:crates/krepis-kernel/include/krepis.h`])
        : header;
      checkAbidiff(result, headerAbiVersion(previousHeader), headerAbiVersion(header));
      log(`abidiff: ${result.changed ? "a change the ABI version announces" : "no change"}`);
    }
  }
  const gate = options.gate ?? "deno task test";
  log(`gate: ${gate}`);
  if (!(await sh(root, gate))) {
    throw new Error(`Cannot release: the test gate \`${gate}\` failed\nHint: fix it first`);
  }

  const notes = renderNotes(version, await commitSubjects(root, previous));
  const members =
    (JSON.parse(await Deno.readTextFile(`${root}/deno.json`)).workspace ?? []) as string[];
  const actions: Action[] = [
    {
      kind: "command",
      describe:
        `cargo release version ${version} --execute --no-confirm   (Cargo.toml [workspace.package], Cargo.lock)`,
      run: async () => {
        const cargo = await new Deno.Command("cargo", {
          args: [
            "release",
            "version",
            version,
            "--execute",
            "--no-confirm",
            "--allow-branch",
            branch,
          ],
          cwd: root,
          stdout: "inherit",
          stderr: "inherit",
        }).output();
        if (!cargo.success) {
          throw new Error(
            `Cannot bump the Cargo version: cargo release version ${version} failed\nHint: install cargo-release (deno task setup)`,
          );
        }
      },
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
  log(
    `release ${from} → ${version}${
      options.execute ? "" : " (dry run: nothing is changed; --execute does it)"
    }`,
  );
  for (const action of actions) {
    log(`${options.execute ? "do  " : "plan"} ${action.kind.padEnd(7)} ${action.describe}`);
    if (options.execute) await action.run();
  }
  if (!options.execute) log(`\nnotes for ${tag}:\n${notes}`);
  return { version, actions };
}
