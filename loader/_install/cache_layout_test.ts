import assert from "node:assert/strict";
import { join } from "node:path";
import { CacheError } from "../errors.ts";
import {
  ensureCacheRoot,
  entryFileKind,
  isTagged,
  isVersionName,
  removeCacheFiles,
  removeVersions,
  TAG_FILE,
  TAG_TEXT,
  verifyCache,
  walkCache,
} from "./cache_layout.ts";
import { removeFile } from "./cache.ts";
import { isInUse } from "../_internal/os_error.ts";
import { TARGETS } from "../_gen/targets.ts";
import { snapshotTree } from "../../tests/_fs.ts";

const T = TARGETS[0];
const HEX = "ab".repeat(32);

async function tree(root: string, files: Record<string, string>) {
  for (const [rel, text] of Object.entries(files)) {
    const path = join(root, ...rel.split("/"));
    if (rel.endsWith("/")) {
      await Deno.mkdir(path, { recursive: true });
      continue;
    }
    await Deno.mkdir(join(path, ".."), { recursive: true });
    await Deno.writeTextFile(path, text);
  }
}

/** A home directory, with user files at every depth, some shaped like the cache layout. */
const HOME_LIKE: Record<string, string> = {
  ".ssh/id_ed25519": "secret",
  "projects/app/main.ts": "code",
  [`0.1.0/${T.triple}/${HEX}/${T.file}`]: "a user's file named like a library",
  [`0.1.0/${T.triple}/${HEX}/${T.file}.stamp.json`]: "{}",
  "0.1.0/manifest.json": "{}",
  [TAG_FILE]: "Signature: 8a477f597d28d172789f06886806bc55\n# made by another tool\n",
};

Deno.test("isVersionName() takes semver and nothing that could climb or hide", () => {
  for (const good of ["0.1.0", "1.22.333", "1.0.0-rc.1", "1.0.0+build.5", "1.0.0-alpha-1"]) {
    assert.equal(isVersionName(good), true, good);
  }
  for (
    const bad of [
      "",
      "1.2",
      "01.2.3",
      "1.2.3.4",
      "../1.2.3",
      "1.2.3/..",
      ".",
      "v1.2.3",
      "1.2.3-",
      "1".repeat(80) + ".0.0",
    ]
  ) {
    assert.equal(isVersionName(bad), false, bad);
  }
});

Deno.test("entryFileKind() knows the library, stamp, partials and temps, and nothing near them", () => {
  const f = T.file;
  assert.equal(entryFileKind(T.triple, f), "library");
  assert.equal(entryFileKind(T.triple, `${f}.stamp.json`), "stamp");
  assert.equal(entryFileKind(T.triple, `${f}.0123456789abcdef.partial`), "partial");
  assert.equal(entryFileKind(T.triple, `.${f}.123-4-5.tmp`), "temp");
  assert.equal(entryFileKind(T.triple, `.${f}.stamp.json.123-4-5.tmp`), "temp");
  for (
    const near of [
      `${f}.bak`,
      `${f}.partial`,
      `${f}.0123456789ABCDEF.partial`,
      `${f}.0123.partial`,
      `.${f}.tmp`,
      `.${f}.x-1-2.tmp`,
      TARGETS[1].file,
      `${f}/`,
      "notes.txt",
    ]
  ) {
    assert.equal(entryFileKind(T.triple, near), null, near);
  }
});

Deno.test("an untagged directory is nobody's cache: nothing in it is Krepis's, nothing is removed", async () => {
  const home = await Deno.makeTempDir();
  try {
    await tree(home, HOME_LIKE);
    const before = await snapshotTree(home);
    const walk = await walkCache(home);
    assert.equal(walk.tagged, false);
    assert.deepEqual(walk.files, []);
    assert.equal(await isTagged(home), false, "another tool's CACHEDIR.TAG is not Krepis's");
    await assert.rejects(() => removeCacheFiles(walk, removeFile), CacheError);
    assert.deepEqual(await snapshotTree(home), before);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("ensureCacheRoot() tags a new, empty or pre-tag cache, and refuses anything else untouched", async () => {
  const base = await Deno.makeTempDir();
  try {
    const fresh = join(base, "new", "krepis");
    await ensureCacheRoot(fresh);
    assert.equal(await Deno.readTextFile(join(fresh, TAG_FILE)), TAG_TEXT);
    await ensureCacheRoot(fresh); // tagged: used as it is

    const empty = join(base, "empty");
    await Deno.mkdir(empty);
    await ensureCacheRoot(empty);
    assert.equal(await isTagged(empty), true);

    const old = join(base, "old");
    await tree(old, { [`0.1.0/${T.triple}/${HEX}/${T.file}`]: "x" });
    await ensureCacheRoot(old);
    assert.equal(await isTagged(old), true);

    for (const files of [HOME_LIKE, { "notes.txt": "x" }, { "src/": "" }, { "0.1/": "" }]) {
      const home = join(base, `home-${Object.keys(files)[0].replace(/\W/g, "")}`);
      await tree(home, files);
      const before = await snapshotTree(home);
      await assert.rejects(() => ensureCacheRoot(home), (e: Error) => {
        assert.ok(e instanceof CacheError);
        assert.match(
          e.message,
          /^Cannot use the cache directory .*: it holds files Krepis did not make/,
        );
        assert.match(
          e.message,
          /\nHint: set KREPIS_CACHE_DIR \(or --cache-dir\) to a new or empty directory/,
        );
        return true;
      });
      assert.deepEqual(await snapshotTree(home), before, "nothing written");
    }

    const file = join(base, "a-file");
    await Deno.writeTextFile(file, "x");
    await assert.rejects(() => ensureCacheRoot(file), /it is not a directory/);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("a tagged cache: only the exact layout is removed; foreign files and the directories holding them stay", async () => {
  const root = await Deno.makeTempDir();
  const outside = await Deno.makeTempDir();
  try {
    await ensureCacheRoot(root);
    const entry = `0.1.0/${T.triple}/${HEX}`;
    const other = `0.2.0/${T.triple}/${"cd".repeat(32)}`;
    await tree(root, {
      [`${entry}/${T.file}`]: "lib",
      [`${entry}/${T.file}.stamp.json`]: "{}",
      [`${entry}/${T.file}.0123456789abcdef.partial`]: "part",
      [`0.1.0/${T.triple}/.lock`]: "",
      "0.1.0/manifest.json": "{}",
      "0.1.0/manifest.json.minisig": "sig",
      [`${other}/${T.file}`]: "lib2",
      // foreign, at every level
      "notes.txt": "mine",
      "not-semver/x": "mine",
      "0.1.0/readme.txt": "mine",
      "0.1.0/riscv64-unknown-linux-gnu/x": "mine",
      [`0.1.0/${T.triple}/not-hex/x`]: "mine",
      [`${entry}/user.txt`]: "mine",
      [`${other}/${TARGETS[1].file}`]: "mine: another target's file name",
    });
    await Deno.symlink(outside, join(root, "9.9.9"), { type: "dir" }).catch(() => {});
    await Deno.writeTextFile(join(outside, "keep"), "outside");

    const walk = await walkCache(root);
    assert.equal(walk.tagged, true);
    assert.deepEqual(
      walk.files.map((f) => `${f.kind} ${f.path.slice(root.length + 1).replaceAll("\\", "/")}`)
        .sort(),
      [
        `library ${entry}/${T.file}`,
        `library ${other}/${T.file}`,
        `lock 0.1.0/${T.triple}/.lock`,
        "manifest 0.1.0/manifest.json",
        "manifest 0.1.0/manifest.json.minisig",
        `partial ${entry}/${T.file}.0123456789abcdef.partial`,
        `stamp ${entry}/${T.file}.stamp.json`,
      ],
    );
    const foreign = walk.foreign.map((p) => p.slice(root.length + 1).replaceAll("\\", "/")).sort();
    for (const f of ["notes.txt", "not-semver", "0.1.0/readme.txt", `${entry}/user.txt`]) {
      assert.ok(foreign.includes(f), `${f} is foreign: ${foreign.join(", ")}`);
    }

    // Prune-like: everything but 0.1.0.
    await removeCacheFiles(walk, removeFile, (v) => v !== "0.1.0");
    const afterPrune = await snapshotTree(root);
    assert.equal(afterPrune[`${other}/${T.file}`], undefined, "the 0.2.0 library went");
    assert.equal(afterPrune[`${other}/${TARGETS[1].file}`], "mine: another target's file name");
    assert.equal(afterPrune[`${entry}/${T.file}`], "lib", "0.1.0 stays");

    // Clean-like: everything Krepis made.
    await removeCacheFiles(await walkCache(root), removeFile);
    const after = await snapshotTree(root);
    assert.deepEqual(
      Object.entries(after).filter(([, text]) => text !== "").map(([p]) => p).sort(),
      [
        `${other}/${TARGETS[1].file}`,
        `${entry}/user.txt`,
        "0.1.0/riscv64-unknown-linux-gnu/x",
        `0.1.0/${T.triple}/not-hex/x`,
        "0.1.0/readme.txt",
        ...(after["9.9.9"] ? ["9.9.9"] : []),
        TAG_FILE,
        "not-semver/x",
        "notes.txt",
      ].sort(),
    );
    assert.equal(await Deno.readTextFile(join(outside, "keep")), "outside");
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("another tool's CACHEDIR.TAG is never replaced; a cut-short tag write is Krepis's temp", async () => {
  const base = await Deno.makeTempDir();
  try {
    const other = join(base, "other");
    const theirs = "Signature: 8a477f597d28d172789f06886806bc55\n# made by another tool\n";
    await tree(other, { [TAG_FILE]: theirs, "0.1.0/": "" });
    await assert.rejects(
      () => ensureCacheRoot(other),
      /it holds files Krepis did not make \(CACHEDIR\.TAG\)/,
    );
    assert.equal(await Deno.readTextFile(join(other, TAG_FILE)), theirs);

    const ours = join(base, "ours");
    await ensureCacheRoot(ours);
    await Deno.writeTextFile(join(ours, `${TAG_FILE}.123-456.tmp`), "Signature: 8a47");
    const walk = await walkCache(ours);
    assert.deepEqual(walk.foreign, []);
    assert.deepEqual(walk.files.map((f) => f.kind), ["temp"]);
    await removeCacheFiles(walk, removeFile);
    assert.deepEqual([...Deno.readDirSync(ours)].map((e) => e.name), [TAG_FILE]);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("verifyCache() re-hashes every library, removes a damaged one with its stamp, and nothing else", async () => {
  const root = await Deno.makeTempDir({ prefix: "krepis-layout-" });
  try {
    const good = await sha256Hex("good bytes");
    const other = T.triple === TARGETS[1].triple ? TARGETS[2] : TARGETS[1];
    await tree(root, {
      [TAG_FILE]: TAG_TEXT,
      [`0.1.0/${T.triple}/${good}/${T.file}`]: "good bytes",
      [`0.1.0/${T.triple}/${good}/${T.file}.stamp.json`]: "{}",
      // Named by the hash of "good bytes", holding other bytes.
      [`0.2.0/${other.triple}/${good}/${other.file}`]: "damaged bytes",
      [`0.2.0/${other.triple}/${good}/${other.file}.stamp.json`]: "{}",
      [`0.2.0/${other.triple}/${good}/notes.txt`]: "a user's file",
    });
    const { checked, walk } = await verifyCache(root, removeFile);
    assert.deepEqual(
      checked.map((c) => [c.version, c.target, c.ok]),
      [["0.1.0", T.triple, true], ["0.2.0", other.triple, false]],
    );
    assert.equal(checked[1].actual, await sha256Hex("damaged bytes"));
    assert.deepEqual(walk.foreign, [join(root, "0.2.0", other.triple, good, "notes.txt")]);
    const left = Object.keys(await snapshotTree(root));
    assert.ok(left.some((p) => p.endsWith(`0.1.0/${T.triple}/${good}/${T.file}`)));
    assert.ok(!left.some((p) => p.endsWith(`${other.triple}/${good}/${other.file}`)));
    assert.ok(!left.some((p) => p.endsWith(`${other.file}.stamp.json`)));
    assert.ok(left.some((p) => p.endsWith("notes.txt")));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("verifyCache() and removeVersions() refuse an untagged root and touch nothing", async () => {
  const root = await Deno.makeTempDir({ prefix: "krepis-layout-" });
  try {
    await tree(root, HOME_LIKE);
    const before = await snapshotTree(root);
    await assert.rejects(() => verifyCache(root, removeFile), CacheError);
    await assert.rejects(
      async () => await removeVersions(await walkCache(root), removeFile, () => true),
      CacheError,
    );
    assert.deepEqual(await snapshotTree(root), before);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("removeVersions() keeps a version whose file is in use and still removes the others", async () => {
  const root = await Deno.makeTempDir({ prefix: "krepis-layout-" });
  try {
    await tree(root, {
      [TAG_FILE]: TAG_TEXT,
      [`0.1.0/${T.triple}/${HEX}/${T.file}`]: "old",
      [`0.2.0/${T.triple}/${HEX}/${T.file}`]: "in use",
      [`0.3.0/${T.triple}/${HEX}/${T.file}`]: "current",
    });
    const walk = await walkCache(root);
    // Windows' answer to deleting a loaded DLL (ERROR_ACCESS_DENIED), judged by Windows' rule.
    const inUse = new Error("Access is denied. (os error 5)");
    const remove = async (path: string) => {
      if (path.includes("0.2.0")) {
        throw new CacheError(`Cannot remove ${path}: in use`, { cause: inUse });
      }
      await removeFile(path);
    };
    const windowsRule = (error: unknown) => isInUse(error, "windows");
    const result = await removeVersions(walk, remove, (v) => v !== "0.3.0", windowsRule);
    assert.deepEqual(result.removed, ["0.1.0"]);
    assert.deepEqual(result.kept, [{
      version: "0.2.0",
      reason: "a file in it is in use by a running process",
    }]);
    const left = Object.keys(await snapshotTree(root));
    assert.ok(!left.some((p) => p.includes("0.1.0")));
    assert.ok(left.some((p) => p.includes("0.2.0")));
    assert.ok(left.some((p) => p.includes("0.3.0")));

    // Any other failure is not swallowed.
    const broken = () => Promise.reject(new CacheError("Cannot remove: read-only file system"));
    await assert.rejects(() => removeVersions(walk, broken, () => true, windowsRule), CacheError);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("removeVersions() does not report a version whose folder holds only a foreign file", async () => {
  const root = await Deno.makeTempDir({ prefix: "krepis-layout-" });
  try {
    await tree(root, {
      [TAG_FILE]: TAG_TEXT,
      "0.0.9/notes.txt": "someone's",
      [`0.1.0/${T.triple}/${HEX}/${T.file}`]: "old",
    });
    await Deno.mkdir(join(root, "0.0.8"));
    for (const run of [1, 2]) {
      const result = await removeVersions(await walkCache(root), removeFile, () => true);
      assert.deepEqual(
        result.removed,
        run === 1 ? ["0.0.8", "0.1.0"] : [],
        `run ${run}: the empty folder and the real entry go once; 0.0.9 never`,
      );
    }
    assert.deepEqual(Object.keys(await snapshotTree(root)).sort(), [
      "0.0.9/",
      "0.0.9/notes.txt",
      TAG_FILE,
    ]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
