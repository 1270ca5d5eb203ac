// A worker_threads body for tests/js/isolation.test.ts: loads the package in this thread and posts
// back the shared workload's numbers.
import { parentPort } from 'node:worker_threads';
import { load } from '../../dist/index.js';
import { compute } from '../shared/workload.js';

parentPort.postMessage(await compute(load));
