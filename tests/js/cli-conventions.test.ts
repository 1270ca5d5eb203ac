// The CLI's manners, as users of commander- and yargs-style tools expect: --version, did-you-mean
// for flags, methods, data sets, presets and optimizers, names in any case and the labels the
// tables print, '-' for standard output, outputs checked before training, a warning for a flag
// with no effect, messages in the user's terms (no C++ names, no snake_case) with the fix.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { root } from './helpers.js';
import { hostile } from './hostile.js';

const work = mkdtempSync(join(tmpdir(), 'normlab-cli-manners-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function cli(...args: string[]) {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [join(root, 'dist', 'cli.js'), ...args], { encoding: 'utf8', cwd: work });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
}
const quick = ['--dataset', 'xor', '--hidden', '8', '--steps', '20', '--eval-interval', '10', '--quiet'];

test('--version prints the package version', () => {
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  for (const args of [['--version'], ['compare', '--version']]) {
    const r = cli(...args);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(version);
  }
});

test.each([
  [['compare', '--batchsize', '4'], /unknown flag --batchsize \(did you mean --batch-size\?\)/],
  [['compare', '--methods', 'batchnorn'], /--methods: unknown method 'batchnorn' \(did you mean batchnorm\?\)/],
  [['compare', '--dataset', 'mnsit'], /--dataset: unknown data set 'mnsit' \(did you mean mnist\?\) \(known: circle, xor, gauss, spiral, moons, blobs, digits, mnist\)/],
  [['compare', '--preset', 'non-idd'], /unknown preset 'non-idd' \(did you mean non-iid\?\)/],
  [['compare', '--optimizer', 'adan'], /--optimizer: unknown optimizer 'adan' \(did you mean adam\?\)/],
  [['sweep', '--confg', 'g.json'], /unknown flag --confg \(did you mean --config\?\)/],
])('did you mean: %j', (args, message) => {
  hostile('CLI');
  const r = cli(...args);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(message);
});

test('messages in the user\'s terms, with the fix: no C++ names, no snake_case', () => {
  const cases: [string[], RegExp][] = [
    [['--preset', 'non-iid', '--batch-size', '3'], /^normlab: batch size 3 is not divisible by the 2 classes of a non-i.i.d. batch \(noniid:2\): use a multiple of 2$/m],
    [['--methods', 'in', ...quick], /^normlab: instancenorm needs image feature maps \[N, C, H, W\] .*: use the cnn model \(--model cnn\)/m],
    [['--dataset', 'moons', '--batching', 'noniid:3', '--steps', '5'], /^normlab: batching noniid:3: 3 classes per batch, but moons has 2 classes$/m],
  ];
  for (const [args, message] of cases) {
    hostile('CLI');
    const r = cli('compare', ...args);
    expect(r.code, args.join(' ')).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/BatchSampler|make_2d|[a-z]+_[a-z]+|\n\s+at /);
  }
});

test('names in any case, and the labels the tables print', () => {
  const r = cli('compare', '--methods', 'BatchNorm,Batch Renorm,LAYERNORM', '--optimizer', 'Adam', '--lr', '0.01', ...quick, '--json', 'labels.json');
  expect(r.code, r.stderr).toBe(0);
  const result = JSON.parse(readFileSync(join(work, 'labels.json'), 'utf8'));
  expect(result.methods.map((m: { method: string }) => m.method)).toEqual(['batchnorm', 'batchrenorm', 'layernorm']);
  expect(result.config.optimizer.kind).toBe('adam');
  const b = cli('compare', '--methods', 'bn,ln', '--seeds', '1,2', '--baseline', 'LayerNorm', ...quick, '--json', 'base.json');
  expect(b.code, b.stderr).toBe(0);
  expect(JSON.parse(readFileSync(join(work, 'base.json'), 'utf8')).summary.baseline).toBe('ln');
});

test("'-' writes the result to standard output; the tables go to stderr", () => {
  const r = cli('compare', '--methods', 'bn', ...quick, '--json', '-');
  expect(r.code, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout).methods[0].id).toBe('bn');
  expect(r.stderr).toMatch(/test acc \(inference\)/);
  expect(existsSync(join(work, '-'))).toBe(false);
  const c = cli('compare', '--methods', 'bn', ...quick, '--csv', '-');
  expect(c.stdout.split('\n')[0]).toBe('seed,batchSize,method,kind,step,loss,accuracy,lossBatchStats,accuracyBatchStats');
  hostile('CLI');
  expect(cli('compare', '--methods', 'bn', ...quick, '--csv', '-', '--json', '-').stderr).toMatch(/only one output can be standard output/);
});

test('an output that cannot be written: exit 2 before training, naming it', () => {
  for (const [flag, file, message] of [
    ['--json', '/no/such/dir/x.json', /--json \/no\/such\/dir\/x.json: the folder \/no\/such\/dir does not exist \(checked before training/],
    ['--csv', '.', /--csv \.: \. is a folder; give a file name/],
  ] as const) {
    hostile('CLI');
    // A long run: refused at once, not after training.
    const r = cli('compare', '--preset', 'small-batch', '--steps', '100000', flag, file);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.ms).toBeLessThan(15_000);
  }
});

test('a flag with no effect, and a momentum of the Keras convention, get a warning on stderr', () => {
  const r = cli('compare', '--methods', 'bn,ln', '--groups', '4', '--channels', '8', '--option', 'bn.momentum=0.99', ...quick);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toMatch(/warning: --groups has no effect: it is for GroupNorm, which is not compared \(--methods bn,ln\)/);
  expect(r.stderr).toMatch(/warning: --channels has no effect: it sizes the cnn, and the model is the mlp/);
  expect(r.stderr).toMatch(/warning: batchnorm momentum 0.99: normlab follows PyTorch, running = \(1 - momentum\) \* running \+ momentum \* batch, .*Keras's momentum 0.99 is PyTorch's 0.01/);
});

test('--help lists the CSV columns as written', () => {
  expect(cli('--help').stdout).toContain('seed,batchSize,method,kind,step,loss,accuracy,lossBatchStats,accuracyBatchStats');
});

test('the package warns once per layer for a momentum of 0.5 or more (Keras\'s convention), and not for 0.1', async () => {
  const { load } = await import('../../dist/index.js');
  const nl = await load();
  const warned: string[] = [];
  const original = console.warn;
  console.warn = (message: string) => warned.push(message);
  try {
    nl.createLayer('batchnorm', { channels: 4, momentum: 0.99 }).dispose();
    nl.createLayer('bn', { channels: 4, momentum: 0.1 }).dispose();
    nl.createLayer('layernorm', { normalizedShape: [4] }).dispose();
  } finally {
    console.warn = original;
  }
  expect(warned).toHaveLength(1);
  expect(warned[0]).toMatch(/^normlab: batchnorm momentum 0.99: normlab follows PyTorch, .*Keras's momentum 0.99 is PyTorch's 0.01$/);
});
