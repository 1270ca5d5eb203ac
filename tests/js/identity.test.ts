// Behaviour did not change through the method-table refactor: every layer case's outputs, gradients
// and state, and the --json result of every preset for seeds 1-3, hash exactly as recorded from the
// tree before it (tests/fixtures/identity.json, written by `node tests/identity.mjs record`).
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
// @ts-expect-error: a plain ES module script without declarations
import { SEEDS, fixture, layerFingerprints, presetFingerprint, runKey } from '../identity.mjs';
import { presetConfigs, presets } from '../../dist/presets.js';
import { load } from './helpers.js';

const nlPromise = load();
const loadNl = () => nlPromise;

const want = JSON.parse(readFileSync(fixture, 'utf8')) as { recordedFrom: string; layers: Record<string, string>; runs: Record<string, string> };

describe(`bit-identical to ${want.recordedFrom}`, () => {
  test('every layer case: outputs, gradients, state', async () => {
    const nl = await loadNl();
    expect(layerFingerprints(nl)).toEqual(want.layers);
  });

  test('the fixture covers every preset for every seed', () => {
    expect(Object.keys(want.runs).sort()).toEqual(presets.flatMap((p) => SEEDS.map((s: number) => runKey(p.name, s))).sort());
  });

  test.each(presets.map((p) => [p.name, p] as const))('preset %s, seeds 1-3', async (_name, p) => {
    const nl = await loadNl();
    for (const seed of SEEDS) {
      expect(await presetFingerprint(nl, presetConfigs, p, seed), runKey(p.name, seed)).toBe(want.runs[runKey(p.name, seed)]);
    }
  }, 120_000);
});
