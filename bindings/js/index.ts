// Our declarations use Symbol.dispose; this brings its lib types to consumers whose `lib` lacks it.
/// <reference lib="esnext.disposable" preserve="true" />
/**
 * normlab: normalization layers (BatchNorm, Batch Renormalization, LayerNorm, GroupNorm,
 * InstanceNorm, LRN, RMSNorm, FRN + TLU, L1-norm BatchNorm, Generalized BatchNorm, Switchable
 * Normalization, ...) and weight normalizations (Weight Normalization, Cosine Normalization of a
 * Linear or Conv2d layer) compiled to WebAssembly, for Node >= 20 and browsers.
 *
 * ```js
 * import { load } from 'normlab';
 * const nl = await load();
 * const layer = nl.createLayer('batchnorm', { channels: 16 });
 * const y = layer.forward(x, [N, 16, H, W], { training: true });
 * const dx = layer.backward(dy);
 * layer.dispose();
 * ```
 *
 * Every object that owns WebAssembly memory must be freed with `dispose()` (or a `using`
 * declaration, or `nl.scope()`). Arrays cross the boundary as copies: what you get is yours.
 * @packageDocumentation
 */
import createNormlabModule from './normlab_wasm.js';
import type { LayerHandle, NormlabWasmModule, WeightLayerHandle } from './normlab_wasm.js';
import { Runner, type CompareConfig, type CompareResult, type ProgressEvent } from './runner.js';
import { Preprocessor, type PreprocessKind } from './preprocess.js';

export * from './runner.js';
export * from './presets.js';
export * from './preprocess.js';

/** The normalization layers' method names (`createLayer` returns a `NormLayer`). */
export type NormMethod = 'batchnorm' | 'batchrenorm' | 'layernorm' | 'groupnorm' | 'instancenorm'
  | 'lrn' | 'rmsnorm' | 'frn' | 'l1batchnorm' | 'generalizedbatchnorm' | 'switchablenorm';

/**
 * The weight normalizations' method names: a Linear or Conv2d layer whose weight is
 * reparameterized (`createLayer` returns a `WeightLayer`).
 */
export type WeightMethod = 'weightnorm' | 'cosinenorm';

/** The layer API's method names. */
export type Method = NormMethod | WeightMethod;

/** The short names `createLayer` and the runner accept for the methods (`bn` is `batchnorm`). */
export interface MethodAliases {
  bn: 'batchnorm';
  brn: 'batchrenorm';
  ln: 'layernorm';
  gn: 'groupnorm';
  in: 'instancenorm';
  rms: 'rmsnorm';
  l1bn: 'l1batchnorm';
  gbn: 'generalizedbatchnorm';
  sn: 'switchablenorm';
  wn: 'weightnorm';
  cn: 'cosinenorm';
}
export type MethodAlias = keyof MethodAliases;
/** The method a name or alias stands for. */
export type MethodOf<M extends Method | MethodAlias> = M extends MethodAlias ? MethodAliases[M] : M;

/** One option of a method, from the method table of the C++ core (`describeMethods()`). */
export interface OptionInfo {
  /** The options object's key, e.g. `rMax`. */
  key: string;
  type: 'number' | 'integer' | 'boolean' | 'string' | 'integer[]';
  /** The default; `null` when the option is required or filled in by a model (`fromModel`). */
  default: number | boolean | string | null;
  /** Inclusive bounds of a number, unless `exclusiveMin` (as eps > 0). */
  min?: number;
  max?: number;
  exclusiveMin?: boolean;
  /** The allowed values of a string option. */
  values?: string[];
  /** `null` is a value of its own (BatchNorm's `momentum: null`, the cumulative average). */
  nullable?: boolean;
  /** A model (the runner, `compare`) fills it in from the activations' shape when absent. */
  fromModel?: boolean;
  /** One line of help. */
  help: string;
}

/** A method's description: what the CLI's help, the playground's controls and the checks read. */
export interface MethodInfo {
  name: Method;
  /** Short names, the first being the id results use (`bn`); LRN and FRN have none. */
  aliases: string[];
  /** For tables and legends: "Batch Renorm". */
  label: string;
  options: OptionInfo[];
  /** Training normalizes with batch statistics (differs from inference; needs > 1 value per channel). */
  usesBatchStatistics: boolean;
  /** Needs inputs [N, C, H, W] (a CNN). */
  needsSpatialDims: boolean;
  /** `runner.fold` folds it into the layer before it for inference. */
  foldable: boolean;
  /** The running statistics AdaBN re-estimates (empty when it keeps none). */
  populationStatistics: string[];
  /** A weight reparameterization of a Linear/Conv2d rather than a normalization layer. */
  weightMethod: boolean;
}

/** PyTorch `BatchNorm1d/2d`: per-channel statistics over N and the spatial dims. */
export interface BatchNormOptions {
  /** Number of channels C (dim 1 of the input). */
  channels: number;
  /** Added to the variance before the square root. Default 1e-5. */
  eps?: number;
  /**
   * Running statistics update `running = (1 - momentum) * running + momentum * batch`, in [0, 1].
   * `null` means a cumulative average over all batches seen. Default 0.1.
   */
  momentum?: number | null;
  /** Learnable per-channel gamma and beta. Default true. */
  affine?: boolean;
  /** Keep running statistics for inference; if false, inference uses batch statistics. Default true. */
  trackRunningStats?: boolean;
}

/** Batch Renormalization (Ioffe 2017), the paper's Algorithm 1. */
export interface BatchRenormOptions {
  channels: number;
  /** Default 1e-5. */
  eps?: number;
  /** The paper's update rate alpha for the moving mean and standard deviation, in [0, 1]. Default 0.01. */
  momentum?: number;
  /** Limit of the scale correction r, in [1/rMax, rMax]; >= 1. Default 3. */
  rMax?: number;
  /** Limit of the shift correction d, in [-dMax, dMax]; >= 0. Default 5. */
  dMax?: number;
  /** Default true. */
  affine?: boolean;
}

/** PyTorch `LayerNorm`: statistics over the trailing `normalizedShape` dims of each sample. */
export interface LayerNormOptions {
  /** The trailing dims to normalize over, e.g. `[C, H, W]`; gamma and beta have this shape. */
  normalizedShape: number[];
  /** Default 1e-5. */
  eps?: number;
  /** Default true. */
  affine?: boolean;
}

/** PyTorch `GroupNorm`: statistics per sample over groups of channels. */
export interface GroupNormOptions {
  channels: number;
  /** Number of groups; must divide `channels`. 1 group normalizes like LayerNorm, C like InstanceNorm. */
  groups: number;
  /** Default 1e-5. */
  eps?: number;
  /** Per-channel gamma and beta. Default true. */
  affine?: boolean;
}

/** Per sample and channel over the spatial dims; input rank >= 3. */
export interface InstanceNormOptions {
  channels: number;
  /** Default 1e-5. */
  eps?: number;
  /** Default true (PyTorch's InstanceNorm defaults to false). */
  affine?: boolean;
}

/**
 * PyTorch `LocalResponseNorm` (Krizhevsky et al. 2012): across channels at every position,
 * `y_c = x_c * (k + a * sum of x_c'^2 over the window)^(-beta)`, the window `c - floor(size/2) ..
 * c + floor((size-1)/2)` zero-padded. No parameters, no state; input rank >= 3 ([N, C, L, ...]).
 */
export interface LrnOptions {
  /** Window size in channels, an integer >= 1. Required. */
  size: number;
  /** Default 1e-4; >= 0. */
  alpha?: number;
  /** The exponent; default 0.75, >= 0. */
  beta?: number;
  /** Additive constant; default 1, > 0. */
  k?: number;
  /**
   * `'size'` (default): a = alpha/size, as PyTorch and Caffe. `'none'`: a = alpha, the AlexNet
   * paper's formula and TensorFlow's `tf.nn.local_response_normalization(depth_radius: r, bias,
   * alpha, beta)`, which is `{ size: 2r + 1, k: bias, alpha, beta, alphaScaling: 'none' }`.
   */
  alphaScaling?: 'size' | 'none';
}

/**
 * RMSNorm (Zhang & Sennrich 2019), PyTorch 2.4 `RMSNorm`: `y = x / sqrt(mean(x^2) + eps) * gamma`
 * over the trailing `normalizedShape` dims; no mean subtraction, no beta.
 */
export interface RmsNormOptions {
  /** The trailing dims to normalize over; gamma has this shape. */
  normalizedShape: number[];
  /** Default 1.1920928955078125e-7, float32's machine epsilon (PyTorch's `eps=None`). */
  eps?: number;
  /** Learnable elementwise gamma (PyTorch's `elementwise_affine`). Default true. */
  affine?: boolean;
}

/**
 * Filter Response Normalization + TLU (Singh & Krishnan 2019): per sample and channel,
 * `z = max(gamma * x / sqrt(mean_spatial(x^2) + e) + beta, tau)`, with learnable per-channel
 * gamma (1), beta (0) and tau (0). Independent of the batch; no state.
 */
export interface FrnOptions {
  channels: number;
  /** `e` when constant; the lower bound of `e = eps + |eps_learned|` with `learnableEps`. Default 1e-6. */
  eps?: number;
  /**
   * Learn eps (a scalar parameter `eps`, initially 1e-2), as the paper recommends for 1x1 maps.
   * Required for inputs with one value per sample and channel (`[N, C]`, or all spatial dims 1),
   * which are an error otherwise. Default false.
   */
  learnableEps?: boolean;
}

/**
 * L1-norm BatchNorm (Wu et al. 2018): per channel over N and the spatial dims,
 * `y = gamma * (x - mean) / (s + eps) + beta` with `s = k * mean(|x - mean|)`; running mean and
 * running deviation as BatchNorm's, used in inference.
 */
export interface L1BatchNormOptions {
  channels: number;
  /** Added to s (not under a root). Default 1e-5. */
  eps?: number;
  /** `running = (1 - momentum) * running + momentum * batch`, in [0, 1]. Default 0.1. */
  momentum?: number;
  /** Default true. */
  affine?: boolean;
  /** k = sqrt(pi/2), so that s estimates the standard deviation of Gaussian data (the paper); false: k = 1. Default true. */
  scaleSqrtPiOver2?: boolean;
}

/**
 * Generalized Batch Normalization (Yuan et al. 2019, arXiv 1812.03271): per channel over N and
 * the spatial dims, `y = gamma * (x - S(x)) / (D(x) + eps) + beta`, with a centering statistic S
 * and the deviation measure D it belongs to (the paper's Table 1):
 * - `mean` / `std`: BatchNorm's statistics, but eps is added to the standard deviation (BatchNorm:
 *   `sqrt(var + eps)`);
 * - `median` / `mad`: the lower median and the mean absolute deviation from it;
 * - `quantile` / `superquantile`: the lower `level`-quantile q and the superquantile (CVaR)
 *   deviation `qbar - mean`, `qbar = q + mean([x - q]+) / (1 - level)`; at level 0.5 this equals
 *   median / mad.
 * Running estimates of S and D (momentum update as BatchNorm's) are used in inference.
 */
export interface GeneralizedBatchNormOptions {
  channels: number;
  /** The centering statistic. Default: the partner of `deviation`, or `'mean'`. */
  center?: 'mean' | 'median' | 'quantile';
  /** The deviation measure; must be `center`'s partner. Default: the partner of `center`, or `'std'`. */
  deviation?: 'std' | 'mad' | 'superquantile';
  /** alpha of the quantile / superquantile, in (0, 1); unused by the other pairs. Default 0.5. */
  level?: number;
  /** Added to D (not under a root). Default 1e-5. */
  eps?: number;
  /** `running = (1 - momentum) * running + momentum * batch`, in [0, 1]. Default 0.1. */
  momentum?: number;
  /** Default true. */
  affine?: boolean;
}

/**
 * Switchable Normalization (Luo et al. 2019, arXiv 1806.10779): `y = gamma * (x - mu) /
 * sqrt(var + eps) + beta` with mu and var softmax-weighted mixtures of InstanceNorm's (per sample
 * and channel), LayerNorm's (per sample) and BatchNorm's (per channel) statistics, all computed
 * from the same per-(n, c) moments. Learnable `meanWeight` and `varWeight` (order IN, LN, BN; ones
 * at first, i.e. equal weights) besides gamma and beta. The BN part uses running statistics in
 * inference; IN and LN always use the sample's own.
 */
export interface SwitchableNormOptions {
  channels: number;
  /** Default 1e-5. */
  eps?: number;
  /** For the BN part's running mean and (biased) variance, in [0, 1]. Default 0.1. */
  momentum?: number;
  /** Per-channel gamma and beta. Default true. */
  affine?: boolean;
  /**
   * Include InstanceNorm's statistics. Inputs with one spatial element (`[N, C]`) have none and
   * need `false` (models set it so for MLPs). Default true.
   */
  useIN?: boolean;
  /** Include BatchNorm's statistics (and the running state, and the batch dependence). Default true. */
  useBN?: boolean;
}

/**
 * The layer a weight method reparameterizes: a Linear (PyTorch `nn.Linear`, `y = x W^T + b`, input
 * `[N, inFeatures]`) given `inFeatures` and `outFeatures`, or, when `kernelSize` is given, a Conv2d
 * (PyTorch `nn.Conv2d`: NCHW cross-correlation, square kernel, equal stride and zero padding on
 * both axes) given `inChannels` and `outChannels`. The two sets of options cannot be mixed.
 * Weights (and bias) are drawn as PyTorch's default init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), from
 * normlab's seeded generator.
 */
export type WeightLayerShape =
  | { inFeatures: number; outFeatures: number; inChannels?: never; outChannels?: never; kernelSize?: never; stride?: never; padding?: never }
  | {
      inChannels: number;
      outChannels: number;
      /** Kernel size K (a K x K kernel); its presence makes the layer a Conv2d. */
      kernelSize: number;
      /** Default 1. */
      stride?: number;
      /** Zero padding on every side. Default 0. */
      padding?: number;
      inFeatures?: never;
      outFeatures?: never;
    };

/**
 * Weight Normalization (Salimans & Kingma 2016, arXiv 1602.07868), PyTorch
 * `torch.nn.utils.weight_norm(layer, dim=0)`: the weight is `w = g * v / ||v||` per output unit
 * (the norm over all other dims), with learnable `weight_g` (one per output) and `weight_v` (the
 * weight's shape). Initially `weight_v` is the drawn weight and `weight_g` its norms, so the layer
 * computes what the plain layer would.
 */
export type WeightNormOptions = WeightLayerShape & {
  /** Learnable bias. Default true. */
  bias?: boolean;
  /** Seed of the initial weights (normlab's generator). Default 0. */
  seed?: number;
};

/**
 * Cosine Normalization (Luo et al. 2017, arXiv 1702.05870): each output is the cosine between the
 * weight row of its unit and the input vector (a Conv2d's: each receptive field, padding zeros
 * included), `y = w.x / (max(||w||, 1e-8) max(||x||, 1e-8))` as `torch.nn.functional.cosine_similarity`.
 * Outputs lie in [-1, 1]. Parameter `weight` (and `bias` if asked for).
 */
export type CosineNormOptions = WeightLayerShape & {
  /** Subtract each vector's mean first (the paper's centred variant: Pearson correlation). Default false. */
  centered?: boolean;
  /** Add a learnable bias, `y = cos + b`. Default false (the paper's units have none). */
  bias?: boolean;
  /** Seed of the initial weights (normlab's generator). Default 0. */
  seed?: number;
};

/** Options of each method. */
export interface MethodOptions {
  batchnorm: BatchNormOptions;
  batchrenorm: BatchRenormOptions;
  layernorm: LayerNormOptions;
  groupnorm: GroupNormOptions;
  instancenorm: InstanceNormOptions;
  lrn: LrnOptions;
  rmsnorm: RmsNormOptions;
  frn: FrnOptions;
  l1batchnorm: L1BatchNormOptions;
  generalizedbatchnorm: GeneralizedBatchNormOptions;
  switchablenorm: SwitchableNormOptions;
  weightnorm: WeightNormOptions;
  cosinenorm: CosineNormOptions;
}

/** The options of a weight layer with every default filled in. */
export type ResolvedWeightOptions<M extends WeightMethod> = (
  | { inFeatures: number; outFeatures: number }
  | { inChannels: number; outChannels: number; kernelSize: number; stride: number; padding: number }
) & { bias: boolean; seed: number } & (M extends 'cosinenorm' ? { centered: boolean } : unknown);

/** Parameters of each weight method (PyTorch's names). */
export interface WeightParamsFor {
  /** `weight_g` (one per output unit), `weight_v` (the weight's shape), `bias` (absent with `bias: false`). */
  weightnorm: { weight_g: Float32Array; weight_v: Float32Array; bias?: Float32Array };
  /** `weight` ([out, in] or [out, in, K, K] row-major), `bias` (only with `bias: true`). */
  cosinenorm: { weight: Float32Array; bias?: Float32Array };
}

/** Running state of each method (what `getState` returns and `setState` takes). */
export interface MethodState {
  batchnorm: {
    runningMean: Float32Array;
    runningVar: Float32Array;
    /** Training forwards seen (drives the cumulative average of `momentum: null`). */
    numBatchesTracked: number;
  };
  batchrenorm: { runningMean: Float32Array; runningStd: Float32Array };
  layernorm: Record<string, never>;
  groupnorm: Record<string, never>;
  instancenorm: Record<string, never>;
  lrn: Record<string, never>;
  rmsnorm: Record<string, never>;
  frn: Record<string, never>;
  /** runningDev: the running s (k included), initially 1. */
  l1batchnorm: { runningMean: Float32Array; runningDev: Float32Array };
  /** Running S (initially 0) and D (initially 1). */
  generalizedbatchnorm: { runningCenter: Float32Array; runningDeviation: Float32Array };
  /** The BN part's running mean (0) and biased variance (1); absent with `useBN: false`. */
  switchablenorm: { runningMean?: Float32Array; runningVar?: Float32Array };
}

/**
 * Learnable parameters (gamma and beta absent when `affine` is false; RMSNorm has gamma only, LRN
 * none; FRN also has tau and, with `learnableEps`, eps).
 */
export interface NormParams {
  gamma: Float32Array;
  beta: Float32Array;
  /** FRN: the TLU's per-channel threshold. */
  tau?: Float32Array;
  /** FRN with `learnableEps`: the learned eps (one value; the layer uses `eps + |value|`). */
  eps?: Float32Array;
  /** Switchable Norm: logits of the mean's mixture weights (IN, LN, BN; dropped ones left out). */
  meanWeight?: Float32Array;
  /** Switchable Norm: logits of the variance's mixture weights. */
  varWeight?: Float32Array;
}

export interface ForwardOptions {
  /**
   * Training mode: batch statistics, running statistics updated, input kept for `backward`.
   * Default false (inference: running statistics where the method has them).
   */
  training?: boolean;
}

/** Where to find the `.wasm` file, for bundlers and custom hosting. Default: beside this module. */
export interface LoadOptions {
  /** URL (or file: URL / path in Node) of `normlab_wasm.wasm`. */
  wasmUrl?: string | URL;
  /** The bytes of `normlab_wasm.wasm`, already loaded. */
  wasmBinary?: ArrayBuffer | ArrayBufferView;
}

/** WebAssembly memory in use, for leak checks. */
export interface MemoryInfo {
  /** Layers created and not yet disposed. */
  liveLayers: number;
  /** Runners created and not yet disposed. */
  liveRunners: number;
  /** Preprocessors created and not yet disposed. */
  livePreprocessors: number;
  /** Bytes allocated on the WebAssembly heap. */
  usedBytes: number;
  /** Current size of the WebAssembly memory. */
  heapBytes: number;
  /** The most the WebAssembly memory can grow to. */
  heapMaxBytes: number;
}

/** The layer type `createLayer` returns for a method. */
export type LayerFor<M extends Method> = M extends WeightMethod
  ? WeightLayer<M>
  : M extends 'batchrenorm'
    ? BatchRenormLayer
    : M extends NormMethod
      ? NormLayer<M>
      : never;

/** A loaded normlab module. Independent of other loaded instances. */
export interface Normlab {
  /** The method names `createLayer` accepts. */
  readonly methods: readonly Method[];
  /**
   * Creates a layer from a method name or alias (`'bn'`); throws an Error naming the problem for an
   * unknown method or bad options.
   */
  createLayer<M extends Method | MethodAlias>(method: M, options: MethodOptions[MethodOf<M>]): LayerFor<MethodOf<M>>;
  /**
   * Every method's description from the C++ core's method table: name, aliases, label, options
   * with their types, defaults and ranges, and what the method needs. A fresh copy each call.
   */
  describeMethods(): MethodInfo[];
  /**
   * Runs `fn` and disposes every layer created during it, except those it returns (a layer, or an
   * array or plain object of layers). `fn` must be synchronous.
   */
  scope<T>(fn: () => T): T;
  /** WebAssembly memory in use. */
  memory(): MemoryInfo;
  /**
   * A comparison to step yourself (a Web Worker's loop, or pausing by not stepping). The digits and
   * mnist data sets need their file's bytes: `await nl.loadDataset('digits')`.
   */
  createRunner(config: CompareConfig, data?: Uint8Array): Runner;
  /**
   * Runs a whole comparison, yielding to the event loop between chunks of steps; `onProgress` sees
   * each chunk's records. Rejects with an AbortError when `signal` aborts (between steps).
   */
  compare(config: CompareConfig, options?: CompareOptions): Promise<CompareResult>;
  /**
   * Fits a data normalization on training samples `x` of `shape` [N, ...features] (seed 004 §2):
   * min-max, standardization, or PCA / ZCA whitening with `eps` added to the eigenvalues.
   */
  fitPreprocessor(kind: PreprocessKind, x: Float32Array, shape: readonly number[], options?: { eps?: number }): Preprocessor;
  /** The bytes of a bundled data set file (digits: 1,797 8x8 UCI digits; mnist: 10,000 MNIST digits). */
  loadDataset(name: 'digits' | 'mnist'): Promise<Uint8Array>;
}

export interface CompareOptions {
  onProgress?: (event: ProgressEvent, runner: Runner) => void;
  signal?: AbortSignal;
  /** Steps per chunk between yields to the event loop. Default 50. */
  chunk?: number;
}

/** What `scope()` disposes. */
interface Disposable {
  dispose(): void;
}

const disposeSymbol: typeof Symbol.dispose =
  (Symbol as { dispose?: typeof Symbol.dispose }).dispose ?? (Symbol.for('Symbol.dispose') as typeof Symbol.dispose);

/**
 * What every layer shares: its method name and the WebAssembly object it owns, freed by
 * `dispose()` (or a `using` declaration); any call after that is an Error naming it.
 */
export abstract class OwnedLayer<M extends Method, H extends { delete(): void }> {
  /** The method name. */
  readonly method: M;
  #handle: H | null;
  #onDispose: (layer: object) => void;

  /** @internal */
  protected constructor(method: M, handle: H, onDispose: (layer: object) => void) {
    this.method = method;
    this.#handle = handle;
    this.#onDispose = onDispose;
  }

  /** Whether `dispose()` has been called. */
  get disposed(): boolean {
    return this.#handle === null;
  }

  /** Frees the layer's WebAssembly memory. Idempotent. */
  dispose(): void {
    if (this.#handle === null) return;
    this.#handle.delete();
    this.#handle = null;
    this.#onDispose(this);
  }

  /** Same as `dispose()`, for `using` declarations. */
  [disposeSymbol](): void {
    this.dispose();
  }

  /** @internal The live handle, or an Error naming the call after dispose. */
  protected handle(call: string): H {
    if (this.#handle === null) throw new Error(`${this.method}: ${call}() called after dispose()`);
    return this.#handle;
  }
}

/** A normalization layer owning WebAssembly memory. Free it with `dispose()`. */
export class NormLayer<M extends NormMethod = NormMethod> extends OwnedLayer<M, LayerHandle> {
  /** The options, with every default filled in. */
  readonly options: Readonly<Required<MethodOptions[M]>>;

  /** @internal Use `Normlab.createLayer`. */
  constructor(method: M, handle: LayerHandle, onDispose: (layer: object) => void) {
    super(method, handle, onDispose);
    this.options = Object.freeze(JSON.parse(handle.options()));
  }

  /**
   * y = layer(x) for a Float32Array `x` of `shape` ([N,C], [N,C,L], [N,C,H,W], ...; LayerNorm: any
   * shape ending with `normalizedShape`). Returns a new Float32Array.
   */
  forward(x: Float32Array, shape: readonly number[], options: ForwardOptions = {}): Float32Array {
    const handle = this.handle('forward');
    const [dims, training] = forwardArgs(this.method, x, shape, options);
    return unwrap(handle.forward(x, dims, training));
  }

  /**
   * dL/dx for the last training-mode forward, given `dy` = dL/dy of the same length. Also sets the
   * parameter gradients that `grads()` returns (overwritten, not accumulated).
   */
  backward(dy: Float32Array): Float32Array {
    const handle = this.handle('backward');
    checkFloat32(this.method, 'dy', dy);
    return unwrap(handle.backward(dy));
  }

  /** Gradients of gamma and beta from the last `backward` (zeros before it). */
  grads(): Partial<NormParams> {
    return this.handle('grads').get('grads') as Partial<NormParams>;
  }

  /** Copies of gamma and beta (an empty object when `affine` is false). */
  getParams(): Partial<NormParams> {
    return this.handle('getParams').get('params') as Partial<NormParams>;
  }

  /** Replaces gamma and/or beta; all or nothing (on an error, no value changes). */
  setParams(params: Partial<NormParams>): void {
    const handle = this.handle('setParams');
    setAll(this.method, 'setParams', params, handle.get('params'), (name, value) => handle.set('params', name, value));
  }

  /** Copies of the running state (an empty object for methods without one). */
  getState(): MethodState[M] {
    const raw = this.handle('getState').get('state') as Record<string, Float32Array>;
    const state: Record<string, Float32Array | number> = { ...raw };
    if (raw.numBatchesTracked) state.numBatchesTracked = raw.numBatchesTracked[0];
    return state as unknown as MethodState[M];
  }

  /**
   * AdaBN (Li et al. 2016) for this layer: replaces its population statistics with those of `x`,
   * all the inputs the layer receives on a target domain (`shape` as for `forward`). Returns false,
   * changing nothing, for methods that keep no population statistics (nothing to adapt).
   */
  setPopulationStatistics(x: Float32Array, shape: readonly number[]): boolean {
    const handle = this.handle('setPopulationStatistics');
    checkFloat32(this.method, 'input', x);
    const dims = checkShape(this.method, shape);
    const result = handle.setPopulationStatistics(x, dims);
    if (typeof result === 'string') throw new Error(result);
    return result;
  }

  /** Replaces some or all of the running state; all or nothing. */
  setState(state: Partial<MethodState[M]>): void {
    const handle = this.handle('setState');
    const entries: Record<string, unknown> = { ...(state as Record<string, unknown>) };
    if (typeof entries.numBatchesTracked === 'number') {
      entries.numBatchesTracked = Float32Array.of(entries.numBatchesTracked);
    }
    setAll(this.method, 'setState', entries, handle.get('state'), (name, value) => handle.set('state', name, value));
  }



}

/**
 * A Linear or Conv2d layer with Weight Normalization or Cosine Normalization, owning WebAssembly
 * memory. Free it with `dispose()` (or `using`, or `nl.scope()`).
 */
export class WeightLayer<M extends WeightMethod = WeightMethod> extends OwnedLayer<M, WeightLayerHandle> {
  /** The options, with every default filled in. */
  readonly options: Readonly<ResolvedWeightOptions<M>>;
  /** `'linear'` (input [N, inFeatures]) or `'conv2d'` (input [N, inChannels, H, W]). */
  readonly kind: 'linear' | 'conv2d';

  /** @internal Use `Normlab.createLayer`. */
  constructor(method: M, handle: WeightLayerHandle, onDispose: (layer: object) => void) {
    super(method, handle, onDispose);
    this.options = Object.freeze(JSON.parse(handle.options()));
    this.kind = 'kernelSize' in this.options ? 'conv2d' : 'linear';
  }

  /** The output shape for an input shape ([N, outFeatures] or [N, outChannels, Ho, Wo]). */
  outputShape(shape: readonly number[]): number[] {
    const handle = this.handle('outputShape');
    const result = handle.outputShape(checkShape(this.method, shape));
    if (typeof result === 'string') throw new Error(result);
    return result;
  }

  /**
   * y = layer(x) for a Float32Array `x` of `shape` ([N, inFeatures] or [N, inChannels, H, W]).
   * Training mode keeps the input for `backward`; the layer has no running state, so both modes
   * compute the same y. Returns a new Float32Array.
   */
  forward(x: Float32Array, shape: readonly number[], options: ForwardOptions = {}): Float32Array {
    const handle = this.handle('forward');
    const [dims, training] = forwardArgs(this.method, x, shape, options);
    return unwrap(handle.forward(x, dims, training));
  }

  /**
   * dL/dx for the last training-mode forward, given `dy` = dL/dy (the output's length). Also sets
   * the parameter gradients that `grads()` returns (overwritten, not accumulated).
   */
  backward(dy: Float32Array): Float32Array {
    const handle = this.handle('backward');
    checkFloat32(this.method, 'dy', dy);
    return unwrap(handle.backward(dy));
  }

  /** Gradients of the parameters from the last `backward` (zeros before it). */
  grads(): WeightParamsFor[M] {
    return this.handle('grads').get('grads') as WeightParamsFor[M];
  }

  /** Copies of the parameters (PyTorch's names: weight_g, weight_v, bias / weight, bias). */
  getParams(): WeightParamsFor[M] {
    return this.handle('getParams').get('params') as WeightParamsFor[M];
  }

  /** Replaces some or all parameters; all or nothing (on an error, no value changes). */
  setParams(params: Partial<WeightParamsFor[M]>): void {
    const handle = this.handle('setParams');
    setAll(this.method, 'setParams', params, handle.get('params'), (name, value) => handle.set(name, value));
  }

}

/** A Batch Renormalization layer: a `NormLayer` whose limits can move during training. */
export class BatchRenormLayer extends NormLayer<'batchrenorm'> {
  /** Sets rMax (>= 1) and/or dMax (>= 0) for the following training steps. */
  setLimits(limits: { rMax?: number; dMax?: number }): void {
    const handle = this.handle('setLimits');
    if (limits === null || typeof limits !== 'object') {
      throw new Error('batchrenorm: setLimits takes an object like { rMax: 3, dMax: 5 }');
    }
    const current = JSON.parse(handle.options()) as Required<BatchRenormOptions>;
    const rMax = limits.rMax ?? current.rMax;
    const dMax = limits.dMax ?? current.dMax;
    for (const [name, v] of [['rMax', rMax], ['dMax', dMax]] as const) {
      if (typeof v !== 'number') throw new Error(`batchrenorm: ${name} must be a number, got ${typeof v}`);
    }
    checkError(handle.setLimits(rMax, dMax));
  }

  /** The current limits. */
  limits(): { rMax: number; dMax: number } {
    const o = JSON.parse(this.handle('limits').options()) as Required<BatchRenormOptions>;
    return { rMax: o.rMax, dMax: o.dMax };
  }

  /** The per-channel corrections r and d of the last training forward (null before the first). */
  lastCorrection(): { r: Float32Array; d: Float32Array } | null {
    return this.handle('lastCorrection').lastCorrection();
  }
}

/** Checks forward's arguments: the input, its shape, and { training }. */
function forwardArgs(method: string, x: unknown, shape: unknown, options: ForwardOptions): [number[], boolean] {
  checkFloat32(method, 'input', x);
  const dims = checkShape(method, shape);
  if (options === null || typeof options !== 'object') {
    throw new Error(`${method}: forward options must be an object like { training: true }`);
  }
  const training = options.training ?? false;
  if (typeof training !== 'boolean') {
    throw new Error(`${method}: options.training must be true or false, got ${String(training)}`);
  }
  return [dims, training];
}

/**
 * Sets every entry of `values` with `set` (which returns an error message or undefined); all or
 * nothing: on the first error, every buffer gets its value from `before` back and the Error is thrown.
 */
function setAll(
  method: string,
  call: string,
  values: unknown,
  before: Record<string, Float32Array>,
  set: (name: string, value: Float32Array) => string | undefined,
): void {
  if (values === null || typeof values !== 'object') throw new Error(`${method}: ${call} takes an object`);
  try {
    for (const [name, value] of Object.entries(values as Record<string, unknown>)) {
      if (value === undefined) continue;
      checkFloat32(method, name, value);
      checkError(set(name, value as Float32Array));
    }
  } catch (error) {
    for (const [name, value] of Object.entries(before)) set(name, value);
    throw error;
  }
}

function unwrap(result: Float32Array | string): Float32Array {
  if (typeof result === 'string') throw new Error(result);
  return result;
}

function checkError(result: string | undefined): void {
  if (typeof result === 'string') throw new Error(result);
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  return typeof value;
}

function checkFloat32(method: string, what: string, value: unknown): void {
  if (!(value instanceof Float32Array)) {
    throw new Error(`${method}: ${what} must be a Float32Array, got ${typeName(value)}`);
  }
}

function checkShape(method: string, shape: unknown): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number')) {
    throw new Error(`${method}: shape must be an array of numbers like [N, C, H, W], got ${typeName(shape)}`);
  }
  return shape as number[];
}

/** JSON for the C++ side; non-finite numbers (which JSON cannot carry) as "NaN"/"Infinity" strings. */
function optionsJson(method: string, options: unknown): string {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new Error(`${method}: options must be an object, got ${typeName(options)}`);
  }
  try {
    return JSON.stringify(options, (_key, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
  } catch (error) {
    throw new Error(`${method}: options must be plain data (${(error as Error).message})`);
  }
}

class NormlabInstance implements Normlab {
  readonly methods: readonly Method[];
  #raw: NormlabWasmModule;
  #scopes: Set<object>[] = [];  // layers created inside each open scope()
  #table: string | undefined;   // describeMethodsJson(), read once

  constructor(raw: NormlabWasmModule) {
    this.#raw = raw;
    this.methods = Object.freeze(JSON.parse(raw.methodsJson()) as Method[]);
  }

  describeMethods(): MethodInfo[] {
    this.#table ??= this.#raw.describeMethodsJson();
    return JSON.parse(this.#table) as MethodInfo[];
  }

  createLayer<M extends Method | MethodAlias>(
    name: M,
    options: MethodOptions[MethodOf<M>],
  ): LayerFor<MethodOf<M>> {
    if (typeof name !== 'string') {
      throw new Error(`createLayer: method must be a string, one of ${this.methods.join(', ')}`);
    }
    const method = (this.describeMethods().find((m) => m.aliases.includes(name))?.name ?? name) as Method;
    const json = optionsJson(method, options);
    const onDispose = (layer: object) => {
      for (const scope of this.#scopes) scope.delete(layer);
    };
    let layer: NormLayer | WeightLayer;
    if (method === 'weightnorm' || method === 'cosinenorm') {
      const handle = new this.#raw.WeightLayerHandle();
      try {
        checkError(handle.create(method, json));
      } catch (error) {
        handle.delete();
        throw error;
      }
      layer = new WeightLayer(method, handle, onDispose);
    } else {
      const handle = new this.#raw.LayerHandle();
      try {
        checkError(handle.create(method, json));
      } catch (error) {
        handle.delete();
        throw error;
      }
      layer =
        method === 'batchrenorm'
          ? new BatchRenormLayer('batchrenorm', handle, onDispose)
          : new NormLayer(method as NormMethod, handle, onDispose);
    }
    this.#scopes.at(-1)?.add(layer);
    return layer as LayerFor<MethodOf<M>>;
  }

  scope<T>(fn: () => T): T {
    const created = new Set<object>();
    this.#scopes.push(created);
    let result: T;
    try {
      result = fn();
    } catch (error) {
      this.#scopes.pop();
      for (const layer of created) (layer as Disposable).dispose();
      throw error;
    }
    this.#scopes.pop();
    if (result instanceof Promise) {
      for (const layer of created) (layer as Disposable).dispose();
      throw new Error('scope: fn must be synchronous (it returned a Promise)');
    }
    const kept = new Set<unknown>(
      result instanceof OwnedLayer
        ? [result]
        : Array.isArray(result)
          ? result
          : result !== null && typeof result === 'object'
            ? Object.values(result)
            : [],
    );
    for (const layer of created) {
      if (kept.has(layer)) this.#scopes.at(-1)?.add(layer);
      else (layer as Disposable).dispose();
    }
    return result;
  }

  memory(): MemoryInfo {
    return this.#raw.memoryStats();
  }

  fitPreprocessor(kind: PreprocessKind, x: Float32Array, shape: readonly number[], options: { eps?: number } = {}): Preprocessor {
    return new Preprocessor(this.#raw, kind, x, shape, options?.eps ?? 1e-5);
  }

  createRunner(config: CompareConfig, data?: Uint8Array): Runner {
    return new Runner(this.#raw, config, data);
  }

  async loadDataset(name: 'digits' | 'mnist'): Promise<Uint8Array> {
    if (name !== 'digits' && name !== 'mnist') {
      throw new Error(`loadDataset: unknown data set '${String(name)}' (known: digits, mnist)`);
    }
    return readAsset(new URL(`./data/${name}.nlds`, import.meta.url));
  }

  async compare(config: CompareConfig, options: CompareOptions = {}): Promise<CompareResult> {
    const name = config?.dataset?.name;
    const data = name === 'digits' || name === 'mnist' ? await this.loadDataset(name) : undefined;
    const chunk = options.chunk ?? 50;
    if (!Number.isInteger(chunk) || chunk < 1) throw new Error(`compare: chunk must be a positive integer, got ${String(chunk)}`);
    using runner = this.createRunner(config, data);
    while (!runner.done) {
      options.signal?.throwIfAborted();
      const event = runner.step(chunk);
      options.onProgress?.(event, runner);
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    return runner.result();
  }
}

/** The bytes at a URL: fs for file: URLs (Node), fetch otherwise. */
async function readAsset(url: URL): Promise<Uint8Array<ArrayBuffer>> {
  if (url.protocol === 'file:') {
    const fsModule = 'node:fs/promises';
    // Node: fetch does not read file: URLs. The specifier is a variable so bundlers leave it alone.
    const fs = (await import(/* @vite-ignore */ fsModule)) as { readFile(path: URL): Promise<Uint8Array> };
    const bytes = await fs.readFile(url);
    return new Uint8Array(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength);
  }
  const response = await fetch(url);
  if (!response.ok) throw new Error(`normlab: could not fetch ${url.href}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

interface NodeProcess {
  versions?: { node?: string };
}

/** The compiled .wasm at `url`: streamed where the server says application/wasm. */
async function fetchWasm(url: URL): Promise<WebAssembly.Module> {
  if (url.protocol !== 'file:' && typeof WebAssembly.compileStreaming === 'function') {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`normlab: could not fetch ${url.href}: HTTP ${response.status}`);
    if (response.headers.get('content-type')?.startsWith('application/wasm')) {
      return WebAssembly.compileStreaming(response);
    }
    return WebAssembly.compile(await response.arrayBuffer());
  }
  return WebAssembly.compile(await readAsset(url));
}

function resolveUrl(wasmUrl: string | URL): URL {
  if (wasmUrl instanceof URL) return wasmUrl;
  const proc = (globalThis as { process?: NodeProcess }).process;
  const isNode = proc?.versions?.node !== undefined;
  // A plain path in Node (absolute or relative to the working directory).
  if (isNode && !/^[a-z][a-z0-9+.-]*:/i.test(wasmUrl)) {
    const cwd = (proc as { cwd?: () => string }).cwd?.() ?? '/';
    return new URL(wasmUrl, new URL(`file://${cwd.endsWith('/') ? cwd : `${cwd}/`}`));
  }
  const base = (globalThis as { location?: { href: string } }).location?.href ?? import.meta.url;
  return new URL(wasmUrl, base);
}

async function instantiate(options: LoadOptions): Promise<Normlab> {
  let wasmModule: WebAssembly.Module;
  if (options.wasmBinary !== undefined) {
    const b = options.wasmBinary;
    if (!(b instanceof ArrayBuffer) && !ArrayBuffer.isView(b)) {
      throw new Error(`load: wasmBinary must be an ArrayBuffer or a typed array, got ${typeName(b)}`);
    }
    wasmModule = await WebAssembly.compile(b as BufferSource);
  } else {
    const url = options.wasmUrl !== undefined
      ? resolveUrl(options.wasmUrl)
      : new URL('./normlab_wasm.wasm', import.meta.url);
    wasmModule = await fetchWasm(url);
  }
  let fail: (error: unknown) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  const raw = await Promise.race([
    createNormlabModule({
      instantiateWasm(imports, done) {
        WebAssembly.instantiate(wasmModule, imports).then(done, fail);
        return {};
      },
      onAbort(what) {
        fail(new Error(`normlab: the WebAssembly module aborted: ${String(what)}`));
      },
    }),
    failed,
  ]);
  return new NormlabInstance(raw);
}

let defaultInstance: Promise<Normlab> | undefined;

/**
 * Loads the WebAssembly module. Without options, the `.wasm` beside this file is loaded once and
 * the instance is shared by every call; with `wasmUrl` or `wasmBinary`, each call makes a new,
 * independent instance.
 */
export function load(options: LoadOptions = {}): Promise<Normlab> {
  if (options === null || typeof options !== 'object') {
    return Promise.reject(new Error(`load: options must be an object, got ${typeName(options)}`));
  }
  if (options.wasmUrl !== undefined || options.wasmBinary !== undefined) return instantiate(options);
  defaultInstance ??= instantiate({}).catch((error: unknown) => {
    defaultInstance = undefined;
    throw error;
  });
  return defaultInstance;
}
