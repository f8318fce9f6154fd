/**
 * Test helper: file-system steps the tests used to shell out for (`cp -R`),
 * in Deno so they behave the same on Linux, macOS and Windows.
 *
 * @module
 */

import { join } from "node:path";

/**
 * Copies the directory `from` to `to` recursively (files, subdirectories
 * and symlinks as symlinks). `to` is created if missing; files already in it
 * are overwritten.
 */
export async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isSymlink) {
      const info = await Deno.stat(source).catch(() => null);
      await Deno.symlink(await Deno.readLink(source), target, {
        type: info?.isDirectory ? "dir" : "file",
      });
    } else if (entry.isDirectory) {
      await copyDir(source, target);
    } else {
      await Deno.copyFile(source, target);
    }
  }
}

/** Whether anything (a file, directory or symlink) is at `path`. */
export async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

/**
 * Every file and directory below `dir`, relative with `/`, mapped to the
 * file's text (`""` for a directory, `"(link)"` for anything else): what a
 * test compares before and after to prove nothing changed.
 */
export async function snapshotTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string, rel: string) => {
    for await (const e of Deno.readDir(d)) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) {
        out[`${r}/`] = "";
        await walk(join(d, e.name), r);
      } else out[r] = e.isFile ? await Deno.readTextFile(join(d, e.name)) : "(link)";
    }
  };
  await walk(dir, "");
  return out;
}

/** Whether this user may create symlinks (Windows needs Developer Mode or an admin). */
export async function canSymlink(): Promise<boolean> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "target"), "");
    await Deno.symlink(join(dir, "target"), join(dir, "link"), { type: "file" });
    return true;
  } catch {
    return false;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
