// Sweeps over a grid of configurations (`normlab sweep --config GRID.json`), and their shards: a
// grid `{ base, grid: { "optimizer.lr": [0.01, 0.1], batchSize: [4, 32] } }` expands to the cross
// product of its values (the first key varies slowest), each point the base configuration with
// those paths set. `--shard I/N` runs the points k with k % N = I and writes them as JSON lines
// behind a header naming the shard and the grid; `normlab merge` checks that every shard is there
// exactly once and gives exactly the unsharded sweep's result. Node-free: plain data in, plain data out.
import type { CompareConfig, CompareResult } from './runner.js';
import type { SeedsResult } from './seeds.js';

/** A sweep's file: the base configuration and the values of each config path. */
export interface Grid {
  base: CompareConfig;
  /** Config paths (`batchSize`, `optimizer.lr`, `dataset.noise`, `seed`, ...) and their values. */
  grid: Record<string, unknown[]>;
}

/** One point of a sweep: the values of the grid's paths, and the configuration they make. */
export interface SweepPoint {
  index: number;
  values: Record<string, unknown>;
  config: CompareConfig;
}

/** A sweep's result: the grid, and each point's values and result, in point order. */
export interface SweepResult {
  grid: Grid;
  points: { values: Record<string, unknown>; result: CompareResult | SeedsResult }[];
}

/** The first line of a shard's JSON-lines file. */
export interface PartHeader {
  normlab: 'sweep-part';
  version: 1;
  /** [I, N]: this is slice I (from 0) of N. */
  shard: [number, number];
  /** The sweep's points (all shards). */
  points: number;
  grid: Grid;
}

/** The points of a sweep file, checked: paths into the configuration, lists of values. */
export function expandGrid(input: unknown, where = 'sweep'): SweepPoint[] {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new Error(`${where}: must be a JSON object { "base": {...}, "grid": { "path": [values] } }`);
  }
  const known = ['base', 'grid'];
  for (const key of Object.keys(input)) {
    if (!known.includes(key)) throw new Error(`${where}: unknown key '${key}' (known: base, grid)`);
  }
  const { base, grid } = input as Grid;
  if (base === null || typeof base !== 'object' || Array.isArray(base)) throw new Error(`${where}: "base" must be a comparison's configuration (an object)`);
  if (grid === null || typeof grid !== 'object' || Array.isArray(grid) || Object.keys(grid).length === 0) {
    throw new Error(`${where}: "grid" must map config paths to lists of values, e.g. { "batchSize": [4, 32] }`);
  }
  const keys = Object.keys(grid);
  for (const key of keys) {
    if (!/^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$/.test(key)) {
      throw new Error(`${where}: grid key '${key}' is not a config path (names joined by dots, e.g. optimizer.lr)`);
    }
    const values = grid[key];
    if (!Array.isArray(values) || values.length === 0) throw new Error(`${where}: grid.${key} must be a non-empty list of values`);
    if (key === 'seed' && (base as CompareConfig).seeds !== undefined) {
      throw new Error(`${where}: grid.seed with base.seeds: give the seeds in one place`);
    }
  }
  const total = keys.reduce((n, k) => n * grid[k].length, 1);
  if (total > 100000) throw new Error(`${where}: ${total} points; at most 100000`);
  const points: SweepPoint[] = [];
  for (let index = 0; index < total; index++) {
    const values: Record<string, unknown> = {};
    let rest = index;
    for (let j = keys.length - 1; j >= 0; j--) {
      const list = grid[keys[j]];
      values[keys[j]] = list[rest % list.length];
      rest = Math.floor(rest / list.length);
    }
    const config = structuredClone(base) as CompareConfig;
    const ordered: Record<string, unknown> = {};
    for (const key of keys) {
      ordered[key] = values[key];
      setPath(config as unknown as Record<string, unknown>, key, structuredClone(values[key]), where);
    }
    points.push({ index, values: ordered, config });
  }
  return points;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown, where: string): void {
  const parts = path.split('.');
  let node = target;
  for (const [i, part] of parts.slice(0, -1).entries()) {
    if (part === '__proto__' || part === 'constructor' || part === 'prototype') throw new Error(`${where}: grid key '${path}' is not a config path`);
    const next = node[part];
    if (next === undefined) node[part] = {};
    else if (next === null || typeof next !== 'object' || Array.isArray(next)) {
      throw new Error(`${where}: grid key '${path}': base.${parts.slice(0, i + 1).join('.')} is ${JSON.stringify(next)}, not an object`);
    }
    node = node[part] as Record<string, unknown>;
  }
  const last = parts[parts.length - 1];
  if (last === '__proto__' || last === 'constructor' || last === 'prototype') throw new Error(`${where}: grid key '${path}' is not a config path`);
  node[last] = value;
}

/** `I/N` or `auto/N` (I from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID in `env`), checked. */
export function parseShard(text: string, env: Record<string, string | undefined>): [number, number] {
  const m = /^(\d+|auto)\/(\d+)$/.exec(text.trim());
  if (!m) throw new Error(`--shard must be I/N (e.g. 0/3) or auto/N, got '${text}'`);
  const n = Number(m[2]);
  if (n < 1) throw new Error(`--shard ${text}: N must be at least 1`);
  let i: number;
  if (m[1] === 'auto') {
    const name = env.JOB_COMPLETION_INDEX !== undefined ? 'JOB_COMPLETION_INDEX' : env.SLURM_ARRAY_TASK_ID !== undefined ? 'SLURM_ARRAY_TASK_ID' : undefined;
    if (!name) {
      throw new Error(`--shard auto/${n} takes the slice from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) or ` +
        'SLURM_ARRAY_TASK_ID (a Slurm array), and neither is set');
    }
    const raw = env[name]!;
    if (!/^\d+$/.test(raw)) throw new Error(`--shard auto/${n}: ${name} is '${raw}', not a slice number`);
    i = Number(raw);
    if (i >= n) throw new Error(`--shard auto/${n}: ${name} is ${i}, but the slices are 0 to ${n - 1} (Slurm: --array=0-${n - 1})`);
  } else {
    i = Number(m[1]);
    if (i >= n) throw new Error(`--shard ${text}: the slices are 0 to ${n - 1}`);
  }
  return [i, n];
}

/** The points of slice i of n. */
export function shardPoints<T extends { index: number }>(points: readonly T[], [i, n]: [number, number]): T[] {
  return points.filter((p) => p.index % n === i);
}

/** A shard's JSON lines: the header, then one line per point ({ index, values, result }). */
export function partLines(grid: Grid, shard: [number, number], total: number,
  points: readonly { index: number; values: Record<string, unknown>; result: CompareResult | SeedsResult }[]): string {
  const header: PartHeader = { normlab: 'sweep-part', version: 1, shard, points: total, grid };
  return [header, ...points].map((x) => JSON.stringify(x)).join('\n') + '\n';
}

/**
 * The sweep's result from its shards' files (`parts`: name and text, in any order): each line
 * parsed, every shard present exactly once, of the same sweep, with the points it should have.
 */
export function mergeParts(parts: readonly { name: string; text: string }[]): SweepResult {
  if (parts.length === 0) throw new Error('merge: no part files');
  let first: PartHeader | undefined;
  let firstGrid = '';
  const byShard = new Map<number, string>();
  const points = new Map<number, { values: Record<string, unknown>; result: CompareResult | SeedsResult }>();
  for (const part of parts) {
    const lines = part.text.split('\n').filter((l) => l.trim() !== '');
    if (lines.length === 0) throw new Error(`${part.name}: empty; a part file starts with its header line`);
    const parse = (line: string, k: number) => {
      try {
        return JSON.parse(line);
      } catch (error) {
        throw new Error(`${part.name}: line ${k + 1}: not JSON (${(error as Error).message}); was the file cut short?`);
      }
    };
    const header = parse(lines[0], 0) as PartHeader;
    if (header?.normlab !== 'sweep-part' || header.version !== 1 || !Array.isArray(header.shard)) {
      throw new Error(`${part.name}: line 1: not the header of a normlab sweep part (normlab sweep --shard I/N --out FILE writes one)`);
    }
    const [i, n] = header.shard;
    const grid = JSON.stringify(header.grid);
    if (!first) {
      first = header;
      firstGrid = grid;
    } else if (n !== first.shard[1] || header.points !== first.points || grid !== firstGrid) {
      throw new Error(`${part.name}: a part of another sweep than ${parts[0].name} (shards ${n} against ${first.shard[1]}, ` +
        `${header.points} points against ${first.points}${grid !== firstGrid ? ', another grid' : ''})`);
    }
    if (byShard.has(i)) throw new Error(`shard ${i}/${n} is given twice: ${byShard.get(i)} and ${part.name}`);
    byShard.set(i, part.name);
    const expected = new Set(Array.from({ length: header.points }, (_, k) => k).filter((k) => k % n === i));
    for (let k = 1; k < lines.length; k++) {
      const p = parse(lines[k], k) as { index: number; values: Record<string, unknown>; result: CompareResult | SeedsResult };
      if (!expected.has(p.index)) throw new Error(`${part.name}: line ${k + 1}: point ${p.index} is not in shard ${i}/${n}`);
      expected.delete(p.index);
      points.set(p.index, { values: p.values, result: p.result });
    }
    if (expected.size) {
      throw new Error(`${part.name}: shard ${i}/${n} is missing points ${[...expected].join(', ')} (was its run stopped?)`);
    }
  }
  const n = first!.shard[1];
  const missing = Array.from({ length: n }, (_, i) => i).filter((i) => !byShard.has(i));
  if (missing.length) {
    throw new Error(`shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${n}`).join(', ')} missing: ` +
      `give every part file of the sweep (${n} in all)`);
  }
  return { grid: first!.grid, points: Array.from({ length: first!.points }, (_, k) => points.get(k)!) };
}
