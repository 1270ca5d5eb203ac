/// <reference lib="esnext.disposable" preserve="true" />
// The layers: NormLayer (with BatchRenormLayer, whose limits move) and WeightLayer, thin wrappers
// over the Embind handles that check their arguments and return JS-owned copies.
import type { LayerHandle, WeightLayerHandle } from './normlab_wasm.js';
import { checkError, checkFloat32, checkShape, unwrap } from './checks.js';
import { OwnedHandle } from './handle.js';
import type {
  BatchRenormOptions, ForwardOptions, Method, MethodOptions, MethodState, NormMethod, NormParams,
  ResolvedWeightOptions, WeightMethod, WeightParamsFor,
} from './types.js';

/** The layer type `createLayer` returns for a method. */
export type LayerFor<M extends Method> = M extends WeightMethod
  ? WeightLayer<M>
  : M extends 'batchrenorm'
    ? BatchRenormLayer
    : M extends NormMethod
      ? NormLayer<M>
      : never;

/**
 * What every layer shares: its method name and the WebAssembly object it owns, freed by
 * `dispose()` (or a `using` declaration); any call after that is an Error naming it.
 */
export abstract class OwnedLayer<M extends Method, H extends { delete(): void }> extends OwnedHandle<H> {
  /** The method name. */
  readonly method: M;

  /** @internal */
  protected constructor(method: M, handle: H, onDispose: (layer: object) => void) {
    super(method, handle, onDispose);
    this.method = method;
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
