// A worker thread of 'normlab/workers': its own WebAssembly instance; trains the arms it is given,
// one at a time, and reports each one's progress and result (or its error, as a message).
import { parentPort } from 'node:worker_threads';
import { load } from './load.js';
import type { CompareConfig } from './runner.js';

const port = parentPort!;
const nl = await load();
port.on('message', async ({ arm, config }: { arm: number; config: CompareConfig }) => {
  try {
    const result = await nl.compare(config, { chunk: 200, onProgress: (e) => port.postMessage({ type: 'progress', arm, steps: e.step }) });
    port.postMessage({ type: 'done', arm, result });
  } catch (error) {
    port.postMessage({ type: 'error', arm, message: error instanceof Error ? error.message : String(error) });
  }
});
port.postMessage({ type: 'ready' });
