// Settings <-> runner configurations: the CompareConfig(s) a state runs, and the state a preset
// sets. A preset's state gives back configurations the runner resolves exactly as the preset's own
// (so the playground's numbers equal `normlab compare --preset NAME`); defaults are left out.
import type { CompareConfig, CsvDataset, MethodEntry, MethodName, Preset } from 'normlab';
import type { Methods, OptionValue } from './methods.js';
import {
  DEFAULTS, formatValue, parseValue, POINT_SETS, SHIFT_DEFAULT_AMOUNT, USER_DATA, type DatasetKey, type Settings, type State,
} from './state.js';

/**
 * Your data as the page holds it: the file's text (never sent anywhere; the runner in the
 * training worker parses it as `normlab compare --data FILE` would) and its row count.
 */
export interface UserFile {
  name: string;
  text: string;
  /** Examples (rows other than the header), from the page's parse. */
  rows: number;
  /** Columns (features and the label). */
  columns: number;
}

/** Examples in the bundled image sets (training = all but the test set). */
const IMAGE_SET_SIZE: Record<string, number> = { digits: 1797, mnist: 10000 };

export function isPointSet(dataset: string): boolean {
  return POINT_SETS.includes(dataset);
}

/** Examples held out of n for testing at fraction f (as the runner does: at least 1, at most n - 1). */
export function heldOut(n: number, f: number): number {
  return Math.min(n - 1, Math.max(1, Math.round(f * n)));
}

/** Training examples of the state's data set (a sweep's epochs are counted in these). */
export function trainCount(state: State, file?: UserFile | null): number {
  if (state.dataset === USER_DATA) return file ? Math.max(1, file.rows - heldOut(file.rows, state.testFraction)) : 1;
  const total = IMAGE_SET_SIZE[state.dataset];
  return total === undefined ? state.trainSize : Math.max(1, total - state.testSize);
}

/**
 * The methods with the options their controls set: those that differ from the table's default,
 * and those the model or the layer would otherwise choose (GroupNorm's groups); an empty option
 * (null) is left out, or passed as null where null is a value of the option's own.
 */
export function methodEntries(state: State, methods: Methods): CompareConfig['methods'] {
  return state.methods.map((name): MethodEntry | MethodName => {
    // A key of the method table's (checked when the state was parsed).
    const key = name as MethodName;
    const options: Record<string, OptionValue | null> = {};
    for (const o of methods.get(key)?.options ?? []) {
      const value = state.options[o.name] ?? null;
      // Without it, the model or the layer would decide: a value set here is always passed.
      const decidedElsewhere = o.info.fromModel === true || o.info.default === null;
      if (value === null ? o.passNull : decidedElsewhere || value !== o.info.default) options[o.info.key] = value;
    }
    return Object.keys(options).length ? { method: key, options } : key;
  });
}

/**
 * Your data as a comparison's `dataset`: the CSV form, which the runner parses in the training
 * worker (its messages name the file, line and column) and `normlab compare --config` runs as it is.
 */
export function userDataset(state: State, file: UserFile): CsvDataset {
  const dataset: CsvDataset = { csv: file.text, file: file.name, name: file.name, testFraction: state.testFraction };
  // A name, or a string of digits that is no column's name: an index (as parseCsvDataset reads it).
  if (state.labelColumn !== '') dataset.labelColumn = state.labelColumn;
  if (state.imageShape.length === 3) dataset.imageShape = [state.imageShape[0], state.imageShape[1], state.imageShape[2]];
  if (/\.tsv$/i.test(file.name)) dataset.delimiter = '\t';
  return dataset;
}

/**
 * The one configuration of a state (a sweep runs it once per batch size: see `configsFromState`).
 * Your data (dataset 'user') needs its file; without one this throws an Error that says so.
 */
export function baseConfig(state: State, methods: Methods, file?: UserFile | null): CompareConfig {
  let dataset: NonNullable<CompareConfig['dataset']>;
  if (state.dataset === USER_DATA) {
    if (!file || (state.dataFile !== '' && file.name !== state.dataFile)) {
      throw new Error(state.dataFile
        ? `these settings use your data file ${JSON.stringify(state.dataFile)}${file ? ` (the file here is ${JSON.stringify(file.name)})` : ''}: ` +
          'choose or drop it under Data (the link holds the settings, not the data)'
        : 'choose or drop a CSV file under Data first');
    }
    dataset = userDataset(state, file);
  } else if (isPointSet(state.dataset)) {
    dataset = { name: state.dataset, noise: state.noise, trainSize: state.trainSize, testSize: state.testSize };
    if (state.dataset === 'spiral' || state.dataset === 'blobs') dataset.classes = state.classes;
  } else {
    dataset = { name: state.dataset, testSize: state.testSize };
  }
  const model: NonNullable<CompareConfig['model']> =
    state.model === 'cnn'
      ? { kind: 'cnn', channels: [...state.channels], activation: state.activation }
      : { kind: 'mlp', hidden: Array.from({ length: state.depth }, () => state.width), activation: state.activation };
  const optimizer: NonNullable<CompareConfig['optimizer']> = { kind: state.optimizer, lr: state.lr };
  if (state.optimizer === 'sgd') optimizer.momentum = state.momentum;
  if (state.weightDecay !== 0) optimizer.weightDecay = state.weightDecay;
  const config: CompareConfig = {
    dataset,
    model,
    methods: methodEntries(state, methods),
    batchSize: state.batchSize,
    batching: state.batching === 'iid' ? 'iid' : `noniid:${state.noniidClasses}`,
    optimizer,
    steps: state.steps,
    seed: state.seed,
  };
  if (state.evalInterval > 0) config.evalInterval = state.evalInterval;
  if (state.renormWarmup !== DEFAULTS.renormWarmup || state.renormRampEnd !== DEFAULTS.renormRampEnd) {
    config.renormSchedule = { warmup: state.renormWarmup, rampEnd: state.renormRampEnd };
  }
  if (state.shift !== 'none') config.domainShift = { kind: state.shift, amount: state.shiftAmount };
  if (state.preprocess !== 'none') config.preprocess = state.preprocess;
  if (state.probes !== 'none') {
    config.probes = { landscape: state.probes !== 'ics', ics: state.probes !== 'landscape' };
  }
  return config;
}

/**
 * The configurations a state runs: one, or for a sweep one per batch size, each for `sweepEpochs`
 * epochs with the learning rate scaled linearly (`lr * batchSize / 32`), as `presetConfigs` does.
 */
export function configsFromState(state: State, methods: Methods, file?: UserFile | null): CompareConfig[] {
  const base = baseConfig(state, methods, file);
  if (state.sweep.length === 0) return [base];
  const n = trainCount(state, file);
  return state.sweep.map((batchSize) => ({
    ...base,
    batchSize,
    steps: Math.max(1, state.sweepEpochs * Math.floor(n / batchSize)),
    optimizer: { ...base.optimizer, lr: (state.lr * batchSize) / 32 },
  }));
}

/** The seeds of a state: seed, seed + 1, ... (`seeds` of them, wrapping below 2^31). */
export function seedList(state: State): number[] {
  return Array.from({ length: Number(state.seeds) }, (_, k) => (state.seed + k) % 2147483648);
}

/**
 * The jobs of a state: every run (one, or one per batch size of a sweep) for every seed; job
 * `run * seeds + s` is run `run` with seed `s`, the numbering the page, its workers and its charts share.
 */
export function jobsFromState(state: State, methods: Methods, file?: UserFile | null): { runs: CompareConfig[]; seeds: number[]; jobs: CompareConfig[] } {
  const runs = configsFromState(state, methods, file);
  const seeds = seedList(state);
  return { runs, seeds, jobs: runs.flatMap((r) => seeds.map((seed) => ({ ...r, seed }))) };
}

/** The settings of a preset (options the page has no control for are left out). */
export function stateFromPreset(p: Preset, settings: Settings): State {
  const s = settings.defaultState();
  s.preset = p.name;
  const c = p.config;
  const d = c.dataset ?? {};
  // Presets use the built-in sets (their type says so).
  s.dataset = (d.name ?? 'moons') as DatasetKey;
  if (d.noise !== undefined) s.noise = d.noise;
  if (d.trainSize !== undefined) s.trainSize = d.trainSize;
  s.testSize = d.testSize ?? 500;
  if (d.classes !== undefined) s.classes = d.classes;
  const m = c.model ?? {};
  // The page offers the presets with named models (PAGE_PRESETS); no described ones (model: { layers }).
  if (m.kind === 'layers' || m.layers !== undefined) throw new Error(`preset ${p.name}: the playground runs the named models (mlp, cnn) only`);
  s.model = m.kind ?? 'mlp';
  const hidden = m.hidden ?? [128, 128];
  s.depth = hidden.length;
  s.width = hidden[0];
  s.channels = [...(m.channels ?? [8, 16])];
  s.activation = m.activation ?? 'relu';
  s.methods = [];
  for (const entry of c.methods) {
    const e: MethodEntry = typeof entry === 'string' ? { method: entry } : entry;
    const method = settings.methods.get(e.method);
    if (!method || s.methods.includes(method.key)) continue;
    s.methods.push(method.key);
    for (const [key, given] of Object.entries(e.options ?? {})) {
      const prop = settings.prop(`${method.key}.${key}`);
      if (!prop) continue;
      // null where null is the option's own value (passNull); else a number, boolean or string the control takes.
      const value = given === null ? (prop.option?.passNull ? null : undefined)
        : ['number', 'boolean', 'string'].includes(typeof given) ? parseValue(prop, formatValue(given as OptionValue)) : undefined;
      if (value !== undefined) s.options[prop.name] = value as OptionValue | null;
    }
  }
  s.batchSize = c.batchSize ?? 32;
  const batching = c.batching ?? 'iid';
  s.batching = batching === 'iid' ? 'iid' : 'noniid';
  if (batching !== 'iid') s.noniidClasses = Number(batching.slice('noniid:'.length));
  const o = c.optimizer ?? {};
  s.optimizer = o.kind ?? 'sgd';
  s.lr = o.lr ?? 0.1;
  s.momentum = o.momentum ?? 0;
  s.weightDecay = o.weightDecay ?? 0;
  if (c.steps !== undefined) s.steps = c.steps;
  s.evalInterval = c.evalInterval ?? 0;
  s.seed = c.seed ?? 1;
  if (c.renormSchedule) {
    s.renormWarmup = c.renormSchedule.warmup ?? DEFAULTS.renormWarmup;
    s.renormRampEnd = c.renormSchedule.rampEnd ?? DEFAULTS.renormRampEnd;
  }
  if (c.domainShift) {
    s.shift = c.domainShift.kind;
    s.shiftAmount = c.domainShift.amount ?? SHIFT_DEFAULT_AMOUNT[c.domainShift.kind];
  }
  const pre = c.preprocess;
  s.preprocess = pre ? (typeof pre === 'string' ? pre : pre.kind) : 'none';
  const probes = c.probes;
  if (probes && (probes.landscape || probes.ics)) {
    s.probes = probes.landscape && probes.ics ? 'both' : probes.landscape ? 'landscape' : 'ics';
  }
  s.sweep = p.sweep ? [...p.sweep.batchSize] : [];
  if (p.sweep) s.sweepEpochs = p.sweep.epochs;
  return settings.checkState(s).state;
}

export interface Extent {
  xMin: number;
  xMax: number;
  yMin: number;
  yMax: number;
}

/**
 * The frame of the decision maps for your data with two features: the examples' range in each,
 * widened by a tenth on each side (x holds (x1, x2) pairs).
 */
export function extentOfPoints(x: Float32Array): Extent {
  let xMin = Infinity, xMax = -Infinity, yMin = Infinity, yMax = -Infinity;
  for (let i = 0; i + 1 < x.length; i += 2) {
    xMin = Math.min(xMin, x[i]);
    xMax = Math.max(xMax, x[i]);
    yMin = Math.min(yMin, x[i + 1]);
    yMax = Math.max(yMax, x[i + 1]);
  }
  if (!(xMin <= xMax)) return { xMin: -1, xMax: 1, yMin: -1, yMax: 1 };
  const pad = (lo: number, hi: number): [number, number] => {
    const m = hi > lo ? (hi - lo) / 10 : Math.max(Math.abs(lo), 1) / 10;
    return [lo - m, hi + m];
  };
  const [x0, x1] = pad(xMin, xMax);
  const [y0, y1] = pad(yMin, yMax);
  return { xMin: x0, xMax: x1, yMin: y0, yMax: y1 };
}

/** The square of the plane a 2-D set lives in (the decision maps' frame). */
export function extentFor(dataset: string): Extent {
  if (dataset === 'moons') return { xMin: -1.5, xMax: 2.5, yMin: -1.75, yMax: 2.25 };
  if (dataset === 'blobs') return { xMin: -1.8, xMax: 1.8, yMin: -1.8, yMax: 1.8 };
  return { xMin: -1.2, xMax: 1.2, yMin: -1.2, yMax: 1.2 };
}

/** n x n points covering `e`, row-major from the top-left (y decreasing), as (x, y) pairs. */
export function gridPoints(e: Extent, n: number): Float32Array {
  const out = new Float32Array(n * n * 2);
  for (let row = 0; row < n; row++) {
    const y = e.yMax - ((row + 0.5) / n) * (e.yMax - e.yMin);
    for (let col = 0; col < n; col++) {
      const x = e.xMin + ((col + 0.5) / n) * (e.xMax - e.xMin);
      out[2 * (row * n + col)] = x;
      out[2 * (row * n + col) + 1] = y;
    }
  }
  return out;
}
