/**
 * The JSR stand-in against the real `deno` client: `deno publish --token`
 * writes to it; `deno add`, `deno run` and `deno install -g` read from it
 * (`JSR_URL`), each in a fresh Deno cache. The package is a small one
 * written here, so the tests exercise the registry rather than a type check.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { JsrHost, untar } from "./jsr_host.ts";

const TOKEN = "stand-in-token";
const DAY_MS = 24 * 60 * 60 * 1000;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real `deno` in `cwd` with its own cache and the stand-in as the registry. */
async function deno(args: string[], cwd: string, env: Record<string, string>): Promise<Run> {
  const output = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return {
    code: output.code,
    stdout: text.decode(output.stdout),
    stderr: text.decode(output.stderr),
  };
}

/** A scratch world: a registry folder, a Deno cache, a package source and a user folder. */
async function world(now?: () => number) {
  const base = await Deno.makeTempDir({ prefix: "krepis-jsr-" });
  const host = await JsrHost.start({ root: join(base, "registry"), token: TOKEN, now });
  const env = { JSR_URL: host.url, DENO_DIR: join(base, "deno-dir") };
  const user = join(base, "user");
  await Deno.mkdir(user);
  return {
    base,
    host,
    env,
    user,
    /** Publishes `@krepis/hello@<version>` with the real `deno publish`. */
    async publish(version: string, token = TOKEN): Promise<Run> {
      const source = join(base, `hello-${version}`);
      await Deno.mkdir(source, { recursive: true });
      await Deno.writeTextFile(
        join(source, "deno.json"),
        JSON.stringify({ name: "@krepis/hello", version, license: "MIT", exports: "./mod.ts" }),
      );
      await Deno.writeTextFile(
        join(source, "mod.ts"),
        `/** The greeting. */\nexport const greeting: string = "hello ${version}";\n`,
      );
      return await deno(["publish", "--token", token, "--allow-dirty"], source, env);
    },
    async close() {
      await host.close();
      await Deno.remove(base, { recursive: true });
    },
  };
}

Deno.test("deno publish --token publishes to the JSR stand-in; deno add, run and install -g read it", async () => {
  const w = await world();
  try {
    const published = await w.publish("0.1.0");
    assert.equal(published.code, 0, published.stderr);
    assert.match(published.stderr, /Successfully published @krepis\/hello@0\.1\.0/);
    const meta = await w.host.packageMeta("krepis", "hello");
    assert.equal(meta?.latest, "0.1.0");
    assert.ok(Date.now() - Date.parse(meta!.versions["0.1.0"].createdAt) < DAY_MS);

    const added = await deno(["add", "--min-dep-age=0", "jsr:@krepis/hello"], w.user, w.env);
    assert.equal(added.code, 0, added.stderr);
    await Deno.writeTextFile(
      join(w.user, "main.ts"),
      'import { greeting } from "@krepis/hello";\nconsole.log(greeting);\n',
    );
    const ran = await deno(["run", "main.ts"], w.user, w.env);
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout, "hello 0.1.0\n");

    const root = join(w.base, "install");
    const installed = await deno(
      ["install", "-g", "--root", root, "-n", "hello", "--min-dep-age=0", "jsr:@krepis/hello"],
      w.user,
      w.env,
    );
    assert.equal(installed.code, 0, installed.stderr);
    const paths = w.host.requests.map((request) => `${request.method} ${request.path}`);
    for (
      const expected of [
        "POST /api/scopes/krepis/packages/hello/versions/0.1.0",
        "GET /@krepis/hello/meta.json",
        "GET /@krepis/hello/0.1.0_meta.json",
        "GET /@krepis/hello/0.1.0/mod.ts",
      ]
    ) assert.ok(paths.includes(expected), `${expected} in\n${paths.join("\n")}`);
    const launcher = Deno.build.os === "windows" ? "hello.cmd" : "hello";
    assert.ok((await Deno.stat(join(root, "bin", launcher))).isFile);
  } finally {
    await w.close();
  }
});

Deno.test("a version under 24 hours old is hidden from deno add until --min-dep-age=0", async () => {
  let clock = Date.now() - 2 * DAY_MS;
  const w = await world(() => clock);
  try {
    assert.equal((await w.publish("0.1.0")).code, 0);
    clock = Date.now();
    assert.equal((await w.publish("0.2.0")).code, 0);

    const fresh = await deno(["add", "jsr:@krepis/hello"], w.user, w.env);
    assert.equal(fresh.code, 0, fresh.stderr);
    const config = () => Deno.readTextFile(join(w.user, "deno.json"));
    assert.match(await config(), /"jsr:@krepis\/hello@\^0\.1\.0"/);

    const workaround = await deno(["add", "--min-dep-age=0", "jsr:@krepis/hello@0.2.0"], w.user, {
      ...w.env,
    });
    assert.equal(workaround.code, 0, workaround.stderr);
    assert.match(await config(), /"jsr:@krepis\/hello@0\.2\.0"|"jsr:@krepis\/hello@\^0\.2\.0"/);
  } finally {
    await w.close();
  }
});

Deno.test("a release-day package with only a fresh version cannot be added without the workaround", async () => {
  const w = await world();
  try {
    assert.equal((await w.publish("0.1.0")).code, 0);
    const refused = await deno(["add", "jsr:@krepis/hello"], w.user, w.env);
    assert.notEqual(refused.code, 0, refused.stdout);
    const allowed = await deno(["add", "jsr:@krepis/hello"], w.user, {
      ...w.env,
      NPM_CONFIG_MIN_RELEASE_AGE: "0",
    });
    assert.equal(allowed.code, 0, allowed.stderr);
    await Deno.writeTextFile(
      join(w.user, "main.ts"),
      'import { greeting } from "jsr:@krepis/hello@^0.1.0";\nconsole.log(greeting);\n',
    );
    await Deno.writeTextFile(join(w.user, "deno.json"), "{}\n");
    await Deno.remove(join(w.base, "deno-dir"), { recursive: true });
    await Deno.remove(join(w.user, "deno.lock")).catch(() => {});
    const gated = await deno(["run", "main.ts"], w.user, w.env);
    assert.notEqual(gated.code, 0, gated.stdout);
    await Deno.writeTextFile(
      join(w.user, "deno.json"),
      JSON.stringify({ minimumDependencyAge: { exclude: ["jsr:@krepis/hello"] } }),
    );
    await Deno.remove(join(w.user, "deno.lock")).catch(() => {});
    const excluded = await deno(["run", "main.ts"], w.user, w.env);
    assert.equal(excluded.code, 0, excluded.stderr);
    assert.equal(excluded.stdout, "hello 0.1.0\n");
  } finally {
    await w.close();
  }
});

Deno.test("a yanked version is skipped when resolving a range", async () => {
  const w = await world(() => Date.now() - 2 * DAY_MS);
  try {
    assert.equal((await w.publish("0.1.0")).code, 0);
    assert.equal((await w.publish("0.1.1")).code, 0);
    await w.host.yank("krepis", "hello", "0.1.1");
    const meta = await w.host.packageMeta("krepis", "hello");
    assert.equal(meta?.versions["0.1.1"].yanked, true);
    assert.equal(meta?.latest, "0.1.0");
    await Deno.writeTextFile(
      join(w.user, "main.ts"),
      'import { greeting } from "jsr:@krepis/hello@^0.1.0";\nconsole.log(greeting);\n',
    );
    const ran = await deno(["run", "main.ts"], w.user, w.env);
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout, "hello 0.1.0\n");
  } finally {
    await w.close();
  }
});

Deno.test("a published version never changes: deno publish skips it and the API answers 409", async () => {
  const w = await world();
  try {
    assert.equal((await w.publish("0.1.0")).code, 0);
    const before = await Deno.readFile(join(w.host.root, "@krepis", "hello", "0.1.0_meta.json"));
    const again = await w.publish("0.1.0");
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /already published/);
    const response = await fetch(`${w.host.url}api/scopes/krepis/packages/hello/versions/0.1.0`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}` },
      body: await gzippedTarOf("/deno.json", '{"name":"@krepis/hello","version":"0.1.0"}'),
    });
    assert.equal(response.status, 409);
    assert.equal((await response.json()).code, "duplicateVersionPublish");
    const after = await Deno.readFile(join(w.host.root, "@krepis", "hello", "0.1.0_meta.json"));
    assert.deepEqual(after, before);
  } finally {
    await w.close();
  }
});

Deno.test("the publish API refuses a wrong token and publishes nothing", async () => {
  const w = await world();
  try {
    const refused = await w.publish("0.1.0", "not-the-token");
    assert.notEqual(refused.code, 0);
    assert.equal(await w.host.packageMeta("krepis", "hello"), undefined);
    assert.ok(w.host.requests.some((request) => request.status === 401));
  } finally {
    await w.close();
  }
});

Deno.test("deno refuses a file whose bytes differ from the version document's checksum", async () => {
  const w = await world();
  try {
    assert.equal((await w.publish("0.1.0")).code, 0);
    await Deno.writeTextFile(
      join(w.host.root, "@krepis", "hello", "0.1.0", "mod.ts"),
      'export const greeting: string = "tampered";\n',
    );
    await Deno.writeTextFile(
      join(w.user, "main.ts"),
      'import { greeting } from "jsr:@krepis/hello@0.1.0";\nconsole.log(greeting);\n',
    );
    const ran = await deno(["run", "--min-dep-age=0", "main.ts"], w.user, w.env);
    assert.notEqual(ran.code, 0, ran.stdout);
    assert.doesNotMatch(ran.stdout, /tampered/);
    assert.match(ran.stderr, /checksum|integrity/i);
  } finally {
    await w.close();
  }
});

Deno.test("deno.lock refuses a version document changed after it was locked", async () => {
  const w = await world();
  try {
    assert.equal((await w.publish("0.1.0")).code, 0);
    await Deno.writeTextFile(join(w.user, "deno.json"), "{}\n");
    await Deno.writeTextFile(
      join(w.user, "main.ts"),
      'import { greeting } from "jsr:@krepis/hello@0.1.0";\nconsole.log(greeting);\n',
    );
    const first = await deno(["run", "--min-dep-age=0", "main.ts"], w.user, w.env);
    assert.equal(first.code, 0, first.stderr);
    assert.match(await Deno.readTextFile(join(w.user, "deno.lock")), /"@krepis\/hello@0\.1\.0"/);
    const document = join(w.host.root, "@krepis", "hello", "0.1.0_meta.json");
    await Deno.writeTextFile(document, (await Deno.readTextFile(document)) + " ");
    await Deno.remove(join(w.base, "deno-dir"), { recursive: true });
    const second = await deno(["run", "--min-dep-age=0", "main.ts"], w.user, w.env);
    assert.notEqual(second.code, 0, second.stdout);
    assert.match(second.stderr, /integrity|checksum/i);
  } finally {
    await w.close();
  }
});

Deno.test("untar reads files and refuses an entry that leaves the package", () => {
  const files = untar(tarOf("/a/b.ts", "export {};\n"));
  assert.deepEqual([...files.keys()], ["/a/b.ts"]);
  assert.equal(new TextDecoder().decode(files.get("/a/b.ts")), "export {};\n");
  assert.throws(() => untar(tarOf("../evil.ts", "x")), /leaves the package/);
});

/** A one-file ustar archive. */
function tarOf(path: string, content: string): Uint8Array<ArrayBuffer> {
  const body = new TextEncoder().encode(content);
  const header = new Uint8Array(512);
  const put = (at: number, text: string) => header.set(new TextEncoder().encode(text), at);
  put(0, path.replace(/^\//, ""));
  put(100, "0000644\0");
  put(108, "0000000\0");
  put(116, "0000000\0");
  put(124, body.length.toString(8).padStart(11, "0") + "\0");
  put(136, "00000000000\0");
  put(156, "0");
  put(257, "ustar\0");
  put(263, "00");
  put(148, "        ");
  const sum = header.reduce((total, byte) => total + byte, 0);
  put(148, sum.toString(8).padStart(6, "0") + "\0 ");
  const padded = new Uint8Array(Math.ceil(body.length / 512) * 512);
  padded.set(body);
  const out = new Uint8Array(512 + padded.length + 1024);
  out.set(header);
  out.set(padded, 512);
  return out;
}

async function gzippedTarOf(path: string, content: string): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([tarOf(path, content)]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

Deno.test("the JSR stand-in serves the same document bytes after a restart, and yanks through its API", async () => {
  const w = await world();
  try {
    assert.equal((await w.publish("0.1.0")).code, 0);
    const paths = ["@krepis/hello/meta.json", "@krepis/hello/0.1.0_meta.json"];
    const before = await Promise.all(paths.map((path) => bytesAt(`${w.host.url}${path}`)));
    await w.host.close();
    const again = await JsrHost.start({ root: w.host.root, token: TOKEN });
    try {
      const after = await Promise.all(paths.map((path) => bytesAt(`${again.url}${path}`)));
      assert.deepEqual(after, before);
      const url = `${again.url}api/scopes/krepis/packages/hello/versions/0.1.0`;
      const anonymous = await fetch(url, { method: "PATCH", body: '{"yanked":true}' });
      assert.equal(anonymous.status, 401);
      await anonymous.body?.cancel();
      const yanked = await fetch(url, {
        method: "PATCH",
        headers: { authorization: `Bearer ${TOKEN}` },
        body: '{"yanked":true}',
      });
      assert.equal(yanked.status, 204);
      const meta = await again.packageMeta("krepis", "hello");
      assert.equal(meta?.versions["0.1.0"].yanked, true);
      assert.equal(meta?.latest, null);
    } finally {
      await again.close();
    }
  } finally {
    await Deno.remove(w.base, { recursive: true });
  }
});

async function bytesAt(url: string): Promise<Uint8Array> {
  const response = await fetch(url);
  assert.equal(response.status, 200, url);
  return new Uint8Array(await response.arrayBuffer());
}

Deno.test("a version folder left by a publish stopped before its documents is replaced, and no staging folder stays", async () => {
  const w = await world();
  try {
    // What a host stopped between the folder's rename and the documents leaves.
    const left = join(w.host.root, "@krepis", "hello", "0.2.0");
    await Deno.mkdir(left, { recursive: true });
    await Deno.writeTextFile(join(left, "stale.ts"), "half-published");
    const response = await fetch(`${w.host.url}api/scopes/krepis/packages/hello/versions/0.2.0`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}` },
      body: await gzippedTarOf("/deno.json", '{"name":"@krepis/hello","version":"0.2.0"}'),
    });
    assert.ok(response.ok, `${response.status} ${await response.text()}`);
    assert.ok((await w.host.packageMeta("krepis", "hello"))?.versions["0.2.0"]);
    const names = [...Deno.readDirSync(join(w.host.root, "@krepis", "hello"))].map((e) => e.name);
    assert.deepEqual(names.filter((name) => name.startsWith(".")), [], "no staging folder");
    assert.deepEqual([...Deno.readDirSync(left)].map((e) => e.name), ["deno.json"]);
  } finally {
    await w.close();
  }
});
