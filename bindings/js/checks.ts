// Argument checks shared by the layers and the loader, and the C++ side's way of failing (an error
// message returned as a string) turned into a thrown Error.

export function unwrap(result: Float32Array | string): Float32Array {
  if (typeof result === 'string') throw new Error(result);
  return result;
}

export function checkError(result: string | undefined): void {
  if (typeof result === 'string') throw new Error(result);
}

export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  return typeof value;
}

export function checkFloat32(method: string, what: string, value: unknown): void {
  if (!(value instanceof Float32Array)) {
    throw new Error(`${method}: ${what} must be a Float32Array, got ${typeName(value)}`);
  }
}

export function checkShape(method: string, shape: unknown): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number')) {
    throw new Error(`${method}: shape must be an array of numbers like [N, C, H, W], got ${typeName(shape)}`);
  }
  return shape as number[];
}

/** JSON for the C++ side; non-finite numbers (which JSON cannot carry) as "NaN"/"Infinity" strings. */
export function optionsJson(method: string, options: unknown): string {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new Error(`${method}: options must be an object, got ${typeName(options)}`);
  }
  try {
    return JSON.stringify(options, (_key, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
  } catch (error) {
    throw new Error(`${method}: options must be plain data (${(error as Error).message})`);
  }
}

/**
 * The warning for a normalization layer's momentum of 0.5 or more (the CLI's, the playground's and
 * the package's): normlab follows PyTorch's convention, under which Keras's habitual 0.99 keeps
 * almost no memory of the running statistics.
 */
export function momentumWarning(method: string, momentum: number): string {
  return `${method} momentum ${momentum}: normlab follows PyTorch, running = (1 - momentum) * running + momentum * batch, ` +
    `so ${momentum} keeps little memory of the running statistics; Keras's momentum ${momentum} is PyTorch's ${Number((1 - momentum).toPrecision(6))}`;
}
