// The package's types: the method names and their aliases, the method table as the package shows
// it (MethodInfo, OptionInfo), the hand-written and documented options of every method (the docs
// of record; tests/js/methods.test.ts checks their keys and stated defaults against the table), and
// the parameters, state and memory figures the layers report.

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

/**
 * A method's description: what the CLI's help, the playground's controls and the checks read. The
 * table starts with `none` (the comparisons' baseline), then the methods in the order of `nl.methods`.
 */
export interface MethodInfo {
  name: Method | 'none';
  /** Short names, the first being the id results use (`bn`); none, LRN and FRN have none. */
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
  /** `none`: the comparisons' baseline, the same model without normalization (not a layer). */
  baseline: boolean;
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

