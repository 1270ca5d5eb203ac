// Declarations of the Emscripten module that bindings/embind.cpp registers (internal: the public
// API is index.ts). Methods return their result or, on failure, the error message as a string.
export interface LayerHandle {
  create(method: string, optionsJson: string): string | undefined;
  options(): string;
  forward(x: Float32Array, shape: number[], training: boolean): Float32Array | string;
  backward(dy: Float32Array): Float32Array | string;
  get(which: 'params' | 'grads' | 'state'): Record<string, Float32Array>;
  set(which: 'params' | 'state', name: string, values: Float32Array): string | undefined;
  setLimits(rMax: number, dMax: number): string | undefined;
  setPopulationStatistics(x: Float32Array, shape: number[]): boolean | string;
  lastCorrection(): { r: Float32Array; d: Float32Array } | null;
  delete(): void;
}

export interface WeightLayerHandle {
  create(method: string, optionsJson: string): string | undefined;
  options(): string;
  outputShape(shape: number[]): number[] | string;
  forward(x: Float32Array, shape: number[], training: boolean): Float32Array | string;
  backward(dy: Float32Array): Float32Array | string;
  get(which: 'params' | 'grads'): Record<string, Float32Array>;
  set(name: string, values: Float32Array): string | undefined;
  delete(): void;
}

export interface RunnerHandle {
  create(configJson: string, data: Uint8Array | undefined): string | { error: string };
  createWithData(configJson: string, x: Float32Array, labels: Int32Array, shape: number[],
    testX: Float32Array | undefined, testLabels: Int32Array | undefined, classNames: string[]): string | { error: string };
  step(n: number): string | { error: string };
  result(): string | { error: string };
  timing(): string | { error: string };
  predict(id: string, x: Float32Array, folded: boolean): Float32Array | { error: string };
  fold(id: string): string | { error: string };
  dataInfo(): { sampleShape: number[]; classes: number; classNames?: string[] };
  adaptBatchNorm(id: string, x: Float32Array): number | { error: string };
  samples(which: string, max: number): { x: Float32Array; labels: Int32Array } | { error: string };
  stepsDone(): number;
  done(): boolean;
  delete(): void;
}

export interface PreprocessHandle {
  fit(kind: string, eps: number, x: Float32Array, n: number, f: number): string | undefined;
  transform(x: Float32Array, n: number): Float32Array | string;
  inverse(y: Float32Array, n: number): Float32Array | string;
  features(): number;
  delete(): void;
}

export interface ModelHandle {
  create(configJson: string): string | { error: string };
  foldOf(source: ModelHandle): string | { error: string };
  fitBegin(x: Float32Array, labels: Int32Array, epochs: number, batchSize: number): number | { error: string };
  fitStep(): number | { error: string };
  fitEnd(): void;
  evaluate(x: Float32Array, labels: Int32Array): { loss: number; accuracy: number } | { error: string };
  predict(x: Float32Array): Float32Array | { error: string };
  getWeights(): Record<string, Float32Array> | { error: string };
  setWeights(weights: Record<string, Float32Array>): undefined | { error: string };
  stepsDone(): number;
  delete(): void;
}

export interface RawMemoryStats {
  heapBytes: number;
  heapMaxBytes: number;
  usedBytes: number;
  liveLayers: number;
  liveRunners: number;
  livePreprocessors: number;
  liveModels: number;
}

export interface NormlabWasmModule {
  LayerHandle: new () => LayerHandle;
  WeightLayerHandle: new () => WeightLayerHandle;
  RunnerHandle: new () => RunnerHandle;
  PreprocessHandle: new () => PreprocessHandle;
  ModelHandle: new () => ModelHandle;
  memoryStats(): RawMemoryStats;
  methodsJson(): string;
  describeMethodsJson(): string;
}

export interface ModuleArgs {
  instantiateWasm(
    imports: WebAssembly.Imports,
    done: (instance: WebAssembly.Instance) => void,
  ): Record<string, never>;
  onAbort?(what: unknown): void;
}

export default function createNormlabModule(args: ModuleArgs): Promise<NormlabWasmModule>;
