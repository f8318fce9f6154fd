/**
 * Server engine benchmark, against a real peer in the same run: requests
 * per second and p99 latency measured by `wrk` on loopback directly to an
 * upstream, through the kernel's engine, and through nginx configured as a
 * reverse proxy to the same upstream; then the memory each proxy holds per
 * idle kept-alive client connection.
 *
 * The upstream is a `Deno.serve` in its own process; the engine runs in
 * another, loaded through the loader like a user's program; nginx (Debian's
 * `nginx-light` or `nginx`) runs with a configuration written here. Each
 * side is measured `KREPIS_BENCH_ROUNDS` times (default 3), in turn, and
 * the medians are compared. A missing `wrk` or `nginx` skips its part with
 * a one-line reason.
 *
 * Usage: deno run -A bench/server.ts <kernel library>
 *
 * @module
 */

import { join } from "node:path";
import { load } from "../loader/mod.ts";
import { outputOrNull } from "../lib/process.ts";
import { reportUncaught } from "../lib/task.ts";

// Run by `deno task bench`: a failure is written as every task writes one.
reportUncaught("deno task bench");

const library = Deno.args[0];
if (!library) {
  throw new Error("Cannot run the server benchmark: no library given\nHint: run `deno task bench`");
}
const rounds = Number(Deno.env.get("KREPIS_BENCH_ROUNDS") ?? "3");
const seconds = Number(Deno.env.get("KREPIS_BENCH_SECONDS") ?? "5");
const connections = 32;
/** Idle connections opened to measure the memory each holds. */
const IDLE = 1000;

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Whether `command` can be started at all (`wrk -v` exits 1: started is enough). */
async function runs(command: string, args: string[]): Promise<boolean> {
  const command_ = new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  });
  return (await outputOrNull(command_)) !== null;
}

/** A loopback port that was free a moment ago. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
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

/** Waits until something accepts connections on `port` (at most 5 s). */
async function accepting(port: number): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error(`Cannot run the server benchmark: nothing listens on port ${port} after 5 s`);
}

/** nginx as a reverse proxy to `upstream`, in a folder of its own. */
async function nginx(
  upstream: number,
): Promise<{ port: number; child: Deno.ChildProcess; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "krepis-bench-nginx-" });
  const port = freePort();
  const config = `
worker_processes auto;
daemon off;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")} warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${join(dir, "body")};
  proxy_temp_path ${join(dir, "proxy")};
  fastcgi_temp_path ${join(dir, "fastcgi")};
  uwsgi_temp_path ${join(dir, "uwsgi")};
  scgi_temp_path ${join(dir, "scgi")};
  upstream backend {
    server 127.0.0.1:${upstream};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    keepalive_requests 1000000;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
  await Deno.writeTextFile(join(dir, "nginx.conf"), config);
  const child = new Deno.Command("nginx", {
    args: ["-p", dir, "-e", join(dir, "error.log"), "-c", join(dir, "nginx.conf")],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  await accepting(port);
  return { port, child, dir };
}

interface Measure {
  rps: number;
  /** 99th percentile latency, in milliseconds. */
  p99: number;
}

/** Requests per second and p99 latency (ms) that wrk measured on `port`. */
async function wrk(port: number): Promise<Measure> {
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
  if (/Non-2xx or 3xx responses|Socket errors/.test(text)) {
    throw new Error(`Cannot trust wrk: errors\n${text}`);
  }
  const rps = Number(text.match(/Requests\/sec:\s+([\d.]+)/)?.[1]);
  const [, value, unit] = text.match(/\s99%\s+([\d.]+)(us|ms|s)/) ?? [];
  const p99 = Number(value) * (unit === "us" ? 0.001 : unit === "s" ? 1000 : 1);
  if (!(rps > 0) || Number.isNaN(p99)) throw new Error(`Cannot read wrk's report:\n${text}`);
  return { rps, p99 };
}

/** Resident memory, in bytes, of `pid` and its children (Linux: from /proc). */
async function rss(pid: number): Promise<number> {
  const pids = [pid];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
      // The parent pid is the second field after the ")" that ends the name.
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (parent === pid) pids.push(Number(entry.name));
    } catch {
      // Ended meanwhile.
    }
  }
  let total = 0;
  for (const each of pids) {
    const status = await Deno.readTextFile(`/proc/${each}/status`).catch(() => "");
    total += Number(status.match(/^VmRSS:\s+(\d+) kB$/m)?.[1] ?? 0) * 1024;
  }
  return total;
}

/**
 * The memory a proxy holds per idle client connection: its RSS before and
 * after IDLE kept-alive connections, each after one request.
 */
async function memoryPerConnection(port: number, pid: number): Promise<number> {
  const before = await rss(pid);
  const open: Deno.Conn[] = [];
  const request = new TextEncoder().encode(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  const buffer = new Uint8Array(4096);
  try {
    for (let i = 0; i < IDLE; i++) {
      const connection = await Deno.connect({ hostname: "127.0.0.1", port });
      open.push(connection);
      await connection.write(request);
      // The whole answer is small: one read holds it.
      await connection.read(buffer);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    return (await rss(pid) - before) / IDLE;
  } finally {
    for (const connection of open) connection.close();
  }
}

function row(name: string, m: Measure, direct?: Measure): string {
  const ratio = direct
    ? `  ${name}/direct ${(m.rps / direct.rps).toFixed(2)}x req/s, ${
      (m.p99 / direct.p99).toFixed(2)
    }x p99`
    : "";
  return `  ${name.padEnd(7)}${m.rps.toFixed(0).padStart(8)} req/s  p99 ${
    m.p99.toFixed(3).padStart(7)
  } ms${ratio}`;
}

console.log("\nserver engine vs nginx (wrk on loopback)");
if (!(await runs("wrk", ["-v"]))) {
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
const hasNginx = await runs("nginx", ["-v"]);

const upstream = await serve(`
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("hello from the upstream\\n"));
  console.log(server.addr.port);
`);
const engine = await serve(`
  import { load } from ${JSON.stringify(new URL("../loader/mod.ts", import.meta.url).href)};
  const kernel = await load({ path: ${JSON.stringify(library)} });
  const server = kernel.server.start({ upstreams: ["127.0.0.1:${upstream.port}"] });
  console.log(server.address.port);
  // The engine's threads do not keep Deno's event loop alive: a timer does.
  setInterval(() => {}, 60_000);
`);
const proxy = hasNginx ? await nginx(upstream.port) : null;
try {
  const sides: [string, number][] = [["direct", upstream.port], ["engine", engine.port]];
  if (proxy) sides.push(["nginx", proxy.port]);
  const samples = new Map<string, Measure[]>(sides.map(([name]) => [name, []]));
  for (const [, port] of sides) await wrk(port); // warm-up
  for (let round = 0; round < rounds; round++) {
    for (const [name, port] of sides) samples.get(name)!.push(await wrk(port));
  }
  const result = new Map(
    [...samples].map((
      [name, list],
    ) => [name, { rps: median(list.map((m) => m.rps)), p99: median(list.map((m) => m.p99)) }]),
  );
  const direct = result.get("direct")!;
  console.log(`  wrk -t1 -c${connections} -d${seconds}s, medians of ${rounds}`);
  console.log(row("direct", direct));
  console.log(row("engine", result.get("engine")!, direct));
  if (proxy) {
    const theirs = result.get("nginx")!;
    console.log(row("nginx", theirs, direct));
    const ours = result.get("engine")!;
    console.log(
      `  engine/nginx ${(ours.rps / theirs.rps).toFixed(2)}x req/s, ${
        (ours.p99 / theirs.p99).toFixed(2)
      }x p99`,
    );
  } else {
    console.log(
      "  nginx: skipped: nginx is not installed (Debian/Ubuntu: apt-get install nginx-light)",
    );
  }
  if (Deno.build.os !== "linux") {
    console.log("  memory per idle connection: skipped: read from /proc, which only Linux has");
  } else {
    const ours = await memoryPerConnection(engine.port, engine.child.pid);
    const theirs = proxy ? await memoryPerConnection(proxy.port, proxy.child.pid) : null;
    console.log(
      `  memory per idle connection (${IDLE} kept alive, RSS): engine ${
        (ours / 1024).toFixed(1)
      } KiB${theirs === null ? "" : `, nginx ${(theirs / 1024).toFixed(1)} KiB`}`,
    );
  }
} finally {
  for (const side of [proxy, engine, upstream]) {
    if (!side) continue;
    try {
      side.child.kill();
    } catch {
      // Already ended (its error was printed on stderr).
    }
    await side.child.status;
  }
  // The folder this run made for nginx (its configuration, log and pid).
  if (proxy) await Deno.remove(proxy.dir, { recursive: true });
}
