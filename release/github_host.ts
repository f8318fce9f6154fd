/**
 * Publishes a release's files to a GitHub Release with octokit, so that a
 * re-run after a failure at any point completes without duplicates:
 *
 * 1. get the release for the tag, or create it;
 * 2. list its assets;
 * 3. for each file: keep an asset with the same name, size and digest;
 *    refuse one that differs, since a published version never changes
 *    (users may have pinned or cached its bytes), unless its upload never
 *    completed (state `open`), which is deleted and uploaded again; upload a
 *    missing one (an upload answered 422 `already_exists`, from a
 *    concurrent run, is re-checked).
 *
 * Every asset is confirmed present (name, size, digest) before it returns.
 *
 * @module
 */

import { Octokit } from "npm:octokit@^5.0.5";
import type { PackedFile } from "../matrix/pack_artifact.ts";
import { sha256Hex } from "../matrix/pack_artifact.ts";

/** Where and as whom to publish. */
export interface GitHubOptions {
  /** `owner/repo`. */
  repository: string;
  /** The tag, e.g. `v0.1.0`. */
  tag: string;
  /** A token with `contents: write` (`GITHUB_TOKEN`). */
  token: string;
  /** REST API base URL (GitHub Enterprise: `https://<host>/api/v3`). @default {"https://api.github.com"} */
  apiUrl?: string;
  /** Release notes for a new release. @default {""} */
  notes?: string;
  /** Called with one line per action. @default {no log} */
  log?: (line: string) => void;
  /** Retries of a failed request by octokit's retry plugin (5xx, network). @default {3} */
  retries?: number;
  /** Pace writes as GitHub's secondary rate limits ask (octokit's throttling plugin). @default {true} */
  throttle?: boolean;
}

/** What the publish did. */
export interface GitHubResult {
  releaseId: number;
  created: boolean;
  uploaded: string[];
  kept: string[];
  replaced: string[];
}

interface Asset {
  id: number;
  name: string;
  size: number;
  digest: string | null;
  state: string;
}

/**
 * Makes the GitHub Release for `tag` hold exactly these files (others are
 * left alone).
 *
 * @param files The files to publish.
 * @param options Repository, tag, token, API URL.
 * @returns What was created, uploaded, kept and replaced.
 * @throws {Error} When GitHub refuses, or an asset cannot be confirmed.
 */
export async function publishToGitHub(
  files: PackedFile[],
  options: GitHubOptions,
): Promise<GitHubResult> {
  const [owner, repo] = options.repository.split("/");
  if (!owner || !repo) {
    throw new Error(`Cannot publish to GitHub: "${options.repository}" is not owner/repo`);
  }
  const log = options.log ?? (() => {});
  const apiUrl = options.apiUrl ?? "https://api.github.com";
  const wrap = (error: unknown, action: string) => describeFailure(error, action, apiUrl);
  const retries = options.retries ?? 3;
  const octokit = new Octokit({
    auth: options.token,
    baseUrl: apiUrl,
    retry: { enabled: retries > 0, retries },
    throttle: {
      enabled: options.throttle ?? true,
      // Wait out a rate limit up to twice, then fail (the run can be repeated).
      onRateLimit: (_after: number, _options: unknown, _octokit: unknown, count: number) =>
        count < 2,
      onSecondaryRateLimit: (_after: number, _options: unknown, _octokit: unknown, count: number) =>
        count < 2,
    },
  });
  let created = false;
  let release;
  try {
    release = (await octokit.rest.repos.getReleaseByTag({ owner, repo, tag: options.tag })).data;
    log(`reuse release ${options.tag} (id ${release.id})`);
  } catch (error) {
    if ((error as { status?: number }).status !== 404) {
      throw wrap(error, `get the release for ${options.tag}`);
    }
    release = (await octokit.rest.repos.createRelease({
      owner,
      repo,
      tag_name: options.tag,
      name: options.tag,
      body: options.notes ?? "",
    }).catch((e) => {
      throw wrap(e, `create the release ${options.tag}`);
    })).data;
    created = true;
    log(`created release ${options.tag} (id ${release.id})`);
  }
  const result: GitHubResult = {
    releaseId: release.id,
    created,
    uploaded: [],
    kept: [],
    replaced: [],
  };
  const list = async (): Promise<Asset[]> =>
    (await octokit.paginate(octokit.rest.repos.listReleaseAssets, {
      owner,
      repo,
      release_id: release.id,
      per_page: 100,
    })).map((a) => ({
      id: a.id,
      name: a.name,
      size: a.size,
      digest: a.digest ?? null,
      state: a.state,
    }));
  let assets = await list().catch((e) => {
    throw wrap(e, `list the assets of ${options.tag}`);
  });
  for (const file of files) {
    const digest = `sha256:${sha256Hex(file.bytes)}`;
    const existing = assets.find((a) => a.name === file.name);
    if (existing && existing.size === file.bytes.length && existing.digest === digest) {
      result.kept.push(file.name);
      log(`keep ${file.name} (same size and digest)`);
      continue;
    }
    if (existing && existing.state === "uploaded") {
      throw new Error(
        `Cannot publish ${file.name} to ${options.tag}: the release already has it with other bytes (${existing.size} bytes, ${
          existing.digest ?? "no digest"
        }; this build: ${file.bytes.length} bytes, ${digest}), and a published version never changes\nHint: release a new version; if nobody can have downloaded it, delete the asset on GitHub by hand and run the publish step again`,
      );
    }
    if (existing) {
      // An upload that never completed (state "open"): nobody has its bytes.
      await octokit.rest.repos.deleteReleaseAsset({ owner, repo, asset_id: existing.id }).catch(
        (e) => {
          throw wrap(e, `delete the stale asset ${file.name}`);
        },
      );
      log(`deleted the unfinished upload of ${file.name} (state ${existing.state})`);
    }
    try {
      await octokit.request({
        method: "POST",
        url: release.upload_url,
        name: file.name,
        data: file.bytes,
        headers: {
          "content-type": "application/octet-stream",
          "content-length": file.bytes.length,
        },
      });
    } catch (error) {
      const exists =
        (error as { status?: number; response?: { data?: { errors?: { code?: string }[] } } })
          .response?.data?.errors?.some((e) => e.code === "already_exists");
      if (!exists) throw wrap(error, `upload ${file.name}`);
      log(`${file.name} appeared meanwhile (422 already_exists); checking it`);
      assets = await list().catch((e) => {
        throw wrap(e, `list the assets of ${options.tag}`);
      });
      const raced = assets.find((a) => a.name === file.name);
      if (!raced || raced.size !== file.bytes.length || raced.digest !== digest) {
        throw new Error(
          `Cannot upload ${file.name}: another upload with other bytes won the race, and a published version never changes\nHint: find the other publish of this version; release a new version if both must ship`,
        );
      }
    }
    (existing ? result.replaced : result.uploaded).push(file.name);
    log(`${existing ? "replaced" : "uploaded"} ${file.name} (${file.bytes.length} bytes)`);
  }
  // Confirm every asset is there, whole, before anyone builds on it.
  assets = await list().catch((e) => {
    throw wrap(e, `list the assets of ${options.tag}`);
  });
  for (const file of files) {
    const asset = assets.find((a) => a.name === file.name);
    const digest = `sha256:${sha256Hex(file.bytes)}`;
    if (
      !asset || asset.size !== file.bytes.length ||
      (asset.digest !== null && asset.digest !== digest)
    ) {
      throw new Error(
        `Cannot confirm ${file.name} on release ${options.tag}: GitHub lists ${
          asset ? `${asset.size} bytes, ${asset.digest}` : "no such asset"
        }\nHint: run the publish step again`,
      );
    }
  }
  return result;
}

/**
 * Why a request failed, for a person: a request that got no answer (octokit
 * reports a failed fetch as status 500 without a response) is a network
 * problem, not GitHub's refusal.
 */
function describeFailure(error: unknown, action: string, apiUrl: string): Error {
  const unreachable = noResponse(error);
  if (unreachable) {
    const where = unreachable.url && !unreachable.url.startsWith(apiUrl)
      ? new URL(unreachable.url).origin
      : apiUrl;
    return new Error(
      `Cannot reach the GitHub API at ${where} to ${action}: ${unreachable.cause}\nHint: check the network, a proxy (HTTPS_PROXY), or --api-url`,
      { cause: error },
    );
  }
  const status = (error as { status?: number }).status;
  const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
  return new Error(
    `Cannot ${action}: GitHub answered ${
      status ?? "nothing"
    } (${message})\nHint: check GITHUB_TOKEN (contents: write) and the repository`,
    { cause: error },
  );
}

/**
 * The request URL and the cause when `error` is octokit's RequestError for a
 * request that got no response (none recorded, or a failed fetch as cause).
 */
function noResponse(error: unknown): { url?: string; cause: string } | null {
  const e = error as {
    name?: string;
    response?: unknown;
    request?: { url?: string };
    cause?: unknown;
    message?: string;
  } | null;
  if (e?.name !== "HttpError" || e.request === undefined) return null;
  if (e.response !== undefined && !(e.cause instanceof TypeError)) return null;
  // octokit takes the fetch error's message; Deno's repeats the URL:
  // "error sending request for url (…): <what happened>".
  const cause = String(e.message ?? "no response").split("\n")[0]
    .replace(/^error sending request for url \([^)]*\): /, "");
  return { url: e.request.url, cause };
}
