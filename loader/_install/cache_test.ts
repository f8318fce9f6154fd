/**
 * The cache's file rules on real files (a really loaded kernel among them),
 * and Windows' documented rules, which nothing here can run, on a model of
 * them: MoveFileEx and DeleteFile refuse a read-only target and a DLL that
 * a process has mapped, with ERROR_ACCESS_DENIED (5).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { CacheError } from "../errors.ts";
import {
  commitTemp,
  createTemp,
  ensurePrivateDir,
  type FileOps,
  MAX_STAMP_SIZE,
  readSmallFile,
  removeFile,
  replaceFile,
} from "./cache.ts";
import { kernelPath } from "../../tests/_kernel.ts";
import { skipIf, UNDER_WINE, when } from "../../tests/_tools.ts";

const WINDOWS = Deno.build.os === "windows";

/** Windows' rules for rename-over and delete, as documented for MoveFileEx and DeleteFile. */
class WindowsFiles implements FileOps {
  files = new Map<string, { bytes: string; readOnly: boolean; loaded: boolean }>();
  calls: string[] = [];
  #denied(): Error {
    return new Deno.errors.PermissionDenied("Access is denied. (os error 5)");
  }
  rename(from: string, to: string): Promise<void> {
    this.calls.push(`rename ${from} ${to}`);
    const source = this.files.get(from);
    if (!source) return Promise.reject(new Deno.errors.NotFound("(os error 2)"));
    const target = this.files.get(to);
    if (target && (target.readOnly || target.loaded)) return Promise.reject(this.#denied());
    this.files.delete(from);
    this.files.set(to, source);
    return Promise.resolve();
  }
  remove(path: string): Promise<void> {
    this.calls.push(`remove ${path}`);
    const file = this.files.get(path);
    if (!file) return Promise.reject(new Deno.errors.NotFound("(os error 2)"));
    if (file.readOnly || file.loaded) return Promise.reject(this.#denied());
    this.files.delete(path);
    return Promise.resolve();
  }
  chmod(path: string, mode: number): Promise<void> {
    this.calls.push(`chmod ${path} ${mode.toString(8)}`);
    const file = this.files.get(path);
    if (!file) return Promise.reject(new Deno.errors.NotFound("(os error 2)"));
    file.readOnly = (mode & 0o200) === 0;
    return Promise.resolve();
  }
}

Deno.test("Windows rules: replaceFile() clears a read-only target and renames over it", async () => {
  const fs = new WindowsFiles();
  fs.files.set("new", { bytes: "good", readOnly: true, loaded: false });
  fs.files.set("lib.dll", { bytes: "damaged", readOnly: true, loaded: false });
  await replaceFile("new", "lib.dll", "windows", fs);
  assert.equal(fs.files.get("lib.dll")?.bytes, "good");
  assert.deepEqual(fs.calls, ["rename new lib.dll", "chmod lib.dll 644", "rename new lib.dll"]);
});

Deno.test("Windows rules: replaceFile() refuses a loaded DLL with a CacheError and leaves both files", async () => {
  const fs = new WindowsFiles();
  fs.files.set("new", { bytes: "good", readOnly: true, loaded: false });
  fs.files.set("lib.dll", { bytes: "old", readOnly: true, loaded: true });
  await assert.rejects(() => replaceFile("new", "lib.dll", "windows", fs), (e: Error) => {
    assert.ok(e instanceof CacheError);
    assert.match(e.message, /^Cannot replace lib\.dll: a process has it open or loaded/);
    assert.match(e.message, /\nHint: close the programs that use the Krepis kernel/);
    return true;
  });
  assert.equal(fs.files.get("lib.dll")?.bytes, "old");
  assert.equal(fs.files.get("new")?.bytes, "good");
});

Deno.test("Windows rules: removeFile() clears read-only, and refuses a loaded DLL clearly", async () => {
  const fs = new WindowsFiles();
  fs.files.set("a.dll", { bytes: "", readOnly: true, loaded: false });
  fs.files.set("b.dll", { bytes: "", readOnly: true, loaded: true });
  await removeFile("a.dll", "windows", fs);
  assert.equal(fs.files.has("a.dll"), false);
  await assert.rejects(() => removeFile("b.dll", "windows", fs), CacheError);
  assert.equal(fs.files.has("b.dll"), true);
  await assert.rejects(() => removeFile("missing.dll", "windows", fs), Deno.errors.NotFound);
});

Deno.test("POSIX rules on the same model: a refusal is passed on, never retried", async () => {
  const fs = new WindowsFiles();
  fs.files.set("new", { bytes: "good", readOnly: false, loaded: false });
  fs.files.set("lib.so", { bytes: "old", readOnly: true, loaded: false });
  await assert.rejects(
    () => replaceFile("new", "lib.so", "linux", fs),
    Deno.errors.PermissionDenied,
  );
  assert.deepEqual(fs.calls, ["rename new lib.so"]);
});

Deno.test("replaceFile() and removeFile() on real read-only files, on this OS", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const target = join(dir, "lib");
    await Deno.writeTextFile(target, "old");
    await Deno.chmod(target, 0o444);
    const temp = await createTemp(target);
    await temp.file.write(new TextEncoder().encode("new"));
    await commitTemp(temp, target, 0o444);
    assert.equal(await Deno.readTextFile(target), "new");
    // Read-only everywhere: mode bits on POSIX, the attribute on Windows.
    const info = await Deno.stat(target);
    if (!WINDOWS) assert.equal(info.mode! & 0o777, 0o444);
    // Root may write a file without write bits on POSIX; the Windows attribute
    // stops anyone, except under Wine, which keeps the attribute as mode bits
    // and runs as root in its namespace (docs/testing.md lists this).
    if (WINDOWS ? !UNDER_WINE : Deno.uid() !== 0) {
      await assert.rejects(() => Deno.writeTextFile(target, "x"));
    }
    await removeFile(target);
    await assert.rejects(() => Deno.stat(target), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a kernel this process has loaded: POSIX replaces it and the process keeps its copy; Windows refuses", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const lib = join(
      dir,
      `kernel${WINDOWS ? ".dll" : Deno.build.os === "darwin" ? ".dylib" : ".so"}`,
    );
    await Deno.copyFile(await kernelPath(), lib);
    await Deno.chmod(lib, 0o444);
    const handle = Deno.dlopen(lib, { krepis_abi_version: { parameters: [], result: "u32" } });
    try {
      const abi = handle.symbols.krepis_abi_version();
      const temp = await createTemp(lib);
      await temp.file.write(new TextEncoder().encode("replacement"));
      if (WINDOWS) {
        await assert.rejects(() => commitTemp(temp, lib, 0o444), CacheError);
        await Deno.remove(temp.path);
      } else {
        await commitTemp(temp, lib, 0o444);
        assert.equal(await Deno.readTextFile(lib), "replacement");
      }
      // Still callable: the mapped file was never written.
      assert.equal(handle.symbols.krepis_abi_version(), abi);
    } finally {
      handle.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const canSymlink = await (async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.symlink(dir, join(dir, "link"), { type: "dir" });
    return true;
  } catch {
    return false; // Windows without the symlink privilege
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
})();

Deno.test(
  skipIf(
    "ensurePrivateDir() refuses a symlink below the root on every OS",
    when(
      !canSymlink,
      "this user cannot create symlinks (Windows: needs Developer Mode or an admin)",
    ) ?? when(UNDER_WINE, "Wine shows a symbolic link to a folder as the folder itself"),
  ),
  async () => {
    const root = await Deno.makeTempDir();
    const elsewhere = await Deno.makeTempDir();
    try {
      await Deno.chmod(root, 0o700);
      await Deno.symlink(elsewhere, join(root, "0.1.0"), { type: "dir" });
      await assert.rejects(
        () => ensurePrivateDir(root, join(root, "0.1.0", "x86_64-unknown-linux-gnu")),
        (e: Error) => e instanceof CacheError && /not a directory \(a symlink\?\)/.test(e.message),
      );
    } finally {
      await Deno.remove(root, { recursive: true });
      await Deno.remove(elsewhere, { recursive: true });
    }
  },
);

Deno.test("readSmallFile() reads small regular files only, and never more than its cap", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const small = join(dir, "small");
    await Deno.writeTextFile(small, "x".repeat(100));
    assert.equal((await readSmallFile(small, 100))?.length, 100);
    assert.equal(await readSmallFile(small, 99), null);
    // A sparse 3 GiB file (a planted stamp): refused from its size, not read.
    const huge = join(dir, "huge");
    using file = await Deno.open(huge, { write: true, create: true });
    await file.truncate(3 * 1024 ** 3);
    assert.equal(await readSmallFile(huge, MAX_STAMP_SIZE), null);
    assert.equal(await readSmallFile(join(dir, "missing"), 100), null);
    assert.equal(await readSmallFile(dir, 100), null, "a directory");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
