import { createHash, type Hash } from "node:crypto";

/** A streaming SHA-256 (node:crypto: several times WebCrypto's one-shot speed here). */
export function sha256(): Hash {
  return createHash("sha256");
}

/** SHA-256 (hex) of a file, read in 1 MiB chunks. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(1 << 20);
  while (true) {
    const n = await file.read(buffer);
    if (n === null) break;
    hash.update(buffer.subarray(0, n));
  }
  return hash.digest("hex");
}
