/**
 * A JSR stand-in on loopback: the registry documents the `deno` client
 * reads (`JSR_URL`) and the publishing API `deno publish --token` writes to,
 * kept in a directory so that a run can be served again later.
 *
 * Reading (what `deno add`, `deno run` and `deno install -g` fetch):
 *
 * - `GET /@<scope>/<name>/meta.json`: `{ scope, name, latest, versions }`,
 *   each version with its real `createdAt` and, once yanked, `yanked: true`;
 * - `GET /@<scope>/<name>/<version>_meta.json`: `{ manifest, exports }`,
 *   each file `/path` with `size` and `checksum: "sha256-<hex>"`;
 * - `GET /@<scope>/<name>/<version>/<path>`: a published file.
 *
 * Publishing (under `/api/`): the scope and package probes, `POST
 * /api/scopes/<scope>/packages/<name>/versions/<version>?config=/deno.json`
 * with a gzipped tar and `Authorization: Bearer <token>`, answered with a
 * publishing task, and `GET /api/publish_status/<id>`. A version is
 * published whole or not at all (its files and document are written, then
 * `meta.json` is replaced in one rename), and never changes once published:
 * a second publish of it is refused with `409 duplicateVersionPublish`, as
 * JSR refuses it.
 *
 * Every document is written once and served as stored, so its bytes (which
 * `deno.lock` pins) are stable across restarts. Every request is logged
 * (method, path, status, bytes) in {@linkcode JsrHost.requests} and, when a
 * log file is given, one line each in it.
 *
 * @module
 */

import { dirname, join, resolve, sep as SEPARATOR } from "node:path";
import { gunzipSync } from "node:zlib";
import { sha256Hex } from "../matrix/pack_artifact.ts";

/** JSR's limit on one version's files, in bytes (20 MiB). */
export const JSR_VERSION_LIMIT = 20 * 1024 * 1024;

/** One request as the host saw it. */
export interface JsrRequest {
  method: string;
  path: string;
  status: number;
  bytes: number;
}

/** Where and how to serve. */
export interface JsrHostOptions {
  /** The folder holding the registry's data (created if missing; kept after close). */
  root: string;
  /** The token `deno publish --token` must send. */
  token: string;
  /** Scopes that may be published to. @default {["krepis"]} */
  scopes?: string[];
  /** The port on 127.0.0.1. @default {0: a free one} */
  port?: number;
  /** A file that gets one `METHOD path status bytes` line per request. @default {none} */
  logFile?: string;
  /** The clock for `createdAt` (tests move it). @default {Date.now} */
  now?: () => number;
  /** The largest upload accepted, in bytes. @default {JSR_VERSION_LIMIT} */
  maxBytes?: number;
}

/** A package's `meta.json`. */
export interface PackageMeta {
  scope: string;
  name: string;
  latest: string | null;
  versions: Record<string, { createdAt: string; yanked?: boolean }>;
}

/** A version's `<version>_meta.json`. */
export interface VersionMeta {
  manifest: Record<string, { size: number; checksum: string }>;
  exports: Record<string, string>;
}

interface Task {
  id: string;
  status: "success" | "failure";
  error: { code: string; message: string } | null;
  packageScope: string;
  packageName: string;
  packageVersion: string;
}

const NAME = /^[a-z0-9][a-z0-9-]{0,57}$/;
const VERSION = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;

/** A running JSR stand-in. Start it with {@linkcode JsrHost.start}. */
export class JsrHost {
  /** Every request so far, in order. */
  readonly requests: JsrRequest[] = [];
  /** The registry's folder. */
  readonly root: string;
  #options: JsrHostOptions;
  #server: Deno.HttpServer | undefined;
  #tasks = new Map<string, Task>();
  #url = "";
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(options: JsrHostOptions) {
    this.#options = options;
    this.root = resolve(options.root);
  }

  /**
   * Starts a host on 127.0.0.1.
   *
   * @param options The data folder, the token, the port.
   * @returns The running host; {@linkcode JsrHost.url} is its `JSR_URL`.
   */
  static async start(options: JsrHostOptions): Promise<JsrHost> {
    const host = new JsrHost(options);
    await Deno.mkdir(host.root, { recursive: true });
    const ready = Promise.withResolvers<void>();
    host.#server = Deno.serve({
      hostname: "127.0.0.1",
      port: options.port ?? 0,
      onListen: (address) => {
        host.#url = `http://127.0.0.1:${address.port}/`;
        ready.resolve();
      },
    }, (request) => host.#handle(request));
    await ready.promise;
    return host;
  }

  /** The registry URL, for `JSR_URL` (ends with `/`). */
  get url(): string {
    return this.#url;
  }

  /** Stops serving; the data stays in {@linkcode JsrHost.root}. */
  async close(): Promise<void> {
    await this.#server?.shutdown();
  }

  /**
   * Marks a version yanked (as `PATCH …/versions/<v> {"yanked": true}` does):
   * resolvers skip it unless it is pinned exactly.
   *
   * @param scope The scope, without `@`.
   * @param name The package name.
   * @param version The version.
   * @param yanked Yanked or not. @default {true}
   * @throws {Error} When the version is not published.
   */
  async yank(scope: string, name: string, version: string, yanked = true): Promise<void> {
    await this.#serial(async () => {
      const meta = await this.packageMeta(scope, name);
      const entry = meta?.versions[version];
      if (!meta || !entry) {
        throw new Error(`Cannot yank @${scope}/${name}@${version}: it is not published`);
      }
      if (yanked) entry.yanked = true;
      else delete entry.yanked;
      meta.latest = latestOf(meta);
      await this.#writeAtomic(this.#packageDir(scope, name, "meta.json"), json(meta));
    });
  }

  /**
   * Reads a package's `meta.json`.
   *
   * @param scope The scope, without `@`.
   * @param name The package name.
   * @returns The document, or `undefined` when nothing is published.
   */
  async packageMeta(scope: string, name: string): Promise<PackageMeta | undefined> {
    try {
      return JSON.parse(
        await Deno.readTextFile(this.#packageDir(scope, name, "meta.json")),
      ) as PackageMeta;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
  }

  #packageDir(scope: string, name: string, ...rest: string[]): string {
    return join(this.root, `@${scope}`, name, ...rest);
  }

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    let response: Response;
    try {
      response = await this.#route(request, url);
    } catch (error) {
      response = problem(500, "internalServerError", String(error));
    }
    const bytes = Number(response.headers.get("content-length") ?? 0);
    const entry = { method: request.method, path: url.pathname, status: response.status, bytes };
    this.requests.push(entry);
    if (this.#options.logFile) {
      await Deno.writeTextFile(
        this.#options.logFile,
        `${entry.method} ${entry.path} ${entry.status} ${entry.bytes}\n`,
        { append: true },
      );
    }
    return response;
  }

  async #route(request: Request, url: URL): Promise<Response> {
    const parts = url.pathname.split("/").slice(1).map(decodeURIComponent);
    if (parts[0] === "api") return await this.#api(request, parts.slice(1));
    if (request.method !== "GET" && request.method !== "HEAD") {
      return problem(405, "methodNotAllowed", "read-only");
    }
    const [scopePart, name, file, ...rest] = parts;
    if (!scopePart?.startsWith("@") || !NAME.test(scopePart.slice(1)) || !NAME.test(name ?? "")) {
      return problem(404, "notFound", "no such package");
    }
    const scope = scopePart.slice(1);
    if (file === "meta.json" && rest.length === 0) {
      return await this.#file(this.#packageDir(scope, name, "meta.json"), "application/json");
    }
    if (file?.endsWith("_meta.json") && rest.length === 0) {
      const version = file.slice(0, -"_meta.json".length);
      if (!VERSION.test(version)) return problem(404, "notFound", "no such version");
      return await this.#file(this.#packageDir(scope, name, file), "application/json");
    }
    if (file && VERSION.test(file) && rest.length > 0) {
      if (
        rest.some((part) => part === "" || part === "." || part === ".." || part.includes("\\"))
      ) {
        return problem(404, "notFound", "no such file");
      }
      const manifest = await this.#versionMeta(scope, name, file);
      const path = `/${rest.join("/")}`;
      if (!manifest?.manifest[path]) return problem(404, "notFound", "no such file");
      return await this.#file(this.#packageDir(scope, name, file, ...rest), contentType(path));
    }
    return problem(404, "notFound", "no such document");
  }

  async #versionMeta(scope: string, name: string, version: string) {
    try {
      return JSON.parse(
        await Deno.readTextFile(this.#packageDir(scope, name, `${version}_meta.json`)),
      ) as VersionMeta;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
  }

  async #file(path: string, type: string): Promise<Response> {
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = await Deno.readFile(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return problem(404, "notFound", "not found");
      throw error;
    }
    return new Response(bytes, {
      headers: { "content-type": type, "content-length": String(bytes.length) },
    });
  }

  async #api(request: Request, parts: string[]): Promise<Response> {
    const [first, scope, second, name, third, version] = parts;
    if (first === "publish_status" && scope && parts.length === 2) {
      const task = this.#tasks.get(scope);
      return task ? reply(200, task) : problem(404, "publishingTaskNotFound", "no such task");
    }
    if (first !== "scopes" || !scope) return problem(404, "notFound", "no such endpoint");
    const scopes = this.#options.scopes ?? ["krepis"];
    if (!scopes.includes(scope)) return problem(404, "scopeNotFound", `scope @${scope} not found`);
    if (parts.length === 2) return reply(200, { scope, description: "" });
    if (second !== "packages" || !name || !NAME.test(name)) {
      return problem(404, "notFound", "no such endpoint");
    }
    if (parts.length === 4) {
      // Packages are made on first publish, so every name in an allowed scope exists.
      return reply(200, { scope, name, description: "" });
    }
    if (third !== "versions" || !version || parts.length !== 6 || !VERSION.test(version)) {
      return problem(404, "notFound", "no such endpoint");
    }
    const meta = await this.packageMeta(scope, name);
    const existing = meta?.versions[version];
    if (request.method === "GET") {
      return existing
        ? reply(200, { scope, package: name, version, ...existing })
        : problem(404, "packageVersionNotFound", `@${scope}/${name}@${version} not found`);
    }
    if (!this.#authorized(request)) {
      return problem(401, "missingAuthentication", "a valid bearer token is required");
    }
    if (request.method === "PATCH") {
      const body = await request.json() as { yanked?: boolean };
      if (!existing) return problem(404, "packageVersionNotFound", "not found");
      await this.yank(scope, name, version, body.yanked === true);
      return new Response(null, { status: 204 });
    }
    if (request.method !== "POST") return problem(405, "methodNotAllowed", request.method);
    return await this.#publish(request, scope, name, version);
  }

  #authorized(request: Request): boolean {
    return request.headers.get("authorization") === `Bearer ${this.#options.token}`;
  }

  async #publish(request: Request, scope: string, name: string, version: string) {
    const limit = this.#options.maxBytes ?? JSR_VERSION_LIMIT;
    const gz = await readBounded(request, limit);
    if (!gz) return problem(413, "tarballSizeLimitExceeded", `the upload exceeds ${limit} bytes`);
    let files: Map<string, Uint8Array>;
    try {
      files = untar(gunzipSync(gz, { maxOutputLength: limit }));
    } catch (error) {
      return problem(400, "invalidTarball", String(error));
    }
    const configPath = new URL(request.url).searchParams.get("config") ?? "/deno.json";
    const config = files.get(configPath);
    if (!config) return problem(400, "missingConfigFile", `${configPath} is not in the tarball`);
    const parsed = JSON.parse(new TextDecoder().decode(config)) as {
      name?: string;
      version?: string;
      exports?: string | Record<string, string>;
    };
    if (parsed.name !== `@${scope}/${name}` || parsed.version !== version) {
      return problem(400, "configFileNameMismatch", `${configPath} names another package`);
    }
    const exports = typeof parsed.exports === "string"
      ? { ".": parsed.exports }
      : parsed.exports ?? {};
    return await this.#serial(async () => {
      const meta = await this.packageMeta(scope, name) ??
        { scope, name, latest: null, versions: {} };
      if (meta.versions[version]) {
        return problem(
          409,
          "duplicateVersionPublish",
          `@${scope}/${name}@${version} is already published and cannot change`,
        );
      }
      const manifest: VersionMeta["manifest"] = {};
      const staging = this.#packageDir(scope, name, `.${version}.${crypto.randomUUID()}`);
      const sorted = [...files].sort(([a], [b]) => a < b ? -1 : 1);
      // Every path is checked before anything is written.
      for (const [path] of sorted) {
        const target = join(staging, ...path.split("/").slice(1));
        if (!target.startsWith(staging + SEPARATOR)) {
          return problem(400, "invalidPath", `${path} leaves the package`);
        }
      }
      const versionDir = this.#packageDir(scope, name, version);
      try {
        for (const [path, bytes] of sorted) {
          manifest[path] = { size: bytes.length, checksum: `sha256-${await sha256Hex(bytes)}` };
          const target = join(staging, ...path.split("/").slice(1));
          await Deno.mkdir(dirname(target), { recursive: true });
          await Deno.writeFile(target, bytes);
        }
        // A folder of this version that meta.json does not list was left by a
        // publish stopped before its documents were written: this host made
        // it, and no reader was ever shown it, so it is replaced.
        await Deno.remove(versionDir, { recursive: true }).catch((error) => {
          if (!(error instanceof Deno.errors.NotFound)) throw error;
        });
        await Deno.rename(staging, versionDir);
      } finally {
        await Deno.remove(staging, { recursive: true }).catch(() => {});
      }
      await this.#writeAtomic(
        this.#packageDir(scope, name, `${version}_meta.json`),
        json({ manifest, exports }),
      );
      meta.versions[version] = {
        createdAt: new Date((this.#options.now ?? Date.now)()).toISOString(),
      };
      meta.latest = latestOf(meta);
      await this.#writeAtomic(this.#packageDir(scope, name, "meta.json"), json(meta));
      const task: Task = {
        id: crypto.randomUUID(),
        status: "success",
        error: null,
        packageScope: scope,
        packageName: name,
        packageVersion: version,
      };
      this.#tasks.set(task.id, task);
      return reply(202, task);
    });
  }

  /** Runs writes one at a time, so two publishes cannot interleave. */
  #serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(work, work);
    this.#queue = next.catch(() => {});
    return next;
  }

  async #writeAtomic(path: string, bytes: Uint8Array<ArrayBuffer>): Promise<void> {
    await Deno.mkdir(dirname(path), { recursive: true });
    const temporary = `${path}.${crypto.randomUUID()}.tmp`;
    await Deno.writeFile(temporary, bytes);
    await Deno.rename(temporary, path);
  }
}

function latestOf(meta: PackageMeta): string | null {
  const versions = Object.entries(meta.versions)
    .filter(([version, entry]) => !entry.yanked && !version.includes("-"))
    .map(([version]) => version)
    .sort(compareVersions);
  return versions.at(-1) ?? null;
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+-]/).slice(0, 3).map(Number);
  const pb = b.split(/[.+-]/).slice(0, 3).map(Number);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i] - pb[i];
  return 0;
}

function json(value: unknown): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(JSON.stringify(value, null, 2) + "\n");
}

function reply(status: number, value: unknown): Response {
  const bytes = json(value);
  return new Response(bytes, {
    status,
    headers: { "content-type": "application/json", "content-length": String(bytes.length) },
  });
}

function problem(status: number, code: string, message: string): Response {
  return reply(status, { code, message });
}

function contentType(path: string): string {
  if (path.endsWith(".ts")) return "application/typescript";
  if (path.endsWith(".json")) return "application/json";
  if (path.endsWith(".md")) return "text/markdown";
  return "text/plain";
}

async function readBounded(request: Request, limit: number): Promise<Uint8Array | undefined> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of request.body ?? new ReadableStream<Uint8Array>()) {
    total += chunk.length;
    if (total > limit) return undefined;
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

/**
 * Reads the regular files of a tar archive (ustar, with pax `path`
 * records), keyed `/path`. Directories are implied; links and devices are
 * refused, since a package holds files only.
 *
 * @param tar The archive's bytes.
 * @returns Each file's bytes by its `/path`.
 * @throws {Error} On a truncated or malformed archive, or an entry that is not a file.
 */
export function untar(tar: Uint8Array): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const text = new TextDecoder();
  const field = (at: number, length: number) =>
    text.decode(tar.subarray(at, at + length)).replace(/\0.*$/s, "");
  let offset = 0;
  let paxPath: string | undefined;
  while (offset + 512 <= tar.length) {
    if (tar.subarray(offset, offset + 512).every((byte) => byte === 0)) break;
    const size = parseInt(field(offset + 124, 12).trim() || "0", 8);
    const type = String.fromCharCode(tar[offset + 156] || 48);
    const prefix = field(offset + 345, 155);
    const name = paxPath ?? (prefix ? `${prefix}/${field(offset, 100)}` : field(offset, 100));
    const start = offset + 512;
    if (!Number.isSafeInteger(size) || size < 0 || start + size > tar.length) {
      throw new Error(`Cannot read the tarball: entry ${name} is truncated`);
    }
    const body = tar.subarray(start, start + size);
    offset = start + Math.ceil(size / 512) * 512;
    if (type === "x") {
      paxPath = text.decode(body).match(/^\d+ path=(.*)$/m)?.[1];
      continue;
    }
    paxPath = undefined;
    if (type === "5") continue;
    if (type !== "0") throw new Error(`Cannot read the tarball: ${name} is not a regular file`);
    const path = `/${name.replace(/^\.?\//, "")}`;
    if (path.split("/").some((part) => part === ".." || part === ".")) {
      throw new Error(`Cannot read the tarball: ${name} leaves the package`);
    }
    files.set(path, body.slice());
  }
  return files;
}
