/**
 * Test helper: a small private tmpfs, to fill a disk for real without
 * touching the machine's (Linux only).
 *
 * @module
 */

import { has } from "./_tools.ts";
import { outputOrNull } from "../lib/process.ts";

/**
 * The `unshare` options that give a child a private mount namespace in
 * which it may mount a tmpfs (`--mount` as root, `--mount --map-root-user`
 * without root), probed by mounting one; null where neither works (not
 * Linux, or unprivileged user namespaces are forbidden, as Ubuntu 24.04's
 * AppArmor may do).
 */
export async function privateMountOptions(): Promise<string[] | null> {
  if (Deno.build.os !== "linux" || !has("unshare")) return null;
  const dir = await Deno.makeTempDir({ prefix: "krepis-tmpfs-probe-" });
  try {
    for (const options of [["--mount"], ["--mount", "--map-root-user"]]) {
      const probe = await outputOrNull(
        new Deno.Command("unshare", {
          args: [
            ...options,
            "--propagation",
            "private",
            "sh",
            "-c",
            'mount -t tmpfs -o size=64k tmpfs "$1"',
            "sh",
            dir,
          ],
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }),
      );
      if (probe?.success) return options;
    }
    return null;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The `unshare` options that work here, or null. */
export const unshare: string[] | null = await privateMountOptions();
/** Why a full-disk test cannot run here, or null. */
export const NO_TMPFS: string | null = Deno.build.os !== "linux"
  ? "filling a small disk needs a Linux tmpfs in a private mount namespace (unshare)"
  : unshare === null
  ? "cannot mount a private tmpfs here: needs root, or user namespaces for unshare --map-root-user"
  : null;
