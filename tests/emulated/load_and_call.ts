/**
 * Run under emulation by `tests/aarch64_emulated_test.ts`: `load()` from the
 * environment's cache and mirror (`KREPIS_CACHE_DIR`, `KREPIS_MIRROR`,
 * `KREPIS_TRUSTED_KEY`, `KREPIS_OFFLINE`), then calls the kernel's typed
 * API: echo, build info, a zero-copy view of a file, a journal round trip
 * (track, commit, undo) in a temporary project, and one request through
 * the server engine to a `Deno.serve` upstream. Prints one JSON line: what
 * ran and what the kernel answered, or the error's class, code and message.
 * Exits 0 either way; the test decides.
 *
 * @module
 */

import { load } from "../../loader/mod.ts";

try {
  using kernel = await load();
  const payload = new TextEncoder().encode(`hello from ${Deno.build.arch}`);
  const echoed = new TextDecoder().decode(kernel.echo(payload));
  const info = kernel.buildInfo();
  const project = await Deno.makeTempDir({ prefix: "krepis-emulated-" });
  const file = `${project}/notes.txt`;
  await Deno.writeTextFile(file, "before");
  let viewed = "";
  let undone: string[] = [];
  let after = "";
  try {
    {
      using view = kernel.readFile(file);
      viewed = new TextDecoder().decode(view.bytes);
    }
    using journal = kernel.journal.open(project);
    {
      using tx = journal.begin("emulated edit");
      tx.track("notes.txt");
      await Deno.writeTextFile(file, "after");
      tx.commit();
    }
    undone = journal.undo().restored;
    after = await Deno.readTextFile(file);
  } finally {
    await Deno.remove(project, { recursive: true });
  }
  // The server engine, when this kernel has it: one proxied request.
  let server = null;
  if (info.capabilities.includes("server")) {
    await using upstream = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response(`upstream on ${Deno.build.arch}`),
    );
    const proxy = kernel.server.start({
      upstreams: [`127.0.0.1:${upstream.addr.port}`],
      threads: 1,
    });
    const response = await fetch(`http://127.0.0.1:${proxy.address.port}/`);
    const body = await response.text();
    const stats = await proxy.stop();
    server = { status: response.status, body, requests: stats.requests };
  }
  console.log(JSON.stringify({
    ok: true,
    deno: { arch: Deno.build.arch, target: Deno.build.target, version: Deno.version.deno },
    path: kernel.path,
    abi: kernel.abi,
    version: kernel.version,
    buildInfo: { target: info.target, profile: info.profile },
    echoed,
    capabilities: info.capabilities,
    viewed,
    journal: { undone, after },
    server,
  }));
} catch (error) {
  const e = error as Error & { code?: string };
  console.log(JSON.stringify({ ok: false, name: e.name, code: e.code, message: e.message }));
}
