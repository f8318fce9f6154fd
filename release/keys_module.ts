/**
 * Renders `loader/_gen/keys.ts`, the minisign public keys the loader trusts for
 * signed release manifests (written by `deno task release keygen`).
 *
 * @module
 */

/**
 * The text of `loader/_gen/keys.ts` (unformatted; `deno fmt` it).
 *
 * @param keys Base64 minisign public keys.
 * @returns TypeScript source.
 */
export function renderKeysModule(keys: string[]): string {
  return `// Minisign public keys trusted for signed release manifests, besides any
// given by option or KREPIS_TRUSTED_KEY. Written by \`deno task release keygen\`,
// whose secret half is the KREPIS_SIGNING_KEY secret of the release workflow.

/** Base64 minisign public keys of the project. */
export const PROJECT_KEYS: readonly string[] = ${JSON.stringify(keys)};
`;
}
