/**
 * `krepis info`: what this machine would load, what is cached, and whether
 * the cached kernel loads.
 *
 * @module
 */

import { install, VERSION } from "../install.ts";
import { load } from "../load.ts";
import { cacheRoot } from "../cache_dir.ts";
import { currentPlatform, resolveTarget } from "../platform.ts";
import { LOADER_ABI } from "../abi.ts";
import { cachedLibraries, walkCache } from "../_install/cache_layout.ts";
import type { Outcome } from "../types.ts";
import type { Context } from "./context.ts";
import { EXIT_CODES } from "./exit_codes.ts";
import { summaryOf } from "../_internal/summary.ts";

/** Runs `krepis info`. */
export async function run({ options, json, out }: Context): Promise<Outcome> {
  const platform = currentPlatform();
  let target: string | null = null;
  let targetError: string | null = null;
  try {
    target = resolveTarget(platform).triple;
  } catch (error) {
    targetError = summaryOf(error);
  }
  const root = options.cacheDir ?? cacheRoot();
  // Read-only: the walk makes nothing, and the kernel is opened only when it is cached.
  const cached = cachedLibraries(await walkCache(root));
  let kernel: Record<string, unknown> | null = null;
  if (target && !cached.some((c) => c.version === VERSION && c.target === target)) {
    kernel = { error: `${VERSION} for ${target} is not in the cache (run \`krepis init\`)` };
  } else if (target) {
    try {
      const installed = await install({ ...options, offline: true });
      using loaded = await load({ ...options, offline: true, path: installed.path });
      kernel = {
        path: installed.path,
        sha256: installed.sha256,
        trust: installed.trust,
        abi: loaded.abi,
        capabilities: loaded.buildInfo().capabilities,
      };
    } catch (error) {
      kernel = { error: summaryOf(error) };
    }
  }
  const report = {
    version: VERSION,
    platform,
    target,
    targetError,
    cacheRoot: root,
    cached,
    loaderAbi: LOADER_ABI,
    kernel,
  };
  if (json) return { code: EXIT_CODES.ok, report };
  const abi = kernel && "abi" in kernel ? kernel.abi as typeof LOADER_ABI : null;
  out(
    [
      `krepis ${VERSION}`,
      `platform     ${platform.os}/${platform.arch}${platform.libc ? ` (${platform.libc})` : ""}`,
      `target       ${target ?? targetError}`,
      `cache root   ${root}`,
      `cached       ${
        cached.length ? cached.map((c) => `${c.version}/${c.target}`).join(", ") : "(nothing)"
      }`,
      `loader ABI   ${LOADER_ABI.major}.${LOADER_ABI.minor} (${
        LOADER_ABI.fingerprint.slice(0, 16)
      }…)`,
      `kernel       ${
        abi
          ? `ABI ${abi.major}.${abi.minor} verified (${(kernel!.path as string)})`
          : `not available: ${(kernel?.error as string | undefined) ?? "no target"}`
      }`,
      ...(abi ? [`capabilities ${(kernel!.capabilities as string[]).join(", ")}`] : []),
    ].join("\n") + "\n",
  );
  return { code: EXIT_CODES.ok, report };
}
