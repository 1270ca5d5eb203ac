// Every PyTorch fixture case (tests/fixtures/generate.py) through the public API of the built
// package: training steps (y, dx, parameter gradients, running state, Batch Renorm's r and d),
// then an inference forward.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { expectClose, f32, fixture, load, type Normlab } from './helpers.js';

const methods = ['batchnorm', 'batchrenorm', 'layernorm', 'groupnorm', 'instancenorm'] as const;
let nl: Normlab;

beforeAll(async () => {
  nl = await load();
});

afterAll(() => {
  expect(nl.memory().liveLayers).toBe(0);
});

for (const method of methods) {
  describe(method, () => {
    for (const c of fixture(method).cases) {
      test(c.name, () => {
        const layer = nl.createLayer(method, c.options as never);
        try {
          if (c.params) layer.setParams({ gamma: f32(c.params.gamma), beta: f32(c.params.beta) });
          else expect(layer.getParams()).toEqual({});
          if (c.initialState) {
            layer.setState(Object.fromEntries(
              Object.entries(c.initialState).map(([k, v]) => [k, f32(v)])) as never);
          }
          c.steps.forEach((step, i) => {
            const at = `${c.name} step ${i}`;
            if (step.limits) (layer as ReturnType<Normlab['createLayer']> & { setLimits: (l: object) => void }).setLimits(step.limits);
            expectClose(`${at} y`, layer.forward(f32(step.x), c.shape, { training: true }), step.y);
            expectClose(`${at} dx`, layer.backward(f32(step.dy)), step.dx);
            const grads = layer.grads();
            if (step.dgamma) expectClose(`${at} dgamma`, grads.gamma!, step.dgamma, 1e-4, 1e-4);
            if (step.dbeta) expectClose(`${at} dbeta`, grads.beta!, step.dbeta, 1e-4, 1e-4);
            const state = layer.getState() as Record<string, Float32Array | number>;
            for (const [name, want] of Object.entries(step.state ?? {})) {
              if (typeof want === 'number') expect(state[name], `${at} ${name}`).toBe(want);
              else expectClose(`${at} ${name}`, state[name] as Float32Array, want);
            }
            if (step.r) {
              const corr = (layer as unknown as { lastCorrection(): { r: Float32Array; d: Float32Array } }).lastCorrection();
              expectClose(`${at} r`, corr.r, step.r);
              expectClose(`${at} d`, corr.d, step.d!);
            }
          });
          expectClose(`${c.name} inference`, layer.forward(f32(c.inference.x), c.shape), c.inference.y);
        } finally {
          layer.dispose();
        }
      });
    }
  });
}

describe('precision (inputs with mean 1000, std 1, against a float64 reference)', () => {
  const cases = (fixture('precision') as unknown as {
    cases: { method: (typeof methods)[number]; options: object; shape: number[];
      params?: { gamma: number[]; beta: number[] }; x: number[]; yTrain: number[] }[];
  }).cases;
  for (const c of cases) {
    test(c.method, () => {
      using layer = nl.createLayer(c.method, c.options as never);
      if (c.params) layer.setParams({ gamma: f32(c.params.gamma), beta: f32(c.params.beta) });
      expectClose(`${c.method} y`, layer.forward(f32(c.x), c.shape, { training: true }), c.yTrain, 1e-4, 1e-3);
    });
  }
});
