// `npm start`: installs what is missing, builds, and runs the main job. Until the playground
// exists, that is the Node demo comparing the five normalization layers on one batch.
import { join } from 'node:path';
import { buildJs, buildWasm } from './build.mjs';
import { root, run } from './lib.mjs';

try {
  await run('node', [join(root, 'scripts', 'setup.mjs')]);
  await buildWasm();
  await buildJs();
  await run('node', [join(root, 'examples', 'compare-layers.mjs')]);
} catch (error) {
  console.error(`start: ${error.message}`);
  process.exit(1);
}
