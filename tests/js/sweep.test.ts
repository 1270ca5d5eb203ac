// Sweeps over a grid (normlab sweep), their shards (--shard I/N, auto/N from a Kubernetes Indexed
// Job's or a Slurm array's index) and their merge: a sweep sharded 3 ways and merged, in any order
// of the parts, is byte for byte the unsharded sweep; a missing, repeated or foreign part is an
// error naming it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { root } from './helpers.js';
import { hostile } from './hostile.js';
import { expandGrid, parseShard, shardPoints } from '../../dist/sweep.js';

const work = mkdtempSync(join(tmpdir(), 'normlab-sweep-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [join(root, 'dist', 'cli.js'), ...args], { encoding: 'utf8', cwd: work, env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const read = (f: string) => readFileSync(join(work, f), 'utf8');

describe('the grid', () => {
  const base = { methods: ['bn'], optimizer: { kind: 'sgd' } } as const;

  test('the cross product, the first key varying slowest; each point the base with its paths set', () => {
    const points = expandGrid({ base, grid: { batchSize: [4, 32], 'optimizer.lr': [0.1, 0.3, 1], 'dataset.noise': [0.2] } });
    expect(points.map((p) => [p.config.batchSize, p.config.optimizer!.lr])).toEqual(
      [[4, 0.1], [4, 0.3], [4, 1], [32, 0.1], [32, 0.3], [32, 1]]);
    expect(points[4].values).toEqual({ batchSize: 32, 'optimizer.lr': 0.3, 'dataset.noise': 0.2 });
    expect(points[4].config).toEqual({ methods: ['bn'], optimizer: { kind: 'sgd', lr: 0.3 }, batchSize: 32, dataset: { noise: 0.2 } });
    expect(base.optimizer).toEqual({ kind: 'sgd' });  // the base is not changed
  });

  test('slices: point k goes to shard k % N', () => {
    const points = expandGrid({ base, grid: { seed: [1, 2, 3, 4, 5, 6, 7] } });
    expect(shardPoints(points, [1, 3]).map((p) => p.index)).toEqual([1, 4]);
    expect([0, 1, 2].flatMap((i) => shardPoints(points, [i, 3]).map((p) => p.index)).sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  test('auto/N: the index of a Kubernetes Indexed Job, else of a Slurm array', () => {
    expect(parseShard('auto/4', { JOB_COMPLETION_INDEX: '2' })).toEqual([2, 4]);
    expect(parseShard('auto/4', { SLURM_ARRAY_TASK_ID: '3' })).toEqual([3, 4]);
    expect(parseShard('1/2', {})).toEqual([1, 2]);
    for (const [text, env, message] of [
      ['auto/4', {}, /neither is set/], ['auto/4', { SLURM_ARRAY_TASK_ID: '4' }, /SLURM_ARRAY_TASK_ID is 4, but the slices are 0 to 3 \(Slurm: --array=0-3\)/],
      ['auto/2', { JOB_COMPLETION_INDEX: 'x' }, /JOB_COMPLETION_INDEX is 'x'/], ['3/3', {}, /the slices are 0 to 2/], ['1-3', {}, /must be I\/N/],
      ['0/0', {}, /N must be at least 1/],
    ] as const) {
      hostile('CLI');
      expect(() => parseShard(text, env), text).toThrow(message);
    }
  });

  test('bad grids say what is wrong', () => {
    const cases: [unknown, RegExp][] = [
      [[], /must be a JSON object/], [{ base, grid: {} }, /"grid" must map config paths/], [{ base, grid: { lr: 0.1 } }, /grid.lr must be a non-empty list/],
      [{ base, grid: { 'optimizer..lr': [1] } }, /is not a config path/], [{ base, grid: { '__proto__.x': [1] } }, /is not a config path/],
      [{ base: { ...base, seeds: [1, 2] }, grid: { seed: [1] } }, /grid.seed with base.seeds/], [{ base, grid: { x: [1] }, extra: 1 }, /unknown key 'extra'/],
      [{ base: { methods: ['bn'], steps: 5 }, grid: { 'steps.x': [1] } }, /base.steps is 5, not an object/],
    ];
    for (const [grid, message] of cases) {
      hostile('CLI');
      expect(() => expandGrid(grid), JSON.stringify(grid)).toThrow(message);
    }
  });
});

describe('sweep, shards and merge (the CLI)', () => {
  const grid = {
    base: { dataset: { name: 'moons', trainSize: 200, testSize: 100 }, model: { hidden: [8] }, methods: ['bn', 'ln'], steps: 60, evalInterval: 30, seeds: [1, 2] },
    grid: { batchSize: [4, 16], 'optimizer.lr': [0.05, 0.2], 'dataset.noise': [0.1, 0.3] },
  };

  test('sharded 3 ways and merged in any order: the unsharded sweep, byte for byte', () => {
    writeFileSync(join(work, 'grid.json'), JSON.stringify(grid));
    const all = cli(['sweep', '--config', 'grid.json', '--json', 'all.json', '--csv', 'all.csv', '--quiet']);
    expect(all.code, all.stderr).toBe(0);
    for (const i of [0, 1, 2]) {
      // Slice 1 as a Kubernetes Indexed Job gets it, slice 2 as a Slurm array task.
      const shard = i === 0 ? '0/3' : 'auto/3';
      const env: Record<string, string> = i === 1 ? { JOB_COMPLETION_INDEX: '1' } : i === 2 ? { SLURM_ARRAY_TASK_ID: '2' } : {};
      const r = cli(['sweep', '--config', 'grid.json', '--shard', shard, '--out', `part${i}.jsonl`, '--workers', '1', '--quiet'], env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`shard ${i}/3: ${i === 2 ? 2 : 3} of 8 points written to part${i}.jsonl`);
    }
    const m = cli(['merge', 'part2.jsonl', 'part0.jsonl', 'part1.jsonl', '--json', 'merged.json', '--csv', 'merged.csv']);
    expect(m.code, m.stderr).toBe(0);
    expect(read('merged.json')).toBe(read('all.json'));
    expect(read('merged.csv')).toBe(read('all.csv'));
    const result = JSON.parse(read('all.json'));
    expect(result.grid).toEqual(grid);
    expect(result.points).toHaveLength(8);
    expect(result.points[5].values).toEqual({ batchSize: 16, 'optimizer.lr': 0.05, 'dataset.noise': 0.3 });
    expect(result.points[5].result.runs[0].config).toMatchObject({ batchSize: 16, optimizer: { lr: 0.05 }, dataset: { noise: 0.3 }, seed: 1 });
    expect(read('all.csv').split('\n')[0]).toBe('point,grid.batchSize,grid.optimizer.lr,grid.dataset.noise,seed,batchSize,method,kind,step,loss,accuracy,lossBatchStats,accuracyBatchStats');
  }, 120_000);

  test('a missing, repeated, cut or foreign part: exit code 2, naming it', () => {
    const part0 = read('part0.jsonl');
    writeFileSync(join(work, 'cut.jsonl'), part0.slice(0, part0.length - 200));
    writeFileSync(join(work, 'short.jsonl'), part0.split('\n').slice(0, 2).join('\n'));
    const other = JSON.parse(part0.split('\n')[0]);
    other.grid.grid.batchSize = [4, 8];
    writeFileSync(join(work, 'other.jsonl'), `${JSON.stringify(other)}\n`);
    const cases: [string[], RegExp][] = [
      [['part0.jsonl', 'part1.jsonl'], /shard 2\/3 missing: give every part file of the sweep \(3 in all\)/],
      [['part0.jsonl', 'part1.jsonl', 'part1.jsonl', 'part2.jsonl'], /shard 1\/3 is given twice: part1.jsonl and part1.jsonl/],
      [['cut.jsonl', 'part1.jsonl', 'part2.jsonl'], /cut.jsonl: line 4: not JSON .*was the file cut short\?/],
      [['short.jsonl', 'part1.jsonl', 'part2.jsonl'], /short.jsonl: shard 0\/3 is missing points 3, 6/],
      [['part0.jsonl', 'other.jsonl'], /other.jsonl: a part of another sweep than part0.jsonl .*another grid/],
      [['nothere.jsonl'], /nothere.jsonl: ENOENT/],
      [['grid.json'], /grid.json: line 1: not the header of a normlab sweep part/],
      [[], /merge needs the part files/],
    ];
    for (const [files, message] of cases) {
      hostile('CLI');
      const r = cli(['merge', ...files, '--json', 'x.json']);
      expect(r.code, files.join(' ')).toBe(2);
      expect(r.stderr, files.join(' ')).toMatch(message);
    }
  });

  test('bad sweep flags: exit code 2', () => {
    const cases: [string[], RegExp][] = [
      [['sweep'], /sweep needs --config GRID.json/],
      [['sweep', '--config', 'grid.json', '--shard', '0/3'], /give --out PART.jsonl/],
      [['sweep', '--config', 'grid.json', '--out', 'p.jsonl'], /--out is for --shard/],
      [['sweep', '--config', 'grid.json', '--steps', '5'], /--steps is not a flag of sweep/],
      [['sweep', '--config', 'missing.json'], /--config missing.json: ENOENT/],
    ];
    for (const [args, message] of cases) {
      hostile('CLI');
      const r = cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
    writeFileSync(join(work, 'bad.json'), JSON.stringify({ ...grid, grid: { batchSize: [4, 4096] } }));
    hostile('CLI');
    const r = cli(['sweep', '--config', 'bad.json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/point 1 \(\{"batchSize":4096\}\): config: batchSize 4096 is larger than the training set \(200\)/);
  });
});
