/**
 * `deno task smoke <artifact>`: the step every matrix cell runs on its own OS
 * and CPU. Loads the artifact through the loader (`KREPIS_KERNEL_PATH`, so
 * the ABI check runs) and uses the typed API, then opens it with the loader's
 * symbol table and calls every export directly, recording each call. Exits
 * non-zero on any mismatch or any export left uncalled.
 *
 * @module
 */

import { commandLine, exitUsage, invocationPath, printError } from "../lib/task.ts";
import { load, LOADER_ABI, VERSION } from "../loader/mod.ts";
import { SYMBOLS } from "../loader/_gen/ffi.ts";
import { decodeResponse, encodeRequest } from "../loader/_gen/messages.ts";
import { loadTargetTable } from "./targets.ts";
import { rowOrTwin } from "./windows.ts";

/** One line of the smoke report. */
export interface SmokeCheck {
  name: string;
  ok: boolean;
  detail: string;
}

type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** Wraps every symbol so the calls actually made are recorded. */
function recording(symbols: Symbols, called: Set<string>): Symbols {
  return new Proxy(symbols, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (typeof name !== "string" || typeof value !== "function") return value;
      return (...args: unknown[]) => {
        called.add(name);
        return (value as (...a: unknown[]) => unknown)(...args);
      };
    },
  });
}

const cstring = (pointer: Deno.PointerValue) =>
  pointer === null ? "(NULL)" : Deno.UnsafePointerView.getCString(pointer);

/**
 * Runs the smoke test on a library.
 *
 * @param path The library.
 * @returns The checks; all `ok` on success.
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
  {
    using k = kernel;
    check("load() with the ABI check", true, `ABI ${k.abi.major}.${k.abi.minor}`);
    const info = k.buildInfo();
    check(
      "buildInfo() through the loader",
      info.version === VERSION,
      `${info.target} ${info.profile}`,
    );
    check(
      "echo() through the loader",
      new TextDecoder().decode(k.echo(new TextEncoder().encode("smoke"))) === "smoke",
      "",
    );
    // Exactly what the table's row for this target says its kernel has (a
    // Windows test twin: its MSVC row's features and the server engine).
    const row = rowOrTwin(await loadTargetTable(), info.target);
    const expected = ["view", ...(row?.features ?? [])];
    check(
      "capabilities",
      row !== undefined && info.capabilities.join(",") === expected.join(","),
      `${info.capabilities.join(", ")} (the table: ${expected.join(", ")})`,
    );
    if (info.capabilities.includes("server")) {
      // The server engine on this OS and CPU: one request through it.
      await using upstream = Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen() {} },
        () => new Response("smoke"),
      );
      const proxy = k.server.start({ upstreams: [`127.0.0.1:${upstream.addr.port}`] });
      const response = await fetch(`http://127.0.0.1:${proxy.address.port}/`);
      const body = await response.text();
      const stats = await proxy.stop();
      check(
        "server.start() proxies a request to Deno.serve, stop() ends it",
        response.status === 200 && body === "smoke" && stats.requests === 1 && proxy.closed,
        `${response.status} ${JSON.stringify(body)}, ${stats.requests} request counted`,
      );
    }
  }

  const called = new Set<string>();
  const library = Deno.dlopen(path, SYMBOLS);
  try {
    const s = recording(library.symbols, called);
    const packed = s.krepis_abi_version();
    check(
      "krepis_abi_version",
      packed >>> 16 === LOADER_ABI.major && (packed & 0xffff) === LOADER_ABI.minor,
      `${packed >>> 16}.${packed & 0xffff} (repository ${LOADER_ABI.major}.${LOADER_ABI.minor})`,
    );
    const fingerprint = cstring(s.krepis_abi_fingerprint());
    check(
      "krepis_abi_fingerprint",
      fingerprint === LOADER_ABI.fingerprint,
      `${fingerprint.slice(0, 16)}…`,
    );
    const version = cstring(s.krepis_version());
    check("krepis_version", version === VERSION, `${version} (repository ${VERSION})`);
    // krepis.v1.Request { echo: { payload: "hi" } }; its Response encodes alike.
    const request = new Uint8Array([0x12, 0x04, 0x0a, 0x02, 0x68, 0x69]);
    const out = new BigUint64Array(2);
    const outBytes = new Uint8Array(out.buffer);
    const code = s.krepis_call(request, BigInt(request.length), outBytes);
    check(
      "krepis_call (Echo)",
      code === 0 && Number(out[1]) === request.length,
      `result ${code}, ${out[1]} bytes`,
    );
    const copy = new Uint8Array(request.length);
    const taken = s.krepis_buffer_take(outBytes, copy, BigInt(copy.length));
    check(
      "krepis_buffer_take",
      taken === 0 && copy.every((b, i) => b === request[i]) && out[0] === 0n,
      `result ${taken}`,
    );
    s.krepis_call(request, BigInt(request.length), outBytes);
    s.krepis_buffer_free(outBytes);
    s.krepis_buffer_free(null);
    check("krepis_buffer_free (filled and NULL)", out[0] === 0n && out[1] === 0n, "buffer reset");
    const malformed = new Uint8Array([0xff, 0xff]);
    const refused = s.krepis_call(malformed, BigInt(malformed.length), outBytes);
    const message = cstring(s.krepis_last_error());
    check(
      "krepis_last_error (malformed request)",
      refused === 3 && message.startsWith("Cannot decode"),
      message,
    );
    // The data plane: the kernel reads this very library into a view.
    const readFile = encodeRequest({ readFile: { path } });
    s.krepis_call(readFile, BigInt(readFile.length), outBytes);
    const answer = new Uint8Array(Number(out[1]));
    s.krepis_buffer_take(outBytes, answer, BigInt(answer.length));
    const view = decodeResponse(answer).view;
    const lent = new BigUint64Array(2);
    const got = view ? s.krepis_view_get(view.id, new Uint8Array(lent.buffer)) : -1;
    const onDisk = await Deno.readFile(path);
    const pointer = Deno.UnsafePointer.create(lent[0]);
    const same = got === 0 && pointer !== null && Number(lent[1]) === onDisk.length &&
      new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(pointer, onDisk.length))
        .every((byte, i) => byte === onDisk[i]);
    check(
      "krepis_view_get (ReadFile of this library)",
      same,
      `${lent[1]} bytes, as on disk`,
    );
    const released = view ? s.krepis_view_release(view.id) : -1;
    const again = view ? s.krepis_view_release(view.id) : -1;
    check(
      "krepis_view_release (then again)",
      released === 0 && again === 7,
      `result ${released}, then ${again} (UNKNOWN_HANDLE)`,
    );
  } finally {
    library.close();
  }
  const uncalled = Object.keys(SYMBOLS).filter((name) => !called.has(name));
  check(
    "every export called",
    uncalled.length === 0,
    uncalled.length ? `not called: ${uncalled.join(", ")}` : `${called.size} exports`,
  );
  return checks;
}

if (import.meta.main) {
  const { positionals: [path] } = commandLine({
    name: "deno task smoke",
    summary: "load an artifact through the loader and call every export",
    usage: ["<artifact>"],
    maxPositionals: 1,
    options: {},
    exitCodes: {
      0: "every check passed",
      1: "a check failed (each FAIL line says which)",
      2: "usage error",
    },
    more: `Loads <artifact> with load() (it sets KREPIS_KERNEL_PATH to it, so the ABI check
runs), uses the typed API, then calls every export through the loader's symbol table.`,
  });
  if (!path) {
    exitUsage(
      "Cannot run the smoke test: usage is `deno task smoke <artifact>`\nHint: name the library, e.g. a file in dist/<triple>/",
    );
  }
  const checks = await smoke(invocationPath(path));
  for (const c of checks) console.log(`${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.detail}`);
  const failed = checks.filter((c) => !c.ok);
  if (failed.length) {
    printError(`Cannot accept ${path}: ${failed.map((c) => c.name).join(", ")} failed`);
    Deno.exit(1);
  }
  console.log(`smoke: ${checks.length} passed, 0 failed`);
}
