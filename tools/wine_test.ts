import assert from "node:assert/strict";
import { join } from "node:path";
import {
  debianMirror,
  removeOurs,
  windowsPath,
  WINE_KEY_FILES,
  WINE_STAMP,
  WINE_SUITE,
  WINE_WORK_MARKER,
  wineRootState,
} from "./wine.ts";

Deno.test("debianMirror() takes the main archive from deb822 or one-line sources, never security or a third party", () => {
  const deb822 = [
    "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\nComponents: main\n",
    "Types: deb\nURIs: https://vendor.example/apt\nSuites: stable\nComponents: main\n",
    "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\nTypes: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n",
  ];
  assert.equal(debianMirror(deb822), "http://mirror.example/debian");
  assert.equal(
    debianMirror(["# old style\ndeb [arch=amd64] http://one.example/debian bookworm main\n"]),
    "http://one.example/debian",
  );
  assert.equal(
    debianMirror(["Enabled: no\nTypes: deb\nURIs: http://off.example/debian\nSuites: bookworm\n"]),
    null,
  );
  assert.equal(debianMirror(["deb http://security.example/debian bookworm-security main\n"]), null);
  assert.equal(debianMirror([]), null);
});

Deno.test("windowsPath() maps an absolute path to Wine's Z: drive and refuses a relative one", () => {
  assert.equal(windowsPath("/work/repo/a.dll"), "Z:\\work\\repo\\a.dll");
  assert.throws(
    () => windowsPath("repo/a.dll"),
    /^Error: Cannot map repo\/a\.dll .*: not absolute\nHint: /,
  );
});

Deno.test("wineRootState() tells an absent, foreign, damaged and complete root apart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "krepis-wine-root-" });
  try {
    const root = join(dir, "root");
    assert.deepEqual(await wineRootState(root), { absent: true });
    await Deno.mkdir(root);
    assert.ok("foreign" in await wineRootState(root), "no stamp: never ours to remove");
    const files: Record<string, number> = {};
    for (const file of WINE_KEY_FILES) {
      await Deno.mkdir(join(root, file, ".."), { recursive: true });
      await Deno.writeTextFile(join(root, file), file);
      files[file] = file.length;
    }
    const stamp = { suite: WINE_SUITE, packages: ["wine"], files, made: "now" };
    await Deno.writeTextFile(join(root, WINE_STAMP), JSON.stringify(stamp));
    assert.ok("ok" in await wineRootState(root));
    await Deno.writeTextFile(join(root, WINE_KEY_FILES[3]), "cut");
    const damaged = await wineRootState(root);
    assert.ok(
      "damaged" in damaged && damaged.damaged.startsWith(WINE_KEY_FILES[3]),
      JSON.stringify(damaged),
    );
    await Deno.remove(join(root, WINE_KEY_FILES[0]));
    assert.deepEqual(await wineRootState(root), { damaged: `${WINE_KEY_FILES[0]} is missing` });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("removeOurs() refuses a work folder without Krepis's marker and removes one with it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "krepis-wine-work-" });
  try {
    const work = join(dir, "wine-trixie.work");
    await removeOurs(work, WINE_WORK_MARKER, "the work folder"); // absent: nothing to do
    await Deno.mkdir(join(work, "root"), { recursive: true });
    await Deno.writeTextFile(join(work, "root", "keep"), "not ours");
    await assert.rejects(
      () => removeOurs(work, WINE_WORK_MARKER, "the work folder"),
      /^Error: Cannot remove the work folder .*: it has no \.krepis-wine-work\.json, so Krepis did not make it\nHint: /,
    );
    assert.equal(await Deno.readTextFile(join(work, "root", "keep")), "not ours", "left as it was");
    // A folder named like the marker is not the marker.
    await Deno.mkdir(join(work, WINE_WORK_MARKER));
    await assert.rejects(
      () => removeOurs(work, WINE_WORK_MARKER, "the work folder"),
      /no \.krepis/,
    );
    await Deno.remove(join(work, WINE_WORK_MARKER));
    await Deno.writeTextFile(join(work, WINE_WORK_MARKER), "{}");
    await removeOurs(work, WINE_WORK_MARKER, "the work folder");
    await assert.rejects(() => Deno.lstat(work), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
