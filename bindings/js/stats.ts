// Statistics over seeds: Student's t distribution (its CDF through the regularized incomplete beta
// function, its quantile by bisection on the CDF), the 95% interval of a mean, and the paired
// t-test. Plain TypeScript with no dependency, so the package's entry point loads anywhere.
// Numbers are rounded to 7 significant digits, as the runner's records are, so results are the
// same text in every JavaScript engine.

/** A metric over seeds: its mean, sample standard deviation and 95% Student t interval of the mean. */
export interface Stat {
  mean: number;
  /** Sample standard deviation (n - 1 in the denominator); null for n < 2. */
  std: number | null;
  /** mean ± t(0.975, n - 1) · std / √n; null for n < 2 (one seed says nothing about the spread). */
  ci95: [number, number] | null;
  /** Seeds with a value (a method that diverged before its first evaluation has none). */
  n: number;
}

/** 7 significant digits (as the runner's records). */
export function r7(x: number): number {
  return Number.isFinite(x) ? Number(x.toPrecision(7)) : x;
}

/**
 * ln Γ(x) for x > 0: the recurrence Γ(x) = Γ(x + 1) / x up to x >= 10, then Stirling's series to
 * its 1/x^13 term (error below 1e-16 there).
 */
function lnGamma(x: number): number {
  let shift = 0;
  while (x < 10) {
    shift -= Math.log(x);
    x += 1;
  }
  const inv = 1 / x;
  const inv2 = inv * inv;
  const series = inv * (1 / 12 + inv2 * (-1 / 360 + inv2 * (1 / 1260 + inv2 * (-1 / 1680 + inv2 * (1 / 1188 + inv2 * (-691 / 360360 + inv2 / 156))))));
  return shift + (x - 0.5) * Math.log(x) - x + 0.5 * Math.log(2 * Math.PI) + series;
}

/** The continued fraction of the incomplete beta function (modified Lentz). */
function betaFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return h;
}

/** The regularized incomplete beta function I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  // The fraction converges fast for x < (a + 1) / (a + b + 2); otherwise use the symmetry.
  return x < (a + 1) / (a + b + 2) ? (front * betaFraction(a, b, x)) / a : 1 - (front * betaFraction(b, a, 1 - x)) / b;
}

/** P(T <= t) for Student's t with `df` degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  if (!(df > 0)) throw new Error(`studentTCdf: degrees of freedom must be positive, got ${df}`);
  if (!Number.isFinite(t)) return t > 0 ? 1 : 0;
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t > 0 ? 1 - tail : tail;
}

/** The t with P(T <= t) = p, for 0 < p < 1 (bisection on the CDF to double precision). */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`studentTQuantile: p must be in (0, 1), got ${p}`);
  if (p === 0.5) return 0;
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0;
  let hi = 1;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-14 * Math.max(1, hi); i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Mean, sample standard deviation and 95% t interval of `values` (rounded to 7 digits). */
export function stat(values: readonly number[]): Stat {
  const n = values.length;
  if (n === 0) return { mean: NaN, std: null, ci95: null, n: 0 };
  const mean = values.reduce((s, v) => s + v, 0) / n;
  if (n < 2) return { mean: r7(mean), std: null, ci95: null, n };
  const std = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1));
  const half = studentTQuantile(0.975, n - 1) * std / Math.sqrt(n);
  return { mean: r7(mean), std: r7(std), ci95: [r7(mean - half), r7(mean + half)], n };
}

/** A paired comparison: the mean of a - b over the seeds, its 95% t interval, and the two-sided p. */
export interface Paired {
  meanDifference: number;
  /** null for fewer than 2 pairs. */
  ci95: [number, number] | null;
  /** Two-sided p of the paired t-test (H0: mean difference 0); null for fewer than 2 pairs, 1 when every difference is 0. */
  p: number | null;
  n: number;
}

/** The paired t-test of `a` against `b` (the same seeds, in the same order). */
export function pairedTest(a: readonly number[], b: readonly number[]): Paired {
  if (a.length !== b.length) throw new Error(`pairedTest: ${a.length} values against ${b.length}`);
  const d = a.map((v, i) => v - b[i]);
  const s = stat(d);
  if (s.n < 2) return { meanDifference: s.mean, ci95: null, p: null, n: s.n };
  const mean = d.reduce((x, v) => x + v, 0) / d.length;
  const sd = Math.sqrt(d.reduce((x, v) => x + (v - mean) ** 2, 0) / (d.length - 1));
  const p = sd === 0 ? (mean === 0 ? 1 : 0) : 2 * studentTCdf(-Math.abs(mean / (sd / Math.sqrt(d.length))), d.length - 1);
  return { meanDifference: s.mean, ci95: s.ci95, p: r7(p), n: s.n };
}
