import assert from "node:assert/strict";
import path from "node:path";
import { absolute, basename, dirname, join, pathsFor } from "./path.ts";

const posix = pathsFor("linux");
const win32 = pathsFor("windows");

Deno.test("pathsFor(linux) agrees with node:path posix", () => {
  for (const parts of [["/a", "b", "c.so"], ["/a/", "/b/", "c"], ["rel", "x"], ["/", "x"]]) {
    assert.equal(posix.join(...parts), path.posix.join(...parts), parts.join(" + "));
  }
  for (const p of ["/a/b/c.so", "/a", "/", "rel/x", "x", "a\\b"]) {
    assert.equal(posix.dirname(p), path.posix.dirname(p), p);
    assert.equal(posix.basename(p), path.posix.basename(p), p);
    assert.equal(posix.isAbsolute(p), path.posix.isAbsolute(p), p);
  }
  assert.equal(posix.absolute("rel/lib.so", "/home/u"), "/home/u/rel/lib.so");
  assert.equal(posix.absolute("/abs/lib.so", "/home/u"), "/abs/lib.so");
});

Deno.test("pathsFor(windows) agrees with node:path win32: drive letters, UNC, both separators", () => {
  const joins = [
    ["C:\\Users\\u", "AppData\\Local", "krepis"],
    ["C:/Users/u/", "/AppData/", "krepis"],
    ["D:\\a\\krepis", "loader/cli.ts"],
    ["\\\\server\\share", "krepis", "0.1.0"],
    ["rel", "x.dll"],
  ];
  for (const parts of joins) {
    assert.equal(win32.join(...parts), path.win32.join(...parts), parts.join(" + "));
  }
  const paths = [
    "C:\\Users\\u\\AppData\\Local\\krepis\\0.1.0\\x.dll",
    "C:/Users/u/x.dll",
    "C:\\x.dll",
    "C:\\",
    "\\\\server\\share\\krepis\\x.dll",
    "\\\\server\\share\\x.dll",
    "rel\\x.dll",
    "x.dll",
  ];
  for (const p of paths) {
    assert.equal(win32.dirname(p), path.win32.dirname(p), `dirname ${p}`);
    assert.equal(win32.basename(p), path.win32.basename(p), `basename ${p}`);
    assert.equal(win32.isAbsolute(p), path.win32.isAbsolute(p), `isAbsolute ${p}`);
  }
  assert.equal(win32.absolute("lib\\x.dll", "D:\\a\\krepis"), "D:\\a\\krepis\\lib\\x.dll");
  assert.equal(win32.absolute("C:\\x.dll", "D:\\a"), "C:\\x.dll");
  // A file URL's pathname is not a Windows path: the reason REPO_ROOT uses import.meta.dirname.
  assert.equal(win32.isAbsolute(new URL("file:///D:/a/krepis/").pathname.slice(1)), true);
});

Deno.test("the plain exports are this machine's family", () => {
  const host = Deno.build.os === "windows" ? path.win32 : path.posix;
  const parts = Deno.build.os === "windows" ? ["C:\\a", "b", "c.dll"] : ["/a", "b", "c.so"];
  assert.equal(join(...parts), host.join(...parts));
  assert.equal(dirname(join(...parts)), host.dirname(host.join(...parts)));
  assert.equal(basename(join(...parts)), host.basename(host.join(...parts)));
  assert.equal(absolute("rel"), host.resolve("rel"));
});

Deno.test("normalize() gives one spelling per path, as node:path does (without its trailing slash)", () => {
  const strip = (p: string, sep: string) =>
    p.length > 1 && p.endsWith(sep) && !/^[A-Za-z]:\\$/.test(p) ? p.slice(0, -1) : p;
  for (
    const p of [
      "/a//b/",
      "/a/./b/../c",
      "/../a",
      "/",
      "//",
      "a/../../b",
      "a/./b/",
      ".",
      "a/..",
      "/a/b/..",
    ]
  ) {
    assert.equal(posix.normalize(p), strip(path.posix.normalize(p), "/"), p);
  }
  for (
    const p of [
      "C:\\a\\\\b\\",
      "C:/a/./b/../c",
      "C:\\..\\a",
      "C:\\",
      "\\\\server\\share\\a\\..\\b",
      "a\\..\\..\\b",
      "D:/a//b",
    ]
  ) {
    assert.equal(win32.normalize(p), strip(path.win32.normalize(p), "\\"), p);
  }
});
