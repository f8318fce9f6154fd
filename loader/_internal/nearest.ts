/**
 * The nearest valid word to a mistyped one, for every "did you mean" the
 * loader prints: an unknown option key, command, or value.
 *
 * @module
 */

/** Edit distance between two words (insertions, deletions, substitutions, swaps). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/**
 * The candidate a mistyped word most likely meant: the closest by edit
 * distance when it is close enough (at most a third of the word, at least
 * 1), else the only candidate the word begins; undefined when none is near.
 */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = distance(lower, candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  if (best !== undefined && bestDistance <= Math.max(1, Math.floor(word.length / 3))) return best;
  const prefixed = candidates.filter((c) => lower.length >= 2 && c.startsWith(lower));
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/** `did you mean X?`, or the list of valid words when none is near. */
export function suggestion(word: string, candidates: readonly string[]): string {
  const near = nearest(word, candidates);
  return near !== undefined ? `did you mean ${near}?` : `expected one of ${candidates.join(", ")}`;
}
