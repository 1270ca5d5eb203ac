/// <reference lib="esnext.disposable" preserve="true" />
// A model of the user's own (nl.model): the C++ Trainer behind ModelHandle, trained, evaluated and
// read from JS arrays. The same model, weights and batch order as a comparison's arm.
import type { ModelHandle, NormlabWasmModule } from './normlab_wasm.js';
import { OwnedHandle } from './handle.js';
import { typeName } from './checks.js';
import type { CompareConfig, MethodEntry, MethodName } from './runner.js';

/**
 * One layer of a model description, in its JSON form (the compact string form is
 * `"conv:16,norm,relu,pool:2,res[conv:16,norm,relu,conv:16,norm],relu,gap"`). `norm` marks a slot
 * the model's normalization method fills; normlab adds the flatten and the final Linear to the
 * number of classes.
 */
export type LayerDescription =
  | { type: 'linear'; units: number }
  | { type: 'conv2d'; channels: number; kernelSize?: number; stride?: number; padding?: number }
  | { type: 'norm' | 'relu' | 'tanh' | 'gap' | 'flatten' }
  | { type: 'maxpool'; size: number }
  | { type: 'residual'; layers: LayerDescription[] | string };

/** A model description in its compact form (`conv:16,norm,relu,...`), as the CLI's `--layers` takes it. */
export function compactLayers(layers: string | readonly LayerDescription[]): string {
  if (typeof layers === 'string') return layers;
  return layers.map((l) => {
    switch (l.type) {
      case 'linear': return `linear:${l.units}`;
      case 'conv2d': return `conv:${[l.channels, l.kernelSize, l.stride, l.padding].filter((v) => v !== undefined).join(':')}`;
      case 'maxpool': return `pool:${l.size}`;
      case 'residual': return `res[${compactLayers(l.layers)}]`;
      default: return l.type;
    }
  }).join(',');
}

/** What `nl.model` builds. */
export interface ModelOptions {
  /** One sample's shape: `[F]` features, or `[C, H, W]` for images. */
  input: readonly number[];
  /** The model's body: a compact string (`"linear:64,norm,relu"`) or a list of layers. */
  layers: string | readonly LayerDescription[];
  /** Number of classes (labels are 0 .. classes - 1); the final Linear has this many outputs. */
  classes: number;
  /** The method filling every `norm` slot (default `'none'`): a name, alias, or `{ method, options }`. */
  norm?: MethodName | MethodEntry;
  /** As a comparison's optimizer (default SGD, lr 0.1). */
  optimizer?: CompareConfig['optimizer'];
  /** Seeds the initial weights and every fit's batch order, as a comparison's seed does (default 1). */
  seed?: number;
}

/** How `fit` trains. */
export interface FitOptions {
  /** Passes over the data (an integer >= 1). */
  epochs: number;
  /**
   * Samples per step (an integer in [1, samples]). Each epoch is a new seeded shuffle cut into
   * `floor(samples / batchSize)` full batches; the remainder is left out of that epoch.
   */
  batchSize: number;
  /** Called after every step with its 0-based index in this fit and its training loss. */
  onStep?: (step: number, loss: number) => void;
  /** Stops the fit between steps: `fit` then rejects with the signal's reason (an AbortError). */
  signal?: AbortSignal;
}

/** Inference-mode loss and accuracy. */
export interface Evaluation {
  /** Mean softmax cross-entropy. */
  loss: number;
  /** Fraction of samples whose most probable class (the first on ties) is their label. */
  accuracy: number;
}

/** What `fold()` did: normalization layers folded into the Linear / Conv2d before them, and kept. */
export interface ModelFoldReport {
  folded: { layer: number; method: string; into: string }[];
  kept: { layer: number; method: string; reason: string }[];
}

function result<T>(value: T | { error: string }): T {
  if (value !== null && typeof value === 'object' && 'error' in value && typeof value.error === 'string') {
    throw new Error(value.error);
  }
  return value as T;
}

function checkX(call: string, x: unknown): Float32Array {
  if (!(x instanceof Float32Array)) throw new Error(`${call}: x must be a Float32Array of samples, got ${typeName(x)}`);
  return x;
}

function checkLabels(call: string, labels: unknown): Int32Array {
  if (labels === null || typeof labels !== 'object' || typeof (labels as ArrayLike<unknown>).length !== 'number') {
    throw new Error(`${call}: labels must be an array of class indices, got ${typeName(labels)}`);
  }
  const list = labels as ArrayLike<unknown>;
  const out = new Int32Array(list.length);
  for (let i = 0; i < list.length; ++i) {
    const v = list[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || Math.abs(v) > 2 ** 31 - 1) {
      throw new Error(`${call}: labels[${i}] is ${String(v)}, not a class index (an integer from 0)`);
    }
    out[i] = v;
  }
  return out;
}

function checkCount(call: string, name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 2 ** 31 - 1) {
    throw new Error(`${call}: ${name} must be a positive integer, got ${String(v)}`);
  }
  return v;
}

/**
 * A classifier of your own (`nl.model`): the model a comparison trains for one method, built from
 * a description, trained here on your arrays. Trained with the same seed on the same data in the
 * same batch order as a comparison's arm, it has the same weights, bit for bit. Owns WebAssembly
 * memory: free it with `dispose()` (or a `using` declaration); any call after that throws.
 */
export class Model extends OwnedHandle<ModelHandle> {
  /** The layers as built: `"flatten linear batchnorm relu linear"`. */
  readonly summary: string;
  /** One sample's shape. */
  readonly input: readonly number[];
  /** Number of classes. */
  readonly classes: number;
  /** Whether this is a folded copy (`fold()`), for inference only: `fit` refuses it. */
  readonly folded: boolean;
  #raw: NormlabWasmModule;
  #fitting = false;

  /** @internal Use `Normlab.model`, or `fold()`. */
  constructor(raw: NormlabWasmModule, handle: ModelHandle, summary: string, input: readonly number[], classes: number, folded: boolean) {
    super('model', handle);
    this.#raw = raw;
    this.summary = summary;
    this.input = Object.freeze([...input]);
    this.classes = classes;
    this.folded = folded;
  }

  /** @internal */
  static create(raw: NormlabWasmModule, options: ModelOptions): Model {
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new Error(`model: options must be an object like { input: [64], layers: 'linear:32,norm,relu', classes: 10 }, got ${typeName(options)}`);
    }
    let json: string;
    try {
      json = JSON.stringify(options, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
    } catch (error) {
      throw new Error(`model: options must be plain data (${(error as Error).message})`);
    }
    const handle = new raw.ModelHandle();
    let info: { summary: string };
    try {
      info = JSON.parse(result(handle.create(json))) as { summary: string };
    } catch (error) {
      handle.delete();
      throw error;
    }
    return new Model(raw, handle, info.summary, options.input, options.classes, false);
  }

  /** Training steps taken over the model's life (every fit, aborted ones included). */
  get steps(): number {
    return this.handle('steps').stepsDone();
  }

  /**
   * Trains on `x` (samples of `input`'s shape, row-major) with integer `labels` in
   * [0, classes): `epochs` passes in shuffled batches of `batchSize`, each step the comparison
   * runner's (training-mode forward, softmax cross-entropy, backward, optimizer step). The first
   * fit shuffles exactly as a comparison with this seed does; later fits go on with the seed's
   * order. Resolves with every step's loss. Yields to the event loop now and then; `signal` stops it
   * between steps (the steps taken stay), rejecting with the signal's reason. Everything is checked
   * before the first step: a bad argument throws (synchronously) and changes nothing. A diverging
   * step (non-finite loss) rejects, its running-statistics update undone.
   */
  fit(x: Float32Array, labels: ArrayLike<number>, options: FitOptions): Promise<number[]> {
    const handle = this.handle('fit');
    if (this.#fitting) throw new Error('fit: this model is already fitting (await the first fit)');
    checkX('fit', x);
    const ls = checkLabels('fit', labels);
    if (options === null || typeof options !== 'object') {
      throw new Error(`fit: options must be an object like { epochs: 5, batchSize: 32 }, got ${typeName(options)}`);
    }
    for (const key of Object.keys(options)) {
      if (!['epochs', 'batchSize', 'onStep', 'signal'].includes(key)) {
        throw new Error(`fit: unknown option '${key}' (known: epochs, batchSize, onStep, signal)`);
      }
    }
    const epochs = checkCount('fit', 'epochs', options.epochs);
    const batchSize = checkCount('fit', 'batchSize', options.batchSize);
    const { onStep, signal } = options;
    if (onStep !== undefined && typeof onStep !== 'function') throw new Error(`fit: onStep must be a function, got ${typeName(onStep)}`);
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new Error(`fit: signal must be an AbortSignal, got ${typeName(signal)}`);
    signal?.throwIfAborted();
    const total = result(handle.fitBegin(x, ls, epochs, batchSize));
    this.#fitting = true;
    return this.#run(total, onStep, signal).finally(() => {
      this.#fitting = false;
    });
  }

  async #run(total: number, onStep: FitOptions['onStep'], signal: AbortSignal | undefined): Promise<number[]> {
    const losses: number[] = [];
    let since = Date.now();
    try {
      for (let step = 0; step < total; ++step) {
        signal?.throwIfAborted();
        const loss = result(this.handle('fit').fitStep());
        losses.push(loss);
        onStep?.(step, loss);
        if (Date.now() - since > 15) {
          await new Promise((resolve) => setTimeout(resolve, 0));
          since = Date.now();
        }
      }
    } catch (error) {
      if (!this.disposed) this.handle('fit').fitEnd();
      throw error;
    }
    return losses;
  }

  /** Inference-mode (running statistics) mean loss and accuracy on `x` and its `labels`. */
  evaluate(x: Float32Array, labels: ArrayLike<number>): Evaluation {
    const handle = this.handle('evaluate');
    return result(handle.evaluate(checkX('evaluate', x), checkLabels('evaluate', labels)));
  }

  /** Class probabilities in inference mode: `classes` per sample, row-major, each row summing to 1. */
  predict(x: Float32Array): Float32Array {
    const handle = this.handle('predict');
    return result(handle.predict(checkX('predict', x)));
  }

  /**
   * Copies of every parameter and running-state buffer, named `<layer>.<name>` by the layer's
   * index in `summary` (inside a residual block `<block>.<index>.<name>`): `"1.weight"`,
   * `"2.gamma"`, `"2.runningMean"`, ... in model order.
   */
  getWeights(): Record<string, Float32Array> {
    return result(this.handle('getWeights').getWeights());
  }

  /**
   * Replaces every weight with `weights` (as `getWeights()` gives them: each name once, each a
   * Float32Array of its length with finite values). All or nothing: on an unknown or missing name, a
   * wrong length or a refused value it throws and the model is unchanged.
   */
  setWeights(weights: Record<string, Float32Array>): void {
    const handle = this.handle('setWeights');
    if (weights === null || typeof weights !== 'object' || Array.isArray(weights)) {
      throw new Error(`setWeights: weights must be an object of named Float32Arrays (from getWeights()), got ${typeName(weights)}`);
    }
    for (const [name, v] of Object.entries(weights)) {
      if (!(v instanceof Float32Array)) throw new Error(`setWeights: '${name}' must be a Float32Array, got ${typeName(v)}`);
    }
    result(handle.setWeights(weights));
  }

  /**
   * A folded copy for deployment: every normalization layer whose inference is a per-channel affine
   * map (`foldable` in `nl.describeMethods()`, e.g. batchnorm) directly after a Linear or Conv2d goes
   * into that layer's weight and bias. Its predictions equal this model's up to float rounding;
   * it is inference-only (its `fit` throws) and must be disposed too. This model is not changed.
   */
  fold(): { model: Model; report: ModelFoldReport } {
    const source = this.handle('fold');
    const handle = new this.#raw.ModelHandle();
    let report: ModelFoldReport & { summary: string };
    try {
      report = JSON.parse(result(handle.foldOf(source))) as ModelFoldReport & { summary: string };
    } catch (error) {
      handle.delete();
      throw error;
    }
    const model = new Model(this.#raw, handle, report.summary, this.input, this.classes, true);
    return { model, report: { folded: report.folded, kept: report.kept } };
  }
}
