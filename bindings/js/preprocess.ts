/// <reference lib="esnext.disposable" preserve="true" />
// Data normalization (min-max, standardization, PCA and ZCA whitening) fitted on training data.
import type { NormlabWasmModule, PreprocessHandle } from './normlab_wasm.js';
import { OwnedHandle } from './handle.js';

export type PreprocessKind = 'minmax' | 'standardize' | 'pca' | 'zca';

function samples(shape: readonly number[], what: string): { n: number; f: number } {
  if (!Array.isArray(shape) || shape.length < 2 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new Error(`preprocess: ${what} shape must be [N, ...features] of positive integers, got ${JSON.stringify(shape)}`);
  }
  return { n: shape[0], f: shape.slice(1).reduce((a, b) => a * b, 1) };
}

/**
 * A data normalization fitted on training data (`nl.fitPreprocessor`), applied unchanged to other
 * data, with its inverse. Each sample (row) is a feature vector; images are flattened. Owns
 * WebAssembly memory: free it with `dispose()`.
 *   minmax: (x - min) / (max - min); standardize: (x - mean) / std, per feature;
 *   pca: (L + eps)^-1/2 U^T (x - mean); zca: U (L + eps)^-1/2 U^T (x - mean), with C = U L U^T the
 *   training covariance (PCA components by decreasing variance).
 */
export class Preprocessor extends OwnedHandle<PreprocessHandle> {
  readonly kind: PreprocessKind;
  readonly eps: number;
  /** Features per sample. */
  readonly features: number;

  /** @internal Use `Normlab.fitPreprocessor`. */
  constructor(raw: NormlabWasmModule, kind: PreprocessKind, x: Float32Array, shape: readonly number[], eps: number) {
    if (!(x instanceof Float32Array)) throw new Error('preprocess: x must be a Float32Array');
    if (typeof eps !== 'number') throw new Error(`preprocess: eps must be a number, got ${typeof eps}`);
    const { n, f } = samples(shape, 'fit');
    const handle = new raw.PreprocessHandle();
    const error = handle.fit(String(kind), eps, x, n, f);
    if (typeof error === 'string') {
      handle.delete();
      throw new Error(error);
    }
    super('preprocess', handle);
    this.kind = kind;
    this.eps = eps;
    this.features = handle.features();
  }

  /** The normalized samples (a new Float32Array) for `x` of shape [N, ...features]. */
  transform(x: Float32Array, shape: readonly number[]): Float32Array {
    return this.#apply('transform', x, shape);
  }

  /** The original samples for normalized ones: inverse(transform(x)) == x up to float rounding. */
  inverse(y: Float32Array, shape: readonly number[]): Float32Array {
    return this.#apply('inverse', y, shape);
  }

  #apply(call: 'transform' | 'inverse', x: Float32Array, shape: readonly number[]): Float32Array {
    const handle = this.handle(call);
    if (!(x instanceof Float32Array)) throw new Error(`preprocess: ${call} takes a Float32Array`);
    const { n, f } = samples(shape, call);
    if (f !== this.features) throw new Error(`preprocess: ${call} got samples of ${f} features, fitted on ${this.features}`);
    const out = handle[call](x, n);
    if (typeof out === 'string') throw new Error(out);
    return out;
  }
}
