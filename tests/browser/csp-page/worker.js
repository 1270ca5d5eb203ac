// A dedicated module worker: loads the package (the worker fetches the .wasm), computes what the
// page computes, and posts it back with the URLs this worker fetched.
import { compute } from './workload.js';
import { load } from './pkg/index.js';

compute(load).then(
  (report) => postMessage({ ...report, fetched: performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname) }),
  (error) => postMessage({ error: String(error?.stack ?? error) }),
);
