// A minimal test harness for the browser tests: `test(name, fn)` registers, `run()` runs them in
// order, prints each outcome and a closing line 'N passed, M failed', and returns the counts.

const tests = [];

export function test(name, fn, { timeout = 120_000 } = {}) {
  tests.push({ name, fn, timeout });
}

export class AssertionError extends Error {}

export function assert(condition, message) {
  if (!condition) throw new AssertionError(message);
}

export function assertEqual(actual, expected, message) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new AssertionError(`${message}: expected ${e}, got ${a}`);
}

function withTimeout(promise, ms, name) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${name}: timed out after ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Runs the registered tests; `only` filters by substring of the name. */
export async function run({ only = [] } = {}) {
  let passed = 0;
  let failed = 0;
  const chosen = only.length ? tests.filter((t) => only.some((o) => t.name.includes(o))) : tests;
  for (const t of chosen) {
    const t0 = performance.now();
    try {
      await withTimeout(Promise.resolve().then(t.fn), t.timeout, t.name);
      passed++;
      console.log(`  ok    ${t.name} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (error) {
      failed++;
      console.log(`  FAIL  ${t.name} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      console.log(`        ${String(error?.stack ?? error).split('\n').slice(0, 6).join('\n        ')}`);
    }
  }
  console.log(`\n${passed} passed, ${failed} failed`);
  return { passed, failed };
}
