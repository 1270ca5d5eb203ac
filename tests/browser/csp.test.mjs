// Reliability in Debian's headless Chromium: the package and the playground under a strict
// Content-Security-Policy, in a dedicated Web Worker, without new globals and without requests
// beyond the page's own files. Run by `npm test` (browser suite) after playground.test.mjs;
// this file alone assumes a build: `node tests/browser/csp.test.mjs [name filter...]`.
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '../../scripts/serve-web.mjs';
import { launch } from './browser.mjs';
import { LAYER, compute, input } from '../shared/workload.js';
import { assert, assertEqual, run, test } from './harness.mjs';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

/** No 'unsafe-eval', no 'unsafe-inline': only WebAssembly compilation is allowed beyond 'self'. */
export const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'";

/** The package's files the page may load: the modules and the .wasm that package.json ships, without the CLI. */
const PACKAGE_FILES = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).files
  .filter((f) => /^dist\/[^/]+\.(js|wasm)$/.test(f) && f !== 'dist/cli.js')
  .map((f) => f.slice('dist/'.length));

let browser;
let expected;
const tmp = mkdtempSync(join(tmpdir(), 'normlab-csp-'));

/** Serves `dir` with the strict policy on every response. */
const serveStrict = (dir) => serve(dir, { headers: { 'content-security-policy': CSP } });

/** A page recording console errors and warnings, page errors, failed requests and every request URL. */
async function newPage() {
  const page = await browser.context.newPage();
  const problems = [];
  const requested = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('request', (r) => requested.push(r.url()));
  page.problems = problems;
  page.requested = requested;
  return page;
}

/** BatchNorm in training mode in plain JS (biased variance, eps 1e-5, gamma 1, beta 0), [N, C, L]. */
function batchnormReference(x, [N, C, L]) {
  const y = new Float64Array(x.length);
  for (let c = 0; c < C; c++) {
    let sum = 0;
    let sq = 0;
    for (let n = 0; n < N; n++) for (let l = 0; l < L; l++) sum += x[(n * C + c) * L + l];
    const mean = sum / (N * L);
    for (let n = 0; n < N; n++) for (let l = 0; l < L; l++) sq += (x[(n * C + c) * L + l] - mean) ** 2;
    const inv = 1 / Math.sqrt(sq / (N * L) + 1e-5);
    for (let n = 0; n < N; n++) for (let l = 0; l < L; l++) y[(n * C + c) * L + l] = (x[(n * C + c) * L + l] - mean) * inv;
  }
  return y;
}

test('the package under a strict CSP: loads, forward and a runner give Node\'s numbers, in a Web Worker too; no globals, no other requests', async () => {
  const site = join(tmp, 'package');
  cpSync(join(root, 'tests', 'browser', 'csp-page'), site, { recursive: true });
  copyFileSync(join(root, 'tests', 'shared', 'workload.js'), join(site, 'workload.js'));
  writeFileSync(join(site, 'favicon.ico'), '');  // Chromium asks for it by itself; a 404 would log an error
  mkdirSync(join(site, 'pkg'));
  for (const f of PACKAGE_FILES) copyFileSync(join(root, 'dist', f), join(site, 'pkg', f));
  const server = await serveStrict(site);
  const page = await newPage();
  try {
    const response = await page.goto(server.url);
    assertEqual(response.headers()['content-security-policy'], CSP, 'the page is served with the policy');
    await page.waitForFunction(() => document.querySelector('#out')?.dataset.status !== 'running', null, { timeout: 60_000 });
    const text = await page.$eval('#out', (el) => el.textContent);
    assertEqual(await page.$eval('#out', (el) => el.dataset.status), 'done', `the page's script failed: ${text}`);
    const report = JSON.parse(text);

    // (a) the numbers: bit for bit Node's, and close to a plain-JS BatchNorm.
    assertEqual(report.main.y, expected.y, 'forward on the main thread equals Node\'s');
    const ref = batchnormReference(input(), LAYER.shape);
    const worst = Math.max(...report.main.y.map((v, i) => Math.abs(v - ref[i])));
    assert(worst < 1e-5, `forward is BatchNorm (worst difference from the JS reference ${worst})`);
    assert(report.main.result === expected.result, 'the runner\'s result on the main thread is Node\'s, byte for byte');
    assertEqual(report.main.live, 0, 'nothing left alive on the main thread');
    // The Web Worker: it fetched the .wasm itself, and computed the same numbers.
    assert(!report.worker.error, `the worker failed: ${report.worker.error}`);
    assert(report.worker.fetched.includes('/pkg/normlab_wasm.wasm'), `the worker fetched the .wasm itself (${report.worker.fetched.join(', ')})`);
    assertEqual(report.worker.y, report.main.y, 'forward in the worker equals the main thread\'s');
    assert(report.worker.result === report.main.result, 'the runner\'s result in the worker equals the main thread\'s');

    // No globals, no violations, no requests beyond the page's own files.
    assertEqual(report.addedGlobals, [], 'globals added by loading and using the package');
    assertEqual(report.violationsBeforeControl, [], 'CSP violations while loading and using the package');
    const origin = new URL(server.url).origin;
    const foreign = page.requested.filter((u) => new URL(u).origin !== origin);
    assertEqual(foreign, [], 'requests to other origins');
    const own = new Set(['/', '/page.js', '/workload.js', '/worker.js', ...PACKAGE_FILES.map((f) => `/pkg/${f}`)]);
    assertEqual(page.requested.map((u) => new URL(u).pathname).filter((p) => !own.has(p)), [], 'requests of the page beyond its own files');
    // The server also sees Chromium's own request for /favicon.ico (not the page's, not the package's).
    assertEqual(server.requests.filter((p) => !own.has(p) && p !== '/favicon.ico'), [], 'requests the server saw beyond the page\'s own files');
    assertEqual(server.requests.filter((p) => p === '/pkg/normlab_wasm.wasm').length, 2, 'the .wasm fetched twice (page and worker)');

    // The negative control: the policy is in force in this page.
    assertEqual(await page.evaluate(() => document.documentElement.dataset.inline ?? null), null, 'the inline script was blocked');
    assert(page.problems.some((p) => /inline script/i.test(p) && /Content Security Policy/i.test(p)),
      `the blocked inline script is reported on the console:\n  ${page.problems.join('\n  ')}`);
    assertEqual([report.evalResult, report.evalError], [undefined, 'EvalError'], 'eval(\'1\') throws an EvalError');
    assertEqual([report.functionResult, report.functionError], [undefined, 'EvalError'], 'new Function throws an EvalError');
    assert(report.violationsOfControl.length >= 2 && report.violationsOfControl.every((v) => v.directive === 'script-src' && v.blocked === 'eval'),
      `eval and new Function are reported as script-src violations: ${JSON.stringify(report.violationsOfControl)}`);
    const others = page.problems.filter((p) => !/inline script|unsafe-eval|EvalError/i.test(p));
    assertEqual(others, [], 'other console errors, page errors or failed requests');
  } finally {
    await page.close();
    await server.close();
  }
});

test('the playground under a strict CSP: a preset runs to the end with no console error and no violation', async () => {
  const server = await serveStrict(join(root, 'web', 'dist'));
  const page = await newPage();
  // Violations in the page reach the console (and page.problems); the listener adds no global.
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.effectiveDirective} blocked ${e.blockedURI}`);
    });
  });
  try {
    const response = await page.goto(server.url);
    assertEqual(response.headers()['content-security-policy'], CSP, 'the page is served with the policy');
    await page.waitForSelector('#preset-list button');
    await page.click('button[data-preset="small-batch"]');
    await page.waitForFunction(() => document.querySelector('#status')?.dataset.status === 'done', null, { timeout: 120_000, polling: 100 });
    const traces = await page.evaluate(() => globalThis.__normlab.traces().map((t) => [t.stepsDone, t.methods.map((m) => m.loss.length)]));
    assertEqual(traces, [[6485, [6485, 6485, 6485, 6485]]], 'the preset ran every step of every method');
    assertEqual(await page.$eval('#results-table', (t) => t.dataset.final), 'true', 'final results shown');
    const origin = new URL(server.url).origin;
    assertEqual(page.requested.filter((u) => !u.startsWith(origin) && !u.startsWith('blob:') && !u.startsWith('data:')), [], 'requests to other origins');
    assertEqual(page.problems, [], 'console errors, page errors, failed requests or CSP violations');
    // The negative control: the same page refuses an inline script, and the listener reports it.
    // (Code that page.evaluate runs is exempt from the policy, so the script is added as an element.)
    const ran = await page.evaluate(async () => {
      const script = document.createElement('script');
      script.textContent = 'document.documentElement.dataset.inline = "ran";';
      document.head.append(script);
      await new Promise((resolve) => setTimeout(resolve, 200));
      return document.documentElement.dataset.inline ?? null;
    });
    assertEqual(ran, null, 'an inline script added to the playground does not run');
    assert(page.problems.some((p) => p.includes('CSP violation: script-src-elem blocked inline')), `the violation was reported: ${page.problems.join('; ')}`);
  } finally {
    await page.close();
    await server.close();
  }
}, { timeout: 180_000 });

async function main() {
  const only = process.argv.slice(2);
  // What the page must compute: the same calls in Node.
  const { load } = await import('../../dist/index.js');
  expected = await compute(load);
  browser = await launch();
  let counts;
  try {
    counts = await run({ only });
  } finally {
    await browser.close();
    rmSync(tmp, { recursive: true, force: true });
  }
  process.exitCode = counts.failed > 0 || counts.passed === 0 ? 1 : 0;
}

await main();
