/// <reference lib="esnext.disposable" preserve="true" />
// The one base of every wrapper that owns a WebAssembly object (the layers, Runner, Preprocessor):
// the handle, dispose(), `using`, and the Error for a call after dispose.

/** `Symbol.dispose`, or its registered stand-in where the runtime has none. */
export const disposeSymbol: typeof Symbol.dispose =
  (Symbol as { dispose?: typeof Symbol.dispose }).dispose ?? (Symbol.for('Symbol.dispose') as typeof Symbol.dispose);

/**
 * A wrapper owning one WebAssembly object, freed by `dispose()` (or a `using` declaration); any
 * call after that is an Error naming the wrapper and the call ("runner: step() called after
 * dispose()"). The live counts of `nl.memory()` count these objects on the C++ side.
 */
export abstract class OwnedHandle<H extends { delete(): void }> {
  #handle: H | null;
  /** Names the wrapper in errors: a layer's method, `runner`, `preprocess`. */
  #owner: string;
  #onDispose: ((owner: object) => void) | undefined;

  /** @internal */
  protected constructor(owner: string, handle: H, onDispose?: (owner: object) => void) {
    this.#owner = owner;
    this.#handle = handle;
    this.#onDispose = onDispose;
  }

  /** Whether `dispose()` has been called. */
  get disposed(): boolean {
    return this.#handle === null;
  }

  /** Frees the WebAssembly memory. Idempotent. */
  dispose(): void {
    if (this.#handle === null) return;
    this.#handle.delete();
    this.#handle = null;
    this.#onDispose?.(this);
  }

  /** Same as `dispose()`, for `using` declarations. */
  [disposeSymbol](): void {
    this.dispose();
  }

  /** @internal The live handle, or an Error naming the call after dispose. */
  protected handle(call: string): H {
    if (this.#handle === null) throw new Error(`${this.#owner}: ${call}() called after dispose()`);
    return this.#handle;
  }
}
