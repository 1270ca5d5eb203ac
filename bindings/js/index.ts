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
// The package's entry point: it only re-exports. types.ts holds the types, layers.ts the layers,
// load.ts the loader and the loaded instance; runner.ts, presets.ts and preprocess.ts the
// comparisons and data normalization; model.ts a model of the user's own (nl.model); csv.ts their
// results as CSV; probes.ts the probes' summaries; dataset.ts the user's own data (the array form checked, NLDS files). csv-data.ts
// (parseCsvDataset) is the subpath 'normlab/csv-data', not re-exported here: it imports papaparse,
// which a browser cannot load without a bundler, and this entry point must load anywhere.
export * from './types.js';
export { momentumWarning } from './checks.js';
export * from './layers.js';
export * from './load.js';
export * from './runner.js';
export * from './presets.js';
export * from './preprocess.js';
export * from './model.js';
export * from './csv.js';
export * from './dataset.js';
export * from './stats.js';
export * from './seeds.js';
export * from './probes.js';
