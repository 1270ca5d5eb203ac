// The installed package's playground: `npm pack`, install the tarball into a fresh folder, run
// `npx normlab playground` there (nothing but Node and the package: no repository, no Emscripten)
// and train a preset in it in Debian's headless Chromium. Run by `npm test` (browser suite); this
// file alone assumes a build including dist/playground (node scripts/build.mjs wasm js web).
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from './browser.mjs';
import { assert, assertEqual, run, test } from './harness.mjs';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const work = mkdtempSync(join(tmpdir(), 'normlab-installed-'));

/** Starts `npx normlab playground ...` in `cwd`; resolves with its URL and a stop function. */
function startPlayground(cwd, args) {
  // Its own process group: npx starts node, and stopping the group stops both.
  const child = spawn('npx', ['--offline', 'normlab', 'playground', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL after 60 s:\n${out}\n${err}`)), 60_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /normlab playground: (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({
          url: m[1], output: () => out + err,
          stop: () => {
            child.removeAllListeners('exit');
            try {
              process.kill(-child.pid, 'SIGTERM');
            } catch {
              // already gone
            }
          },
        });
      }
    });
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`npx normlab playground exited with ${code}:\n${out}\n${err}`));
    });
  });
}

test('npm install <tarball> && npx normlab playground: the page runs a preset in headless Chromium', async () => {
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: root, encoding: 'utf8' });
  const tarball = join(work, JSON.parse(out)[0].filename);
  const app = join(work, 'fresh app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'fresh-app', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--offline', tarball], { cwd: app, stdio: 'pipe' });
  const server = await startPlayground(app, ['--port', '0']);
  const browser = await launch();
  try {
    const page = await browser.context.newPage();
    const problems = [];
    const foreign = [];
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
    page.on('request', (r) => { if (!r.url().startsWith(server.url) && !r.url().startsWith('blob:') && !r.url().startsWith('data:')) foreign.push(r.url()); });
    await page.goto(server.url);
    await page.waitForSelector('#preset-list button');
    await page.click('button[data-preset="small-batch"]');
    await page.waitForFunction(() => document.querySelector('#status')?.dataset.status === 'done', null, { timeout: 90_000, polling: 100 });
    const rows = await page.$$eval('#results-table tbody tr', (r) => r.map((x) => x.dataset.id));
    assertEqual(rows, ['bn', 'brn', 'gn', 'ln'], 'one result row per method of the preset');
    const bn = Number(await page.$eval('#results-table tbody tr[data-id="bn"] td', (td) => td.dataset.value));
    assert(bn > 0 && bn < 1, `BatchNorm's test accuracy is a number: ${bn}`);
    assertEqual(problems, [], 'no page errors');
    assertEqual(foreign, [], 'no requests beyond the local server');
  } finally {
    await browser.close();
    server.stop();
  }
}, { timeout: 240_000 });

test('npx normlab playground: a taken --port is a clear error, exit code 2', async () => {
  const app = join(work, 'fresh app');
  const first = await startPlayground(app, ['--port', '0']);
  try {
    const port = new URL(first.url).port;
    let message = '';
    try {
      execFileSync('npx', ['--offline', 'normlab', 'playground', '--port', port], { cwd: app, encoding: 'utf8', stdio: 'pipe' });
    } catch (error) {
      message = `${error.status} ${error.stderr}`;
    }
    assert(/^2 normlab: cannot serve on 127\.0\.0\.1:\d+: the port is in use; choose another --port/.test(message), `message: ${message}`);
  } finally {
    first.stop();
  }
});

const counts = await run({ only: process.argv.slice(2) });
rmSync(work, { recursive: true, force: true });
process.exitCode = counts.failed > 0 || counts.passed === 0 ? 1 : 0;
