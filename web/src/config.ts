// Settings <-> runner configurations: the CompareConfig(s) a state runs, and the state a preset
// sets. A preset's state gives back configurations the runner resolves exactly as the preset's own
// (so the playground's numbers equal `normlab compare --preset NAME`); defaults are left out.
import type { CompareConfig, MethodEntry, Preset } from 'normlab';
import { DEFAULTS, POINT_SETS, SHIFT_DEFAULT_AMOUNT, checkState, defaultState, type DatasetKey, type MethodKey, type State } from './state.js';

/** Examples in the bundled image sets (training = all but the test set). */
const IMAGE_SET_SIZE: Record<string, number> = { digits: 1797, mnist: 10000 };

const ALIASES: Record<string, MethodKey> = {
  none: 'none', bn: 'bn', batchnorm: 'bn', brn: 'brn', batchrenorm: 'brn',
  gn: 'gn', groupnorm: 'gn', ln: 'ln', layernorm: 'ln', in: 'in', instancenorm: 'in',
  rms: 'rms', rmsnorm: 'rms', frn: 'frn', l1bn: 'l1bn', l1batchnorm: 'l1bn',
  gbn: 'gbn', generalizedbatchnorm: 'gbn', sn: 'sn', switchablenorm: 'sn', lrn: 'lrn',
  wn: 'wn', weightnorm: 'wn', cn: 'cn', cosinenorm: 'cn',
};

/** Options (beyond the defaults) from an object, for the method controls. */
type Options = Record<string, unknown>;
const entry = (key: MethodKey, options: Options): MethodEntry | MethodKey =>
  Object.keys(options).length ? { method: key, options } : key;

export function isPointSet(dataset: string): boolean {
  return POINT_SETS.includes(dataset);
}

/** Training examples of the state's data set (a sweep's epochs are counted in these). */
export function trainCount(state: State): number {
  const total = IMAGE_SET_SIZE[state.dataset];
  return total === undefined ? state.trainSize : Math.max(1, total - state.testSize);
}

/** The methods with the options the controls set (only those that differ from the defaults). */
export function methodEntries(state: State): CompareConfig['methods'] {
  return state.methods.map((key): MethodEntry | MethodKey => {
    switch (key) {
      case 'bn':
        return state.bnMomentum === DEFAULTS.bnMomentum ? 'bn' : { method: 'bn', options: { momentum: state.bnMomentum } };
      case 'brn': {
        const options: Options = {};
        if (state.rMax !== DEFAULTS.rMax) options.rMax = state.rMax;
        if (state.dMax !== DEFAULTS.dMax) options.dMax = state.dMax;
        if (state.brnMomentum !== DEFAULTS.brnMomentum) options.momentum = state.brnMomentum;
        return entry('brn', options);
      }
      case 'gn':
        return { method: 'gn', options: { groups: state.groups } };
      case 'lrn':
        return { method: 'lrn', options: { size: state.lrnSize } };
      case 'l1bn':
        return entry('l1bn', state.l1bnScale === 'none' ? { scaleSqrtPiOver2: false } : {});
      case 'gbn': {
        // The deviation measure follows from the centre (the paper's pairs).
        const options: Options = {};
        if (state.gbnCenter !== 'mean') options.center = state.gbnCenter;
        if (state.gbnCenter === 'quantile') options.level = state.gbnLevel;
        return entry('gbn', options);
      }
      case 'frn':
        return entry('frn', state.frnEps === 'learned' ? { learnableEps: true } : {});
      case 'sn':
        return entry('sn', state.snBN === 'off' ? { useBN: false } : {});
      case 'cn':
        return entry('cn', state.cnCentered === 'centered' ? { centered: true } : {});
      default:
        return key;
    }
  });
}

/** The one configuration of a state (a sweep runs it once per batch size: see `configsFromState`). */
export function baseConfig(state: State): CompareConfig {
  const points = isPointSet(state.dataset);
  const dataset: NonNullable<CompareConfig['dataset']> = points
    ? { name: state.dataset, noise: state.noise, trainSize: state.trainSize, testSize: state.testSize }
    : { name: state.dataset, testSize: state.testSize };
  if (state.dataset === 'spiral' || state.dataset === 'blobs') dataset.classes = state.classes;
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
    methods: methodEntries(state),
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
  return config;
}

/**
 * The configurations a state runs: one, or for a sweep one per batch size, each for `sweepEpochs`
 * epochs with the learning rate scaled linearly (`lr * batchSize / 32`), as `presetConfigs` does.
 */
export function configsFromState(state: State): CompareConfig[] {
  const base = baseConfig(state);
  if (state.sweep.length === 0) return [base];
  const n = trainCount(state);
  return state.sweep.map((batchSize) => ({
    ...base,
    batchSize,
    steps: Math.max(1, state.sweepEpochs * Math.floor(n / batchSize)),
    optimizer: { ...base.optimizer, lr: (state.lr * batchSize) / 32 },
  }));
}

/** The settings of a preset. */
export function stateFromPreset(p: Preset): State {
  const s = defaultState();
  s.preset = p.name;
  const c = p.config;
  const d = c.dataset ?? {};
  s.dataset = (d.name ?? 'moons') as DatasetKey;
  if (d.noise !== undefined) s.noise = d.noise;
  if (d.trainSize !== undefined) s.trainSize = d.trainSize;
  s.testSize = d.testSize ?? 500;
  if (d.classes !== undefined) s.classes = d.classes;
  const m = c.model ?? {};
  s.model = m.kind ?? 'mlp';
  const hidden = m.hidden ?? [128, 128];
  s.depth = hidden.length;
  s.width = hidden[0];
  s.channels = [...(m.channels ?? [8, 16])];
  s.activation = m.activation ?? 'relu';
  s.methods = [];
  for (const entry of c.methods) {
    const e: MethodEntry = typeof entry === 'string' ? { method: entry } : entry;
    const key = ALIASES[e.method];
    if (!key || s.methods.includes(key)) continue;
    s.methods.push(key);
    const o = (e.options ?? {}) as Record<string, unknown>;
    const num = (v: unknown, set: (n: number) => void) => typeof v === 'number' && set(v);
    if (key === 'bn') num(o.momentum, (v) => (s.bnMomentum = v));
    if (key === 'brn') {
      num(o.rMax, (v) => (s.rMax = v));
      num(o.dMax, (v) => (s.dMax = v));
      num(o.momentum, (v) => (s.brnMomentum = v));
    }
    if (key === 'gn') num(o.groups, (v) => (s.groups = v));
    if (key === 'lrn') num(o.size, (v) => (s.lrnSize = v));
    if (key === 'l1bn') s.l1bnScale = o.scaleSqrtPiOver2 === false ? 'none' : 'sqrt-pi-2';
    if (key === 'gbn') {
      const partner: Record<string, State['gbnCenter']> = { std: 'mean', mad: 'median', superquantile: 'quantile' };
      const center = (o.center as State['gbnCenter'] | undefined) ?? partner[o.deviation as string] ?? 'mean';
      s.gbnCenter = center;
      num(o.level, (v) => (s.gbnLevel = v));
    }
    if (key === 'frn') s.frnEps = o.learnableEps === true ? 'learned' : 'fixed';
    if (key === 'sn') s.snBN = o.useBN === false ? 'off' : 'on';
    if (key === 'cn') s.cnCentered = o.centered === true ? 'centered' : 'plain';
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
  s.sweep = p.sweep ? [...p.sweep.batchSize] : [];
  if (p.sweep) s.sweepEpochs = p.sweep.epochs;
  return checkState(s).state;
}

export interface Extent {
  xMin: number;
  xMax: number;
  yMin: number;
  yMax: number;
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
