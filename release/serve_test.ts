/**
 * `deno task serve`: the real entry point as a process, with the task's own
 * permissions (read from deno.json), real sockets and real files: what it
 * prints, what it serves, what it refuses, and how it stops.
 */

import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { REPO_ROOT } from "../lib/cargo_build.ts";
import { within } from "../lib/process.ts";
import { skipIf, when, WINDOWS } from "../tests/_tools.ts";
import { checkRequestPath } from "./serve_dir.ts";
import { canSymlink } from "../tests/_fs.ts";

/** The serve task's command line from deno.json, run with this Deno. */
async function serveCommand(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(join(REPO_ROOT, "deno.json")));
  const [deno, ...args] = (config.tasks.serve.command as string).split(/\s+/);
  assert.equal(deno, "deno");
  assert.ok(args.includes("release/serve.ts"), config.tasks.serve.command);
  return [Deno.execPath(), ...args];
}

/**
 * A child's environment: this one without `INIT_CWD` (`deno task` keeps an
 * inherited one, e.g. when the tests run under `deno task test`), plus `extra`.
 */
function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env = Deno.env.toObject();
  delete env.INIT_CWD;
  return { ...env, NO_COLOR: "1", ...extra };
}

/** The longest any child may run before it is killed (the test then fails, not hangs). */
const LIMIT_MS = 60_000;

const MANIFEST = '{"version":"0.0.1","targets":[]}\n';
const LIBRARY = new Uint8Array(1000).map((_, i) => i % 251);
const SECRET = "the secret next to the mirror";

/**
 * A work directory: `mirror/v0.0.1/{manifest.json,lib.bin}` and, outside
 * the mirror, `secret.txt`.
 */
async function workDir(): Promise<{ work: string; mirror: string; secret: string }> {
  const work = await Deno.realPath(await Deno.makeTempDir({ prefix: "krepis-serve-" }));
  const mirror = join(work, "mirror");
  await Deno.mkdir(join(mirror, "v0.0.1"), { recursive: true });
  await Deno.writeTextFile(join(mirror, "v0.0.1", "manifest.json"), MANIFEST);
  await Deno.writeFile(join(mirror, "v0.0.1", "lib.bin"), LIBRARY);
  const secret = join(work, "secret.txt");
  await Deno.writeTextFile(secret, SECRET);
  return { work, mirror, secret };
}

/** A running `serve`: its URL and port, what it printed so far, and how to stop it. */
interface Serving {
  child: Deno.ChildProcess;
  url: string;
  port: number;
  /** stdout up to and including the `serving …` line. */
  head: string;
  /** Stops it with `signal` (on Windows: terminates it) and returns everything it printed. */
  stop(signal?: Deno.Signal): Promise<{ code: number; stdout: string; stderr: string }>;
}

/**
 * Starts `program args` and reads stdout until the `serving <dir> at <url>`
 * line. Fails (after stopping the child) when it exits first.
 */
async function start(
  program: string[],
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<Serving> {
  const child = new Deno.Command(program[0], {
    args: [...program.slice(1), ...args],
    cwd: options.cwd ?? REPO_ROOT,
    env: childEnv(options.env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let head = "";
  let match: RegExpMatchArray | null = null;
  while (!(match = head.match(/^serving .* at (http:\/\/\S+:(\d+))\n/m))) {
    const { value, done } = await reader.read();
    if (done) break;
    head += value;
  }
  const rest = (async () => {
    let text = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += r.value;
    return text;
  })();
  const stop = async (signal: Deno.Signal = "SIGINT") => {
    try {
      child.kill(WINDOWS ? "SIGKILL" : signal);
    } catch {
      // it has exited already
    }
    const status = await within(child, LIMIT_MS, (c) => c.status);
    return { code: status.code, stdout: head + await rest, stderr: await stderr };
  };
  if (!match) {
    const { code, stdout, stderr } = await stop();
    assert.fail(`serve exited with ${code} before serving:\n${stdout}\n${stderr}`);
  }
  return { child, url: match[1], port: Number(match[2]), head, stop };
}

/** Runs `program args` to completion (for the cases that never serve). */
async function run(program: string[], args: string[]) {
  const child = new Deno.Command(program[0], {
    args: [...program.slice(1), ...args],
    cwd: REPO_ROOT,
    env: childEnv(),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = await within(child, LIMIT_MS, (c) => c.output());
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/**
 * One request written byte for byte on a TCP socket, so the path reaches
 * the server exactly as given (fetch would normalise `..` and `%2e%2e`).
 */
async function raw(
  port: number,
  target: string,
  method = "GET",
): Promise<{ status: number; text: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(
    new TextEncoder().encode(
      `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
    ),
  );
  const text = await new Response(conn.readable).text();
  const status = Number(text.match(/^HTTP\/1\.1 (\d{3})/)?.[1]);
  assert.ok(status, `no status line for ${target}: ${JSON.stringify(text.slice(0, 80))}`);
  return { status, text };
}

const NO_SIGNALS = when(
  WINDOWS,
  "Windows has no SIGTERM, and Deno cannot send a child SIGINT there",
);

Deno.test("serve: prints its URL on 127.0.0.1, serves a file, a Range and HEAD, logs each request", async () => {
  const { work, mirror } = await workDir();
  const serving = await start(await serveCommand(), [mirror, "--port", "0"]);
  let stopped;
  try {
    assert.match(serving.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(serving.port > 0);
    assert.match(
      serving.head,
      new RegExp(`^serving ${escape(mirror)} at ${escape(serving.url)}$`, "m"),
    );

    const file = await fetch(`${serving.url}/v0.0.1/manifest.json`);
    assert.equal(file.status, 200);
    assert.equal(await file.text(), MANIFEST);

    const library = await fetch(`${serving.url}/v0.0.1/lib.bin`, {
      headers: { range: "bytes=600-" },
    });
    assert.equal(library.status, 206);
    assert.equal(library.headers.get("content-range"), "bytes 600-999/1000");
    assert.deepEqual(new Uint8Array(await library.arrayBuffer()), LIBRARY.subarray(600));

    const head = await fetch(`${serving.url}/v0.0.1/lib.bin`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), "1000");
    assert.equal(await head.text(), "");

    for (const missing of ["/v0.0.1/nothing.json", "/v0.0.1/", "/v0.0.1", "/"]) {
      const answer = await fetch(`${serving.url}${missing}`);
      await answer.body?.cancel();
      assert.equal(answer.status, 404, `${missing} (missing or a directory)`);
    }
    const post = await fetch(`${serving.url}/v0.0.1/manifest.json`, { method: "POST" });
    await post.body?.cancel();
    assert.equal(post.status, 405);
    // A query is not part of the path.
    const query = await raw(serving.port, "/v0.0.1/manifest.json?x=../../secret.txt");
    assert.equal(query.status, 200);

    // Bound to loopback only: this machine's other addresses refuse the connection.
    const others = Deno.networkInterfaces().filter((i) =>
      i.family === "IPv4" && !i.address.startsWith("127.") && !i.address.startsWith("169.254.")
    );
    for (const { address } of others) {
      const connected = await Deno.connect({ hostname: address, port: serving.port }).then(
        (conn) => (conn.close(), true),
        () => false,
      );
      assert.equal(connected, false, `port ${serving.port} answered on ${address}`);
    }
  } finally {
    stopped = await serving.stop();
    await Deno.remove(work, { recursive: true });
  }
  assert.match(stopped.stdout, /^versions: 0\.0\.1$/m);
  assert.ok(
    stopped.stdout.includes(`KREPIS_MIRROR=${serving.url} krepis init`),
    stopped.stdout,
  );
  assert.ok(!stopped.stderr.includes("warning"), stopped.stderr);
  const log = stopped.stderr.split("\n");
  assert.ok(log.includes(`GET /v0.0.1/manifest.json 200 ${MANIFEST.length}`), stopped.stderr);
  assert.ok(log.includes("GET /v0.0.1/lib.bin 206 400"), stopped.stderr);
  assert.ok(log.includes("HEAD /v0.0.1/lib.bin 200 0"), stopped.stderr);
  assert.ok(log.some((line) => line.startsWith("GET /v0.0.1/nothing.json 404 ")), stopped.stderr);
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

Deno.test("serve: refuses traversal, encoded traversal, malformed encoding, absolute paths and backslashes", async () => {
  const { work, mirror, secret } = await workDir();
  const serving = await start(await serveCommand(), [mirror, "--port", "0", "--quiet"]);
  let stopped;
  try {
    const secretPath = secret.replaceAll("\\", "/").replace(/^\/?/, "");
    const refused = [
      "/../secret.txt",
      "/v0.0.1/../../secret.txt",
      "/v0.0.1/../manifest.json",
      "/./v0.0.1/manifest.json",
      "/%2e%2e/secret.txt",
      "/%2E%2E/secret.txt",
      "/v0.0.1/%2e%2e/%2e%2e/secret.txt",
      "/v0.0.1/..%2f..%2fsecret.txt",
      "/v0.0.1/%2e%2e%2f%2e%2e%2fsecret.txt",
      "/v0.0.1/..%5c..%5csecret.txt",
      "/v0.0.1\\..\\..\\secret.txt",
      `//${secretPath}`,
      `/${encodeURIComponent(`/${secretPath}`)}`,
      "/C:/Windows/win.ini",
      "/v0.0.1/manifest.json%00",
      "/%",
      "/%zz",
      "/v0.0.1/%e0%80",
      "/.git/config",
      "/v0.0.1/.hidden",
      "/%2egit/config",
    ];
    for (const target of refused) {
      const { status, text } = await raw(serving.port, target);
      assert.equal(status, 400, `${target}: ${text}`);
      assert.ok(!text.includes(SECRET), target);
    }
    // Still serving after every refusal: none of them crashed it.
    const after = await fetch(`${serving.url}/v0.0.1/manifest.json`);
    assert.equal(await after.text(), MANIFEST);
  } finally {
    stopped = await serving.stop();
    await Deno.remove(work, { recursive: true });
  }
  assert.equal(stopped.stderr.includes("GET"), false, "--quiet logs no request");
});

Deno.test(
  skipIf(
    "serve: a symlink out of the directory is refused (403), one inside it is served",
    when(
      !(await canSymlink()),
      "this user cannot create symlinks (Windows: Developer Mode or an admin)",
    ),
  ),
  async () => {
    const { work, mirror, secret } = await workDir();
    await Deno.symlink(secret, join(mirror, "v0.0.1", "leak.txt"), { type: "file" });
    await Deno.symlink(work, join(mirror, "v0.0.1", "up"), { type: "dir" });
    await Deno.symlink(
      join(mirror, "v0.0.1", "manifest.json"),
      join(mirror, "v0.0.1", "alias.json"),
      { type: "file" },
    );
    const serving = await start(await serveCommand(), [mirror, "--port", "0", "--quiet"]);
    try {
      for (const path of ["/v0.0.1/leak.txt", "/v0.0.1/up/secret.txt"]) {
        const answer = await fetch(`${serving.url}${path}`);
        const text = await answer.text();
        assert.equal(answer.status, 403, `${path}: ${text}`);
        assert.ok(!text.includes(SECRET), path);
      }
      const inside = await fetch(`${serving.url}/v0.0.1/alias.json`);
      assert.equal(inside.status, 200);
      assert.equal(await inside.text(), MANIFEST);
    } finally {
      await serving.stop();
      await Deno.remove(work, { recursive: true });
    }
  },
);

Deno.test(
  skipIf(
    "serve: a FIFO in the directory is 404 at once, and other methods are 405 before any file is read",
    when(WINDOWS, "Windows has no mkfifo"),
  ),
  async () => {
    const { work, mirror } = await workDir();
    const fifo = join(mirror, "v0.0.1", "pipe.bin");
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.ok(made.success, "mkfifo");
    const serving = await start(await serveCommand(), [mirror, "--port", "0", "--quiet"]);
    try {
      // Opening a FIFO for reading would wait for a writer forever: it is not opened.
      const pipe = await fetch(`${serving.url}/v0.0.1/pipe.bin`, {
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(pipe.status, 404, await pipe.text());
      for (const method of ["POST", "PUT", "DELETE"]) {
        for (const path of ["/v0.0.1/pipe.bin", "/v0.0.1/lib.bin", "/../secret.txt"]) {
          const answer = await fetch(`${serving.url}${path}`, {
            method,
            signal: AbortSignal.timeout(10_000),
          });
          assert.equal(answer.status, 405, `${method} ${path}`);
          assert.equal(answer.headers.get("allow"), "GET, HEAD");
          await answer.body?.cancel();
        }
      }
    } finally {
      await serving.stop();
      await Deno.remove(work, { recursive: true });
    }
  },
);

Deno.test("serve: another address only with --host, and then a warning that the network can reach it", async () => {
  const { work, mirror } = await workDir();
  const serving = await start(await serveCommand(), [
    mirror,
    "--port",
    "0",
    "--host",
    "0.0.0.0",
    "--quiet",
  ]);
  let stopped;
  try {
    assert.match(serving.url, /^http:\/\/0\.0\.0\.0:\d+$/);
    const local = `http://127.0.0.1:${serving.port}`;
    const file = await fetch(`${local}/v0.0.1/manifest.json`);
    assert.equal(await file.text(), MANIFEST);
  } finally {
    stopped = await serving.stop();
    await Deno.remove(work, { recursive: true });
  }
  assert.match(
    stopped.stderr,
    /^warning: listening on 0\.0\.0\.0, not loopback: the mirror is reachable from the network/m,
  );
  assert.ok(
    stopped.stdout.includes(`KREPIS_MIRROR=http://127.0.0.1:${serving.port} krepis init`),
    stopped.stdout,
  );
});

Deno.test("serve: a port in use is an error with a hint (exit 1), not a stack trace", async () => {
  const { work, mirror } = await workDir();
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { code, stdout, stderr } = await run(await serveCommand(), [
    mirror,
    "--port",
    String(taken.addr.port),
  ]);
  await Deno.remove(work, { recursive: true });
  assert.equal(code, 1, stderr);
  assert.equal(stdout, "");
  assert.match(
    stderr,
    new RegExp(
      `^error: Cannot serve .*: port ${taken.addr.port} on 127\\.0\\.0\\.1 is in use\\nHint: .*--port 0 picks a free one`,
      "m",
    ),
  );
  assert.ok(!stderr.includes("    at "), stderr);
});

Deno.test("serve: a missing directory, a file, no directory and a bad port are clear errors", async () => {
  const { work, mirror } = await workDir();
  const serve = await serveCommand();
  try {
    const missing = await run(serve, [join(work, "nothing"), "--port", "0"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error: Cannot serve .*nothing: no such directory\nHint: /m);

    const file = await run(serve, [join(mirror, "v0.0.1", "manifest.json"), "--port", "0"]);
    assert.equal(file.code, 1);
    assert.match(file.stderr, /manifest\.json: it is a file, not a directory/);

    const none = await run(serve, []);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^error: Cannot run deno task serve: no directory given/m);

    const port = await run(serve, [mirror, "--port", "http"]);
    assert.equal(port.code, 2);
    assert.match(port.stderr, /--port takes a number from 0 to 65535, not "http"/);
    for (const result of [missing, file, none, port]) {
      assert.equal(result.stdout, "");
      assert.ok(!result.stderr.includes("    at "), result.stderr);
    }
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("serve: a directory that is no mirror (e.g. dist/) is served with a warning naming what makes one", async () => {
  const { work } = await workDir();
  const dist = join(work, "dist");
  await Deno.mkdir(join(dist, "x86_64-unknown-linux-gnu"), { recursive: true });
  await Deno.writeTextFile(join(dist, "x86_64-unknown-linux-gnu", "fragment.json"), "{}");
  const serving = await start(await serveCommand(), [dist, "--port", "0"]);
  let stopped;
  try {
    const answer = await fetch(`${serving.url}/x86_64-unknown-linux-gnu/fragment.json`);
    assert.equal(await answer.text(), "{}");
  } finally {
    stopped = await serving.stop();
    await Deno.remove(work, { recursive: true });
  }
  assert.match(stopped.stdout, /^versions: none$/m);
  assert.match(
    stopped.stderr,
    /^warning: .*dist has no v<version>\/manifest\.json: it is not a mirror directory/m,
  );
  assert.ok(stopped.stderr.includes("deno task release publish --dist dist --to-dir <dir>"));
  assert.ok(stopped.stderr.includes("deno task demo --out <dir>"));
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(skipIf(`serve: ${signal} closes the server and exits 0`, NO_SIGNALS), async () => {
    const { work, mirror } = await workDir();
    const serving = await start(await serveCommand(), [mirror, "--port", "0", "--quiet"]);
    let stopped;
    try {
      const answer = await fetch(`${serving.url}/v0.0.1/manifest.json`);
      assert.equal(await answer.text(), MANIFEST);
    } finally {
      stopped = await serving.stop(signal);
      await Deno.remove(work, { recursive: true });
    }
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stdout, /\nstopped\n$/);
    await assert.rejects(
      Deno.connect({ hostname: "127.0.0.1", port: serving.port }),
      Deno.errors.ConnectionRefused,
      "nothing listens after the stop",
    );
  });
}

Deno.test(
  skipIf(
    "serve: `deno task serve <relative dir>` in a subfolder of the repository resolves <dir> from that subfolder, and stops on SIGINT",
    NO_SIGNALS,
  ),
  async () => {
    const { work, mirror } = await workDir();
    // deno task runs the task in the repository's root; the path is relative to loader/.
    const subfolder = join(REPO_ROOT, "loader");
    const serving = await start(
      [Deno.execPath(), "task", "serve"],
      [relative(subfolder, mirror), "--port", "0", "--quiet"],
      { cwd: subfolder },
    );
    let stopped;
    try {
      assert.match(serving.head, new RegExp(`^serving ${escape(mirror)} at `, "m"));
      const answer = await fetch(`${serving.url}/v0.0.1/manifest.json`);
      assert.equal(await answer.text(), MANIFEST);
    } finally {
      stopped = await serving.stop("SIGINT");
      await Deno.remove(work, { recursive: true });
    }
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stdout, /\nstopped\n$/);
  },
);

Deno.test("checkRequestPath: decodes a file path, refuses every way out", () => {
  assert.deepEqual(checkRequestPath("/v0.1.0/manifest.json"), { path: "/v0.1.0/manifest.json" });
  assert.deepEqual(checkRequestPath("/v0.1.0%2Bbuild/a%20b"), { path: "/v0.1.0+build/a b" });
  assert.deepEqual(checkRequestPath("/v0.1.0/"), { path: "/v0.1.0/" });
  for (
    const [raw, why] of [
      ["v0.1.0/x", "the path does not start with /"],
      ["/%E0%A4%A", "malformed percent-encoding"],
      ["/a/../b", "a .. segment"],
      ["/a/%2E%2e/b", "a .. segment"],
      ["/a/./b", "a . segment"],
      ["/a%5Cb", "a backslash in the path"],
      ["/a%00", "a NUL byte in the path"],
      ["//etc/passwd", "an empty path segment"],
      ["/a//b", "an empty path segment"],
      ["/d:%5Cx", "a backslash in the path"],
      ["/c:/x", "a drive letter in the path"],
    ]
  ) {
    assert.deepEqual(checkRequestPath(raw), { refused: why }, raw);
  }
});
