/**
 * `deno task smoke <artifact>`: the step every matrix cell runs on its own OS
 * and CPU. Loads the artifact through the loader (`KREPIS_KERNEL_PATH`, so
 * the ABI check runs), checks its version and ABI against the repository,
 * calls every export once, and exits non-zero on any mismatch.
 *
 * @module
 */

import { load, LOADER_ABI, VERSION } from "../loader/mod.ts";
import { SYMBOLS } from "../loader/_ffi.ts";

/** One line of the smoke report. */
export interface SmokeCheck {
  name: string;
  ok: boolean;
  detail: string;
}

/**
 * Runs the smoke test on a library.
 *
 * @param path The library.
 * @returns One check per export and per contract; all `ok` on success.
 */
export async function smoke(path: string): Promise<SmokeCheck[]> {
  const checks: SmokeCheck[] = [];
  const check = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });
  Deno.env.set("KREPIS_KERNEL_PATH", path);
  let kernel;
  try {
    kernel = await load();
  } catch (error) {
    check("load() with the ABI check", false, (error as Error).message.split("\n")[0]);
    return checks;
  }
  using k = kernel;
  check("load() with the ABI check", true, `ABI ${k.abi.major}.${k.abi.minor}`);
  check("krepis_version", k.version === VERSION, `${k.version} (repository ${VERSION})`);
  check(
    "krepis_abi_version + krepis_abi_fingerprint",
    k.abi.major === LOADER_ABI.major && k.abi.minor === LOADER_ABI.minor &&
      k.abi.fingerprint === LOADER_ABI.fingerprint,
    `${k.abi.major}.${k.abi.minor} ${
      k.abi.fingerprint.slice(0, 16)
    }… (repository ${LOADER_ABI.major}.${LOADER_ABI.minor} ${
      LOADER_ABI.fingerprint.slice(0, 16)
    }…)`,
  );
  const info = k.buildInfo();
  check(
    "krepis_call + krepis_buffer_take (BuildInfo)",
    info.version === VERSION,
    `${info.target} ${info.profile}`,
  );
  const payload = new TextEncoder().encode("smoke");
  const echoed = k.echo(payload);
  check(
    "krepis_call (Echo)",
    new TextDecoder().decode(echoed) === "smoke",
    `${echoed.length} bytes back`,
  );
  try {
    k.callRaw(new Uint8Array([0xff, 0xff]));
    check("krepis_last_error (malformed request)", false, "a malformed request was accepted");
  } catch (error) {
    check(
      "krepis_last_error (malformed request)",
      /MALFORMED_REQUEST/.test((error as Error).message),
      (error as Error).message.split("\n")[0],
    );
  }
  // krepis_buffer_free is not on the loader's hot path: call it directly.
  const lib = Deno.dlopen(path, { krepis_buffer_free: SYMBOLS.krepis_buffer_free });
  try {
    lib.symbols.krepis_buffer_free(new Uint8Array(16));
    lib.symbols.krepis_buffer_free(null);
    check("krepis_buffer_free (empty and NULL)", true, "no crash");
  } finally {
    lib.close();
  }
  const covered = new Set(checks.flatMap((c) => c.name.match(/krepis_\w+/g) ?? []));
  const uncovered = Object.keys(SYMBOLS).filter((name) => !covered.has(name));
  check(
    "every export called",
    uncovered.length === 0,
    uncovered.length ? `not called: ${uncovered.join(", ")}` : `${covered.size} exports`,
  );
  return checks;
}

if (import.meta.main) {
  const [path] = Deno.args;
  if (!path) {
    console.error("Cannot run the smoke test: usage is `deno task smoke <artifact>`");
    Deno.exit(2);
  }
  const checks = await smoke(path);
  for (const c of checks) console.log(`${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.detail}`);
  const failed = checks.filter((c) => !c.ok);
  if (failed.length) {
    console.error(`Cannot accept ${path}: ${failed.map((c) => c.name).join(", ")} failed`);
    Deno.exit(1);
  }
  console.log(`smoke: ${checks.length} passed, 0 failed`);
}
