// The playground's static build: `vite build web` -> web/dist with relative paths (base './'), so
// it works from any folder or static host. `normlab` is this repository's package (dist/), built
// first by `node scripts/build.mjs wasm js`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const packageEntry = fileURLToPath(new URL('../dist/index.js', import.meta.url));
if (!existsSync(packageEntry)) {
  throw new Error('web: dist/index.js is missing; build the package first: node scripts/build.mjs wasm js');
}

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  resolve: { alias: [{ find: /^normlab$/, replacement: packageEntry }] },
  worker: { format: 'es' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1000,
  },
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
});
