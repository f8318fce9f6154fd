/**
 * Test helper: loopback ports.
 *
 * @module
 */

/** A loopback port that was free a moment ago (bound, then released). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}
