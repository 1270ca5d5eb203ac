// Comparisons over seeds on several workers (normlab/workers and the CLI's --seeds, --workers):
// identical JSON for any worker count, each run exactly the single-seed run, the summary's paired
// difference, the CSV's seed column, cancelling, and exit code 2 for bad flags.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { root } from './helpers.js';
import { hostile } from './hostile.js';
import { compareInWorkers } from '../../dist/workers.js';

const work = mkdtempSync(join(tmpdir(), 'normlab-seeds-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [join(root, 'dist', 'cli.js'), ...args], { encoding: 'utf8', cwd: work });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const json = (file: string) => readFileSync(join(work, file), 'utf8');

test('--preset non-iid --seeds 1-4: identical JSON with 1 and 2 workers, runs[k] is the --seed run, BN minus BRN below zero', () => {
  const base = ['compare', '--preset', 'non-iid', '--seeds', '1-4', '--baseline', 'brn', '--quiet'];
  const one = cli(...base, '--workers', '1', '--json', 'w1.json', '--csv', 'w1.csv');
  expect(one.code, one.stderr).toBe(0);
  const two = cli(...base, '--workers', '2', '--json', 'w2.json');
  expect(two.code, two.stderr).toBe(0);
  expect(json('w2.json')).toBe(json('w1.json'));
  const single = cli('compare', '--preset', 'non-iid', '--seed', '3', '--quiet', '--json', 's3.json');
  expect(single.code, single.stderr).toBe(0);
  const r = JSON.parse(json('w1.json'));
  expect(r.seeds).toEqual([1, 2, 3, 4]);
  expect(`${JSON.stringify(r.runs[2], null, 1)}\n`).toBe(json('s3.json'));
  // BatchNorm against Batch Renorm, paired by seed: the whole interval below zero.
  const d = r.summary.differences.find((x: { a: string; metric: string }) => x.a === 'bn' && x.metric === 'testAccuracy');
  expect(d.b).toBe('brn');
  expect(d.n).toBe(4);
  expect(d.ci95[1]).toBeLessThan(0);
  expect(d.p).toBeLessThan(0.01);
  // The mean difference is the mean of the runs' differences (worked from the runs themselves).
  const acc = (k: number, id: string) => r.runs[k].methods.find((m: { id: string }) => m.id === id).final.testAccuracy;
  const diffs = [0, 1, 2, 3].map((k) => acc(k, 'bn') - acc(k, 'brn'));
  expect(d.meanDifference).toBeCloseTo(diffs.reduce((a, b) => a + b) / 4, 6);
  // The table: mean +/- half-width, and the paired difference with its interval.
  const bnRow = one.stdout.split('\n').find((l) => l.startsWith('BatchNorm'))!;
  const bn = r.summary.methods.find((m: { id: string }) => m.id === 'bn').testAccuracy;
  expect(bnRow).toContain(`${(100 * bn.mean).toFixed(1)}% +/- ${(100 * (bn.ci95[1] - bn.ci95[0]) / 2).toFixed(1)}`);
  expect(bnRow).toContain(`${(100 * d.meanDifference).toFixed(1)} pts [${(100 * d.ci95[0]).toFixed(1)}, ${(100 * d.ci95[1]).toFixed(1)}]`);
  expect(one.stdout).toMatch(/over the 4 seeds \(not over test examples\)/);
  // The CSV: a seed column, every seed's curves.
  const csv = readFileSync(join(work, 'w1.csv'), 'utf8').trim().split('\n');
  expect(csv[0]).toBe('seed,batchSize,method,kind,step,loss,accuracy,lossBatchStats,accuracyBatchStats');
  expect(new Set(csv.slice(1).map((l) => l.split(',')[0]))).toEqual(new Set(['1', '2', '3', '4']));
  // The curves: per evaluation step, the mean over the seeds.
  const curve = r.summary.curves.find((c: { id: string }) => c.id === 'bn');
  const last = curve.eval.step.length - 1;
  expect(curve.eval.testAccuracy.mean[last]).toBeCloseTo(bn.mean, 6);
}, 120_000);

test('a sweep over batch sizes with seeds, on 2 workers: each point a summary over its seeds', () => {
  const args = ['compare', '--dataset', 'moons', '--methods', 'bn,ln', '--hidden', '8', '--steps', '40', '--eval-interval', '20',
    '--seeds', '1,2', '--quiet'];
  const a = cli(...args, '--batch-size', '4', '--workers', '2', '--json', 'p4.json');
  expect(a.code, a.stderr).toBe(0);
  const b = cli(...args, '--batch-size', '4', '--workers', '1', '--json', 'p4b.json');
  expect(json('p4.json')).toBe(json('p4b.json'));
});

test('cancelling stops every worker; the promise rejects with the abort reason', async () => {
  const controller = new AbortController();
  const config = { dataset: { name: 'digits' as const }, methods: ['bn' as const, 'ln' as const], steps: 20000, seeds: [1, 2, 3] };
  const t0 = Date.now();
  const running = compareInWorkers([config], { workers: 2, signal: controller.signal, onProgress: (p) => { if (p.steps > 200) controller.abort(); } });
  await expect(running).rejects.toThrow(/abort/i);
  expect(Date.now() - t0).toBeLessThan(20_000);
}, 30_000);

test('bad --seeds, --baseline and --workers: exit code 2 and what is wrong', () => {
  const cases: [string[], RegExp][] = [
    [['--seeds', '1-3', '--seed', '2'], /give --seed or --seeds, not both/],
    [['--seeds', '3-1'], /--seeds: the range 3-1 runs backwards/],
    [['--seeds', '1,x'], /--seeds: 'x' is not a seed/],
    [['--baseline', 'bn'], /--baseline goes with --seeds/],
    [['--seeds', '1,2', '--baseline', 'gn'], /--baseline: no method 'gn' in the comparison \(methods: bn, ln\)/],
    [['--workers', '0'], /--workers must be from 1 to 256, got 0/],
    [['--workers', 'many'], /--workers must be an integer/],
  ];
  for (const [flags, message] of cases) {
    hostile('CLI');
    const r = cli('compare', '--dataset', 'xor', '--methods', 'bn,ln', '--steps', '5', ...flags);
    expect(r.code, flags.join(' ')).toBe(2);
    expect(r.stderr, flags.join(' ')).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  }
});
