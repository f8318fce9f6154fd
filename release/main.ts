/**
 * `deno task release`: cut a release, or publish one.
 *
 * ```sh
 * deno task release minor                  # dry run: prints every change, command and push
 * deno task release minor --execute        # bump, check, commit, tag, push (see cut.ts)
 * ```
 *
 * `deno task release keygen`: makes the project's signing key: writes its
 * public half into `loader/_keys.ts` and prints the secret once, for the
 * `KREPIS_SIGNING_KEY` repository secret.
 *
 * Cut options: `--execute`, `--branch <name>` (default main), `--gate <cmd>`
 * (default `deno task test`), `--root <repo>`, `--previous-lib <file>` (the
 * previous release's Linux library, compared with `abidiff` when installed).
 *
 * `deno task release publish`: the publish step (see `publish.ts`), run by
 * `release.yml` after the build matrix, or locally on a directory of builds.
 *
 * ```sh
 * deno task release publish --dist dist                    # GitHub Release (GITHUB_TOKEN, GITHUB_REPOSITORY)
 * deno task release publish --dist dist --to-dir mirror    # a mirror directory: mirror/v<version>/…
 * deno task release publish --dist dist --targets x86_64-unknown-linux-gnu --to-dir mirror
 * ```
 *
 * Options: `--targets a,b` (a subset, for development releases and mirrors),
 * `--to-dir <path>`, `--repository owner/repo`, `--api-url <url>` (GitHub
 * Enterprise), `--loader-dir <dir>` (whose `_pinned.ts` is written),
 * `--jsr-dry-run` (rehearse the JSR publish). The signing key comes from
 * `KREPIS_SIGNING_KEY`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { type Host, publish } from "./publish.ts";
import { exportSigningKey, importSigningKey } from "./signing_key.ts";
import { generateSigningKey, keyId, publicKeyBase64 } from "./minisign_sign.ts";
import { formatTs } from "../lib/format.ts";
import { renderKeysModule } from "./keys_module.ts";
import { cutRelease } from "./cut.ts";

const USAGE =
  "Usage: deno task release <patch|minor|major|X.Y.Z> [--execute] [--branch main] [--gate <cmd>]\n       deno task release keygen\n       deno task release publish --dist <dir> [--to-dir <dir>] [--targets a,b] [--repository owner/repo] [--api-url <url>] [--loader-dir <dir>] [--jsr-dry-run]";

/** The annotated tag's message (the notes `deno task release` wrote), if HEAD is tagged. */
async function tagNotes(): Promise<string> {
  const out = await new Deno.Command("git", {
    args: ["tag", "--points-at", "HEAD", "--list", "v*", "--format=%(contents)"],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "null",
  }).output().catch(() => null);
  return out?.success ? new TextDecoder().decode(out.stdout).trim() : "";
}

if (import.meta.main) {
  const fail = (message: string, code = 1): never => {
    console.error(message);
    Deno.exit(code);
  };
  let parsed;
  try {
    parsed = parseArgs({
      args: Deno.args,
      allowPositionals: true,
      options: {
        dist: { type: "string" },
        "to-dir": { type: "string" },
        targets: { type: "string" },
        repository: { type: "string" },
        "api-url": { type: "string" },
        "loader-dir": { type: "string" },
        "jsr-dry-run": { type: "boolean" },
        execute: { type: "boolean" },
        branch: { type: "string" },
        gate: { type: "string" },
        root: { type: "string" },
        "previous-lib": { type: "string" },
      },
    });
  } catch (error) {
    fail(`Cannot parse the arguments: ${(error as Error).message}\n${USAGE}`, 2);
  }
  const { values, positionals } = parsed!;
  if (positionals[0] === "keygen") {
    // A new project signing key: the public half goes into the loader, the
    // secret is printed once, for the KREPIS_SIGNING_KEY repository secret.
    const key = await generateSigningKey();
    const keysPath = `${values["loader-dir"] ?? `${REPO_ROOT}/loader`}/_keys.ts`;
    await Deno.writeTextFile(keysPath, await formatTs(renderKeysModule([publicKeyBase64(key)])));
    console.log(`wrote the public key ${keyId(key)} to ${keysPath} (commit it)`);
    console.log("KREPIS_SIGNING_KEY (store it as a repository secret; it is not shown again):");
    console.log(await exportSigningKey(key));
    Deno.exit(0);
  }
  if (positionals[0] && positionals[0] !== "publish") {
    try {
      await cutRelease({
        root: values.root ?? REPO_ROOT,
        bump: positionals[0],
        execute: values.execute ?? false,
        branch: values.branch,
        gate: values.gate,
        previousLibrary: values["previous-lib"],
      });
    } catch (error) {
      fail((error as Error).message);
    }
    Deno.exit(0);
  }
  if (positionals[0] !== "publish" || !values.dist) {
    fail(`Cannot run the release step: expected \`publish --dist <dir>\`\n${USAGE}`, 2);
  }
  const keyText = Deno.env.get("KREPIS_SIGNING_KEY");
  if (!keyText) {
    fail(
      "Cannot sign the release: KREPIS_SIGNING_KEY is not set\nHint: set it to the release signing key (a repository secret in CI)",
    );
  }
  let host: Host;
  if (values["to-dir"]) {
    host = { kind: "dir", path: values["to-dir"] };
  } else {
    const token = Deno.env.get("GITHUB_TOKEN");
    const repository = values.repository ?? Deno.env.get("GITHUB_REPOSITORY");
    if (!token || !repository) {
      fail(
        "Cannot publish to GitHub: GITHUB_TOKEN and a repository (--repository or GITHUB_REPOSITORY) are needed\nHint: or publish to a mirror directory with --to-dir",
      );
    }
    host = { kind: "github", token: token!, repository: repository!, apiUrl: values["api-url"] };
  }
  try {
    await publish({
      dist: values.dist!,
      key: await importSigningKey(keyText!),
      host: host!,
      targets: values.targets?.split(",").map((t) => t.trim()).filter(Boolean),
      loaderDir: values["loader-dir"] ?? `${REPO_ROOT}/loader`,
      notes: await tagNotes(),
      publishJsr: async (loaderDir) => {
        const args = ["publish", "--allow-dirty", ...(values["jsr-dry-run"] ? ["--dry-run"] : [])];
        const status = await new Deno.Command(Deno.execPath(), {
          args,
          cwd: loaderDir,
          stdout: "inherit",
          stderr: "inherit",
        })
          .output();
        if (!status.success) {
          throw new Error(
            `Cannot publish @krepis/loader to JSR: deno publish exited with ${status.code}`,
          );
        }
      },
    });
  } catch (error) {
    fail((error as Error).message);
  }
}
