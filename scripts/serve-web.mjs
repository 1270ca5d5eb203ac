// Serves the playground's build (web/dist) with the package's static server (dist/serve.js, from
// bindings/js/serve.ts: the one `npx normlab playground` uses), on 127.0.0.1.
//   node scripts/serve-web.mjs [--port 8080] [--dir web/dist]
// Tests import `serve` and use a free port (port 0).
import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve as serveDir } from '../dist/serve.js';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');

export { MIME } from '../dist/serve.js';

/** The package's server (bindings/js/serve.ts), serving web/dist unless told otherwise. */
export function serve(dir = join(root, 'web', 'dist'), options = {}) {
  return serveDir(dir, options);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const value = (name, fallback) => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
  };
  const dir = resolve(value('--dir', join(root, 'web', 'dist')));
  const port = Number(value('--port', process.env.PORT ?? '8080'));
  try {
    statSync(join(dir, 'index.html'));
  } catch {
    console.error(`serve-web: ${dir}/index.html not found; build the playground first (npm run build:web)`);
    process.exit(1);
  }
  const { url } = await serve(dir, { port });
  console.log(`normlab playground: ${url}  (Ctrl-C to stop)`);
}
