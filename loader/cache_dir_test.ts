import assert from "node:assert/strict";
import path from "node:path";
import { cacheRoot } from "./cache_dir.ts";
import { withEnv } from "../tests/_env.ts";
import { skipIf, when } from "../tests/_tools.ts";

async function withVars<T>(vars: Record<string, string | undefined>, body: () => Promise<T>) {
  let run = body;
  for (const [name, value] of Object.entries(vars)) {
    const inner = run;
    run = () => withEnv(name, value, inner);
  }
  return await run();
}

Deno.test("cacheRoot(): KREPIS_CACHE_DIR wins, made absolute and spelled once", async () => {
  const cwd = Deno.cwd();
  const sep = path.sep;
  for (
    const [given, expected] of [
      ["rel/cache", path.join(cwd, "rel", "cache")],
      [`${cwd}${sep}${sep}a${sep}.${sep}b${sep}..${sep}c${sep}`, path.join(cwd, "a", "c")],
    ]
  ) {
    await withVars({ KREPIS_CACHE_DIR: given }, () => {
      assert.equal(cacheRoot(), expected, given);
      return Promise.resolve();
    });
  }
});

Deno.test(
  skipIf(
    "cacheRoot(): a relative XDG_CACHE_HOME is ignored, as the XDG specification says",
    when(Deno.build.os !== "linux", "XDG_CACHE_HOME is read on Linux only"),
  ),
  async () => {
    await withVars({ KREPIS_CACHE_DIR: undefined, HOME: "/home/u" }, async () => {
      for (
        const [xdg, expected] of [
          ["relative/cache", "/home/u/.cache/krepis"],
          [".", "/home/u/.cache/krepis"],
          ["/var/cache/u", "/var/cache/u/krepis"],
          [undefined, "/home/u/.cache/krepis"],
        ] as const
      ) {
        await withEnv("XDG_CACHE_HOME", xdg, () => {
          assert.equal(cacheRoot(), expected, String(xdg));
          return Promise.resolve();
        });
      }
    });
  },
);
