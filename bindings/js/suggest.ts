// "Did you mean ...?": the closest of some names to a mistyped one, by optimal-string-alignment
// edit distance (a swap of two neighbours counts one edit: 'mnsit' is one from 'mnist') over the
// names folded to lower case without dashes, spaces or dots ('batchsize' is 'batch-size').

/** The form names are compared in: lower case, letters and digits only. */
export function fold(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/**
 * The name among `names` closest to `word`, when it is close enough to be a slip (at most 1 edit
 * for words of up to 4 letters, 2 up to 8, 3 beyond), else undefined.
 */
export function closest(word: string, names: readonly string[]): string | undefined {
  const w = fold(word);
  if (w === '') return undefined;
  const limit = w.length <= 4 ? 1 : w.length <= 8 ? 2 : 3;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const name of names) {
    const dist = editDistance(w, fold(name));
    if (dist < bestDistance) {
      best = name;
      bestDistance = dist;
    }
  }
  return bestDistance <= limit ? best : undefined;
}

/** " (did you mean X?)" or ''. */
export function didYouMean(word: string, names: readonly string[], show: (name: string) => string = (n) => n): string {
  const c = closest(word, names);
  return c === undefined ? '' : ` (did you mean ${show(c)}?)`;
}
