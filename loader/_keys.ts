// Minisign public keys trusted for signed release manifests, besides any
// given by option or KREPIS_TRUSTED_KEY. The project's release key is added
// here (its secret half is KREPIS_SIGNING_KEY in the release workflow).

/** Base64 minisign public keys of the project. */
export const PROJECT_KEYS: readonly string[] = [];
