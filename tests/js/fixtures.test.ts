// Every PyTorch fixture case (tests/fixtures/generate.py) through the public API of the built
// package: training steps (y, dx, parameter gradients, running state, Batch Renorm's r and d),
// then an inference forward.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { expectClose, f32, fixture, load, root, type Method, type Normlab } from './helpers.js';

// Every method file the generator writes: tests/fixtures/<method>.json with "method": "<method>".
const methods = readdirSync(join(root, 'tests', 'fixtures'))
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.slice(0, -'.json'.length))
  .filter((name) => (fixture(name) as { method?: string }).method === name)
  .sort() as Method[];
let nl: Normlab;

beforeAll(async () => {
  nl = await load();
});

afterAll(() => {
  expect(nl.memory().liveLayers).toBe(0);
});

test('every normalization method of the layer API has a fixture file', () => {
  // The weight methods (Linear / Conv2d layers) have theirs in layers.json: weight-layers.test.ts.
  const weightMethods = ['weightnorm', 'cosinenorm'];
  expect(nl.methods.slice(-2)).toEqual(weightMethods);
  expect(nl.methods.filter((m) => !weightMethods.includes(m)).sort()).toEqual(methods);
});

for (const method of methods) {
  describe(method, () => {
    for (const c of fixture(method).cases) {
      test(c.name, () => {
        const layer = nl.createLayer(method, c.options as never);
        try {
          if (c.params) {
            layer.setParams(Object.fromEntries(Object.entries(c.params).map(([k, v]) => [k, f32(v)])));
          } else {
            expect(layer.getParams()).toEqual({});
          }
          if (c.initialState) {
            layer.setState(Object.fromEntries(
              Object.entries(c.initialState).map(([k, v]) => [k, f32(v)])) as never);
          }
          c.steps.forEach((step, i) => {
            const at = `${c.name} step ${i}`;
            if (step.limits) (layer as ReturnType<Normlab['createLayer']> & { setLimits: (l: object) => void }).setLimits(step.limits);
            expectClose(`${at} y`, layer.forward(f32(step.x), c.shape, { training: true }), step.y);
            expectClose(`${at} dx`, layer.backward(f32(step.dy)), step.dx);
            // Every parameter's gradient: dgamma, dbeta, and e.g. Switchable Norm's dmeanWeight.
            const grads = layer.grads() as Record<string, Float32Array>;
            expect(Object.keys(grads).sort(), `${at} parameters`).toEqual(Object.keys(c.params ?? {}).sort());
            for (const [name, got] of Object.entries(grads)) {
              const want = (step as unknown as Record<string, number[] | undefined>)[`d${name}`];
              expect(want, `${at} fixture has d${name}`).toBeDefined();
              expectClose(`${at} d${name}`, got, want!, 1e-4, 1e-4);
            }
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
      params?: Record<string, number[]>; x: number[]; yTrain: number[] }[];
  }).cases;
  for (const c of cases) {
    test(c.method, () => {
      using layer = nl.createLayer(c.method, c.options as never);
      if (c.params) layer.setParams(Object.fromEntries(Object.entries(c.params).map(([k, v]) => [k, f32(v)])));
      expectClose(`${c.method} y`, layer.forward(f32(c.x), c.shape, { training: true }), c.yTrain, 1e-4, 1e-3);
    });
  }
});
