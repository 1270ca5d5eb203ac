// The native build (build/native/run_native, the same C++ runner) and the WebAssembly build agree
// within float tolerance. Integer-driven parts (data order, splits, digits pixels) are identical;
// the arithmetic differs in the last bits (x86 vs WebAssembly SIMD, GEMM blocking), so the check
// uses stable configurations: i.i.d. batches and SGD. (Unstable ones, BatchNorm on non-i.i.d.
// batches of 8 or Adam on tiny gradients, amplify last-bit differences chaotically over hundreds of
// steps, as any two float implementations do.)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, expect, test } from 'vitest';
import { load, root, type Normlab } from './helpers.js';
import type { CompareConfig, CompareResult } from '../../dist/index.js';

const runNative = join(root, 'build', 'native', 'run_native');
let nl: Normlab;
beforeAll(async () => {
  nl = await load();
  // npm test builds the native tree before the JS suites.
  expect(existsSync(runNative), `${runNative} (node scripts/build.mjs native)`).toBe(true);
});

function native(config: CompareConfig): CompareResult {
  const dir = mkdtempSync(join(tmpdir(), 'normlab-native-'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const out = execFileSync(runNative, [join(dir, 'config.json'), join(root, 'data', 'digits.nlds')], { encoding: 'utf8' });
  return JSON.parse(out);
}

test.each([
  ['mlp', { dataset: { name: 'digits' }, methods: ['none', 'bn', 'brn', 'ln', 'gn'], batchSize: 32, steps: 200,
    evalInterval: 50, optimizer: { lr: 0.05, momentum: 0.9 } }],
  ['cnn', { dataset: { name: 'digits' }, model: { kind: 'cnn' }, methods: ['bn', 'gn', 'in'], batchSize: 16, steps: 100,
    evalInterval: 50, optimizer: { lr: 0.05, momentum: 0.9 } }],
] as [string, CompareConfig][])('%s: same losses within 1e-3 relative, same test accuracies within 1%%', async (_name, config) => {
  const a = await nl.compare(config);
  const b = native(config);
  expect(b.config).toEqual(a.config);
  for (const [i, m] of a.methods.entries()) {
    const n = b.methods[i];
    expect(n.id).toBe(m.id);
    expect(n.train.loss).toHaveLength(m.train.loss.length);
    m.train.loss.forEach((loss, k) => {
      expect(Math.abs(loss - n.train.loss[k]), `${m.id} loss at step ${k + 1}`).toBeLessThanOrEqual(1e-3 * Math.max(1, Math.abs(loss)));
    });
    m.eval.forEach((e, k) => {
      expect(Math.abs(e.testAccuracy - n.eval[k].testAccuracy), `${m.id} accuracy at ${e.step}`).toBeLessThanOrEqual(0.01);
    });
  }
});
