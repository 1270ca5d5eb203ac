// The playground's settings and their URL form: one table of properties (name, type, allowed
// values or range, default) drives parsing, validation and serialisation of the location hash, so a
// shared link (which always carries the seed) reproduces the run. Anything invalid or hostile in a
// hash falls back to the default of that setting and produces a notice; nothing here touches the DOM.

import { presets } from 'normlab';

export const DATASETS = ['circle', 'xor', 'gauss', 'spiral', 'moons', 'blobs', 'digits', 'mnist'] as const;
export const POINT_SETS: readonly string[] = ['circle', 'xor', 'gauss', 'spiral', 'moons', 'blobs'];
/** Method keys in the order the playground shows and runs them. */
export const METHOD_KEYS = ['none', 'bn', 'brn', 'gn', 'ln', 'in', 'l1bn', 'gbn', 'sn', 'frn', 'rms', 'lrn', 'wn', 'cn'] as const;
/** Methods that need the CNN: they normalize over spatial positions or neighbouring channels. */
export const CNN_ONLY: readonly string[] = ['in', 'lrn'];
export type MethodKey = (typeof METHOD_KEYS)[number];
export type DatasetKey = (typeof DATASETS)[number];

export interface State {
  /** The preset these settings came from ('' for none); only shown, never changes a setting. */
  preset: string;
  dataset: DatasetKey;
  noise: number;
  trainSize: number;
  testSize: number;
  classes: number;
  model: 'mlp' | 'cnn';
  depth: number;
  width: number;
  channels: number[];
  activation: 'relu' | 'tanh';
  methods: MethodKey[];
  bnMomentum: number;
  rMax: number;
  dMax: number;
  renormWarmup: number;
  renormRampEnd: number;
  groups: number;
  /** Batch Renorm: the paper's alpha, the update rate of its moving statistics. */
  brnMomentum: number;
  lrnSize: number;
  /** L1 BatchNorm: the deviation scaled by sqrt(pi/2) (the paper) or not. */
  l1bnScale: 'sqrt-pi-2' | 'none';
  gbnCenter: 'mean' | 'median' | 'quantile';
  gbnLevel: number;
  /** FRN: a learned eps (the paper's choice for 1x1 maps; needed in MLPs) or a fixed one. */
  frnEps: 'learned' | 'fixed';
  /** Switchable Norm: BatchNorm's statistics in the mixture or not. */
  snBN: 'on' | 'off';
  /** Cosine Norm: plain cosine or the centred variant (Pearson correlation). */
  cnCentered: 'plain' | 'centered';
  /** Data normalization of the inputs, fitted on the training set. */
  preprocess: 'none' | 'minmax' | 'standardize' | 'pca' | 'zca';
  batchSize: number;
  batching: 'iid' | 'noniid';
  noniidClasses: number;
  optimizer: 'sgd' | 'adam' | 'adamw';
  lr: number;
  momentum: number;
  weightDecay: number;
  steps: number;
  /** 0: automatic (steps / 20). */
  evalInterval: number;
  seed: number;
  /** Batch sizes of a sweep (empty: one run). */
  sweep: number[];
  sweepEpochs: number;
  /** AdaBN: the target domain of the test inputs ('none': no shift). */
  shift: 'none' | 'invert' | 'shift' | 'scale' | 'noise';
  shiftAmount: number;
}

type Key = keyof State;

interface Base<K extends Key> {
  name: K;
  /** What the setting means (shown as help text in the controls). */
  help: string;
}
export interface EnumProp<K extends Key = Key> extends Base<K> {
  type: 'enum';
  values: readonly string[];
}
export interface NumberProp<K extends Key = Key> extends Base<K> {
  type: 'int' | 'number';
  min: number;
  max: number;
}
export interface IntListProp<K extends Key = Key> extends Base<K> {
  type: 'intList';
  min: number;
  max: number;
  minLength: number;
  maxLength: number;
}
export interface EnumListProp<K extends Key = Key> extends Base<K> {
  type: 'enumList';
  values: readonly string[];
  minLength: number;
}
export type Prop = EnumProp | NumberProp | IntListProp | EnumListProp;

/** Every setting: its URL name (the State key), type and allowed values. Order = URL order. */
export const PROPS: readonly Prop[] = [
  { name: 'preset', type: 'enum', values: ['', ...presets.map((p) => p.name)], help: 'the preset the settings came from' },
  { name: 'dataset', type: 'enum', values: DATASETS, help: 'data set' },
  { name: 'noise', type: 'number', min: 0, max: 1, help: '2-D sets: noise level' },
  { name: 'trainSize', type: 'int', min: 10, max: 20000, help: '2-D sets: training examples' },
  { name: 'testSize', type: 'int', min: 10, max: 5000, help: 'held-out test examples' },
  { name: 'classes', type: 'int', min: 2, max: 8, help: 'spiral and blobs: classes' },
  { name: 'model', type: 'enum', values: ['mlp', 'cnn'], help: 'model: MLP, or a small CNN (digits, MNIST)' },
  { name: 'depth', type: 'int', min: 1, max: 8, help: 'MLP: hidden layers' },
  { name: 'width', type: 'int', min: 1, max: 1024, help: 'MLP: units per hidden layer' },
  { name: 'channels', type: 'intList', min: 1, max: 128, minLength: 1, maxLength: 4, help: 'CNN: channels per conv block' },
  { name: 'activation', type: 'enum', values: ['relu', 'tanh'], help: 'activation' },
  { name: 'methods', type: 'enumList', values: METHOD_KEYS, minLength: 1, help: 'normalization methods to compare' },
  { name: 'bnMomentum', type: 'number', min: 0, max: 1, help: 'BatchNorm: running statistics momentum' },
  { name: 'rMax', type: 'number', min: 1, max: 100, help: 'Batch Renorm: limit of r' },
  { name: 'dMax', type: 'number', min: 0, max: 100, help: 'Batch Renorm: limit of d' },
  { name: 'renormWarmup', type: 'number', min: 0, max: 1, help: 'Batch Renorm: fraction of steps as plain BatchNorm' },
  { name: 'renormRampEnd', type: 'number', min: 0, max: 1, help: 'Batch Renorm: fraction of steps by which the limits reach rMax, dMax' },
  { name: 'groups', type: 'int', min: 1, max: 1024, help: 'GroupNorm: groups (must divide the width or channels)' },
  { name: 'brnMomentum', type: 'number', min: 0, max: 1, help: "Batch Renorm: update rate alpha of the moving mean and standard deviation" },
  { name: 'lrnSize', type: 'int', min: 1, max: 64, help: 'LRN: window size in channels' },
  { name: 'l1bnScale', type: 'enum', values: ['sqrt-pi-2', 'none'], help: 'L1 BatchNorm: scale the mean absolute deviation by sqrt(pi/2)' },
  { name: 'gbnCenter', type: 'enum', values: ['mean', 'median', 'quantile'], help: 'Generalized BN: centre statistic (with its deviation measure)' },
  { name: 'gbnLevel', type: 'number', min: 0.01, max: 0.99, help: 'Generalized BN: level of the quantile and superquantile' },
  { name: 'frnEps', type: 'enum', values: ['learned', 'fixed'], help: 'FRN: learned or fixed eps' },
  { name: 'snBN', type: 'enum', values: ['on', 'off'], help: "Switchable Norm: include BatchNorm's statistics" },
  { name: 'cnCentered', type: 'enum', values: ['plain', 'centered'], help: 'Cosine Norm: plain or centred cosine' },
  { name: 'preprocess', type: 'enum', values: ['none', 'minmax', 'standardize', 'pca', 'zca'], help: 'data normalization of the inputs (fitted on the training set)' },
  { name: 'batchSize', type: 'int', min: 1, max: 4096, help: 'examples per step' },
  { name: 'batching', type: 'enum', values: ['iid', 'noniid'], help: 'batches drawn i.i.d. or from a few classes each' },
  { name: 'noniidClasses', type: 'int', min: 1, max: 10, help: 'non-i.i.d.: classes per batch' },
  { name: 'optimizer', type: 'enum', values: ['sgd', 'adam', 'adamw'], help: 'optimizer' },
  { name: 'lr', type: 'number', min: 1e-6, max: 10, help: 'learning rate (a sweep: at batch size 32, scaled linearly)' },
  { name: 'momentum', type: 'number', min: 0, max: 0.999, help: 'SGD momentum' },
  { name: 'weightDecay', type: 'number', min: 0, max: 1, help: 'weight decay (weights only)' },
  { name: 'steps', type: 'int', min: 1, max: 200000, help: 'training steps' },
  { name: 'evalInterval', type: 'int', min: 0, max: 200000, help: 'steps between test evaluations (0: steps / 20)' },
  { name: 'seed', type: 'int', min: 0, max: 2147483647, help: 'random seed (data, initial weights, batches)' },
  { name: 'sweep', type: 'intList', min: 1, max: 4096, minLength: 0, maxLength: 8, help: 'batch sizes of a sweep (empty: a single run)' },
  { name: 'sweepEpochs', type: 'int', min: 1, max: 100, help: 'sweep: epochs per batch size' },
  { name: 'shift', type: 'enum', values: ['none', 'invert', 'shift', 'scale', 'noise'], help: 'domain shift of the test inputs (AdaBN)' },
  { name: 'shiftAmount', type: 'number', min: 0, max: 10, help: 'domain shift: amount' },
];

/** The amount each domain shift takes by default (the runner's defaults). */
export const SHIFT_DEFAULT_AMOUNT: Record<string, number> = { invert: 1, shift: 0.5, scale: 2, noise: 0.5 };

export const DEFAULTS: Readonly<State> = Object.freeze({
  preset: '',
  dataset: 'moons',
  noise: 0.2,
  trainSize: 1000,
  testSize: 500,
  classes: 2,
  model: 'mlp',
  depth: 2,
  width: 32,
  channels: [8, 16],
  activation: 'relu',
  methods: ['none', 'bn', 'brn', 'gn', 'ln'],
  bnMomentum: 0.1,
  rMax: 3,
  dMax: 5,
  renormWarmup: 0.1,
  renormRampEnd: 0.5,
  groups: 8,
  brnMomentum: 0.01,
  lrnSize: 5,
  l1bnScale: 'sqrt-pi-2',
  gbnCenter: 'median',
  gbnLevel: 0.5,
  frnEps: 'learned',
  snBN: 'on',
  cnCentered: 'plain',
  preprocess: 'none',
  batchSize: 4,
  batching: 'iid',
  noniidClasses: 2,
  optimizer: 'sgd',
  lr: 0.05,
  momentum: 0.9,
  weightDecay: 0,
  steps: 1500,
  evalInterval: 0,
  seed: 1,
  sweep: [],
  sweepEpochs: 10,
  shift: 'none',
  shiftAmount: 0.5,
}) as Readonly<State>;

/** A fresh, mutable copy of the defaults. */
export function defaultState(): State {
  return { ...DEFAULTS, channels: [...DEFAULTS.channels], methods: [...DEFAULTS.methods], sweep: [...DEFAULTS.sweep] };
}

/** Hashes longer than this are not parsed at all. */
export const MAX_HASH_LENGTH = 2000;

const INT = /^[+-]?\d{1,16}$/;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d{1,3})?$/i;

function parseNumber(raw: string, integer: boolean): number | undefined {
  if (!(integer ? INT : NUMBER).test(raw)) return undefined;
  const v = Number(raw);
  return Number.isFinite(v) ? v : undefined;
}

/** The value of `raw` for `prop`, or undefined when it is not allowed. */
export function parseValue(prop: Prop, raw: string): State[Key] | undefined {
  switch (prop.type) {
    case 'enum':
      return prop.values.includes(raw) ? (raw as State[Key]) : undefined;
    case 'int':
    case 'number': {
      const v = parseNumber(raw, prop.type === 'int');
      return v !== undefined && v >= prop.min && v <= prop.max ? v : undefined;
    }
    case 'intList': {
      if (raw === '') return prop.minLength === 0 ? [] : undefined;
      const parts = raw.split(',');
      if (parts.length < prop.minLength || parts.length > prop.maxLength) return undefined;
      const values = parts.map((p) => parseNumber(p.trim(), true));
      if (values.some((v) => v === undefined || v < prop.min || v > prop.max)) return undefined;
      return values as number[];
    }
    case 'enumList': {
      const parts = raw === '' ? [] : raw.split(',');
      if (parts.length < prop.minLength || parts.length > prop.values.length) return undefined;
      if (parts.some((p) => !prop.values.includes(p)) || new Set(parts).size !== parts.length) return undefined;
      // Shown and run in the table's order.
      return prop.values.filter((v) => parts.includes(v)) as MethodKey[];
    }
  }
}

/** The URL form of one value. */
export function formatValue(prop: Prop, value: State[Key]): string {
  return Array.isArray(value) ? value.join(',') : String(value);
}

/**
 * A short, harmless form of untrusted text for notices: letters, digits and a little punctuation
 * (the page shows notices as text, never as HTML, but they need not carry markup either).
 */
function shown(text: string): string {
  const clean = text.replace(/[^\w .,:=+-]/g, '?');
  return clean.length > 24 ? `${clean.slice(0, 24)}…` : clean;
}

export interface Parsed {
  state: State;
  /** What was ignored or replaced, in plain language; empty when the hash was fine. */
  notices: string[];
}

/**
 * Settings from a location hash (`#dataset=moons&seed=3...`): every property that is present and
 * valid is taken, every other one keeps its default. Unknown names, invalid values, repeated
 * names, undecodable or overlong hashes produce notices.
 */
export function parseHash(hash: string): Parsed {
  const state = defaultState();
  const notices: string[] = [];
  const text = hash.startsWith('#') ? hash.slice(1) : hash;
  if (text === '') return { state, notices };
  if (text.length > MAX_HASH_LENGTH) {
    return { state, notices: [`The link's settings are too long (${text.length} characters); using the defaults.`] };
  }
  const byName = new Map(PROPS.map((p) => [p.name as string, p]));
  const seen = new Set<string>();
  const invalid: string[] = [];
  const unknown: string[] = [];
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    let name: string;
    let raw: string;
    try {
      name = decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq));
      raw = eq < 0 ? '' : decodeURIComponent(pair.slice(eq + 1).replace(/\+/g, ' '));
    } catch {
      invalid.push(shown(pair));
      continue;
    }
    const prop = byName.get(name);
    if (!prop) {
      unknown.push(shown(name));
      continue;
    }
    if (seen.has(name)) {
      invalid.push(`${name} (given twice)`);
      continue;
    }
    seen.add(name);
    const value = parseValue(prop, raw.trim());
    if (value === undefined) invalid.push(`${name}=${shown(raw)}`);
    else (state as unknown as Record<string, unknown>)[name] = value;
  }
  const list = (xs: string[]) => (xs.length > 5 ? `${xs.slice(0, 5).join(', ')} and ${xs.length - 5} more` : xs.join(', '));
  if (invalid.length) notices.push(`Invalid settings in the link were replaced by defaults: ${list(invalid)}.`);
  if (unknown.length) notices.push(`Unknown settings in the link were ignored: ${list(unknown)}.`);
  const checked = checkState(state);
  return { state: checked.state, notices: [...notices, ...checked.notices] };
}

/**
 * Settings that are valid one by one but not together are corrected, with a notice: a CNN needs
 * images, InstanceNorm and LRN need a CNN, FRN in an MLP needs its learned eps, the renorm ramp
 * cannot end before its warmup.
 */
export function checkState(input: State): Parsed {
  const state: State = { ...input, channels: [...input.channels], methods: [...input.methods], sweep: [...input.sweep] };
  const notices: string[] = [];
  const images = !POINT_SETS.includes(state.dataset);
  if (state.model === 'cnn' && !images) {
    state.model = 'mlp';
    notices.push(`The CNN needs an image data set (digits, MNIST); ${state.dataset} uses the MLP.`);
  }
  if (state.model !== 'cnn' && state.methods.some((m) => CNN_ONLY.includes(m))) {
    if (state.methods.includes('in')) notices.push('InstanceNorm needs the CNN (it normalizes over spatial positions); it was left out.');
    if (state.methods.includes('lrn')) notices.push('LRN needs the CNN (it normalizes across neighbouring channels at each position); it was left out.');
    state.methods = state.methods.filter((m) => !CNN_ONLY.includes(m));
    if (state.methods.length === 0) state.methods = [...DEFAULTS.methods];
  }
  if (state.methods.includes('frn') && state.frnEps === 'fixed' && state.model !== 'cnn') {
    notices.push("FRN in the MLP needs a learned eps (with one value per channel, a fixed eps makes it a sign function); it was set to learned.");
    state.frnEps = 'learned';
  }
  if (state.renormRampEnd < state.renormWarmup) {
    notices.push(`Batch Renorm's ramp end (${state.renormRampEnd}) came before its warmup (${state.renormWarmup}); both were reset.`);
    state.renormWarmup = DEFAULTS.renormWarmup;
    state.renormRampEnd = DEFAULTS.renormRampEnd;
  }
  if (state.shift === 'invert' && state.shiftAmount > 1) {
    notices.push(`The invert shift takes an amount from 0 to 1, not ${state.shiftAmount}; it was set to 1.`);
    state.shiftAmount = 1;
  }
  if (state.shift === 'scale' && state.shiftAmount === 0) {
    notices.push('The scale shift needs an amount above 0; it was set to 2.');
    state.shiftAmount = 2;
  }
  return { state, notices };
}

/** The hash of a state: every property, in table order. */
export function toHash(state: State): string {
  return `#${PROPS.map((p) => `${p.name}=${encodeURIComponent(formatValue(p, state[p.name])).replace(/%2C/g, ',')}`).join('&')}`;
}

/** Whether two states hold the same settings (ignoring `preset`). */
export function sameSettings(a: State, b: State): boolean {
  return PROPS.every((p) => p.name === 'preset' || formatValue(p, a[p.name]) === formatValue(p, b[p.name]));
}
