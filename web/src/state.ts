// The playground's settings and their URL form: one table of properties (name, type, allowed
// values or range, default) drives parsing, validation and serialisation of the location hash, so a
// shared link (which always carries the seed) reproduces the run. The methods and their options come
// from the method table (methods.ts): each option is a property of its own, namespaced by its
// method's key as the CLI's `--option` is (`brn.rMax=2`); the flat keys of older links are read
// too (legacy.ts). Anything invalid or hostile in a hash falls back to the default of that setting
// and produces a notice; nothing here touches the DOM.

import { momentumWarning, presets } from 'normlab';
import { fromLegacy } from './legacy.js';
import type { Methods, OptionValue, PageOption } from './methods.js';

/**
 * The presets the page offers: those with a named model (mlp, cnn). A preset with a described model
 * (`model: { layers }`) runs in the CLI and the package only.
 */
export const PAGE_PRESETS = presets.filter((p) => p.config.model?.kind !== 'layers' && p.config.model?.layers === undefined);

export const DATASETS = ['circle', 'xor', 'gauss', 'spiral', 'moons', 'blobs', 'digits', 'mnist', 'user'] as const;
export const POINT_SETS: readonly string[] = ['circle', 'xor', 'gauss', 'spiral', 'moons', 'blobs'];
export type DatasetKey = (typeof DATASETS)[number];
/** 'user': the user's own CSV file, read in the page (userdata.ts); the URL names it, never holds it. */
export const USER_DATA = 'user';

export interface State {
  /** The preset these settings came from ('' for none); only shown, never changes a setting. */
  preset: string;
  dataset: DatasetKey;
  noise: number;
  trainSize: number;
  testSize: number;
  classes: number;
  /** Your data: the file's name (the link says which file to attach again; '' before one is chosen). */
  dataFile: string;
  /** Your data: the label column, by header name or 0-based index ('' for the last column). */
  labelColumn: string;
  /** Your data: the share of the rows held out for testing (stratified, drawn from the seed). */
  testFraction: number;
  /** Your data: the rows are images of this shape [C, H, W] (empty: a row of features). */
  imageShape: number[];
  model: 'mlp' | 'cnn';
  depth: number;
  width: number;
  channels: number[];
  activation: 'relu' | 'tanh';
  /** The compared methods' keys (`bn`, `brn`, ...), in the order they run. */
  methods: string[];
  /** Every offered option of every method by its URL key (`brn.rMax`); null: left out of the config. */
  options: Record<string, OptionValue | null>;
  renormWarmup: number;
  renormRampEnd: number;
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
  /** Seeds per setting ('1', '3', '5', '10'): seed, seed + 1, ...; means with 95% intervals over them. */
  seeds: '1' | '3' | '5' | '10';
  /** Training workers (0: automatic, the machine's cores less one for the page). */
  workers: number;
  /** Batch sizes of a sweep (empty: one run). */
  sweep: number[];
  sweepEpochs: number;
  /** AdaBN: the target domain of the test inputs ('none': no shift). */
  shift: 'none' | 'invert' | 'shift' | 'scale' | 'noise';
  shiftAmount: number;
  /** The runner's probes at every evaluation (CompareConfig.probes): off unless a preset sets them. */
  probes: 'none' | 'landscape' | 'ics' | 'both';
}

/** The settings other than the methods' options, each a property of State. */
export type GeneralKey = Exclude<keyof State, 'options'>;
/** A setting's value: a State field's, or a method option's (null: left out). */
export type Value = State[GeneralKey] | OptionValue | null;

interface Base {
  /** The URL key: a State field, or a method option's namespaced key (`brn.rMax`). */
  name: string;
  /** What the setting means (shown as help text in the controls). */
  help: string;
  /** Set for a method's option. */
  option?: PageOption;
}
export interface EnumProp extends Base {
  type: 'enum';
  values: readonly string[];
}
export interface BooleanProp extends Base {
  type: 'boolean';
}
export interface NumberProp extends Base {
  type: 'int' | 'number';
  min: number;
  max: number;
  /** min itself is out of range (eps > 0). */
  minExclusive?: boolean;
}
export interface IntListProp extends Base {
  type: 'intList';
  min: number;
  max: number;
  minLength: number;
  maxLength: number;
}
/** Free text (a file or column name), shown only as text. */
export interface TextProp extends Base {
  type: 'text';
  maxLength: number;
}
export interface EnumListProp extends Base {
  type: 'enumList';
  values: readonly string[];
  minLength: number;
}
export type Prop = EnumProp | BooleanProp | NumberProp | IntListProp | EnumListProp | TextProp;

/** The settings besides the methods' options; the options follow 'methods' in the URL. */
const GENERAL_PROPS: readonly Prop[] = [
  { name: 'preset', type: 'enum', values: ['', ...PAGE_PRESETS.map((p) => p.name)], help: 'the preset the settings came from' },
  { name: 'dataset', type: 'enum', values: DATASETS, help: 'data set' },
  { name: 'noise', type: 'number', min: 0, max: 1, help: '2-D sets: noise level' },
  { name: 'trainSize', type: 'int', min: 10, max: 20000, help: '2-D sets: training examples' },
  { name: 'testSize', type: 'int', min: 10, max: 5000, help: 'held-out test examples' },
  { name: 'classes', type: 'int', min: 2, max: 8, help: 'spiral and blobs: classes' },
  { name: 'dataFile', type: 'text', maxLength: 200, help: 'your data: the name of the CSV file (the data itself is never in the link)' },
  { name: 'labelColumn', type: 'text', maxLength: 200, help: 'your data: the label column, by name or 0-based index (empty: the last column)' },
  { name: 'testFraction', type: 'number', min: 0, max: 0.9, minExclusive: true, help: 'your data: share of the rows held out for testing' },
  { name: 'imageShape', type: 'intList', min: 1, max: 4096, minLength: 0, maxLength: 3, help: 'your data: rows are images of shape C,H,W (empty: features)' },
  { name: 'model', type: 'enum', values: ['mlp', 'cnn'], help: 'model: MLP, or a small CNN (digits, MNIST)' },
  { name: 'depth', type: 'int', min: 1, max: 8, help: 'MLP: hidden layers' },
  { name: 'width', type: 'int', min: 1, max: 1024, help: 'MLP: units per hidden layer' },
  { name: 'channels', type: 'intList', min: 1, max: 128, minLength: 1, maxLength: 4, help: 'CNN: channels per conv block' },
  { name: 'activation', type: 'enum', values: ['relu', 'tanh'], help: 'activation' },
  // 'methods' is added by the Settings (its values are the table's).
  { name: 'renormWarmup', type: 'number', min: 0, max: 1, help: 'Batch Renorm: fraction of steps as plain BatchNorm' },
  { name: 'renormRampEnd', type: 'number', min: 0, max: 1, help: 'Batch Renorm: fraction of steps by which the limits reach rMax, dMax' },
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
  { name: 'seeds', type: 'enum', values: ['1', '3', '5', '10'], help: 'seeds per setting (seed, seed + 1, ...): curves as means with 95% bands, intervals in the table' },
  { name: 'workers', type: 'int', min: 0, max: 16, help: 'training workers (0: the machine\'s cores less one for the page)' },
  { name: 'sweep', type: 'intList', min: 1, max: 4096, minLength: 0, maxLength: 8, help: 'batch sizes of a sweep (empty: a single run)' },
  { name: 'sweepEpochs', type: 'int', min: 1, max: 100, help: 'sweep: epochs per batch size' },
  { name: 'shift', type: 'enum', values: ['none', 'invert', 'shift', 'scale', 'noise'], help: 'domain shift of the test inputs (AdaBN)' },
  { name: 'shiftAmount', type: 'number', min: 0, max: 10, help: 'domain shift: amount' },
  { name: 'probes', type: 'enum', values: ['none', 'landscape', 'ics', 'both'], help: 'probes at every evaluation: the loss landscape along the gradient, internal covariate shift per layer, or both (Santurkar et al. 2018)' },
];

/** The settings of your data (in a link only while it is the data set, or when changed). */
const USER_DATA_KEYS: readonly string[] = ['dataFile', 'labelColumn', 'testFraction', 'imageShape'];

/** Whether the state's examples are images (the CNN and the spatial methods need them). */
export function hasImages(state: State): boolean {
  return state.dataset === USER_DATA ? state.imageShape.length === 3 : !POINT_SETS.includes(state.dataset);
}

/** The amount each domain shift takes by default (the runner's defaults). */
export const SHIFT_DEFAULT_AMOUNT: Record<string, number> = { invert: 1, shift: 0.5, scale: 2, noise: 0.5 };

/** The defaults of the settings besides the methods' options (those come from the table). */
export const DEFAULTS: Readonly<Omit<State, 'options'>> = Object.freeze({
  preset: '',
  dataset: 'moons',
  noise: 0.2,
  trainSize: 1000,
  testSize: 500,
  classes: 2,
  dataFile: '',
  labelColumn: '',
  testFraction: 0.2,
  imageShape: [],
  model: 'mlp',
  depth: 2,
  width: 32,
  channels: [8, 16],
  activation: 'relu',
  methods: ['none', 'bn', 'brn', 'gn', 'ln'],
  renormWarmup: 0.1,
  renormRampEnd: 0.5,
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
  seeds: '1',
  workers: 0,
  sweep: [],
  sweepEpochs: 10,
  shift: 'none',
  shiftAmount: 0.5,
  probes: 'none',
}) as Omit<State, 'options'>;

/** Hashes longer than this are not parsed at all. */
export const MAX_HASH_LENGTH = 2000;

const INT = /^[+-]?\d{1,16}$/;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d{1,3})?$/i;

function parseNumber(raw: string, integer: boolean): number | undefined {
  if (!(integer ? INT : NUMBER).test(raw)) return undefined;
  const v = Number(raw);
  return Number.isFinite(v) ? v : undefined;
}

/** The property of a method's option: its type, range or values and help from the table. */
function optionProp(option: PageOption): Prop {
  const { info } = option;
  const base = { name: option.name, help: info.help, option };
  switch (info.type) {
    case 'boolean':
      return { ...base, type: 'boolean' };
    case 'string':
      return { ...base, type: 'enum', values: info.values ?? [] };
    default:
      return {
        ...base, type: info.type === 'integer' ? 'int' : 'number',
        min: info.min ?? -Infinity, max: info.max ?? Infinity, minExclusive: info.exclusiveMin === true,
      };
  }
}

/** The value of `raw` for `prop`, or undefined when it is not allowed. */
export function parseValue(prop: Prop, raw: string): Value | undefined {
  if (raw === '' && prop.option?.optional) return null;
  switch (prop.type) {
    case 'enum':
      return prop.values.includes(raw) ? raw : undefined;
    case 'boolean':
      return raw === 'true' ? true : raw === 'false' ? false : undefined;
    case 'int':
    case 'number': {
      const v = parseNumber(raw, prop.type === 'int');
      if (v === undefined || v > prop.max) return undefined;
      return (prop.minExclusive ? v > prop.min : v >= prop.min) ? v : undefined;
    }
    case 'intList': {
      if (raw === '') return prop.minLength === 0 ? [] : undefined;
      const parts = raw.split(',');
      if (parts.length < prop.minLength || parts.length > prop.maxLength) return undefined;
      const values = parts.map((p) => parseNumber(p.trim(), true));
      if (values.some((v) => v === undefined || v < prop.min || v > prop.max)) return undefined;
      return values as number[];
    }
    case 'text':
      // Printable text only: it is shown, never interpreted.
      return raw.length <= prop.maxLength && !/[\u0000-\u001f\u007f]/.test(raw) ? raw : undefined;
    case 'enumList': {
      const parts = raw === '' ? [] : raw.split(',');
      if (parts.length < prop.minLength || parts.length > prop.values.length) return undefined;
      if (parts.some((p) => !prop.values.includes(p)) || new Set(parts).size !== parts.length) return undefined;
      // Run (and shown in the tables) in the link's order.
      return parts;
    }
  }
}

/** The URL form of one value ('' for a left-out option). */
export function formatValue(value: Value): string {
  if (value === null) return '';
  return Array.isArray(value) ? value.join(',') : String(value);
}

/** A setting's value in a state. */
export function valueOf(state: State, prop: Prop): Value {
  return prop.option ? state.options[prop.name] ?? null : state[prop.name as GeneralKey];
}

/** A copy of `state` with one setting changed. */
export function withValue(state: State, prop: Prop, value: Value): State {
  if (prop.option) return { ...state, options: { ...state.options, [prop.name]: value as OptionValue | null } };
  return { ...state, [prop.name]: value };
}

/** A copy that shares no arrays or objects with `state`. */
function copy(state: State): State {
  return {
    ...state, channels: [...state.channels], methods: [...state.methods], sweep: [...state.sweep], imageShape: [...state.imageShape],
    options: { ...state.options },
  };
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

/** The settings table of a method list: the properties, the defaults, and the URL form. */
export class Settings {
  readonly methods: Methods;
  /** Every setting in URL order: the general ones, with every method's options after 'methods'. */
  readonly props: readonly Prop[];
  /** The general settings (State fields) only. */
  readonly generalProps: readonly Prop[];
  readonly optionProps: readonly Prop[];
  readonly #byName: Map<string, Prop>;
  readonly #defaults: State;

  constructor(methods: Methods) {
    this.methods = methods;
    const methodsProp: EnumListProp = {
      name: 'methods', type: 'enumList', values: methods.list.map((m) => m.key), minLength: 1,
      help: 'normalization methods to compare, in the order they run',
    };
    const at = GENERAL_PROPS.findIndex((p) => p.name === 'activation') + 1;
    this.generalProps = [...GENERAL_PROPS.slice(0, at), methodsProp, ...GENERAL_PROPS.slice(at)];
    this.optionProps = methods.options.map(optionProp);
    this.props = [...this.generalProps.slice(0, at + 1), ...this.optionProps, ...this.generalProps.slice(at + 1)];
    this.#byName = new Map(this.props.map((p) => [p.name, p]));
    const options: State['options'] = {};
    for (const o of methods.options) options[o.name] = o.initial;
    this.#defaults = { ...DEFAULTS, options };
  }

  /** The property of a URL key. */
  prop(name: string): Prop | undefined {
    return this.#byName.get(name);
  }

  /** A fresh, mutable copy of the defaults. */
  defaultState(): State {
    return copy(this.#defaults);
  }

  /**
   * Settings from a location hash (`#dataset=moons&brn.rMax=2&seed=3...`): every property that is
   * present and valid is taken, every other one keeps its default. The flat keys of older links
   * (`rMax=2`) stand for their namespaced keys. Unknown names, invalid values, repeated names,
   * undecodable or overlong hashes produce notices.
   */
  parseHash(hash: string): Parsed {
    let state = this.defaultState();
    const notices: string[] = [];
    const text = hash.startsWith('#') ? hash.slice(1) : hash;
    if (text === '') return { state, notices };
    if (text.length > MAX_HASH_LENGTH) {
      return { state, notices: [`The link's settings are too long (${text.length} characters); using the defaults.`] };
    }
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
      const legacy = fromLegacy(name, raw.trim());
      const key = legacy ? legacy.key : name;
      const prop = this.#byName.get(key);
      if (!prop) {
        unknown.push(shown(name));
        continue;
      }
      if (seen.has(key)) {
        invalid.push(`${shown(name)} (given twice)`);
        continue;
      }
      seen.add(key);
      const given = legacy ? legacy.raw : raw.trim();
      const value = given === undefined ? undefined : this.#parse(prop, given);
      if (value === undefined) invalid.push(`${shown(name)}=${shown(raw)}`);
      else state = withValue(state, prop, value);
    }
    const list = (xs: string[]) => (xs.length > 5 ? `${xs.slice(0, 5).join(', ')} and ${xs.length - 5} more` : xs.join(', '));
    if (invalid.length) notices.push(`Invalid settings in the link were replaced by defaults: ${list(invalid)}.`);
    if (unknown.length) notices.push(`Unknown settings in the link were ignored: ${list(unknown)}.`);
    const checked = this.checkState(state);
    return { state: checked.state, notices: [...notices, ...checked.notices] };
  }

  /** parseValue, with the methods named by any of their names or aliases (kept as their keys). */
  #parse(prop: Prop, raw: string): Value | undefined {
    if (prop.name !== 'methods' || raw === '') return parseValue(prop, raw);
    const keys = raw.split(',').map((m) => this.methods.get(m)?.key ?? m);
    return parseValue(prop, keys.join(','));
  }

  /**
   * Settings that are valid one by one but not together are corrected, with a notice: a CNN needs
   * images, methods that need spatial dims need a CNN, FRN in an MLP needs its learned eps, the
   * renorm ramp cannot end before its warmup.
   */
  checkState(input: State): Parsed {
    const state = copy(input);
    const notices: string[] = [];
    if (state.imageShape.length !== 0 && state.imageShape.length !== 3) {
      notices.push(`An image shape is three numbers, C,H,W (e.g. 1,8,8), not ${state.imageShape.join(',')}; it was cleared.`);
      state.imageShape = [];
    }
    if (state.model === 'cnn' && !hasImages(state)) {
      state.model = 'mlp';
      notices.push(state.dataset === USER_DATA
        ? 'The CNN needs images: give your data an image shape (C,H,W); until then it uses the MLP.'
        : `The CNN needs an image data set (digits, MNIST, or your data with an image shape); ${state.dataset} uses the MLP.`);
    }
    if (state.model !== 'cnn') {
      const spatial = state.methods.flatMap((k) => this.methods.get(k) ?? []).filter((m) => m.needsSpatialDims);
      for (const m of spatial) {
        notices.push(`${m.label} needs the CNN (it works on image feature maps, [N, C, H, W]); it was left out.`);
      }
      if (spatial.length) {
        state.methods = state.methods.filter((k) => !spatial.some((m) => m.key === k));
        if (state.methods.length === 0) state.methods = [...DEFAULTS.methods];
      }
    }
    // FRN normalizes each channel by its mean square over the positions: in an MLP that is one
    // value, so with a fixed eps the layer is a sign function.
    if (state.methods.includes('frn') && state.options['frn.learnableEps'] === false && state.model !== 'cnn') {
      notices.push("FRN in the MLP needs a learned eps (with one value per channel, a fixed eps makes it a sign function); it was set to learned.");
      state.options['frn.learnableEps'] = true;
    }
    if (state.renormRampEnd < state.renormWarmup) {
      notices.push(`Batch Renorm's ramp end (${state.renormRampEnd}) came before its warmup (${state.renormWarmup}); both were reset.`);
      state.renormWarmup = DEFAULTS.renormWarmup;
      state.renormRampEnd = DEFAULTS.renormRampEnd;
    }
    // A momentum of Keras's habit: kept (it is a valid setting), with the convention spelled out.
    for (const key of state.methods) {
      const value = state.options[`${key}.momentum`];
      const m = this.methods.get(key);
      if (m && typeof value === 'number' && value >= 0.5) notices.push(`${momentumWarning(m.label, value)}.`);
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

  /**
   * The hash of a state: every general setting in table order, and after 'methods' the options of
   * the compared methods plus any other option that differs from its default (so the hash gives
   * the state back exactly, and stays short). Your data's settings appear while it is the data
   * set; the data never does.
   */
  toHash(state: State): string {
    const changed = (p: Prop) => formatValue(valueOf(state, p)) !== formatValue(valueOf(this.#defaults, p));
    // Options of the compared methods, and your data's settings while it is the data set.
    const shownProps = this.props.filter((p) => p.option ? state.methods.includes(p.option.method) || changed(p)
      : !USER_DATA_KEYS.includes(p.name) || state.dataset === USER_DATA || changed(p));
    return `#${shownProps.map((p) => `${p.name}=${encodeURIComponent(formatValue(valueOf(state, p))).replace(/%2C/g, ',')}`).join('&')}`;
  }

  /** Whether two states hold the same settings (ignoring `preset`). */
  sameSettings(a: State, b: State): boolean {
    return this.props.every((p) => p.name === 'preset' || formatValue(valueOf(a, p)) === formatValue(valueOf(b, p)));
  }
}
