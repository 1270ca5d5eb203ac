// Each preset reproduces its paper's finding for seeds 1, 2 and 3 (the thresholds leave a margin
// below the accuracies measured when the presets were tuned; see README "Presets").
import { beforeAll, describe, expect, test } from 'vitest';
import { load, type Normlab } from './helpers.js';
import { preset, presetConfigs, probeSummary, type CompareResult } from '../../dist/index.js';

let nl: Normlab;
beforeAll(async () => {
  nl = await load();
});

const seeds = [1, 2, 3];

async function run(name: string, seed: number): Promise<CompareResult[]> {
  const results = [];
  for (const config of presetConfigs(preset(name))) results.push(await nl.compare({ ...config, seed }, { chunk: 1000 }));
  return results;
}

function acc(r: CompareResult, id: string) {
  const m = r.methods.find((x) => x.id === id)!;
  return { inference: m.final!.testAccuracy, batchStats: m.final!.testAccuracyBatchStats! };
}

describe.each(seeds)('seed %i', (seed) => {
  test('small-batch: BatchNorm degrades at batch 2, Batch Renorm, GroupNorm and LayerNorm hold up', async () => {
    const [r] = await run('small-batch', seed);
    const bn = acc(r, 'bn').inference;
    expect(bn).toBeLessThan(0.78);
    expect(acc(r, 'brn').inference).toBeGreaterThan(Math.max(0.85, bn + 0.15));
    expect(acc(r, 'gn').inference).toBeGreaterThan(0.95);
    expect(acc(r, 'ln').inference).toBeGreaterThan(0.95);
  });

  test('non-iid: BatchNorm inference collapses, batch statistics recover part, Batch Renorm holds', async () => {
    const [r] = await run('non-iid', seed);
    const bn = acc(r, 'bn');
    expect(bn.inference).toBeLessThan(0.6);
    expect(bn.batchStats).toBeGreaterThan(bn.inference + 0.15);
    expect(acc(r, 'brn').inference).toBeGreaterThan(0.95);
    expect(acc(r, 'gn').inference).toBeGreaterThan(0.94);
    expect(acc(r, 'ln').inference).toBeGreaterThan(0.95);
  });

  test('train-vs-inference: BatchNorm\'s two accuracies differ widely, Batch Renorm\'s agree', async () => {
    const [r] = await run('train-vs-inference', seed);
    const bn = acc(r, 'bn');
    const brn = acc(r, 'brn');
    expect(bn.batchStats - bn.inference).toBeGreaterThan(0.15);
    expect(Math.abs(brn.batchStats - brn.inference)).toBeLessThan(0.02);
  });

  test('domain-shift: AdaBN recovers BatchNorm and Batch Renorm on brighter digits; LN and GN need nothing', async () => {
    const [r] = await run('domain-shift', seed);
    const target = (id: string) => r.methods.find((m) => m.id === id)!.final!.target!;
    for (const id of ['bn', 'brn']) {
      const t = target(id);
      expect(t.accuracy, `${id} before`).toBeLessThan(0.93);
      expect(t.accuracyAdapted, `${id} after`).toBeGreaterThan(Math.max(0.95, t.accuracy + 0.05));
    }
    for (const id of ['gn', 'ln']) {
      // No population statistics: adaptation changes nothing.
      expect(target(id).accuracyAdapted).toBe(target(id).accuracy);
      expect(target(id).accuracy).toBeGreaterThan(0.85);
    }
  });

  test('survey-small-batch: L1 BN and Generalized BN degrade at batch 2 like BN; SN, FRN and RMSNorm hold up', async () => {
    const [r] = await run('survey-small-batch', seed);
    for (const id of ['bn', 'l1bn', 'gbn']) expect(acc(r, id).inference, id).toBeLessThan(0.82);
    for (const id of ['sn', 'frn', 'rms']) expect(acc(r, id).inference, id).toBeGreaterThan(0.92);
  });

  test('survey-weight-norm: Weight Norm and Cosine Norm do not depend on the batch and hold up at batch 2', async () => {
    const [r] = await run('survey-weight-norm', seed);
    expect(acc(r, 'bn').inference).toBeLessThan(0.78);
    for (const id of ['wn', 'cn', 'ln']) {
      expect(acc(r, id).inference, id).toBeGreaterThan(0.93);
      // No batch statistics: the two accuracies are the same function's.
      expect(acc(r, id).batchStats, id).toBe(acc(r, id).inference);
    }
  });

  test('survey-domain-shift: AdaBN recovers BN, L1 BN, Generalized BN and Switchable Norm; RMSNorm has nothing to adapt', async () => {
    const [r] = await run('survey-domain-shift', seed);
    const target = (id: string) => r.methods.find((m) => m.id === id)!.final!.target!;
    for (const id of ['bn', 'l1bn', 'gbn']) {
      const t = target(id);
      expect(t.accuracy, `${id} before`).toBeLessThan(0.9);
      expect(t.accuracyAdapted, `${id} after`).toBeGreaterThan(Math.max(0.95, t.accuracy + 0.08));
    }
    const sn = target('sn');
    expect(sn.accuracyAdapted).toBeGreaterThan(Math.max(0.95, sn.accuracy + 0.02));
    expect(target('rms').accuracyAdapted).toBe(target('rms').accuracy);
  });

  test('residual-small-batch: in a residual CNN on MNIST BatchNorm degrades at batch 2; GroupNorm holds, Batch Renorm recovers part', async () => {
    const runs = await run('residual-small-batch', seed);
    expect(runs.map((r) => [r.config.batchSize, r.config.steps])).toEqual([[2, 4500], [32, 281]]);  // one epoch each
    const [small, large] = runs;
    const bn = acc(small, 'bn').inference;
    expect(bn).toBeLessThan(0.6);
    expect(bn).toBeLessThan(acc(large, 'bn').inference - 0.3);         // batch 2 vs batch 32
    const gn = acc(small, 'gn').inference;
    expect(gn).toBeGreaterThan(Math.max(0.9, bn + 0.3));
    expect(Math.abs(gn - acc(large, 'gn').inference), 'gn spread').toBeLessThan(0.03);
    expect(acc(small, 'brn').inference).toBeGreaterThan(bn + 0.05);
    for (const id of ['bn', 'gn', 'brn']) expect(acc(large, id).inference, `${id} at 32`).toBeGreaterThan(0.88);
  }, 120_000);

  test('batch-size-sweep: BatchNorm needs large batches, GroupNorm and LayerNorm stay flat', async () => {
    const runs = await run('batch-size-sweep', seed);
    expect(runs.map((r) => r.config.batchSize)).toEqual([2, 4, 8, 16, 32]);
    const curve = (id: string) => runs.map((r) => acc(r, id).inference);
    const bn = curve('bn');
    expect(bn[0]).toBeLessThan(bn[4] - 0.2);       // batch 2 vs batch 32
    expect(curve('brn')[0]).toBeGreaterThan(bn[0] + 0.15);
    for (const id of ['gn', 'ln']) {
      const c = curve(id);
      expect(Math.max(...c) - Math.min(...c), `${id} spread`).toBeLessThan(0.05);
      expect(Math.min(...c), `${id} worst`).toBeGreaterThan(0.94);
    }
  });

  test('landscape: BatchNorm\'s loss varies less along the gradient and its beta-smoothness is lower than without normalization; ICS per layer', async () => {
    const [r] = await run('landscape', seed);
    const s = probeSummary(r);
    const none = s.find((m) => m.id === 'none')!;
    const bn = s.find((m) => m.id === 'bn')!;
    for (const m of s) {
      expect(m.evaluations, m.id).toBe(10);
      expect(m.nonFinite, m.id).toBe(0);
    }
    // Measured (README, "Probes"): loss range 0.09, 0.03, 0.08 against 0.95, 0.45, 0.94;
    // beta-smoothness 7.8, 8.2, 6.0 against 10.2, 10.1, 11.9.
    expect(bn.lossRange!).toBeLessThan(0.5 * none.lossRange!);
    expect(bn.gradientDistance!).toBeLessThan(0.5 * none.gradientDistance!);
    expect(bn.betaSmoothness!).toBeLessThan(0.9 * none.betaSmoothness!);
    // ICS at every evaluation for the second convolution and the classifier (the first layer has
    // nothing below it), whatever its size (LayerNorm's classifier gradient turns by 96 degrees at
    // step 40 of seed 3).
    for (const m of r.methods) {
      for (const e of m.eval) {
        expect(e.landscape!.etas).toEqual([0.025, 0.05, 0.1, 0.2, 0.4]);
        expect(e.ics!.map((row) => [row.layer, row.kind]), m.id).toEqual([[2, 'conv2d'], [3, 'linear']]);
        for (const row of e.ics!) {
          expect(row.l2).toBeGreaterThan(0);
          expect(row.cosine!).toBeGreaterThan(-1);
          expect(row.cosine!).toBeLessThanOrEqual(1);
        }
      }
    }
  });
});
