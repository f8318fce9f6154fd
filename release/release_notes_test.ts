import assert from "node:assert/strict";
import { renderNotes } from "./release_notes.ts";

Deno.test("renderNotes() groups by conventional-commit type and keeps other subjects whole", () => {
  const notes = renderNotes("1.2.0", [
    "release: v1.1.0",
    "feat(loader): resume downloads",
    "fix: close the lock file",
    "feat!: drop the old ABI",
    "loader: a subject with an area prefix",
    "Merge branch 'x'",
  ]);
  assert.equal(
    notes,
    `## v1.2.0

### Breaking changes

- drop the old ABI

### Features

- **loader:** resume downloads

### Fixes

- close the lock file

### Other changes

- loader: a subject with an area prefix
- Merge branch 'x'
`,
  );
  assert.equal(renderNotes("1.0.1", ["release: v1.0.0"]), "## v1.0.1\n\nNo changes.\n");
});
