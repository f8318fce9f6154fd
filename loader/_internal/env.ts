/** Reads an environment variable; `undefined` when unset, empty or not permitted. */
export function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) return undefined;
    throw error;
  }
}

/** The spellings of yes and no a boolean variable accepts (any case). */
export const FLAG_SPELLINGS = { yes: ["1", "true", "yes"], no: ["0", "false", "no"] } as const;

/**
 * Reads a boolean environment variable: `1`, `true`, `yes` are true; `0`,
 * `false`, `no` are false (any case); unset or empty is `undefined`.
 *
 * @param name The variable.
 * @returns Its value, or `undefined`.
 * @throws {TypeError} When it holds anything else: a typo never silently
 *   means no (the CLI makes this a usage error, exit 2).
 */
export function readEnvFlag(name: string): boolean | undefined {
  const value = readEnv(name);
  if (value === undefined) return undefined;
  const word = value.trim().toLowerCase();
  if ((FLAG_SPELLINGS.yes as readonly string[]).includes(word)) return true;
  if ((FLAG_SPELLINGS.no as readonly string[]).includes(word)) return false;
  throw new TypeError(
    `Cannot read ${name}: ${
      JSON.stringify(value)
    } is neither yes nor no\nHint: set ${name} to 1, true or yes (or 0, false or no), or unset it`,
  );
}

/**
 * Every environment variable the loader reads (`load()`, `install()`), for
 * a scoped `--allow-env=<these>`: without it, an interactive Deno asks once
 * per read. The CLI reads `NO_COLOR` too.
 */
export const LOADER_ENV = [
  "KREPIS_KERNEL_PATH",
  "KREPIS_CACHE_DIR",
  "KREPIS_OFFLINE",
  "KREPIS_TRUSTED_KEY",
  "KREPIS_MIRROR",
  "HOME",
  "USERPROFILE",
  "XDG_CACHE_HOME",
  "LOCALAPPDATA",
] as const;
