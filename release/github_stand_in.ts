/**
 * A local stand-in for the GitHub REST endpoints the release step uses, on
 * loopback (for the release tests and `deno task rehearse`), and for the
 * download URLs users fetch release assets from
 * (`/<owner>/<repo>/releases/download/<tag>/<name>`, the `KREPIS_MIRROR`
 * layout, with single `Range: bytes=<n>-` requests). Every request body it receives and every response
 * body it sends is validated against GitHub's published OpenAPI description
 * (`@octokit/openapi`, api.github.com, dereferenced) with ajv; a mismatch
 * fails the request (500) and is recorded in `violations`.
 *
 * Endpoints: get release by tag, create release, list release assets,
 * upload a release asset (on the upload URL the release names), delete a
 * release asset. An upload under a name that exists answers 422
 * `already_exists`, as GitHub does (see @octokit/fixtures,
 * release-assets-conflict).
 *
 * {@linkcode GitHubApi.saveTo} writes the releases as a mirror directory
 * (`<dir>/<tag>/<name>`), which `deno task serve <dir>` serves again.
 *
 * @module
 */

import spec from "npm:@octokit/openapi@^23.0.2/generated/api.github.com.deref.json" with {
  type: "json",
};
import { Ajv } from "npm:ajv@^8.17.1";
import { createHash } from "node:crypto";

type Schema = Record<string, unknown>;
// deno-lint-ignore no-explicit-any
const paths = (spec as any).paths as Record<string, Record<string, any>>;
const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
const validators = new Map<string, ReturnType<typeof ajv.compile> | null>();

/** The validator for an operation's body, or null where the description defines none. */
function validator(
  path: string,
  method: string,
  status: string | "request",
): ReturnType<typeof ajv.compile> | null {
  const key = `${method} ${path} ${status}`;
  if (!validators.has(key)) {
    const operation = paths[path][method];
    if (status !== "request" && !operation.responses[status]) {
      throw new Error(`the OpenAPI description has no ${status} answer for ${method} ${path}`);
    }
    const content = status === "request"
      ? operation.requestBody?.content
      : operation.responses[status].content;
    const schema: Schema | undefined = content?.["application/json"]?.schema;
    validators.set(key, schema ? ajv.compile(schema) : null);
  }
  return validators.get(key)!;
}

const user = (base: string) => ({
  login: "krepis-bot",
  id: 1,
  node_id: "MDQ6VXNlcjE=",
  avatar_url: `${base}/avatars/1`,
  gravatar_id: "",
  url: `${base}/users/krepis-bot`,
  html_url: `${base}/krepis-bot`,
  followers_url: `${base}/users/krepis-bot/followers`,
  following_url: `${base}/users/krepis-bot/following{/other_user}`,
  gists_url: `${base}/users/krepis-bot/gists{/gist_id}`,
  starred_url: `${base}/users/krepis-bot/starred{/owner}{/repo}`,
  subscriptions_url: `${base}/users/krepis-bot/subscriptions`,
  organizations_url: `${base}/users/krepis-bot/orgs`,
  repos_url: `${base}/users/krepis-bot/repos`,
  events_url: `${base}/users/krepis-bot/events{/privacy}`,
  received_events_url: `${base}/users/krepis-bot/received_events`,
  type: "Bot",
  site_admin: false,
});

/** A stored asset. */
export interface StoredAsset {
  id: number;
  name: string;
  bytes: Uint8Array;
  digest: string;
  /** GitHub's asset state: `"open"` while an upload has not completed. @default {"uploaded"} */
  state?: "uploaded" | "open";
}

/** A running stand-in. */
export class GitHubApi {
  /** Schema violations seen (requests or responses); must stay empty. */
  readonly violations: string[] = [];
  /** Every request as `METHOD path`. */
  readonly requests: string[] = [];
  /** Releases by tag. */
  readonly releases = new Map<
    string,
    { id: number; tag: string; body: string; assets: StoredAsset[] }
  >();
  /** Answer uploads from the n-th on (1-based) with this status: an outage mid-run. */
  failUpload: { from: number; status: number } | null = null;
  #uploads = 0;
  #nextId = 100;
  #server: Deno.HttpServer<Deno.NetAddr>;

  constructor(readonly owner = "krepis", readonly repo = "krepis") {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (r) => this.#handle(r),
    );
  }

  /** The REST base URL to give octokit. */
  get url(): string {
    return `http://127.0.0.1:${this.#server.addr.port}`;
  }

  /** Uploads attempted so far. */
  get uploads(): number {
    return this.#uploads;
  }

  /** The base URL assets download from, for `KREPIS_MIRROR`. */
  get downloadUrl(): string {
    return `${this.url}/${this.owner}/${this.repo}/releases/download`;
  }

  /**
   * Writes every release's assets as `<dir>/<tag>/<name>`: the layout
   * `KREPIS_MIRROR` and `deno task serve <dir>` use.
   *
   * @param dir The folder (created if missing).
   */
  async saveTo(dir: string): Promise<void> {
    for (const release of this.releases.values()) {
      await Deno.mkdir(`${dir}/${release.tag}`, { recursive: true });
      for (const asset of release.assets) {
        await Deno.writeFile(`${dir}/${release.tag}/${asset.name}`, asset.bytes);
      }
    }
  }

  /** Stops the server. */
  async close(): Promise<void> {
    await this.#server.shutdown();
  }

  #respond(path: string, method: string, status: number, body: unknown): Response {
    // Throws when the description has no such status for the operation.
    const validate = validator(path, method, String(status));
    if (body !== null && validate) {
      if (!validate(body)) {
        this.violations.push(`${method} ${path} ${status}: ${ajv.errorsText(validate.errors)}`);
        return Response.json({ message: "stand-in response violates the OpenAPI schema" }, {
          status: 500,
        });
      }
    }
    return body === null ? new Response(null, { status }) : Response.json(body, { status });
  }

  #release(release: { id: number; tag: string; body: string; assets: StoredAsset[] }) {
    const base = this.url;
    const repoUrl = `${base}/repos/${this.owner}/${this.repo}`;
    const now = "2026-11-21T00:00:00Z";
    return {
      url: `${repoUrl}/releases/${release.id}`,
      html_url: `${base}/${this.owner}/${this.repo}/releases/tag/${release.tag}`,
      assets_url: `${repoUrl}/releases/${release.id}/assets`,
      upload_url:
        `${base}/uploads/repos/${this.owner}/${this.repo}/releases/${release.id}/assets{?name,label}`,
      tarball_url: `${repoUrl}/tarball/${release.tag}`,
      zipball_url: `${repoUrl}/zipball/${release.tag}`,
      id: release.id,
      node_id: `RE_${release.id}`,
      tag_name: release.tag,
      target_commitish: "main",
      name: release.tag,
      body: release.body,
      draft: false,
      prerelease: false,
      created_at: now,
      published_at: now,
      author: user(base),
      assets: release.assets.map((a) => this.#asset(a, release.tag)),
    };
  }

  #asset(asset: StoredAsset, tag: string) {
    const base = this.url;
    const now = "2026-11-21T00:00:00Z";
    return {
      url: `${base}/repos/${this.owner}/${this.repo}/releases/assets/${asset.id}`,
      browser_download_url:
        `${base}/${this.owner}/${this.repo}/releases/download/${tag}/${asset.name}`,
      id: asset.id,
      node_id: `RA_${asset.id}`,
      name: asset.name,
      label: null,
      state: asset.state ?? "uploaded",
      content_type: "application/octet-stream",
      size: asset.bytes.length,
      digest: asset.digest,
      download_count: 0,
      created_at: now,
      updated_at: now,
      uploader: user(base),
    };
  }

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const method = request.method.toLowerCase();
    this.requests.push(`${request.method} ${url.pathname}`);
    const repo = `/repos/${this.owner}/${this.repo}`;
    const notFound = () =>
      Response.json({
        message: "Not Found",
        documentation_url: "https://docs.github.com/rest",
        status: "404",
      }, {
        status: 404,
      });
    const download = url.pathname.match(
      new RegExp(`^/${this.owner}/${this.repo}/releases/download/([^/]+)/([^/]+)$`),
    );
    if (download && (method === "get" || method === "head")) {
      const release = this.releases.get(decodeURIComponent(download[1]));
      const asset = release?.assets.find((a) => a.name === decodeURIComponent(download[2]));
      if (!asset || asset.state === "open") return new Response("Not Found", { status: 404 });
      const range = request.headers.get("range")?.match(/^bytes=(\d+)-$/);
      const start = range ? Number(range[1]) : 0;
      if (start > asset.bytes.length) {
        return new Response(null, {
          status: 416,
          headers: { "content-range": `bytes */${asset.bytes.length}` },
        });
      }
      const body = asset.bytes.slice(start);
      const headers: Record<string, string> = {
        "content-type": "application/octet-stream",
        "content-length": String(body.length),
        "accept-ranges": "bytes",
      };
      if (range) {
        headers["content-range"] = `bytes ${start}-${asset.bytes.length - 1}/${asset.bytes.length}`;
      }
      return new Response(method === "head" ? null : body, { status: range ? 206 : 200, headers });
    }
    let match = url.pathname.match(new RegExp(`^${repo}/releases/tags/(.+)$`));
    if (match && method === "get") {
      const release = this.releases.get(decodeURIComponent(match[1]));
      if (!release) return notFound();
      return this.#respond(
        "/repos/{owner}/{repo}/releases/tags/{tag}",
        "get",
        200,
        this.#release(release),
      );
    }
    if (url.pathname === `${repo}/releases` && method === "post") {
      const body = await request.json();
      const validate = validator("/repos/{owner}/{repo}/releases", "post", "request")!;
      if (!validate(body)) {
        this.violations.push(`POST releases request: ${ajv.errorsText(validate.errors)}`);
        return Response.json({ message: "Invalid request" }, { status: 422 });
      }
      const release = { id: this.#nextId++, tag: body.tag_name, body: body.body ?? "", assets: [] };
      this.releases.set(release.tag, release);
      return this.#respond("/repos/{owner}/{repo}/releases", "post", 201, this.#release(release));
    }
    match = url.pathname.match(new RegExp(`^${repo}/releases/(\\d+)/assets$`));
    if (match && method === "get") {
      const release = [...this.releases.values()].find((r) => r.id === Number(match![1]));
      if (!release) return notFound();
      const page = Number(url.searchParams.get("page") ?? 1);
      const perPage = Number(url.searchParams.get("per_page") ?? 30);
      const slice = release.assets.slice((page - 1) * perPage, page * perPage).map((a) =>
        this.#asset(a, release.tag)
      );
      return this.#respond("/repos/{owner}/{repo}/releases/{release_id}/assets", "get", 200, slice);
    }
    match = url.pathname.match(new RegExp(`^/uploads${repo}/releases/(\\d+)/assets$`));
    if (match && method === "post") {
      this.#uploads++;
      const release = [...this.releases.values()].find((r) => r.id === Number(match![1]));
      if (!release) return notFound();
      const bytes = new Uint8Array(await request.arrayBuffer());
      if (this.failUpload && this.#uploads >= this.failUpload.from) {
        return Response.json({ message: "Server Error" }, { status: this.failUpload.status });
      }
      const name = url.searchParams.get("name") ?? "";
      if (release.assets.some((a) => a.name === name)) {
        return this.#respond("/repos/{owner}/{repo}/releases/{release_id}/assets", "post", 422, {
          message: "Validation Failed",
          errors: [{ resource: "ReleaseAsset", code: "already_exists", field: "name" }],
          documentation_url: "https://docs.github.com/rest/releases/assets#upload-a-release-asset",
        });
      }
      const asset = {
        id: this.#nextId++,
        name,
        bytes,
        digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`,
      };
      release.assets.push(asset);
      return this.#respond(
        "/repos/{owner}/{repo}/releases/{release_id}/assets",
        "post",
        201,
        this.#asset(asset, release.tag),
      );
    }
    match = url.pathname.match(new RegExp(`^${repo}/releases/assets/(\\d+)$`));
    if (match && method === "delete") {
      for (const release of this.releases.values()) {
        const index = release.assets.findIndex((a) => a.id === Number(match![1]));
        if (index >= 0) {
          release.assets.splice(index, 1);
          return new Response(null, { status: 204 });
        }
      }
      return notFound();
    }
    return notFound();
  }
}
