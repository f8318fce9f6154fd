// Minisign public keys trusted for signed release manifests, besides any
// given by option or KREPIS_TRUSTED_KEY. Written by `deno task release keygen`,
// whose secret half is the KREPIS_SIGNING_KEY secret of the release workflow.

/** Base64 minisign public keys of the project. */
export const PROJECT_KEYS: readonly string[] = [];
