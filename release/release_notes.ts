/**
 * Release notes from the commits since the previous tag, grouped by
 * conventional-commit type (`feat: …`, `fix(loader): …`, `feat!: …`).
 *
 * @module
 */

const GROUPS: [string, string][] = [
  ["breaking", "Breaking changes"],
  ["feat", "Features"],
  ["fix", "Fixes"],
  ["perf", "Performance"],
  ["refactor", "Refactoring"],
  ["docs", "Documentation"],
  ["test", "Tests"],
  ["build", "Build"],
  ["ci", "CI"],
  ["chore", "Chores"],
  ["other", "Other changes"],
];

/**
 * Groups commit subjects into Markdown release notes.
 *
 * @param version The version being released.
 * @param subjects Commit subjects, newest first.
 * @returns Markdown.
 */
export function renderNotes(version: string, subjects: string[]): string {
  const groups = new Map<string, string[]>();
  for (const subject of subjects) {
    if (/^release: v\d/.test(subject)) continue;
    const match = subject.match(/^(\w+)(\([^)]*\))?(!)?: (.+)$/);
    const type = match ? (match[3] ? "breaking" : match[1]) : "other";
    const known = GROUPS.some(([name]) => name === type) && type !== "other";
    const key = known ? type : "other";
    // An unknown prefix ("loader: …") is part of the subject: keep it whole.
    const text = known && match
      ? `${match[2] ? `**${match[2].slice(1, -1)}:** ` : ""}${match[4]}`
      : subject;
    groups.set(key, [...(groups.get(key) ?? []), text]);
  }
  const sections = GROUPS.filter(([key]) => groups.has(key)).map(([key, title]) =>
    `### ${title}\n\n${groups.get(key)!.map((line) => `- ${line}`).join("\n")}`
  );
  return `## v${version}\n\n${sections.join("\n\n") || "No changes."}\n`;
}

/**
 * The commit subjects since `previousTag` (all of history when null).
 *
 * @param root The git repository.
 * @param previousTag The last release tag, or null.
 * @returns Subjects, newest first.
 */
export async function commitSubjects(root: string, previousTag: string | null): Promise<string[]> {
  const range = previousTag ? [`${previousTag}..HEAD`] : ["HEAD"];
  const out = await new Deno.Command("git", {
    args: ["log", "--format=%s", ...range],
    cwd: root,
    stdout: "piped",
  })
    .output();
  return new TextDecoder().decode(out.stdout).split("\n").filter(Boolean);
}
