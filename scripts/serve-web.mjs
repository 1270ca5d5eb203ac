// A tiny static file server for the playground's build (web/dist), on 127.0.0.1 only: correct MIME
// types for .wasm (so browsers compile it while it streams), .js and .nlds, no directory listings,
// nothing outside the served folder. Plain Node, no dependencies.
//   node scripts/serve-web.mjs [--port 8080] [--dir web/dist]
// Tests import `serve` and use a free port (port 0).
import { createServer } from 'node:http';
import { createReadStream, statSync } from 'node:fs';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');

export const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.nlds': 'application/octet-stream',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/**
 * Serves `dir` on 127.0.0.1:`port` (0: any free port). Resolves with `{ url, close(), requests }`,
 * where `requests` lists every path asked for (the tests check the page asks only for its own files).
 * `headers` are added to every response (the tests send a strict Content-Security-Policy).
 */
export function serve(dir = join(root, 'web', 'dist'), { port = 0, host = '127.0.0.1', headers = {} } = {}) {
  const base = resolve(dir);
  const requests = [];
  const server = createServer((req, res) => {
    let path;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    } catch {
      res.writeHead(400).end('bad request');
      return;
    }
    requests.push(path);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    let file = normalize(join(base, path));
    if (file !== base && !file.startsWith(base + sep)) {
      res.writeHead(403).end('forbidden');
      return;
    }
    try {
      if (statSync(file).isDirectory()) file = join(file, 'index.html');
      const stat = statSync(file);
      res.writeHead(200, {
        'content-type': MIME[extname(file)] ?? 'application/octet-stream',
        'content-length': stat.size,
        'cache-control': 'no-cache',
        'x-content-type-options': 'nosniff',
        ...headers,
      });
      if (req.method === 'HEAD') res.end();
      else createReadStream(file).pipe(res);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found');
    }
  });
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const address = server.address();
      resolvePromise({
        url: `http://${host}:${address.port}/`,
        requests,
        close: () => new Promise((done) => {
          server.closeAllConnections?.();
          server.close(() => done());
        }),
      });
    });
  });
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
