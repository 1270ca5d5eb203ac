// Loading: load() and its cached default instance, finding and compiling the .wasm (streamed where
// served as application/wasm; a URL, a path in Node, or bytes given), and the loaded instance
// (Normlab): createLayer, scope, memory, the runner, preprocessing and the bundled data sets.
import createNormlabModule from './normlab_wasm.js';
import type { NormlabWasmModule } from './normlab_wasm.js';
import { checkError, momentumWarning, optionsJson, typeName } from './checks.js';
import { BatchRenormLayer, NormLayer, OwnedLayer, WeightLayer, type LayerFor } from './layers.js';
import { Model, type ModelOptions } from './model.js';
import { Preprocessor, type PreprocessKind } from './preprocess.js';
import { Runner, type CompareConfig, type CompareResult, type ProgressEvent } from './runner.js';
import { isUserDataset, type CsvParser } from './dataset.js';
import { seedConfig, seedsOf, seedsResult, type SeedsResult } from './seeds.js';
import type { MemoryInfo, Method, MethodAlias, MethodInfo, MethodOf, MethodOptions, NormMethod, WeightMethod } from './types.js';

/** Where to find the `.wasm` file, for bundlers and custom hosting. Default: beside this module. */
export interface LoadOptions {
  /**
   * URL of `normlab_wasm.wasm`; in Node also a file: URL or a path (relative to the working
   * directory, any characters: `#`, spaces, non-ASCII; a Windows path too).
   */
  wasmUrl?: string | URL;
  /** The bytes of `normlab_wasm.wasm`, already loaded. */
  wasmBinary?: ArrayBuffer | ArrayBufferView;
}

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
   * mnist data sets need their file's bytes: `await nl.loadDataset('digits')`. The user's own data
   * (`config.dataset` with `x` or `csv`) is checked, and copied into the module once, here; a bad
   * value throws an Error naming its field, or the CSV's line and column.
   */
  createRunner(config: CompareConfig, data?: Uint8Array): Runner;
  /**
   * Runs a whole comparison, yielding to the event loop between chunks of steps; `onProgress` sees
   * each chunk's records. Rejects with an AbortError when `signal` aborts (between steps).
   * With `config.seeds`, one comparison per seed, one after another (for every core, see
   * `compareInWorkers` in 'normlab/workers'), and a `SeedsResult`: each seed's result and the
   * summary with 95% intervals over the seeds and paired differences against `config.baseline`.
   */
  compare(config: CompareConfig & { seeds: number[] }, options?: CompareOptions): Promise<SeedsResult>;
  compare(config: CompareConfig, options?: CompareOptions): Promise<CompareResult>;
  /**
   * Fits a data normalization on training samples `x` of `shape` [N, ...features] (seed 004 §2):
   * min-max, standardization, or PCA / ZCA whitening with `eps` added to the eigenvalues.
   */
  fitPreprocessor(kind: PreprocessKind, x: Float32Array, shape: readonly number[], options?: { eps?: number }): Preprocessor;
  /**
   * A classifier of your own: the model a comparison trains for one method (`layers` with `norm`
   * slots filled by `norm`, then the flatten and final Linear to `classes`), with weights from
   * `seed`, to `fit`, `evaluate`, `predict`, save (`getWeights`) and `fold` in your code. Throws an
   * Error naming the problem for a bad description, input shape or option. Free it with `dispose()`.
   */
  model(options: ModelOptions): Model;
  /**
   * The bytes of a bundled data set file (digits: 1,797 8x8 UCI digits; mnist: 10,000 MNIST digits).
   * Read beside this module (Node, or a page that serves the package's files as they are) unless
   * `url` says where: a bundled app imports the file's URL from the subpath export, e.g. with Vite
   * `import url from 'normlab/data/digits.nlds?url'`, so the data sets are in a bundle only when used.
   */
  loadDataset(name: 'digits' | 'mnist', url?: string | URL): Promise<Uint8Array>;
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

class NormlabInstance implements Normlab {
  readonly methods: readonly Method[];
  #raw: NormlabWasmModule;
  #scopes: Set<object>[] = [];  // layers created inside each open scope()
  #table: string | undefined;   // describeMethodsJson(), read once
  #csv: CsvParser;              // parseCsvDataset for the runner's CSV form

  constructor(raw: NormlabWasmModule, csv: CsvParser) {
    this.#raw = raw;
    this.#csv = csv;
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
    const info = this.describeMethods().find((m) => m.name === name || m.aliases.includes(name));
    const method = (info?.name ?? name) as Method;
    const json = optionsJson(method, options);
    const onDispose = (layer: object) => {
      for (const scope of this.#scopes) scope.delete(layer);
    };
    let layer: NormLayer | WeightLayer;
    if (info?.weightMethod) {
      const handle = new this.#raw.WeightLayerHandle();
      try {
        checkError(handle.create(method, json));
      } catch (error) {
        handle.delete();
        throw error;
      }
      layer = new WeightLayer(method as WeightMethod, handle, onDispose);
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
    // Keras's habit (0.99) under PyTorch's convention keeps almost no memory: said once, per layer.
    const momentum = (options as { momentum?: unknown } | undefined)?.momentum;
    if (typeof momentum === 'number' && momentum >= 0.5 && info?.options.some((o) => o.key === 'momentum')) {
      console.warn(`normlab: ${momentumWarning(method, momentum)}`);
    }
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
    return new Runner(this.#raw, this.#csv, config, data);
  }

  model(options: ModelOptions): Model {
    return Model.create(this.#raw, options);
  }

  async loadDataset(name: 'digits' | 'mnist', url?: string | URL): Promise<Uint8Array> {
    if (name !== 'digits' && name !== 'mnist') {
      throw new Error(`loadDataset: unknown data set '${String(name)}' (known: digits, mnist)`);
    }
    // Not `new URL('./data/...', import.meta.url)`: bundlers would copy every data set into every app.
    const where = url !== undefined ? resolveUrl(url) : new URL(`./data/${name}.nlds`, moduleUrl);
    try {
      return await readAsset(where);
    } catch (error) {
      if (url !== undefined) throw error;
      throw new Error(`${(error as Error).message}. The ${name} data set is not beside the package's modules (a bundled app): ` +
        `give its URL, nl.loadDataset('${name}', url), e.g. with Vite: import url from 'normlab/data/${name}.nlds?url'`);
    }
  }

  compare(config: CompareConfig & { seeds: number[] }, options?: CompareOptions): Promise<SeedsResult>;
  compare(config: CompareConfig, options?: CompareOptions): Promise<CompareResult>;
  async compare(config: CompareConfig, options: CompareOptions = {}): Promise<CompareResult | SeedsResult> {
    const seeds = seedsOf(config);
    if (seeds) {
      const runs: CompareResult[] = [];
      for (const seed of seeds) runs.push(await this.compare(seedConfig(config, seed), options));
      return seedsResult(seeds, runs, config.baseline);
    }
    const name = isUserDataset(config?.dataset) ? undefined : config?.dataset?.name;
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

/** This module's URL, kept in a variable so bundlers do not take `new URL(x, moduleUrl)` for an asset. */
const moduleUrl = import.meta.url;

interface NodeProcess {
  versions?: { node?: string };
  cwd?: () => string;
  /** Node >= 20.16: a built-in module without an import statement a bundler would follow. */
  getBuiltinModule?: (id: string) => unknown;
}

const nodeProcess = () => (globalThis as { process?: NodeProcess }).process;
const isNode = () => nodeProcess()?.versions?.node !== undefined;

/** A Node built-in module (fs, url), or an Error saying which Node it needs. */
function builtin<T>(id: string): T {
  const get = nodeProcess()?.getBuiltinModule;
  if (!get) throw new Error(`normlab: reading files needs Node 20.19 or later (process.getBuiltinModule; this is ${nodeProcess()?.versions?.node})`);
  return get(id) as T;
}

/** The bytes at a URL: fs for file: URLs (Node), fetch otherwise. */
async function readAsset(url: URL): Promise<Uint8Array<ArrayBuffer>> {
  if (url.protocol === 'file:') {
    const fs = builtin<{ readFile(path: URL): Promise<Uint8Array> }>('node:fs/promises');
    let bytes: Uint8Array;
    try {
      bytes = await fs.readFile(url);
    } catch (error) {
      const path = builtin<{ fileURLToPath(u: URL): string }>('node:url').fileURLToPath(url);
      throw new Error(`normlab: could not read ${path}: ${(error as { code?: string }).code ?? (error as Error).message}`);
    }
    return new Uint8Array(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength);
  }
  const response = await fetch(url);
  if (!response.ok) throw new Error(`normlab: could not fetch ${url.href}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** What to do when the .wasm is not found: most often a bundler did not copy it. */
const WASM_HELP = 'The bundle did not copy normlab_wasm.wasm beside the package\'s modules (esbuild and Rollup do not): ' +
  'serve node_modules/normlab/dist/normlab_wasm.wasm and pass its URL, load({ wasmUrl: \'/normlab_wasm.wasm\' }) ' +
  '(the README has a recipe per bundler)';

/** The compiled .wasm at `url`: streamed where the server says application/wasm. */
async function fetchWasm(url: URL, given: boolean): Promise<WebAssembly.Module> {
  if (url.protocol !== 'file:' && typeof WebAssembly.compileStreaming === 'function') {
    let response: Response;
    try {
      response = await fetch(url);
    } catch (error) {
      throw new Error(`normlab: could not fetch ${url.href} (${(error as Error).message})${given ? '' : `. ${WASM_HELP}`}`);
    }
    if (!response.ok) throw new Error(`normlab: could not fetch ${url.href}: HTTP ${response.status}${given ? '' : `. ${WASM_HELP}`}`);
    if (response.headers.get('content-type')?.startsWith('application/wasm')) {
      return WebAssembly.compileStreaming(response);
    }
    return WebAssembly.compile(await response.arrayBuffer());
  }
  return WebAssembly.compile(await readAsset(url));
}

/**
 * A URL from `load({ wasmUrl })` or `loadDataset(name, url)`: in Node a path (relative to the
 * working directory, or a Windows path) goes through pathToFileURL, so '#', spaces and non-ASCII
 * stay part of it; elsewhere relative to the page.
 */
function resolveUrl(given: string | URL): URL {
  if (given instanceof URL) return given;
  const windowsPath = /^[a-zA-Z]:[\\/]/.test(given) || given.startsWith('\\\\');
  if (isNode() && (windowsPath || !/^[a-z][a-z0-9+.-]*:/i.test(given))) {
    return builtin<{ pathToFileURL(p: string): URL }>('node:url').pathToFileURL(given);
  }
  const base = (globalThis as { location?: { href: string } }).location?.href ?? moduleUrl;
  return new URL(given, base);
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
    wasmModule = await fetchWasm(url, options.wasmUrl !== undefined);
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
  return new NormlabInstance(raw, await csvParser());
}

/**
 * parseCsvDataset for the runner's CSV form, from csv-data.ts: a dynamic import, because papaparse
 * (CommonJS) loads in Node and through bundlers but not in a browser without one. There the CSV
 * form says why it is unavailable, and everything else works.
 */
async function csvParser(): Promise<CsvParser> {
  try {
    return (await import('./csv-data.js')).parseCsvDataset;
  } catch (error) {
    return { unavailable: error instanceof Error ? error.message : String(error) };
  }
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
