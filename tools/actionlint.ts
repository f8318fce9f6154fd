/**
 * Where actionlint is: on PATH, or where `go install` put it.
 *
 * @module
 */

/** The actionlint release `deno task setup` installs. */
export const ACTIONLINT_VERSION = "v1.7.12";

/**
 * The actionlint executable, or null when it is not installed.
 *
 * @returns A command or path.
 */
export async function actionlintPath(): Promise<string | null> {
  const candidates = ["actionlint"];
  try {
    const gopath = await new Deno.Command("go", {
      args: ["env", "GOPATH"],
      stdout: "piped",
      stderr: "null",
    }).output();
    if (gopath.success) {
      candidates.push(`${new TextDecoder().decode(gopath.stdout).trim()}/bin/actionlint`);
    }
  } catch {
    // no Go
  }
  for (const candidate of candidates) {
    try {
      const out = await new Deno.Command(candidate, {
        args: ["-version"],
        stdout: "null",
        stderr: "null",
      }).output();
      if (out.success) return candidate;
    } catch {
      // not there
    }
  }
  return null;
}
