/**
 * Builds the kernel with cargo for this machine and reports where the
 * library and the build script's outputs landed.
 *
 * Used by `deno task gen`, `deno task demo`, the tests and the benchmarks.
 *
 * @module
 */

import { dirname } from "node:path";

/** Where a kernel build put its outputs. */
export interface KernelBuild {
  /** The cdylib (`.so`, `.dylib` or `.dll`). */
  library: string;
  /** The kernel build script's OUT_DIR (holds the rendered `krepis.h`). */
  outDir: string;
}

/** Options for {@linkcode cargoBuild}. */
export interface CargoBuildOptions {
  /** Cargo profile. @default {"dev"} */
  profile?: "dev" | "release";
  /** The workspace to build in. @default {the repository root} */
  cwd?: string;
  /** The cargo package to build. @default {"krepis-kernel"} */
  pkg?: string;
  /** Extra environment for cargo. @default {{}} */
  env?: Record<string, string>;
  /** Pass `--locked` (Cargo.lock must not change). @default {true} */
  locked?: boolean;
  /** Print cargo's progress on stderr. @default {true} */
  verbose?: boolean;
  /**
   * Build with exactly these kernel features (`--no-default-features
   * --features …`), e.g. this machine's row of matrix/targets.json.
   * @default {cargo's default features}
   */
  features?: readonly string[];
}

/**
 * The repository root (the folder above `tools/`), as a native path: a file
 * URL's `pathname` would give `/D:/a/…` on Windows.
 */
export const REPO_ROOT: string = dirname(import.meta.dirname!);

/**
 * Runs `cargo build` for the kernel and returns the paths of what it built.
 *
 * @param options How to build.
 * @returns The library path and the build script's OUT_DIR.
 * @throws {Error} When cargo fails or reports no cdylib.
 */
export async function cargoBuild(options: CargoBuildOptions = {}): Promise<KernelBuild> {
  const {
    profile = "dev",
    cwd = REPO_ROOT,
    pkg = "krepis-kernel",
    env = {},
    locked = true,
    verbose = true,
    features,
  } = options;
  const args = ["build", "-p", pkg, "--message-format=json-render-diagnostics"];
  if (features) args.push("--no-default-features", "--features", features.join(","));
  if (locked) args.push("--locked");
  if (profile === "release") args.push("--release");
  const output = await new Deno.Command("cargo", {
    args,
    cwd,
    env,
    stdout: "piped",
    stderr: verbose ? "inherit" : "piped",
  }).output();
  if (!output.success) {
    const stderr = verbose ? "" : `\n${new TextDecoder().decode(output.stderr)}`;
    throw new Error(`Cannot build ${pkg}: cargo exited with ${output.code}${stderr}`);
  }
  let library: string | undefined;
  let outDir: string | undefined;
  const crate = pkg.replaceAll("-", "_");
  for (const line of new TextDecoder().decode(output.stdout).split("\n")) {
    if (!line.startsWith("{")) continue;
    const message = JSON.parse(line);
    if (message.reason === "compiler-artifact" && message.target?.name === crate) {
      library = (message.filenames as string[]).find((f) => /\.(so|dylib|dll)$/.test(f)) ??
        library;
    } else if (
      message.reason === "build-script-executed" && typeof message.out_dir === "string" &&
      new RegExp(`[/\\\\]build[/\\\\]${pkg}-[0-9a-f]+[/\\\\]out$`).test(message.out_dir)
    ) {
      outDir = message.out_dir;
    }
  }
  if (!library || !outDir) {
    throw new Error(`Cannot find the build of ${pkg}: cargo reported no cdylib or OUT_DIR`);
  }
  return { library, outDir };
}
