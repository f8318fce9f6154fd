/**
 * `deno task release`: the command line of the release tools. Three forms,
 * each with its own `--help`:
 *
 * ```sh
 * deno task release minor                  # dry run: prints the plan; runs no gate, changes nothing
 * deno task release minor --execute        # the plan, the gate, then bump, check, commit, tag, push (cut.ts)
 * deno task release keygen                 # the project's signing key (refuses to replace one without --force)
 * deno task release publish --dist dist    # GitHub Release, pinned checksums, JSR (publish.ts)
 * deno task release publish --dist dist --to-dir mirror   # a mirror directory: mirror/v<version>/… (no JSR)
 * ```
 *
 * `keygen` writes the public half of a new key into `loader/_gen/keys.ts` and
 * prints the secret once, for the `KREPIS_SIGNING_KEY` repository secret.
 *
 * The options, environment variables and exit codes are in the specs below
 * (`deno task release --help` prints them all); the conventions (help on
 * stdout with exit 0, usage errors naming the nearest valid word with exit
 * 2) are `loader/_cli/command_line.ts`'s.
 *
 * @module
 */

import { join } from "node:path";
import semver from "npm:semver@^7.7.3";
import {
  type CommandSpec,
  errorText,
  invocationPath,
  nearest,
  type OptionSpec,
  parseCommandLine,
  printError,
  splitCommand,
  USAGE_EXIT,
  type Values,
} from "../lib/task.ts";
import { parseMinisignPublicKey } from "../loader/release.ts";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { outputOrNull } from "../lib/process.ts";
import { formatTs } from "../lib/format.ts";
import { type Host, publish } from "./publish.ts";
import { exportSigningKey, importSigningKey } from "./signing_key.ts";
import { generateSigningKey, keyId, publicKeyBase64 } from "./minisign_sign.ts";
import { renderKeysModule } from "./keys_module.ts";
import { cutRelease, DEFAULT_GATE } from "./cut.ts";

const NAME = "deno task release";
const BUMPS = ["patch", "minor", "major"];
const VERSION_FORMS = "<patch|minor|major|X.Y.Z>";

const CUT_OPTIONS = {
  execute: {
    type: "boolean",
    help: "do it: the gate, then bump, check, commit, tag and push (default: a dry run)",
  },
  branch: { type: "string", value: "<name>", help: "the release branch (default main)" },
  gate: {
    type: "string",
    value: "<cmd>",
    help:
      `the test gate, a shell command (default \`${DEFAULT_GATE}\`); --execute runs it, a dry run only when given`,
  },
  root: { type: "string", value: "<dir>", help: "the repository to release (default this one)" },
  "previous-lib": {
    type: "string",
    value: "<file>",
    help: "the previous release's Linux library, compared with abidiff when installed",
  },
} satisfies Record<string, OptionSpec>;

/** Shared by keygen and publish. */
const LOADER_DIR: OptionSpec = {
  type: "string",
  value: "<dir>",
  help:
    "the loader package: keygen writes its _gen/keys.ts, publish its _gen/pinned.ts (default loader/)",
};

const KEYGEN_OPTIONS = {
  "loader-dir": LOADER_DIR,
  force: {
    type: "boolean",
    help: "replace the key _gen/keys.ts already holds (releases it signed stop verifying)",
  },
} satisfies Record<string, OptionSpec>;

const PUBLISH_OPTIONS = {
  dist: {
    type: "string",
    value: "<dir>",
    help: "the builds: `deno task build` output or the CI artifacts (required)",
  },
  "to-dir": {
    type: "string",
    value: "<dir>",
    help: "publish to a mirror directory (<dir>/v<version>/) instead of a GitHub Release",
  },
  targets: {
    type: "string",
    value: "<a,b>",
    help: "publish only these targets, comma-separated (default every target)",
  },
  repository: {
    type: "string",
    value: "<owner/repo>",
    help: "the GitHub repository (default GITHUB_REPOSITORY)",
  },
  "api-url": {
    type: "string",
    value: "<url>",
    help: "the GitHub REST API (GitHub Enterprise: https://<host>/api/v3)",
  },
  "loader-dir": LOADER_DIR,
  jsr: {
    type: "boolean",
    help: "with --to-dir: publish @krepis/loader to JSR too (a GitHub Release always does)",
  },
  "jsr-dry-run": {
    type: "boolean",
    help: "run the JSR step as a rehearsal (deno publish --dry-run), after --to-dir too",
  },
} satisfies Record<string, OptionSpec>;

const EXIT_CODES = (failure: string) => ({ 0: "success", 1: failure, 2: "usage error" });

function cutSpec(bump: string): CommandSpec & { options: typeof CUT_OPTIONS } {
  return {
    name: `${NAME} ${bump}`,
    summary: "cut a release: a dry run prints the plan; --execute does it",
    usage: ["[--execute] [--branch <name>] [--gate <cmd>] [--root <dir>] [--previous-lib <file>]"],
    options: CUT_OPTIONS,
    maxPositionals: 0,
    exitCodes: EXIT_CODES("refused or failed (preflight, the gate or a step)"),
    more: `The version is patch, minor or major (the part of the current version to bump) or X.Y.Z.
A dry run checks the tree, the versions, the tag and the ABI, prints every file change,
command and push, and changes nothing; it runs the gate only with --gate. --execute prints
the same plan, runs the gate, then bumps, checks, commits, tags and pushes to origin; the
pushed tag starts .github/workflows/release.yml.`,
  };
}

const KEYGEN: CommandSpec & { options: typeof KEYGEN_OPTIONS } = {
  name: `${NAME} keygen`,
  summary: "make the project's release signing key",
  usage: ["[--loader-dir <dir>] [--force]"],
  options: KEYGEN_OPTIONS,
  maxPositionals: 0,
  exitCodes: EXIT_CODES("_gen/keys.ts already holds a key (without --force), or cannot be written"),
  more:
    `Writes the public half into loader/_gen/keys.ts (commit it) and prints the secret once: store
it as the KREPIS_SIGNING_KEY repository secret, which the release workflow signs with.`,
};

const PUBLISH: CommandSpec & { options: typeof PUBLISH_OPTIONS } = {
  name: `${NAME} publish`,
  summary: "sign and publish built kernels, pin their checksums, publish the loader",
  usage: [
    "--dist <dir> [--to-dir <dir> [--jsr]] [--targets <a,b>] [--repository <owner/repo>] [--api-url <url>] [--loader-dir <dir>] [--jsr-dry-run]",
  ],
  options: PUBLISH_OPTIONS,
  maxPositionals: 0,
  env: {
    KREPIS_SIGNING_KEY: "the signing key (the secret `deno task release keygen` printed)",
    GITHUB_TOKEN: "a token with contents: write (GitHub Release only)",
    GITHUB_REPOSITORY: "owner/repo, when --repository is not given (GitHub Release only)",
    JSR_TOKEN:
      "a JSR access token, passed to deno publish --token (default: deno publish signs in itself, e.g. by GitHub Actions OIDC)",
    JSR_URL: "the JSR registry deno publish writes to (read by deno itself)",
  },
  exitCodes: EXIT_CODES("refused or failed (the stages after a failed one did not run)"),
  more: `In order: plan (the builds in --dist), sign (manifest.json.minisig, SHA256SUMS), host (a
GitHub Release, or a mirror directory with --to-dir), pin the checksums into the loader's
_gen/pinned.ts, publish @krepis/loader to JSR (skipped with --to-dir unless --jsr).`,
};

/** Every option of every command, with the commands that take it, for the top-level help. */
function allOptions(): Record<string, OptionSpec> {
  const merged: Record<string, OptionSpec & { commands: string[] }> = {};
  const forms: [string, Record<string, OptionSpec>][] = [
    ["cut", CUT_OPTIONS],
    ["keygen", KEYGEN_OPTIONS],
    ["publish", PUBLISH_OPTIONS],
  ];
  for (const [command, options] of forms) {
    for (const [name, option] of Object.entries(options)) {
      merged[name] ??= { ...option, commands: [] };
      merged[name].commands.push(command);
    }
  }
  return Object.fromEntries(
    Object.entries(merged).map((
      [name, { commands, ...option }],
    ) => [name, { ...option, help: `[${commands.join(", ")}] ${option.help}` }]),
  );
}

const TOP: CommandSpec & { options: Record<string, OptionSpec> } = {
  name: NAME,
  summary: "cut a release, make the signing key, or publish a release",
  usage: [
    `${VERSION_FORMS} ${cutSpec(VERSION_FORMS).usage[0]}`,
    `keygen ${KEYGEN.usage[0]}`,
    `publish ${PUBLISH.usage[0]}`,
  ],
  commands: {
    [VERSION_FORMS]: "cut: a dry run prints the plan; --execute bumps, commits, tags, pushes",
    keygen: "make the signing key: public half into loader/_gen/keys.ts, secret printed once",
    publish: "sign and publish builds (GitHub Release or mirror), pin checksums, JSR",
  },
  options: allOptions(),
  env: PUBLISH.env,
  exitCodes: EXIT_CODES("refused or failed (the message says why, and a hint what to do)"),
  more: `Each command's own --help lists its options alone, e.g. \`${NAME} minor --help\`.`,
};

/** Prints what a parse asked for and exits. */
function finish(output: { code: number; stdout: string; stderr: string }): never {
  const encoder = new TextEncoder();
  if (output.stdout) Deno.stdout.writeSync(encoder.encode(output.stdout));
  if (output.stderr) Deno.stderr.writeSync(encoder.encode(output.stderr));
  Deno.exit(output.code);
}

/** A usage error (exit 2) in the format of `loader/_cli/command_line.ts`. */
function usageError(name: string, problem: string, hint: string): never {
  finish({
    code: USAGE_EXIT,
    stdout: "",
    stderr: errorText(`Cannot run ${name}: ${problem}\nHint: ${hint}`),
  });
}

/** Parses the arguments after the command word against its spec, or prints and exits. */
function parse<O extends Record<string, OptionSpec>>(
  spec: CommandSpec & { options: O },
  args: string[],
): Values<O> {
  const parsed = parseCommandLine(spec, args);
  if (parsed.kind === "exit") finish(parsed);
  return parsed.values;
}

/** A path option as the user typed it, made absolute against their folder; undefined stays so. */
function userPath(path: string | undefined): string | undefined {
  return path === undefined ? undefined : invocationPath(path);
}

/** The annotated tag's message (the notes `deno task release` wrote), if HEAD is tagged. */
async function tagNotes(): Promise<string> {
  const out = await outputOrNull(
    new Deno.Command("git", {
      args: ["tag", "--points-at", "HEAD", "--list", "v*", "--format=%(contents)"],
      cwd: REPO_ROOT,
      stdout: "piped",
      stderr: "null",
    }),
  );
  return out?.success ? new TextDecoder().decode(out.stdout).trim() : "";
}

/** The ids of the keys a `_gen/keys.ts` holds (none when it is missing or lists none). */
async function projectKeyIds(keysPath: string): Promise<string[]> {
  try {
    await Deno.stat(keysPath);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  // Read as text, never run: the module is the loader's data, whatever else is in it.
  const text = await Deno.readTextFile(keysPath);
  const list = text.match(/PROJECT_KEYS\b[^=]*=\s*\[([^\]]*)\]/);
  if (!list) {
    throw new Error(
      `Cannot read the project keys in ${keysPath}: it has no PROJECT_KEYS list\nHint: restore the file from git (it is written by \`${NAME} keygen\`)`,
    );
  }
  const keys = [...list[1].matchAll(/"([^"]*)"/g)].map((m) => m[1]);
  return keys.map((key) => {
    try {
      return parseMinisignPublicKey(key).keyId;
    } catch {
      return JSON.stringify(key.slice(0, 16));
    }
  });
}

/**
 * A new project signing key: the public half goes into the loader, the
 * secret is printed once, for the KREPIS_SIGNING_KEY repository secret.
 * Refuses to replace a key unless forced: releases it signed would no longer
 * verify with the new loader.
 */
async function keygen(values: Values<typeof KEYGEN_OPTIONS>): Promise<void> {
  const keysPath = join(
    userPath(values["loader-dir"]) ?? join(REPO_ROOT, "loader"),
    "_gen",
    "keys.ts",
  );
  const old = await projectKeyIds(keysPath);
  if (old.length && !values.force) {
    throw new Error(
      `Cannot make a new signing key: ${keysPath} already holds the project key ${
        old.join(", ")
      }\nHint: its secret is the KREPIS_SIGNING_KEY repository secret; to replace the key anyway, run \`${NAME} keygen --force\` (releases signed by the old key will no longer verify with the new loader)`,
    );
  }
  const key = await generateSigningKey();
  await Deno.writeTextFile(keysPath, await formatTs(renderKeysModule([publicKeyBase64(key)])));
  if (old.length) {
    console.log(
      `replaced the project key ${old.join(", ")} with ${
        keyId(key)
      } in ${keysPath} (commit it); releases signed by the old key will no longer verify with the new loader`,
    );
  } else {
    console.log(`wrote the public key ${keyId(key)} to ${keysPath} (commit it)`);
  }
  console.log("KREPIS_SIGNING_KEY (store it as a repository secret; it is not shown again):");
  console.log(await exportSigningKey(key));
}

/** The publish step, with the host, key and JSR step the arguments and environment name. */
async function publishRelease(values: Values<typeof PUBLISH_OPTIONS>): Promise<void> {
  if (!values.dist) {
    usageError(
      PUBLISH.name,
      "--dist <dir> is needed",
      `give the directory of builds, e.g. --dist dist (\`${PUBLISH.name} --help\` lists the options)`,
    );
  }
  const keyText = Deno.env.get("KREPIS_SIGNING_KEY");
  if (!keyText) {
    throw new Error(
      `Cannot sign the release: KREPIS_SIGNING_KEY is not set\nHint: set it to the secret \`${NAME} keygen\` printed (in CI: the KREPIS_SIGNING_KEY repository secret)`,
    );
  }
  let host: Host;
  if (values["to-dir"]) {
    host = { kind: "dir", path: invocationPath(values["to-dir"]) };
  } else {
    const token = Deno.env.get("GITHUB_TOKEN");
    const repository = values.repository ?? Deno.env.get("GITHUB_REPOSITORY");
    if (!token || !repository) {
      throw new Error(
        `Cannot publish to GitHub: ${
          [!token && "GITHUB_TOKEN is not set", !repository && "no repository is named"]
            .filter(Boolean).join(" and ")
        }\nHint: set GITHUB_TOKEN (contents: write) and GITHUB_REPOSITORY or --repository owner/repo; or publish to a mirror directory with --to-dir <dir>`,
      );
    }
    host = { kind: "github", token, repository, apiUrl: values["api-url"] };
  }
  const dryRun = values["jsr-dry-run"] ?? false;
  await publish({
    dist: invocationPath(values.dist),
    key: await importSigningKey(keyText),
    host,
    targets: values.targets?.split(",").map((t) => t.trim()).filter(Boolean),
    loaderDir: userPath(values["loader-dir"]) ?? join(REPO_ROOT, "loader"),
    notes: await tagNotes(),
    jsr: host.kind === "github" || values.jsr || dryRun,
    publishJsr: async (loaderDir) => {
      const token = Deno.env.get("JSR_TOKEN");
      const args = [
        "publish",
        "--allow-dirty",
        ...(dryRun ? ["--dry-run"] : []),
        ...(token && !dryRun ? ["--token", token] : []),
      ];
      const status = await new Deno.Command(Deno.execPath(), {
        args,
        cwd: loaderDir,
        stdout: "inherit",
        stderr: "inherit",
      })
        .output();
      if (!status.success) {
        throw new Error(
          `Cannot publish @krepis/loader to JSR: deno ${
            args.map((arg) => arg === token ? "<JSR_TOKEN>" : arg).join(" ")
          } exited with ${status.code}\nHint: the release is hosted and its checksums are pinned in ${
            join(loaderDir, "_gen", "pinned.ts")
          }; fix what deno publish reported above, then run \`deno publish\` in ${loaderDir}`,
        );
      }
    },
  });
}

/** Runs the command the arguments name; a refusal or failure exits 1 with its message. */
async function main(args: string[]): Promise<void> {
  const { word, rest } = splitCommand(args, [TOP]);
  if (word === undefined) {
    const parsed = parseCommandLine(TOP, args);
    if (parsed.kind === "exit") finish(parsed);
    finish({
      code: USAGE_EXIT,
      stdout: "",
      stderr: `${
        errorText(
          `Cannot run ${NAME}: no command given\nHint: \`${NAME} minor\` prints the plan of a minor release; \`${NAME} --help\` explains every option`,
        )
      }${TOP.usage.map((u, i) => `${i === 0 ? "Usage:" : "      "} ${NAME} ${u}`).join("\n")}\n`,
    });
  }
  try {
    if (word === "keygen") {
      await keygen(parse(KEYGEN, rest));
    } else if (word === "publish") {
      await publishRelease(parse(PUBLISH, rest));
    } else if (BUMPS.includes(word) || semver.valid(word)) {
      const values = parse(cutSpec(word), rest);
      await cutRelease({
        root: userPath(values.root) ?? REPO_ROOT,
        bump: word,
        execute: values.execute ?? false,
        branch: values.branch,
        gate: values.gate,
        previousLibrary: userPath(values["previous-lib"]),
      });
    } else {
      // --help wins over a mistyped command, as over anything else.
      const top = parseCommandLine(TOP, rest);
      if (top.kind === "exit" && top.code === 0) finish(top);
      const near = nearest(word, [...BUMPS, "keygen", "publish"]);
      usageError(
        NAME,
        `no command "${word}"`,
        `${
          near
            ? `did you mean ${near}?`
            : "expected patch, minor, major, a version X.Y.Z, keygen or publish"
        } (\`${NAME} --help\` lists the commands)`,
      );
    }
  } catch (error) {
    printError(error instanceof Error ? error.message : String(error), NAME);
    Deno.exit(1);
  }
}

if (import.meta.main) await main(Deno.args);
