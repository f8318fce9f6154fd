/**
 * Server engine benchmark: requests per second through the kernel's
 * reverse proxy vs directly to the same upstream, both measured by `wrk`
 * on loopback in the same run, as a ratio.
 *
 * The upstream is a `Deno.serve` in its own process; the proxy runs in
 * another, loaded through the loader like a user's program. Each side is
 * measured `KREPIS_BENCH_ROUNDS` times (default 3), alternating, and the
 * medians are compared.
 *
 * Usage: deno run -A bench/server.ts <kernel library>
 *
 * @module
 */

import { load } from "../loader/mod.ts";
import { outputOrNull } from "../lib/process.ts";
import { reportUncaught } from "../loader/_command_line.ts";

// Run by `deno task bench`: a failure is written as every task writes one.
reportUncaught("deno task bench");

const library = Deno.args[0];
if (!library) {
  throw new Error("Cannot run the server benchmark: no library given\nHint: run `deno task bench`");
}
const rounds = Number(Deno.env.get("KREPIS_BENCH_ROUNDS") ?? "3");
const seconds = Number(Deno.env.get("KREPIS_BENCH_SECONDS") ?? "5");
const connections = 32;

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** A child `deno run` of `script` that prints one line (a port) when ready. */
async function serve(script: string): Promise<{ port: number; child: Deno.ChildProcess }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(script));
  await writer.close();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  const port = Number(value?.trim());
  if (!Number.isInteger(port)) {
    throw new Error(`Cannot start a benchmark server: it printed ${value}`);
  }
  return { port, child };
}

/** Requests per second and median latency (ms) that wrk measured on `port`. */
async function wrk(port: number): Promise<{ rps: number; p50: number }> {
  const output = await new Deno.Command("wrk", {
    args: [
      "-t1",
      `-c${connections}`,
      `-d${seconds}s`,
      "--latency",
      `http://127.0.0.1:${port}/`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    throw new Error(`Cannot run wrk: ${new TextDecoder().decode(output.stderr)}`);
  }
  if (/Non-2xx or 3xx responses/.test(text)) throw new Error(`Cannot trust wrk: errors\n${text}`);
  const rps = Number(text.match(/Requests\/sec:\s+([\d.]+)/)?.[1]);
  const [, value, unit] = text.match(/\s50%\s+([\d.]+)(us|ms|s)/) ?? [];
  const p50 = Number(value) * (unit === "us" ? 0.001 : unit === "s" ? 1000 : 1);
  if (!(rps > 0) || Number.isNaN(p50)) throw new Error(`Cannot read wrk's report:\n${text}`);
  return { rps, p50 };
}

// `wrk -v` prints its version and exits 1: started at all is enough.
const hasWrk = (await outputOrNull(
  new Deno.Command("wrk", { args: ["-v"], stdin: "null", stdout: "null", stderr: "null" }),
)) !== null;
console.log("\nserver engine (wrk on loopback)");
if (!hasWrk) {
  console.log(
    "  skipped: wrk is not installed (Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk)",
  );
  Deno.exit(0);
}
{
  // A kernel without the engine has nothing to measure here.
  using kernel = await load({ path: library });
  if (!kernel.buildInfo().capabilities.includes("server")) {
    console.log(`  skipped: the ${kernel.buildInfo().target} kernel has no server engine`);
    Deno.exit(0);
  }
}

const upstream = await serve(`
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("hello from the upstream\\n"));
  console.log(server.addr.port);
`);
const proxy = await serve(`
  import { load } from ${JSON.stringify(new URL("../loader/mod.ts", import.meta.url).href)};
  const kernel = await load({ path: ${JSON.stringify(library)} });
  const server = kernel.server.start({ upstreams: ["127.0.0.1:${upstream.port}"] });
  console.log(server.address.port);
  // The engine's threads do not keep Deno's event loop alive: a timer does.
  setInterval(() => {}, 60_000);
`);
try {
  const direct: { rps: number; p50: number }[] = [];
  const proxied: { rps: number; p50: number }[] = [];
  await wrk(upstream.port); // warm-up
  await wrk(proxy.port);
  for (let round = 0; round < rounds; round++) {
    direct.push(await wrk(upstream.port));
    proxied.push(await wrk(proxy.port));
  }
  const rps = [median(direct.map((r) => r.rps)), median(proxied.map((r) => r.rps))];
  const p50 = [median(direct.map((r) => r.p50)), median(proxied.map((r) => r.p50))];
  console.log(
    `  ${rps[1].toFixed(0).padStart(8)} req/s through the proxy vs ${
      rps[0].toFixed(0)
    } req/s direct = ${
      (rps[1] / rps[0]).toFixed(2)
    }x (wrk -t1 -c${connections} -d${seconds}s, medians of ${rounds})`,
  );
  console.log(
    `  ${p50[1].toFixed(3).padStart(8)} ms median latency through the proxy vs ${
      p50[0].toFixed(3)
    } ms direct = ${(p50[1] / p50[0]).toFixed(2)}x`,
  );
} finally {
  for (const { child } of [proxy, upstream]) {
    try {
      child.kill();
    } catch {
      // Already ended (its error was printed on stderr).
    }
    await child.status;
  }
}
