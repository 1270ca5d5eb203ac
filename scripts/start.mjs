// `npm start`: installs what is missing, builds, and serves the playground on localhost (printing
// its URL; Ctrl-C stops it). PORT picks the port (default 8080, or any free one if that is taken).
import { join } from 'node:path';
import { buildJs, buildWasm } from './build.mjs';
import { buildWeb } from './browser.mjs';
import { root, run } from './lib.mjs';
import { serve } from './serve-web.mjs';

try {
  await run('node', [join(root, 'scripts', 'setup.mjs')]);
  await buildWasm();
  await buildJs();
  await buildWeb();
  const dir = join(root, 'web', 'dist');
  const { url } = await serve(dir, { port: Number(process.env.PORT ?? 8080) }).catch(() => serve(dir, { port: 0 }));
  console.log(`start: the normlab playground is at ${url} (Ctrl-C to stop)`);
  console.log('start: the command-line comparison: npx normlab compare --preset small-batch');
} catch (error) {
  console.error(`start: ${error.message}`);
  process.exit(1);
}
