/**
 * `deno task rehearse`: release day, end to end, on loopback only, with the
 * project's own commands and the real clients:
 *
 * 1. clone: a bare `origin` made from this repository's HEAD, and a clean
 *    clone of it (uncommitted changes are not part of a release);
 * 2. key: `deno task release keygen --force` in the clone (a rehearsal key:
 *    its public half is committed into `loader/_gen/keys.ts`, as the project's
 *    is, so it ships inside the package);
 * 3. cut: `deno task release <version> --execute` (bump, commit, tag, push
 *    to the bare origin; the gate it runs is `--gate`);
 * 4. build: `deno task build --profile release` for this machine's target
 *    and each `--target`, real release artifacts with their post-build
 *    checks (the gate builds this machine's alone: macOS and Windows need
 *    their own machines, and a cross build doubles the cost);
 * 5. publish: `deno task release publish` to the GitHub stand-in through
 *    octokit, which pins the checksums into `loader/_gen/pinned.ts` and then runs
 *    the real `deno publish --token` against the JSR stand-in (the times of
 *    its host, pin and JSR parts are printed apart);
 * 6. as a user, in an empty folder outside the repository, with a fresh Deno
 *    cache and no `KREPIS_TRUSTED_KEY`: {@linkcode userSteps}, exactly as
 *    the README gives them.
 *
 * Every stage prints its time; a failure exits 1 naming the stage, with the
 * end of its output. `--keep <dir>` leaves the hosts' data there, and
 * `--serve <dir>` serves such a folder again.
 *
 * @module
 */

import { join, resolve } from "node:path";
import { commandLine, type CommandSpec, invocationPath, printError } from "../lib/task.ts";
import { resolveTarget } from "../loader/mod.ts";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { GitHubApi } from "../release/github_stand_in.ts";
import { JsrHost } from "../release/jsr_host.ts";
import { ReleaseHost } from "../release/serve_dir.ts";
import { USER_PROGRAM, userSteps } from "./_user_steps.ts";

const NAME = "deno task rehearse";

/** The token both stand-ins accept (they listen on loopback only). */
const TOKEN = "rehearsal-token";

const spec = {
  name: NAME,
  summary:
    "rehearse release day on loopback: cut, build, publish to GitHub and JSR stand-ins, then a user's install",
  usage: [
    "[--version <X.Y.Z|patch|minor|major>] [--target <triple>]… [--gate <cmd>] [--keep <dir>]",
    "--serve <dir>",
  ],
  options: {
    version: {
      type: "string",
      value: "<X.Y.Z|patch|minor|major>",
      help: "the version to cut (default patch)",
    },
    gate: {
      type: "string",
      value: "<cmd>",
      help:
        "the test gate `release --execute` runs in the clone (default `deno task versions`: the rehearsal itself runs inside the gate)",
    },
    target: {
      type: "string",
      multiple: true,
      value: "<triple>",
      help:
        "also build and publish this target (this machine's is always built; e.g. aarch64-unknown-linux-gnu on x86_64 Linux)",
    },
    keep: {
      type: "string",
      value: "<dir>",
      help:
        "work in <dir> and leave it: the clone, the GitHub (<dir>/github) and JSR (<dir>/jsr) data, the user's folder",
    },
    serve: {
      type: "string",
      value: "<dir>",
      help: "serve the hosts a --keep run left in <dir> again, until Ctrl-C",
    },
  },
  maxPositionals: 0,
  env: {
    CARGO_TARGET_DIR:
      "not read: the clone builds into this repository's target/rehearse/ (a link), its own folder, so a second rehearsal reuses cargo's cache and the repository's own builds are never replaced by the rehearsed version's",
  },
  exitCodes: {
    0: "every stage passed (with --serve: stopped by Ctrl-C)",
    1: "a stage failed: the message names it and shows the end of its output",
    2: "usage error",
  },
  more: `Stages: clone, key, cut, build, publish (host, pin, jsr), user (deno add, deno run of a
program calling load(), deno install -g, krepis init, krepis info).
Nothing leaves this machine: origin is a bare repository in the work folder, and GitHub and JSR
are stand-ins on 127.0.0.1 (JSR_URL points deno at the JSR one; KREPIS_MIRROR points the loader
at the GitHub one's download URLs).`,
} satisfies CommandSpec;

/** A stage's name and how long it took. */
export interface StageTime {
  stage: string;
  ms: number;
}

class StageError extends Error {
  constructor(readonly stage: string, message: string) {
    super(message);
  }
}

interface Context {
  work: string;
  log: string;
  env: Record<string, string>;
}

/** Runs a command to completion; its output goes to the log, and its tail into a failure. */
async function run(
  context: Context,
  stage: string,
  command: string[],
  cwd: string,
  env: Record<string, string> = {},
  onLine?: (line: string) => void,
): Promise<string> {
  const child = new Deno.Command(command[0], {
    args: command.slice(1),
    cwd,
    env: { ...context.env, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const text: string[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let pending = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) {
        text.push(line);
        onLine?.(line);
      }
    }
    if (pending) text.push(pending);
  };
  const [status] = await Promise.all([child.status, pump(child.stdout), pump(child.stderr)]);
  const output = text.join("\n");
  await Deno.writeTextFile(context.log, `$ ${command.join(" ")}\n${output}\n`, { append: true });
  if (!status.success) {
    throw new StageError(
      stage,
      `${
        command.map((part) => part === Deno.execPath() ? "deno" : part).join(" ")
      } exited with ${status.code}\n${text.slice(-25).join("\n")}`,
    );
  }
  return output;
}

async function git(context: Context, stage: string, args: string[], cwd: string) {
  return await run(context, stage, ["git", ...args], cwd, {
    GIT_AUTHOR_NAME: "Krepis Rehearsal",
    GIT_AUTHOR_EMAIL: "rehearsal@localhost",
    GIT_COMMITTER_NAME: "Krepis Rehearsal",
    GIT_COMMITTER_EMAIL: "rehearsal@localhost",
  });
}

/** Options for {@linkcode rehearse}. */
export interface RehearseOptions {
  /** The version to cut. @default {"patch"} */
  version?: string;
  /** Targets to build besides this machine's (each must build here: `deno task setup --build`). @default {none} */
  targets?: string[];
  /** The gate `release --execute` runs. @default {"deno task versions"} */
  gate?: string;
  /** The work folder, left in place. @default {a temporary folder, removed after a pass} */
  keep?: string;
  /** One line per stage. @default {console.log} */
  log?: (line: string) => void;
}

/** What a rehearsal did. */
export interface Rehearsal {
  version: string;
  stages: StageTime[];
  work: string;
  /** The loader package's files and bytes as JSR holds them. */
  packageFiles: number;
  packageBytes: number;
  /** Bytes a user's first `krepis version` fetched from JSR (a fresh Deno cache). */
  firstRunBytes: number;
}

/**
 * Rehearses release day (see the module documentation).
 *
 * @param options Version, gate, work folder.
 * @returns The stages' times and the published package's size.
 * @throws {Error} `Cannot rehearse … (stage <name>)` naming the stage that failed.
 */
export async function rehearse(options: RehearseOptions = {}): Promise<Rehearsal> {
  const say = options.log ?? console.log;
  const work = options.keep
    ? resolve(options.keep)
    : await Deno.makeTempDir({ prefix: "krepis-rehearse-" });
  await Deno.mkdir(work, { recursive: true });
  for await (const _ of Deno.readDir(work)) {
    throw new Error(
      `Cannot rehearse in ${work}: the folder is not empty\nHint: give an empty or new folder to --keep, or serve this one with ${NAME} --serve ${work}`,
    );
  }
  const context: Context = {
    work,
    log: join(work, "rehearse.log"),
    env: { NO_COLOR: "1", KREPIS_TRUSTED_KEY: "", KREPIS_MIRROR: "", KREPIS_KERNEL_PATH: "" },
  };
  const stages: StageTime[] = [];
  const timed = async <T>(stage: string, work: () => Promise<T>): Promise<T> => {
    const start = performance.now();
    const result = await work();
    const ms = performance.now() - start;
    stages.push({ stage, ms });
    say(`${stage.padEnd(22)} ${(ms / 1000).toFixed(1).padStart(7)} s`);
    return result;
  };
  const repo = join(work, "repo");
  const deno = Deno.execPath();
  const github = new GitHubApi("krepis", "krepis");
  const jsr = await JsrHost.start({
    root: join(work, "jsr"),
    token: TOKEN,
    logFile: join(work, "jsr-requests.log"),
  });
  try {
    await timed("clone", async () => {
      await git(context, "clone", ["clone", "--quiet", "--bare", REPO_ROOT, "origin.git"], work);
      // origin's main is this repository's HEAD, whatever branch it is on.
      const head = (await git(context, "clone", ["rev-parse", "HEAD"], REPO_ROOT)).trim();
      const origin = join(work, "origin.git");
      await git(context, "clone", ["update-ref", "refs/heads/main", head], origin);
      await git(context, "clone", ["symbolic-ref", "HEAD", "refs/heads/main"], origin);
      await git(context, "clone", ["clone", "--quiet", "origin.git", "repo"], work);
      if (Deno.build.os !== "windows") {
        // The build pins CARGO_TARGET_DIR to <repo>/target. A folder of its
        // own under this repository's target/ keeps cargo's cache for the next
        // rehearsal; sharing target/ itself would replace this repository's
        // kernel builds (the ones its tests load) with the rehearsed version's.
        const builds = join(REPO_ROOT, "target", "rehearse");
        await Deno.mkdir(builds, { recursive: true });
        await Deno.symlink(builds, join(repo, "target"));
        // .gitignore's `target/` matches a folder, not a link to one.
        await Deno.writeTextFile(join(repo, ".git", "info", "exclude"), "/target\n", {
          append: true,
        });
      }
    });
    const secret = await timed("key", async () => {
      const out = await run(context, "key", [
        deno,
        "task",
        "--quiet",
        "release",
        "keygen",
        "--force",
      ], repo);
      const lines = out.split("\n");
      const at = lines.findIndex((line) => line.startsWith("KREPIS_SIGNING_KEY"));
      const key = lines.slice(at + 1).find((line) => line.trim() !== "");
      if (at < 0 || !key) throw new StageError("key", `keygen printed no secret:\n${out}`);
      await git(context, "key", ["commit", "--quiet", "-am", "release: the rehearsal key"], repo);
      await git(context, "key", ["push", "--quiet", "origin", "HEAD"], repo);
      return key.trim();
    });
    const version = await timed("cut", async () => {
      await run(context, "cut", [
        deno,
        "task",
        "--quiet",
        "release",
        options.version ?? "patch",
        "--execute",
        "--gate",
        options.gate ?? "deno task versions",
      ], repo);
      return JSON.parse(await Deno.readTextFile(join(repo, "loader", "deno.json")))
        .version as string;
    });
    const hostTriple = resolveTarget().triple;
    const triples = [hostTriple, ...(options.targets ?? []).filter((t) => t !== hostTriple)];
    for (const triple of triples) {
      await timed(`build ${triple}`, async () => {
        await run(context, `build ${triple}`, [
          deno,
          "task",
          "--quiet",
          "build",
          "--target",
          triple,
          "--profile",
          "release",
        ], repo);
      });
    }
    const env = {
      KREPIS_SIGNING_KEY: secret,
      GITHUB_TOKEN: TOKEN,
      JSR_URL: jsr.url,
      JSR_TOKEN: TOKEN,
    };
    const publishStart = performance.now();
    const marks: Record<string, number> = {};
    const publishCommand = [
      deno,
      "task",
      "--quiet",
      "release",
      "publish",
      "--dist",
      "dist",
      "--targets",
      triples.join(","),
      "--repository",
      "krepis/krepis",
      "--api-url",
      github.url,
    ];
    await run(
      context,
      "publish",
      publishCommand,
      repo,
      env,
      (line) => {
        const part = line.match(/^(plan|host|pin|jsr):/)?.[1];
        if (part && !(part in marks)) marks[part] = performance.now();
      },
    );
    const end = performance.now();
    // `pin:` is printed once the release is hosted and the checksums written, `jsr:` once
    // `deno publish` returned.
    const pinned = marks.pin ?? end;
    for (
      const [part, from, until] of [
        ["publish: host, pin", publishStart, pinned],
        ["publish: jsr", pinned, marks.jsr ?? end],
      ] as const
    ) {
      stages.push({ stage: part, ms: until - from });
      say(`${part.padEnd(22)} ${((until - from) / 1000).toFixed(1).padStart(7)} s`);
    }
    // A second publish of the same version, as after a failure: it must
    // keep what is there (GitHub: the same assets; JSR: skipped), never
    // change a published byte.
    const document = join(jsr.root, "@krepis", "loader", `${version}_meta.json`);
    const published = await Deno.readFile(document);
    await timed("publish again", async () => {
      const out = await run(context, "publish again", publishCommand, repo, env);
      if (!/already published/.test(out) || /\bhost: (uploaded|replaced)\b/.test(out)) {
        throw new StageError(
          "publish again",
          `a second publish of v${version} was not a no-op:\n${out}`,
        );
      }
      const again = await Deno.readFile(document);
      if (again.length !== published.length || again.some((byte, i) => byte !== published[i])) {
        throw new StageError("publish again", `${document} changed`);
      }
    });
    if (github.violations.length > 0) {
      throw new StageError("publish", `GitHub API violations:\n${github.violations.join("\n")}`);
    }
    const meta = JSON.parse(
      await Deno.readTextFile(join(jsr.root, "@krepis", "loader", `${version}_meta.json`)),
    ) as { manifest: Record<string, { size: number }> };
    const files = Object.values(meta.manifest);

    const user = join(work, "user");
    const cache = join(work, "user-cache");
    const installRoot = join(work, "user-bin");
    await Deno.mkdir(user);
    await Deno.writeTextFile(join(user, "main.ts"), USER_PROGRAM);
    const launcher = join(
      installRoot,
      "bin",
      Deno.build.os === "windows" ? "krepis.cmd" : "krepis",
    );
    const userEnv = {
      DENO_DIR: join(work, "user-deno-dir"),
      JSR_URL: jsr.url,
      KREPIS_MIRROR: github.downloadUrl,
      KREPIS_CACHE_DIR: cache,
    };
    const host = new URL(github.url).host;
    for (const step of userSteps(cache, host, launcher, installRoot)) {
      await timed(
        `user: ${step.name}`,
        () => run(context, `user: ${step.name}`, step.command, user, userEnv),
      );
    }
    // What a user's first `krepis version` downloads, in a Deno cache of its own.
    const firstRun = join(work, "user-deno-dir-first-run");
    const before = jsr.requests.length;
    await timed(
      "user: krepis version",
      () =>
        run(context, "user: krepis version", [launcher, "version"], user, {
          ...userEnv,
          DENO_DIR: firstRun,
        }),
    );
    const downloadedBytes = jsr.requests.slice(before).reduce((sum, r) => sum + r.bytes, 0);
    const npm = await Array.fromAsync(Deno.readDir(join(firstRun, "npm"))).catch(() => []);
    if (npm.length > 0) {
      throw new StageError("user: krepis version", `it downloaded npm packages into ${firstRun}`);
    }
    say(`a first krepis version downloads ${downloadedBytes} bytes from JSR and no npm package`);
    if (options.keep) await github.saveTo(join(work, "github"));
    return {
      version,
      stages,
      work,
      packageFiles: files.length,
      packageBytes: files.reduce((sum, file) => sum + file.size, 0),
      firstRunBytes: downloadedBytes,
    };
  } catch (error) {
    const stage = error instanceof StageError ? error.stage : "setup";
    throw new Error(
      `Cannot rehearse the release: stage ${stage} failed: ${
        (error as Error).message
      }\nHint: the whole log is ${context.log}`,
    );
  } finally {
    await github.close();
    await jsr.close();
  }
}

/** Serves what `--keep <dir>` left: the GitHub downloads and the JSR registry. */
async function serveAgain(dir: string): Promise<void> {
  const jsr = await JsrHost.start({ root: join(dir, "jsr"), token: TOKEN });
  const github = ReleaseHost.start(join(dir, "github"));
  console.log(`JSR:    JSR_URL=${jsr.url}`);
  console.log(`GitHub: KREPIS_MIRROR=${github.url}`);
  console.log(
    `a user: JSR_URL=${jsr.url} KREPIS_MIRROR=${github.url} deno add --min-dep-age=0 jsr:@krepis/loader`,
  );
  console.log("stop:   Ctrl-C");
  const stopped = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGINT", () => stopped.resolve());
  await stopped.promise;
  await jsr.close();
  await github.close();
}

if (import.meta.main) {
  const { values } = commandLine(spec);
  try {
    if (values.serve) {
      await serveAgain(invocationPath(values.serve));
    } else {
      const keep = values.keep ? invocationPath(values.keep) : undefined;
      const result = await rehearse({
        version: values.version,
        gate: values.gate,
        keep,
        targets: values.target,
      });
      const total = result.stages.reduce((sum, s) => sum + s.ms, 0);
      console.log(
        `rehearsed v${result.version}: @krepis/loader is ${result.packageFiles} files, ${result.packageBytes} bytes on JSR; ${
          (total / 1000).toFixed(1)
        } s in all`,
      );
      if (keep) {
        console.log(`kept in ${keep}; serve it again: ${NAME} --serve ${keep}`);
      } else {
        await Deno.remove(result.work, { recursive: true });
      }
    }
  } catch (error) {
    printError(error instanceof Error ? error.message : String(error), NAME);
    Deno.exit(1);
  }
}
