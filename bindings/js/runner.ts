/// <reference lib="esnext.disposable" preserve="true" />
// The comparison runner's public types and the Runner class (a thin layer over RunnerHandle).
import type { LayerDescription } from './model.js';
import type { NormlabWasmModule, RunnerHandle } from './normlab_wasm.js';
import { OwnedHandle } from './handle.js';
import type { Method, MethodAlias } from './types.js';
import { isUserDataset, resolveDataset, type ArrayDataset, type CsvDataset, type CsvParser, type DatasetSource } from './dataset.js';

/**
 * A method name of the layer API, `none`, or a short alias (`MethodAliases`: `bn` is `batchnorm`;
 * `nl.describeMethods()` lists every method's aliases). The weight methods (weightnorm, cosinenorm)
 * make the model's hidden Linear / Conv2d layers weight-normalized or cosine-normalized instead of
 * adding a layer after them.
 */
export type MethodName = Method | 'none' | MethodAlias;

/** One method of a comparison, with options beyond those the model fills in (channels, shapes). */
export interface MethodEntry {
  method: MethodName;
  /**
   * Layer options, e.g. `{ groups: 8 }` for groupnorm, `{ rMax: 3, dMax: 5 }` for batchrenorm or
   * `{ centered: true }` for cosinenorm (weightnorm takes none).
   */
  options?: Record<string, unknown>;
  /** Name in tables and legends. */
  label?: string;
  /** Key of this method in results (default: bn, brn, ln, gn, in, none; -2, -3 for repeats). */
  id?: string;
}

/** Data sets: the 2-D sets are generated from the seed; digits and mnist are real images. */
export type DatasetName = 'circle' | 'xor' | 'gauss' | 'spiral' | 'moons' | 'blobs' | 'digits' | 'mnist';

/** A built-in data set of a comparison (`CompareConfig.dataset`). */
export interface BuiltinDataset {
  name?: DatasetName;
  /** 2-D sets: noise level. */
  noise?: number;
  /** 2-D sets: examples generated for training. */
  trainSize?: number;
  /** Held-out test examples. */
  testSize?: number;
  /** spiral and blobs: number of classes. */
  classes?: number;
}

/** One comparison: every method trains its own copy of the model, same weights, same batches. */
export interface CompareConfig {
  /**
   * A built-in set by name, or the user's own data: arrays (`{ x, labels, shape }`, see
   * `ArrayDataset`) or CSV text (`{ csv, labelColumn }`, see `CsvDataset`), copied into the module
   * once when the runner is created. Default `{ name: 'moons' }`.
   */
  dataset?: BuiltinDataset | ArrayDataset | CsvDataset;
  /**
   * The model: a named one (`kind` mlp or cnn, with its sizes), or a description of its body,
   * `{ layers }` (a compact string such as `"conv:16,norm,relu,pool:2,res[conv:16,norm],gap"`, or a
   * list of `LayerDescription`s), where each `norm` is the slot the compared method fills; normlab
   * adds the flatten and the final Linear. The README's "Model descriptions" section lists the layers.
   */
  model?: {
    kind?: 'mlp' | 'cnn' | 'layers';
    /** The body of a described model (not with hidden, channels or activation). */
    layers?: string | readonly LayerDescription[];
    /** mlp: hidden widths (default [128, 128]); each hidden Linear is followed by the norm. */
    hidden?: number[];
    /** cnn: channels of the conv3x3 blocks (default [8, 16]). */
    channels?: number[];
    activation?: 'relu' | 'tanh';
  };
  methods: (MethodName | MethodEntry)[];
  batchSize?: number;
  /** `iid` (shuffled) or `noniid:K`: every batch drawn from K classes only. */
  batching?: 'iid' | `noniid:${number}`;
  optimizer?: {
    kind?: 'sgd' | 'adam' | 'adamw';
    lr?: number;
    momentum?: number;
    nesterov?: boolean;
    weightDecay?: number;
    beta1?: number;
    beta2?: number;
    eps?: number;
  };
  schedule?: { kind?: 'constant' | 'step' | 'cosine'; stepSize?: number; gamma?: number; minLr?: number; warmup?: number };
  steps?: number;
  /** Steps between evaluations on the test set (default steps / 20). */
  evalInterval?: number;
  seed?: number;
  /**
   * Several seeds instead of one (`nl.compare` then gives a `SeedsResult`): a full comparison per
   * seed, each exactly the run with `seed` set to it, summarized with 95% intervals over the seeds.
   */
  seeds?: number[];
  /** With `seeds`: the method id the paired differences are against (default the first method's). */
  baseline?: string;
  /**
   * Batch Renorm's limits schedule (the paper's): plain BatchNorm (rMax 1, dMax 0) for the first
   * `warmup` fraction of the steps, then linear relaxation to the layer's rMax and dMax by `rampEnd`.
   * `false` keeps the layer's limits throughout. Default `{ warmup: 0.1, rampEnd: 0.5 }`.
   */
  renormSchedule?: { warmup?: number; rampEnd?: number } | false;
  /**
   * AdaBN (Li et al. 2016): shift the test inputs to a target domain and report, at the end, each
   * method's accuracy there before and after re-estimating its population statistics on the
   * (unlabeled) shifted inputs. `invert` blends x toward 1 - x by `amount` (default 1), `shift` adds
   * `amount` (0.5), `scale` multiplies by it (2), `noise` adds Gaussian noise of std `amount` (0.5).
   */
  domainShift?: { kind: 'invert' | 'shift' | 'scale' | 'noise'; amount?: number } | null;
  /**
   * Data normalization fitted on the training inputs and applied to all data: `minmax`,
   * `standardize`, `pca` or `zca` whitening (with `eps`, default 1e-5). Default: none.
   */
  preprocess?: 'minmax' | 'standardize' | 'pca' | 'zca' | { kind: 'minmax' | 'standardize' | 'pca' | 'zca'; eps?: number } | null;
  /**
   * Probes at every evaluation, after Santurkar et al. 2018 (https://arxiv.org/abs/1805.11604), on a
   * fixed batch of training examples drawn from the seed, in training mode, on copies of each model:
   * the training itself is bit for bit the same with or without them. Default: none.
   */
  probes?: ProbesConfig | null;
}

/** `CompareConfig.probes`. */
export interface ProbesConfig {
  /**
   * The loss and its gradient at `w - eta * g` (g the gradient at the current weights w) for each
   * step size of `etas`: `EvalRecord.landscape`. Costs one forward and backward pass of the probe
   * batch per step size, plus one for g.
   */
  landscape?: boolean;
  /**
   * Internal covariate shift per layer: how each layer's gradient changes when the layers below it
   * take their update step (`EvalRecord.ics`). Costs one pass per layer reported.
   */
  ics?: boolean;
  /** The landscape's step sizes (1 to 16, each > 0). Default: the optimizer's lr times 1/4, 1/2, 1, 2, 4. */
  etas?: number[];
}

/** `EvalRecord.landscape`: the loss and its gradient along the gradient, on the probe batch. */
export interface LandscapeRecord {
  /** The step sizes, as configured. */
  etas: number[];
  /** L(w), at the current weights. */
  loss: number;
  /** L(w - eta g) per step size; null where the loss is not finite. */
  losses: (number | null)[];
  /** The smallest and largest of `losses` (the paper's Figure 4a band). */
  lossMin: number | null;
  lossMax: number | null;
  /** ||g||, over every parameter. */
  gradientNorm: number;
  /** ||g - grad L(w - eta g)|| per step size (gradient predictiveness, Figure 4b). */
  gradientDistances: (number | null)[];
  gradientDistanceMax: number | null;
  /** Effective beta-smoothness: the largest ||g - grad L(w - eta g)|| / ||eta g|| (Figure 4c); 0 when g = 0. */
  betaSmoothness: number | null;
}

/** One row of `EvalRecord.ics`: a layer's internal covariate shift (Santurkar et al., Definition 2.1). */
export interface IcsRecord {
  /**
   * The layer: 1-based among the model's layers with weights (Linear, Conv2d, residual blocks; not
   * the normalization layers), so the same number names the same layer for every method. Layers
   * with nothing below them (the first) have no row.
   */
  layer: number;
  /** "linear", "conv2d", "residual(...)". */
  kind: string;
  /** ||G - G'||: G the layer's gradient, G' the same after the layers below took their update step. */
  l2: number;
  /** The cosine of the angle between G and G' (1: the same direction); null if either is zero. */
  cosine: number | null;
}

/** [min, mean, max] over channels. */
export type Range3 = [number, number, number];

export interface EvalRecord {
  step: number;
  /** Inference mode: running statistics. */
  testLoss: number;
  testAccuracy: number;
  /** Training mode: each test batch (of the training batch size) normalized with its own statistics. */
  testLossBatchStats: number | null;
  testAccuracyBatchStats: number | null;
  /**
   * Per hidden layer, percentiles [2, 16, 50, 84, 98] of the pre-normalization activations of
   * channel 0 over 256 test examples (the Batch Normalization paper's Figure 1).
   */
  activations: number[][];
  /** Batch Renorm only: per layer, r and d of the last training step against the limits. */
  renorm?: { r: Range3; d: Range3; rMax: number; dMax: number }[];
  /** With a domainShift, at the last step: accuracy on the shifted test set before and after AdaBN. */
  target?: { accuracy: number; accuracyAdapted: number };
  /** With `probes.landscape`: the loss landscape along the gradient on the probe batch. */
  landscape?: LandscapeRecord;
  /** With `probes.ics`: internal covariate shift per layer on the probe batch. */
  ics?: IcsRecord[];
}

export interface FinalRecord {
  step: number;
  testAccuracy: number;
  testAccuracyBatchStats: number | null;
  testLoss: number;
  testLossBatchStats: number | null;
  /** With a domainShift: accuracy on the shifted test set before and after AdaBN. */
  target: { accuracy: number; accuracyAdapted: number } | null;
  /** Averaged over the last 10% of the steps. */
  trainLoss: number | null;
  trainAccuracy: number | null;
}

export interface MethodResult {
  id: string;
  method: Method | 'none';
  label: string;
  options: Record<string, unknown>;
  /** The layers, e.g. "flatten linear batchnorm relu linear batchnorm relu linear". */
  model: string;
  /** Per training step (training mode, that step's batch). */
  train: { loss: number[]; accuracy: number[] };
  eval: EvalRecord[];
  /** Set when the training loss became NaN or infinite; the method stopped there. */
  diverged: { step: number; reason: string } | null;
  final: FinalRecord | null;
}

/** A configuration with every default filled in (what the runner ran). */
export interface ResolvedConfig {
  /**
   * A built-in set (noise, trainSize and classes only for the generated 2-D sets), or the user's
   * own data: its name, how it was read, and the share held out for testing (null when a test set
   * was given).
   */
  dataset: (BuiltinDataset & { name: DatasetName; testSize: number }) |
    { name: string; source: DatasetSource; testFraction: number | null };
  /** A named model with its sizes, or a described one with every field of its layers filled in. */
  model: { kind: 'mlp' | 'cnn'; hidden: number[]; channels: number[]; activation: 'relu' | 'tanh' } |
    { kind: 'layers'; layers: LayerDescription[] };
  methods: Required<MethodEntry>[];
  batchSize: number;
  batching: 'iid' | `noniid:${number}`;
  /** sgd: momentum and nesterov; adam, adamw: beta1, beta2, eps. */
  optimizer: NonNullable<CompareConfig['optimizer']> & { kind: 'sgd' | 'adam' | 'adamw'; lr: number; weightDecay: number };
  schedule: Required<NonNullable<CompareConfig['schedule']>>;
  steps: number;
  evalInterval: number;
  seed: number;
  renormSchedule: { warmup: number; rampEnd: number } | false;
  domainShift: { kind: 'invert' | 'shift' | 'scale' | 'noise'; amount: number } | null;
  preprocess: { kind: 'minmax' | 'standardize' | 'pca' | 'zca'; eps: number } | null;
  /** Only in a run with probes: which, and the landscape's step sizes (null without the landscape). */
  probes?: { landscape: boolean; ics: boolean; etas: number[] | null };
}

export interface CompareResult {
  /** The configuration with every default filled in. */
  config: ResolvedConfig;
  /**
   * Examples for training and testing, and the classes. The user's own data adds its name and the
   * classes' names (class k of the labels is `classNames[k]`).
   */
  data: { train: number; test: number; classes: number; name?: string; classNames?: string[] };
  stepsDone: number;
  done: boolean;
  methods: MethodResult[];
}

/** What a `step` call adds, per method id. */
export interface ProgressEvent {
  step: number;
  steps: number;
  methods: Record<string, {
    /** Index of the first step in `train`. */
    firstStep: number;
    /** [loss, accuracy] per step taken. */
    train: [number, number][];
    eval: EvalRecord[];
    diverged?: { step: number; reason: string };
  }>;
}

export interface MethodTiming {
  trainMs: number;
  /** Every evaluation, its probes included. */
  evalMs: number;
  msPerStep: number;
  /** Evaluations so far. */
  evaluations: number;
  /** The probes' share of evalMs (0 without probes). */
  probeMs: number;
}

/** Options of `Runner.predict`. */
export interface PredictOptions {
  /**
   * Predict with the model folded for deployment (see `Runner.fold`): the same outputs up to float
   * rounding, without the foldable normalization layers. Default false.
   */
  folded?: boolean;
}

/** A normalization layer folded into the Linear / Conv2d before it (`FoldSummary.folded`). */
export interface FoldedLayer {
  /** Index of the normalization layer in the unfolded model. */
  layer: number;
  method: Method;
  /** The layer it was folded into. */
  into: 'linear' | 'conv2d';
}

/** A normalization layer left in the folded model (`FoldSummary.kept`). */
export interface KeptLayer {
  layer: number;
  method: Method;
  /** Why: "inference depends on the sample", "uses batch statistics at inference ...", ... */
  reason: string;
}

/** What `Runner.fold` did to one method's model, and how far the folded model is from it. */
export interface FoldSummary {
  folded: FoldedLayer[];
  kept: KeptLayer[];
  /** Layer counts of the unfolded and the folded model. */
  layers: { before: number; after: number };
  /** The layer kinds in order, e.g. "flatten linear batchnorm relu linear" and "flatten linear relu linear". */
  summary: { before: string; after: string };
  /** The largest |logit difference| between the two models over the test set (null if NaN). */
  maxAbsDiff: number | null;
}

function parsed<T>(result: string | { error: string }): T {
  if (typeof result !== 'string') throw new Error(result.error);
  return JSON.parse(result) as T;
}

/**
 * A comparison in progress, stepped by its owner (for a Web Worker, or to pause: just stop
 * stepping). Owns WebAssembly memory: free it with `dispose()`.
 */
export class Runner extends OwnedHandle<RunnerHandle> {
  /** The configuration with every default filled in. */
  readonly config: CompareResult['config'];

  /** @internal Use `Normlab.createRunner`. */
  constructor(raw: NormlabWasmModule, csv: CsvParser, config: CompareConfig, data?: Uint8Array) {
    if (config === null || typeof config !== 'object' || Array.isArray(config)) {
      throw new Error('config must be an object like { methods: ["bn", "gn"] }');
    }
    if (data !== undefined && !(data instanceof Uint8Array)) {
      throw new Error('createRunner: data must be a Uint8Array (the data set file)');
    }
    if (config.seeds !== undefined || config.baseline !== undefined) {
      throw new Error('createRunner: a runner runs one seed (config.seed); nl.compare runs a comparison over config.seeds');
    }
    const toJson = (c: unknown) => JSON.stringify(c, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
    // The user's own data: checked and mapped to classes here; the arrays cross into the module once.
    const user = isUserDataset(config.dataset) ? resolveDataset(config.dataset, csv) : undefined;
    if (user && data !== undefined) {
      throw new Error('createRunner: data bytes are for the digits and mnist data sets; the examples of your own data go in config.dataset');
    }
    const builtin = user ? undefined : (config.dataset as { name?: unknown } | undefined)?.name ?? 'moons';
    if (data !== undefined && builtin !== 'digits' && builtin !== 'mnist') {
      throw new Error(`createRunner: data bytes are for the digits and mnist data sets, not ${JSON.stringify(builtin)}, ` +
        'which is generated; your own data goes in config.dataset ({ x, labels, shape } or { csv })');
    }
    const handle = new raw.RunnerHandle();
    let resolved: CompareResult['config'];
    try {
      resolved = parsed(user
        ? handle.createWithData(toJson({ ...config, dataset: user.spec }), user.x, user.labels, user.shape,
          user.testX, user.testLabels, user.classNames)
        : handle.create(toJson(config), data));
    } catch (error) {
      handle.delete();
      // Messages about the data set's size (batch size, memory) say where its rows are.
      if (user?.rows && error instanceof Error && error.message.startsWith(`${user.spec.name}: `)) {
        throw new Error(`${error.message} (${user.rows})`);
      }
      throw error;
    }
    super('runner', handle);
    this.config = resolved;
  }

  /** Runs up to `n` more steps of every method and returns what they added. */
  step(n = 1): ProgressEvent {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 31 - 1) {
      throw new Error(`runner: step count must be a positive integer, got ${String(n)}`);
    }
    return parsed(this.handle('step').step(n));
  }

  /**
   * The shape of one sample (`[2]` for 2-D sets, `[1, H, W]` for images), the class count, and for
   * the user's own data the classes' names.
   */
  dataInfo(): { sampleShape: number[]; classes: number; classNames?: string[] } {
    return this.handle('dataInfo').dataInfo();
  }

  /**
   * Class probabilities (n x classes, row-major) of method `id`'s current model in inference mode
   * for n samples of the data set's sample shape, e.g. a grid of 2-D points for a decision map.
   * Samples are in the data set's own units: a run's `preprocess` transform is applied to them.
   * With `{ folded: true }`, of the model folded for deployment (see `fold`).
   */
  predict(id: string, samples: Float32Array, options: PredictOptions = {}): Float32Array {
    const handle = this.handle('predict');
    if (!(samples instanceof Float32Array)) throw new Error('runner: predict takes a Float32Array of samples');
    if (options === null || typeof options !== 'object') throw new Error('runner: predict options must be an object like { folded: true }');
    const folded = options.folded ?? false;
    if (typeof folded !== 'boolean') throw new Error(`runner: predict's folded must be a boolean, got ${String(folded)}`);
    const result = handle.predict(String(id), samples, folded);
    if (!(result instanceof Float32Array)) throw new Error(result.error);
    return result;
  }

  /**
   * AdaBN (Li et al. 2016): re-estimates the population statistics of every normalization layer of
   * method `id`'s model that keeps them (the methods whose `populationStatistics` in
   * `nl.describeMethods()` is not empty, e.g. batchnorm, and switchablenorm's BN part) on unlabeled
   * target-domain `samples` (in the data set's units, like `predict`), layer by layer; weights do
   * not change, and `predict` then uses the new statistics. Returns the number of layers adapted
   * (0 for methods with nothing to adapt).
   */
  adaptBatchNorm(id: string, samples: Float32Array): number {
    const handle = this.handle('adaptBatchNorm');
    if (!(samples instanceof Float32Array)) throw new Error('runner: adaptBatchNorm takes a Float32Array of samples');
    const result = handle.adaptBatchNorm(String(id), samples);
    if (typeof result !== 'number') throw new Error(result.error);
    return result;
  }

  /**
   * The first `max` examples (default 1,000) of the training or test set, in the data set's own
   * units (a run's preprocessing undone), with their labels: e.g. the points to draw on a decision
   * map. `x` holds `count` samples of `dataInfo().sampleShape`, row-major.
   */
  samples(which: 'train' | 'test' = 'train', max = 1000): { x: Float32Array; labels: Int32Array; count: number } {
    const handle = this.handle('samples');
    if (which !== 'train' && which !== 'test') throw new Error(`runner: samples() takes 'train' or 'test', got ${String(which)}`);
    if (!Number.isInteger(max) || max < 1 || max > 2 ** 31 - 1) {
      throw new Error(`runner: samples() needs a positive integer count, got ${String(max)}`);
    }
    const result = handle.samples(which, max);
    if ('error' in result) throw new Error(result.error);
    return { ...result, count: result.labels.length };
  }

  /**
   * Folds method `id`'s current model for deployment: each normalization layer of a foldable method
   * (`foldable` in `nl.describeMethods()`, e.g. batchnorm) directly after a Linear or Conv2d goes
   * into that layer's weight and bias (its inference form is a per-channel affine map of running
   * statistics); the others are kept. Returns what was folded and kept, and the largest logit difference on the test set. The
   * training model is not changed.
   */
  fold(id: string): FoldSummary {
    return parsed(this.handle('fold').fold(String(id)));
  }

  /** Steps taken so far. */
  get stepsDone(): number {
    return this.handle('stepsDone').stepsDone();
  }

  /** Whether all configured steps have run. */
  get done(): boolean {
    return this.handle('done').done();
  }

  /** The full result so far (final once `done`). Identical for identical configurations and seeds. */
  result(): CompareResult {
    return parsed(this.handle('result').result());
  }

  /** Wall time per method so far (varies between runs, so it is not part of `result()`). */
  timing(): Record<string, MethodTiming> {
    return parsed(this.handle('timing').timing());
  }
}
