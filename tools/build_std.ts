/**
 * The Rust std source for `-Zbuild-std` (the code lives in
 * `lib/build_std.ts`, so that `matrix/build.ts` can use it too).
 * `deno run --allow-all tools/build_std.ts` prepares it and prints where.
 *
 * @module
 */

export * from "../lib/build_std.ts";
import { ensureBuildStdToolchain } from "../lib/build_std.ts";

if (import.meta.main) {
  try {
    const t = await ensureBuildStdToolchain();
    console.log(JSON.stringify(t, null, 2));
  } catch (error) {
    console.error((error as Error).message);
    Deno.exit(1);
  }
}
