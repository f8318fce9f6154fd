/**
 * The publish step, in an order enforced by the code:
 *
 * 1. plan: merge the build fragments in `dist/` into a manifest (refusing a
 *    missing target, disagreeing builds, changed files);
 * 2. sign: `manifest.json.minisig` and `SHA256SUMS` with `KREPIS_SIGNING_KEY`;
 * 3. host: a GitHub Release (octokit) or a mirror directory, every asset
 *    confirmed present;
 * 4. pin: only then write the checksums into the loader's pinned module;
 * 5. JSR: only then publish the loader (by default for a GitHub Release; a
 *    mirror directory does not need it, so there the step is skipped, and
 *    says so, unless asked for).
 *
 * Each stage takes the previous stage's result as its input, so none can run
 * before the one it depends on has succeeded.
 *
 * @module
 */

import { join } from "node:path";
import type { Manifest } from "../loader/release.ts";
import { loadTargetTable } from "../matrix/targets.ts";
import { formatTs } from "../lib/format.ts";
import type { SigningKey } from "./minisign_sign.ts";
import { signedAssets } from "./signed_assets.ts";
import type { PackedFile } from "../matrix/pack_artifact.ts";
import { readFragments } from "../matrix/fragment.ts";
import { planRelease } from "./plan_release.ts";
import { renderPinnedModule } from "./pin_checksums.ts";
import { writeSignedDir } from "./signed_dir.ts";
import { type GitHubOptions, publishToGitHub } from "./github_host.ts";

/** Where the release goes. */
export type Host =
  | { kind: "dir"; path: string }
  | ({ kind: "github" } & Omit<GitHubOptions, "tag">);

/** Options for {@linkcode publish}. */
export interface PublishOptions {
  /** The builds (`deno task build` output, or downloaded CI artifacts). */
  dist: string;
  /** The signing key. */
  key: SigningKey;
  /** Where to publish. */
  host: Host;
  /** Publish only these targets. @default {every target in the table} */
  targets?: string[];
  /** The loader package directory whose `_gen/pinned.ts` is written. */
  loaderDir: string;
  /** Publishes the loader to JSR (runs last, when `jsr` holds). */
  publishJsr: (loaderDir: string) => Promise<void>;
  /** Run the JSR step. @default {true for a GitHub Release, false for a mirror directory} */
  jsr?: boolean;
  /** One line per action. @default {console.log} */
  log?: (line: string) => void;
  /** Release notes for a new GitHub Release. @default {""} */
  notes?: string;
}

/** A release whose every asset the host confirmed. Only {@linkcode publish} makes one. */
export interface HostedRelease {
  readonly manifest: Manifest;
  readonly where: string;
}

/** The loader with the release's checksums pinned. */
export interface PinnedLoader {
  readonly release: HostedRelease;
  readonly loaderDir: string;
}

/**
 * Runs the publish step.
 *
 * @param options Builds, key, host, loader directory and JSR publisher.
 * @returns The hosted release.
 * @throws {Error} From whichever stage failed; later stages did not run.
 */
export async function publish(options: PublishOptions): Promise<HostedRelease> {
  const log = options.log ?? console.log;
  const plan = await planRelease(
    await readFragments(options.dist),
    await loadTargetTable(),
    options.targets,
  );
  // The pins only count when the loader being published has this version.
  const loaderVersion =
    JSON.parse(await Deno.readTextFile(`${options.loaderDir}/deno.json`)).version;
  if (loaderVersion !== plan.manifest.version) {
    throw new Error(
      `Cannot publish: the builds are ${plan.manifest.version} but ${options.loaderDir}/deno.json is ${loaderVersion}\nHint: publish from the commit the release tag points to`,
    );
  }
  log(`plan: v${plan.manifest.version}, ${plan.manifest.targets.map((t) => t.triple).join(", ")}`);
  const hosted = await host(plan.manifest, plan.files, options, log);
  const pinned = await pin(hosted, options.loaderDir, log);
  if (options.jsr ?? options.host.kind === "github") {
    await options.publishJsr(pinned.loaderDir);
    log("jsr: the JSR publish step finished");
  } else {
    log(
      options.host.kind === "dir"
        ? "jsr: skipped (publishing to a mirror directory; pass --jsr to publish the loader too)"
        : "jsr: skipped (not asked for)",
    );
  }
  return hosted;
}

async function host(
  manifest: Manifest,
  files: PackedFile[],
  options: PublishOptions,
  log: (line: string) => void,
): Promise<HostedRelease> {
  const tag = `v${manifest.version}`;
  if (options.host.kind === "dir") {
    const dir = await writeSignedDir(options.host.path, manifest, files, options.key);
    log(`host: wrote ${dir}`);
    return { manifest, where: dir };
  }
  const { content, derived } = await signedAssets(manifest, files, options.key);
  const result = await publishToGitHub([...content, ...derived], {
    ...options.host,
    tag,
    notes: options.notes,
    log: (line) => log(`host: ${line}`),
  });
  return { manifest, where: `GitHub release ${tag} (id ${result.releaseId})` };
}

async function pin(
  release: HostedRelease,
  loaderDir: string,
  log: (line: string) => void,
): Promise<PinnedLoader> {
  await Deno.writeTextFile(
    join(loaderDir, "_gen", "pinned.ts"),
    await formatTs(renderPinnedModule(release.manifest)),
  );
  log(
    `pin: wrote the checksums of ${release.manifest.targets.length} target(s) into ${
      join(loaderDir, "_gen", "pinned.ts")
    }`,
  );
  return { release, loaderDir };
}
