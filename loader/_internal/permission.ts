/** Deno's own permission refusals, turned into {@linkcode PermissionError}. */

import { PermissionError } from "../errors.ts";
import { summaryOf } from "./summary.ts";

/**
 * The {@linkcode PermissionError} for Deno's own refusal (`Deno.errors.NotCapable`),
 * naming the flag Deno's message names; other errors are returned as they are.
 *
 * @param error What an operation threw.
 * @param action What was being done, e.g. `"download the kernel"`.
 * @returns A PermissionError, or `error` itself.
 */
export function permissionError(error: unknown, action: string): unknown {
  if (!(error instanceof Deno.errors.NotCapable)) return error;
  const flag = error.message.match(/--allow-[a-z]+/)?.[0] ?? "the --allow-… flag it names";
  return new PermissionError(`Cannot ${action}: ${summaryOf(error)}`, flag, {
    cause: error,
  });
}

/**
 * Checks that Deno grants `name` access to `path` before the kernel touches
 * it: the kernel's own file access is outside Deno's permission checks, so
 * the loader asks on its behalf (prompting, as Deno would, when it may).
 *
 * @param name `"read"` or `"write"`.
 * @param path The absolute path the kernel will use.
 * @param action What is being done, e.g. `"read /tmp/x"`.
 * @throws {PermissionError} When the permission is not granted.
 */
export function requirePermission(name: "read" | "write", path: string, action: string): void {
  let state = Deno.permissions.querySync({ name, path }).state;
  if (state === "prompt") state = Deno.permissions.requestSync({ name, path }).state;
  if (state !== "granted") {
    throw new PermissionError(
      `Cannot ${action}: Deno does not grant ${name} access to ${path}`,
      `--allow-${name}=${path}`,
    );
  }
}

/**
 * Checks that Deno grants net access to `host` (`"ip:port"`) before the
 * kernel opens a socket for it, prompting as Deno would when it may.
 *
 * @param host The address the kernel will listen on or connect to.
 * @param action What is being done, e.g. `"listen on 127.0.0.1:0"`.
 * @returns False when Deno cannot read `host` as an address (the caller
 *   refuses it); true when access is granted.
 * @throws {PermissionError} When the permission is not granted.
 */
export function requireNet(host: string, action: string): boolean {
  let state: Deno.PermissionState;
  try {
    state = Deno.permissions.querySync({ name: "net", host }).state;
    if (state === "prompt") state = Deno.permissions.requestSync({ name: "net", host }).state;
  } catch {
    return false;
  }
  if (state !== "granted") {
    throw new PermissionError(
      `Cannot ${action}: Deno does not grant net access to ${host}`,
      `--allow-net=${host}`,
    );
  }
  return true;
}
