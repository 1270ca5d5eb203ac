// The playground's static build: `vite build web` -> web/dist with relative paths (base './'), so
// it works from any folder or static host. `normlab` is this repository's package (dist/), built
// first by `node scripts/build.mjs wasm js`; its subpath normlab/csv-data too.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const packageEntry = fileURLToPath(new URL('../dist/index.js', import.meta.url));
// The page parses your data's CSV itself (papaparse, a CommonJS package the bundler converts).
const csvEntry = fileURLToPath(new URL('../dist/csv-data.js', import.meta.url));
// The data set files, as the package's subpath exports name them (normlab/data/digits.nlds).
const dataDir = fileURLToPath(new URL('../dist/data/', import.meta.url));
if (!existsSync(packageEntry)) {
  throw new Error('web: dist/index.js is missing; build the package first: node scripts/build.mjs wasm js');
}

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  resolve: { alias: [{ find: /^normlab$/, replacement: packageEntry }, { find: /^normlab\/csv-data$/, replacement: csvEntry },
    { find: /^normlab\/data\/(.*)$/, replacement: `${dataDir}$1` }] },
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
