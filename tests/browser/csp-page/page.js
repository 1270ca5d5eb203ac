// The package (pkg/: the files of dist/) in a page served with a strict Content-Security-Policy
// (no 'unsafe-eval', no 'unsafe-inline'): on the main thread and in a dedicated Web Worker that
// fetches the .wasm itself. Writes a JSON report to #out for tests/browser/csp.test.mjs.
import { compute } from './workload.js';

const out = document.getElementById('out');
const violations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  violations.push({ directive: e.effectiveDirective, blocked: e.blockedURI, sample: e.sample });
});
const settle = () => new Promise((resolve) => setTimeout(resolve, 200));

function inWorker() {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    worker.onmessage = (e) => {
      worker.terminate();
      resolve(e.data);
    };
    worker.onerror = (e) => {
      worker.terminate();
      reject(new Error(`worker: ${e.message}`));
    };
  });
}

async function main() {
  const report = {};
  const before = Object.getOwnPropertyNames(globalThis);
  const { load } = await import('./pkg/index.js');
  report.main = await compute(load);
  report.worker = await inWorker();
  const after = Object.getOwnPropertyNames(globalThis);
  report.addedGlobals = after.filter((name) => !before.includes(name));
  await settle();
  report.violationsBeforeControl = violations.splice(0);
  // The negative control: eval and new Function are refused, and reported as violations.
  try {
    report.evalResult = eval('1');
  } catch (error) {
    report.evalError = error.name;
  }
  try {
    report.functionResult = new Function('return 1')();
  } catch (error) {
    report.functionError = error.name;
  }
  await settle();
  report.violationsOfControl = violations.splice(0);
  return report;
}

main().then(
  (report) => {
    out.textContent = JSON.stringify(report);
    out.dataset.status = 'done';
  },
  (error) => {
    out.textContent = String(error?.stack ?? error);
    out.dataset.status = 'error';
  },
);
