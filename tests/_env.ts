/**
 * Test helper: runs `body` with an environment variable set (or unset),
 * then restores it.
 *
 * @module
 */

/** Runs `body` with `name` set to `value` (or unset), then restores it. */
export async function withEnv<T>(
  name: string,
  value: string | undefined,
  body: () => Promise<T>,
): Promise<T> {
  const saved = Deno.env.get(name);
  if (value === undefined) Deno.env.delete(name);
  else Deno.env.set(name, value);
  try {
    return await body();
  } finally {
    if (saved === undefined) Deno.env.delete(name);
    else Deno.env.set(name, saved);
  }
}
