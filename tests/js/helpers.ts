// Shared by the Vitest suites: the built package (dist/, made by `npm run build`), the PyTorch
// fixtures, and a checker with a mixed tolerance atol + rtol*|ref| that reports the worst element.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export { load } from '../../dist/index.js';
export type { Method, Normlab, NormLayer } from '../../dist/index.js';

export interface FixtureStep {
  x: number[];
  dy: number[];
  limits?: { rMax: number; dMax: number };
  y: number[];
  dx: number[];
  dgamma?: number[];
  dbeta?: number[];
  state?: Record<string, number[] | number>;
  r?: number[];
  d?: number[];
}

export interface FixtureCase {
  name: string;
  options: Record<string, unknown>;
  shape: number[];
  /** gamma and beta (when affine) and any other parameters of the method, e.g. meanWeight. */
  params?: { gamma: number[]; beta: number[] } & Record<string, number[]>;
  initialState?: Record<string, number[]>;
  steps: FixtureStep[];
  inference: { x: number[]; y: number[] };
}

export function fixture(method: string): { method: string; cases: FixtureCase[] } {
  return JSON.parse(readFileSync(join(root, 'tests', 'fixtures', `${method}.json`), 'utf8'));
}

export function f32(values: number[]): Float32Array {
  return Float32Array.from(values);
}

/** Asserts |got - want| <= atol + rtol*|want| elementwise; the message names the worst element. */
export function expectClose(
  label: string,
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  atol = 1e-5,
  rtol = 1e-4,
): void {
  expect(got.length, `${label}: length`).toBe(want.length);
  let worst = -1;
  let worstExcess = 0;
  let maxDiff = 0;
  for (let i = 0; i < want.length; i++) {
    const diff = Math.abs(got[i] - want[i]);
    maxDiff = Math.max(maxDiff, diff);
    const excess = diff - (atol + rtol * Math.abs(want[i]));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess || Number.isNaN(diff))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    expect.fail(`${label}: element ${worst} is ${got[worst]}, want ${want[worst]} (max abs diff ${maxDiff})`);
  }
}

/** Deterministic values for tests (splitmix64-style integer hash -> [-1, 1)). */
export function testValues(n: number, seed: number, scale = 1, offset = 0): Float32Array {
  const out = new Float32Array(n);
  let s = BigInt(seed) * 0x9e3779b97f4a7c15n;
  for (let i = 0; i < n; i++) {
    s = (s + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
    z ^= z >> 31n;
    out[i] = offset + scale * (Number(z >> 11n) / 2 ** 53 * 2 - 1);
  }
  return out;
}
