// Browser tests of the playground (web/dist) in Debian's headless Chromium through playwright-core.
// Run with `npm run test:browser` (scripts/browser.mjs builds first); this file alone assumes a
// build: `node tests/browser/playground.test.mjs [name filter...]`.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '../../scripts/serve-web.mjs';
import { launch } from './browser.mjs';
import { assert, assertEqual, run, test } from './harness.mjs';
import { decodePng } from './png.mjs';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const results = join(root, 'test-results');
/** The small-batch preset must finish within this (the issue's budget on a 2-core machine). */
const BUDGET_S = Number(process.env.NORMLAB_BROWSER_BUDGET_S ?? 20);

let server;
let browser;
let cliJsonText;
/** The method table, as the package describes it in Node (`describeMethods()`). */
let methodTable;
const tmp = mkdtempSync(join(tmpdir(), 'normlab-browser-'));

/** A new page that records console errors, page errors, failed and foreign requests, dialogs. */
async function newPage({ viewport } = {}) {
  const page = await browser.context.newPage();
  if (viewport) await page.setViewportSize(viewport);
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(server.url) && !u.startsWith('data:') && !u.startsWith('blob:')) problems.push(`foreign request: ${u}`);
  });
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  await page.addInitScript(() => {
    window.__longtasks = [];
    try {
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) window.__longtasks.push({ start: e.startTime, duration: e.duration });
      }).observe({ type: 'longtask', buffered: true });
    } catch {
      window.__longtasks = null;
    }
  });
  page.problems = problems;
  return page;
}

function noProblems(page) {
  assert(page.problems.length === 0, `the page reported:\n  ${page.problems.join('\n  ')}`);
}

async function open(page, hash = '') {
  await page.goto(`${server.url}${hash}`);
  await page.waitForSelector('#preset-list button');
}

const status = (page) => page.$eval('#status', (el) => el.dataset.status);
const stepsDone = (page) => page.evaluate(() => globalThis.__normlab.traces().at(-1)?.stepsDone ?? 0);

async function waitStatus(page, wanted, timeout = 120_000) {
  await page.waitForFunction((w) => document.querySelector('#status')?.dataset.status === w, wanted, { timeout, polling: 50 });
}

/** Waits until every chart shows the latest data (charts off screen catch up once training stops). */
async function waitCharts(page) {
  await page.waitForFunction(() => globalThis.__normlab.stale() === 0, null, { timeout: 10_000, polling: 50 });
}

/** Pixels of what the page shows of `selector` (a screenshot) within distance 40 of each colour. */
async function colourCounts(page, selector, colours) {
  const { data } = decodePng(await page.locator(selector).screenshot());
  const rgb = colours.map((h) => [1, 3, 5].map((i) => Number.parseInt(h.slice(i, i + 2), 16)));
  const counts = colours.map(() => 0);
  for (let p = 0; p < data.length; p += 4) {
    rgb.forEach(([r, g, b], k) => {
      if (Math.abs(data[p] - r) + Math.abs(data[p + 1] - g) + Math.abs(data[p + 2] - b) < 40) counts[k]++;
    });
  }
  return counts;
}

/** A full-page screenshot in test-results/, from the top, with the mouse out of the way. */
async function screenshot(page, name) {
  mkdirSync(results, { recursive: true });
  await page.mouse.move(0, 0);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.waitForTimeout(100);
  await page.screenshot({ path: join(results, name), fullPage: true });
}

async function downloadOf(page, selector) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click(selector)]);
  const file = join(tmp, `${Date.now()}-${download.suggestedFilename()}`);
  await download.saveAs(file);
  return { name: download.suggestedFilename(), bytes: readFileSync(file) };
}

const METHOD_COLOURS = { bn: '#D55E00', brn: '#CC79A7', gn: '#009E73', ln: '#0072B2' };

test('the page loads with no console errors and asks only for its own files', async () => {
  const page = await newPage();
  await open(page);
  await page.waitForTimeout(1500);  // the worker loads the WebAssembly module meanwhile
  assertEqual(await page.$$eval('#preset-list button', (b) => b.length > 0), true, 'presets shown');
  assertEqual(await page.isVisible('#notice'), false, 'no notice for a plain URL');
  assertEqual(await status(page), 'idle', 'status');
  const labels = await page.$$eval('form input, form select', (els) => els.filter((el) => el.offsetParent !== null)
    .filter((el) => !(el.labels?.length) && !el.getAttribute('aria-label')).map((el) => el.id));
  assertEqual(labels, [], 'visible controls without a label');
  const requested = server.requests.filter((p) => p.endsWith('.wasm'));
  assert(requested.length >= 1, 'the worker fetched the .wasm');
  noProblems(page);
  await page.close();
});

/**
 * Runs the small-batch preset in `page`: its wall time and the main thread's long tasks from the
 * click to the end; with `trace`, also the longest CPU time of a main-thread task meanwhile.
 */
async function runSmallBatch(page, { trace = false } = {}) {
  await open(page);
  await page.waitForTimeout(1000);
  let seconds = 0;
  let t0 = 0;
  const training = async () => {
    t0 = await page.evaluate(() => performance.now());
    const wall = Date.now();
    await page.click('button[data-preset="small-batch"]');
    await waitStatus(page, 'done');
    seconds = (Date.now() - wall) / 1000;
  };
  const cpuMs = trace ? await longestMainThreadCpuMs(page, training) : (await training(), null);
  const longtasks = await page.evaluate((t) => window.__longtasks && window.__longtasks.filter((e) => e.start >= t), t0);
  assert(longtasks !== null, 'PerformanceObserver supports longtask');
  console.log(`        small-batch finished in ${seconds.toFixed(1)} s; long tasks (> 50 ms) on the main thread meanwhile: ` +
    `${longtasks.length}${longtasks.length ? ` (longest ${Math.max(...longtasks.map((e) => e.duration)).toFixed(0)} ms)` : ''}` +
    (cpuMs === null ? '' : `; longest main-thread task ${cpuMs.toFixed(1)} ms of CPU time`));
  return { seconds, longtasks, cpuMs };
}

/** Whether other work keeps this machine's cores busy (then wall-clock long tasks say little). */

/**
 * Runs `fn` while tracing the page's renderer; returns the longest CPU time (thread time, ms) of a
 * task on its main thread (the renderer's busiest CrRendererMain thread). Under outside load a task's wall time (what 'longtask' measures) is
 * stretched by the scheduler; its CPU time is the page's own work.
 */
async function longestMainThreadCpuMs(page, fn) {
  const client = await browser.context.newCDPSession(page);
  const events = [];
  client.on('Tracing.dataCollected', (e) => events.push(...e.value));
  const complete = new Promise((resolve) => client.on('Tracing.tracingComplete', resolve));
  await client.send('Tracing.start', { categories: 'devtools.timeline,disabled-by-default-devtools.timeline', transferMode: 'ReportEvents' });
  await fn();
  await client.send('Tracing.end');
  await complete;
  const mains = events.filter((e) => e.ph === 'M' && e.name === 'thread_name' && e.args?.name === 'CrRendererMain');
  const busiest = mains
    .map((m) => ({ m, n: events.filter((e) => e.pid === m.pid && e.tid === m.tid).length }))
    .sort((a, b) => b.n - a.n)[0]?.m;
  const tasks = events.filter((e) => busiest && e.pid === busiest.pid && e.tid === busiest.tid && e.name === 'RunTask' && e.ph === 'X');
  assert(tasks.length > 100 && tasks.every((e) => e.tdur !== undefined), `the trace has the main thread's tasks with CPU times (${tasks.length})`);
  return Math.max(...tasks.map((e) => e.tdur / 1000));
}

test(`the small-batch preset runs to the end in under ${BUDGET_S} s with one curve per method, no long tasks`, async () => {
  const page = await newPage();
  let { seconds, longtasks } = await runSmallBatch(page);
  if (longtasks.length > 0) {
    // PerformanceObserver's long tasks are wall time: on 2 cores, any other process (or the
    // browser's own start-up work right after the click) can stretch a short task past 50 ms.
    // Measure again, with the CPU time of every main-thread task from a trace: the page's own work.
    console.log(`        load average ${loadavg()[0].toFixed(1)} on ${cpus().length} cores: measuring again with a trace`);
    const again = await newPage();
    const retry = await runSmallBatch(again, { trace: true });
    await again.close();
    if (retry.longtasks.length === 0 || retry.cpuMs < 50) {
      console.log(`        the page's own work per main-thread task stays under 50 ms (longest ${retry.cpuMs?.toFixed(1) ?? '-'} ms of CPU)`);
      longtasks = [];
    } else {
      longtasks = retry.longtasks;
    }
  }
  assert(seconds < BUDGET_S, `small-batch took ${seconds.toFixed(1)} s (budget ${BUDGET_S} s)`);
  // One trace per method with every step; one curve per method in the charts.
  const traces = await page.evaluate(() => globalThis.__normlab.traces().map((t) => t.methods.map((m) => [m.id, m.loss.length, m.evals.length])));
  assertEqual(traces, [[['bn', 6485, 21], ['brn', 6485, 21], ['gn', 6485, 21], ['ln', 6485, 21]]], 'traces');
  for (const chart of ['#chart-loss canvas', '#chart-test canvas']) {
    const counts = await colourCounts(page, chart, Object.values(METHOD_COLOURS));
    counts.forEach((n, i) => assert(n > 20, `${chart}: the curve of ${Object.keys(METHOD_COLOURS)[i]} has ${n} pixels`));
  }
  assertEqual(await page.$$eval('#results-table tbody tr', (rows) => rows.map((r) => r.dataset.id)), ['bn', 'brn', 'gn', 'ln'], 'table rows');
  assertEqual(await page.$eval('#results-table', (t) => t.dataset.final), 'true', 'final table');
  assertEqual(await page.isVisible('#chart-renorm-r'), true, 'Batch Renorm chart shown');
  assertEqual(await page.isVisible('#chart-maps'), false, 'no decision maps for images');
  assertEqual(await page.$eval('#preset-title', (e) => e.textContent.length > 20), true, 'preset title');
  assertEqual(await page.$eval('#preset-paper', (a) => a.href), 'https://arxiv.org/abs/1702.03275', 'paper link');
  await waitCharts(page);
  await screenshot(page, 'playground-small-batch.png');

  // The numbers equal the CLI's for the same config and seed.
  const cli = JSON.parse(cliJsonText);
  const rows = await page.$$eval('#results-table tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => ({ text: td.textContent, value: td.dataset.value ?? null }))));
  cli.methods.forEach((m, i) => {
    const cells = rows[i];
    assertEqual(cells[0].text, m.label, 'label');
    const f = m.final;
    assertEqual(Number(cells[1].value), f.testAccuracy, `${m.id} test accuracy`);
    assertEqual(Number(cells[2].value), f.testAccuracyBatchStats, `${m.id} batch-statistics accuracy`);
    assertEqual(Number(cells[4].value), f.testLoss, `${m.id} test loss`);
    assertEqual(Number(cells[5].value), f.trainLoss, `${m.id} train loss`);
    assertEqual(cells[1].text, `${(100 * f.testAccuracy).toFixed(1)}%`, `${m.id} shown accuracy`);
  });
  const json = await downloadOf(page, '#export-json');
  assertEqual(json.name, 'normlab-results.json', 'JSON file name');
  assert(json.bytes.toString('utf8') === cliJsonText, 'the downloaded JSON is byte for byte the CLI\'s --json');
  noProblems(page);
  assert(longtasks.length === 0, `long tasks while training: ${JSON.stringify(longtasks)} ` +
    `(load average ${loadavg().map((v) => v.toFixed(1)).join(' ')} on ${cpus().length} cores: other work on the machine slows the page too)`);

  await page.close();
}, { timeout: 180_000 });

test('a URL with settings restores them; a garbage URL shows a notice and the defaults', async () => {
  let page = await newPage();
  await open(page, '#dataset=xor&seed=42&batchSize=16&methods=bn,ln&lr=0.02&steps=500&optimizer=adam');
  const value = (id) => page.$eval(`#setting-${id}`, (el) => el.value);
  assertEqual([await value('dataset'), await value('seed'), await value('batchSize'), await value('lr'), await value('steps'), await value('optimizer')],
    ['xor', '42', '16', '0.02', '500', 'adam'], 'restored settings');
  const checked = await page.$$eval('input[name="methods"]', (bs) => bs.filter((b) => b.checked).map((b) => b.value));
  assertEqual(checked, ['bn', 'ln'], 'methods');
  assertEqual(await page.isVisible('#notice'), false, 'no notice');
  assertEqual(await page.isHidden('#setting-momentum'), true, 'momentum hidden for adam');
  // Changing a control writes the hash.
  await page.fill('#setting-seed', '7');
  await page.press('#setting-seed', 'Enter');
  await page.$eval('#setting-seed', (el) => el.dispatchEvent(new Event('change')));
  assert((await page.evaluate(() => location.hash)).includes('seed=7'), 'the hash follows the controls');
  // An invalid entry is marked and not taken.
  await page.fill('#setting-batchSize', '-3');
  await page.$eval('#setting-batchSize', (el) => el.dispatchEvent(new Event('change')));
  assertEqual(await page.$eval('#setting-batchSize', (el) => el.getAttribute('aria-invalid')), 'true', 'invalid marked');
  assert((await page.evaluate(() => location.hash)).includes('batchSize=16'), 'invalid entry ignored');
  noProblems(page);
  await page.close();

  page = await newPage();
  await open(page, '#seed=banana&dataset=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E&lr=1e999&__proto__=1&bogus=%3Cscript%3E');
  assertEqual(await page.isVisible('#notice'), true, 'notice shown');
  const notice = await page.$eval('#notice', (el) => el.textContent);
  assert(/seed/.test(notice) && /dataset/.test(notice) && /lr/.test(notice) && /bogus/.test(notice), `notice names the bad settings: ${notice}`);
  assertEqual(await page.$$eval('#notice img, #notice script', (els) => els.length), 0, 'no markup from the URL');
  assertEqual([await page.$eval('#setting-seed', (el) => el.value), await page.$eval('#setting-dataset', (el) => el.value)], ['1', 'moons'], 'defaults');
  assert((await page.evaluate(() => location.hash)).includes('seed=1'), 'the hash is rewritten to valid settings');
  await page.click('#notice-close');
  assertEqual(await page.isVisible('#notice'), false, 'notice dismissed');
  noProblems(page);
  await page.close();
});

/** The values of the controls of `names` (URL keys; a method option's id has '-' for '.'). */
const controlValues = (page, names) => Promise.all(names.map((n) => page.$eval(`#setting-${n.replace('.', '-')}`, (el) => el.value)));

test('the method list, labels and option controls come from the method table', async () => {
  const page = await newPage();
  await open(page, '#methods=bn,brn');
  const boxes = await page.$$eval('input[name="methods"]', (bs) => bs.map((b) => [b.value, b.parentElement.textContent]));
  const expected = methodTable.map((m) => [m.aliases[0] ?? m.name, m.needsSpatialDims ? `${m.label} (needs the CNN)` : m.label]);
  assertEqual(boxes[0], ['none', 'No normalization'], "the baseline 'none' comes first");
  assertEqual(boxes, expected, 'one checkbox per method of the table, with its label');
  // Batch Renorm's options, with the table's ranges, defaults and help.
  const brn = methodTable.find((m) => m.name === 'batchrenorm');
  const rMax = brn.options.find((o) => o.key === 'rMax');
  const shown = await page.$$eval('fieldset.method-options[data-method="brn"] .field', (fs) => fs.map((f) => ({
    name: f.dataset.name, label: f.querySelector('label').firstChild.textContent, hint: f.querySelector('.hint')?.textContent,
    help: f.querySelector('.help')?.textContent, min: f.querySelector('input')?.min ?? null, max: f.querySelector('input')?.max ?? null,
    value: f.querySelector('input, select').value,
  })));
  assertEqual(shown.map((f) => f.name), brn.options.filter((o) => o.key !== 'channels').map((o) => `brn.${o.key}`), 'Batch Renorm\'s controls');
  const r = shown.find((f) => f.name === 'brn.rMax');
  assertEqual([r.label, r.help, r.min, r.max, r.value], ['rMax', rMax.help, '1', '', '3'], 'rMax: label, help, range (no upper bound) and default');
  assert(r.hint.includes('≥ 1') && r.hint.includes('default 3'), `rMax hint: ${r.hint}`);
  assertEqual(await page.isVisible('fieldset.method-options[data-method="brn"]'), true, 'options of a compared method shown');
  assertEqual(await page.isVisible('fieldset.method-options[data-method="l1bn"]'), false, 'options of a method not compared hidden');
  // Swatches in the palette's colours (set through the CSSOM under the page's policy).
  const colours = await page.$$eval('input[name="methods"] + .swatch', (ss) => ss.map((s) => getComputedStyle(s).backgroundColor));
  assertEqual(new Set(colours).size, methodTable.length, 'one colour per method');
  assertEqual(colours[1], 'rgb(213, 94, 0)', 'BatchNorm vermillion');
  noProblems(page);
  await page.close();
});

test('a namespaced URL (brn.rMax=2) and an old-style URL (rMax=2) both load and set the same controls', async () => {
  const page = await newPage();
  const names = ['brn.rMax', 'brn.dMax', 'brn.momentum', 'bn.momentum', 'gn.groups', 'l1bn.scaleSqrtPiOver2', 'gbn.center', 'gbn.level', 'sn.useBN', 'seed'];
  const want = ['2', '1', '0.05', '0.01', '4', 'false', 'quantile', '0.3', 'false', '4'];
  await open(page, '#methods=bn,brn,gn,l1bn,gbn,sn&brn.rMax=2&brn.dMax=1&brn.momentum=0.05&bn.momentum=0.01&gn.groups=4' +
    '&l1bn.scaleSqrtPiOver2=false&gbn.center=quantile&gbn.level=0.3&sn.useBN=false&seed=4');
  assertEqual(await controlValues(page, names), want, 'namespaced keys');
  assertEqual(await page.isVisible('#notice'), false, 'no notice for a namespaced URL');
  const namespaced = await page.evaluate(() => location.hash);
  assert(namespaced.includes('&brn.rMax=2&') && namespaced.includes('&bn.momentum=0.01&'), `the hash keeps the keys: ${namespaced}`);
  const held = await page.evaluate(() => globalThis.__normlab.settings());
  assertEqual([held.options['brn.rMax'], held.options['l1bn.scaleSqrtPiOver2'], held.methods], [2, false, ['bn', 'brn', 'gn', 'l1bn', 'gbn', 'sn']], 'the page\'s settings');
  await page.close();

  const old = await newPage();
  await open(old, '#methods=bn,brn,gn,l1bn,gbn,sn&rMax=2&dMax=1&brnMomentum=0.05&bnMomentum=0.01&groups=4' +
    '&l1bnScale=none&gbnCenter=quantile&gbnLevel=0.3&snBN=off&seed=4');
  assertEqual(await controlValues(old, names), want, 'old flat keys');
  assertEqual(await old.isVisible('#notice'), false, 'no notice for an old-style URL');
  const rewritten = await old.evaluate(() => location.hash);
  assertEqual(rewritten, namespaced, 'an old link is rewritten to the namespaced hash of the same settings');
  assert(!/[#&](rMax|bnMomentum|groups|l1bnScale|snBN)=/.test(rewritten), 'no old key left');
  // A control writes its namespaced key.
  await old.fill('#setting-brn-rMax', '2.5');
  await old.$eval('#setting-brn-rMax', (el) => el.dispatchEvent(new Event('change')));
  assert((await old.evaluate(() => location.hash)).includes('&brn.rMax=2.5&'), 'the hash follows the control');
  // Out of the table's range: marked, not taken.
  await old.fill('#setting-brn-rMax', '0.5');
  await old.$eval('#setting-brn-rMax', (el) => el.dispatchEvent(new Event('change')));
  assertEqual(await old.$eval('#setting-brn-rMax', (el) => el.getAttribute('aria-invalid')), 'true', 'rMax below 1 marked');
  assert((await old.evaluate(() => location.hash)).includes('&brn.rMax=2.5&'), 'rMax below 1 ignored');
  noProblems(old);
  await old.close();
});

test('the batch-statistics curves include L1 BN, Generalized BN and Switchable Norm', async () => {
  const page = await newPage();
  await open(page, '#dataset=moons&noise=0.2&methods=bn,l1bn,gbn,sn,ln&width=16&batchSize=4&steps=800&evalInterval=50&lr=0.05&seed=1');
  await page.click('#run');
  await waitStatus(page, 'done', 60_000);
  await waitCharts(page);
  const chart = await page.evaluate(() => globalThis.__normlab.chart('test'));
  const traces = await page.evaluate(() => globalThis.__normlab.traces()[0].methods.map((m) => ({ id: m.id, label: m.label, color: m.color, evals: m.evals })));
  const dashed = chart.lines.filter((l) => l.dash);
  const withStats = methodTable.filter((m) => m.usesBatchStatistics).map((m) => m.aliases[0]);
  const ids = traces.filter((t) => withStats.includes(t.id)).map((t) => t.id);
  assertEqual(ids, ['bn', 'l1bn', 'gbn', 'sn'], 'compared methods that train with batch statistics');
  assertEqual(dashed.map((l) => l.label), ids.map((id) => `${traces.find((t) => t.id === id).label} (batch statistics)`), 'one dashed curve each, none for LayerNorm');
  for (const [i, id] of ids.entries()) {
    const t = traces.find((x) => x.id === id);
    assertEqual(dashed[i].color, t.color, `${id}: the method's colour`);
    assertEqual(dashed[i].xs, t.evals.map((e) => e.step), `${id}: one point per evaluation`);
    assertEqual(dashed[i].ys, t.evals.map((e) => 100 * e.testAccuracyBatchStats), `${id}: the batch-statistics accuracy`);
    assert(dashed[i].xs.length === 16 && dashed[i].ys.every(Number.isFinite), `${id}: 16 finite points`);
  }
  assertEqual(chart.lines.filter((l) => !l.dash).length, 5, 'one solid (inference) curve per method');
  assertEqual(new Set(traces.map((t) => t.color)).size, 5, 'five colours');
  await page.mouse.move(0, 0);
  await page.locator('#chart-test').screenshot({ path: '/tmp/playground-bn-stats.png' });
  noProblems(page);
  await page.close();
});

test('settings the runner rejects show its message, and the page keeps working', async () => {
  const page = await newPage();
  await open(page, '#dataset=moons&methods=gn,ln&width=32&groups=5&steps=50');
  await page.click('#run');
  await waitStatus(page, 'error', 20_000);
  const text = await page.$eval('#error', (el) => el.textContent);
  assert(/groups/.test(text) && /divide/.test(text), `error names the problem: ${text}`);
  await page.fill('#setting-gn-groups', '4');
  await page.$eval('#setting-gn-groups', (el) => el.dispatchEvent(new Event('change')));
  await page.click('#run');
  await waitStatus(page, 'done', 30_000);
  assertEqual(await page.isVisible('#error'), false, 'error cleared');
  assertEqual(await page.$$eval('#results-table tbody tr', (rows) => rows.length), 2, 'results after the fix');
  noProblems(page);
  await page.close();
});

test('run, pause, step and resume (keyboard); decision maps for a 2-D set', async () => {
  const page = await newPage();
  await open(page, '#dataset=moons&noise=0.2&methods=bn,brn,gn,ln&width=32&depth=2&batchSize=4&steps=6000&evalInterval=100&seed=2');
  await page.click('#run');
  await page.waitForFunction(() => (globalThis.__normlab.traces()[0]?.stepsDone ?? 0) >= 300, null, { timeout: 30_000 });
  await page.focus('#run');
  await page.keyboard.press('Enter');  // Pause
  await waitStatus(page, 'paused', 10_000);
  const s1 = await stepsDone(page);
  await page.waitForTimeout(800);
  assertEqual(await stepsDone(page), s1, 'no steps while paused');
  assert(s1 < 6000, 'paused before the end');
  assertEqual(await page.$eval('#run', (b) => b.textContent), 'Resume', 'button reads Resume');
  await page.click('#step');
  await page.waitForFunction((s) => globalThis.__normlab.traces()[0].stepsDone > s, s1, { timeout: 10_000 });
  const s2 = await stepsDone(page);
  assertEqual(s2 % 100, 0, `Step stops at the next evaluation (${s1} -> ${s2})`);
  assert(s2 - s1 <= 100, 'Step took one evaluation interval at most');
  await page.waitForTimeout(300);
  assertEqual(await stepsDone(page), s2, 'still paused after Step');
  await page.focus('#run');
  await page.keyboard.press('Space');  // Resume
  await waitStatus(page, 'done', 60_000);
  await waitCharts(page);
  assertEqual(await stepsDone(page), 6000, 'ran to the end');
  assertEqual(await page.isVisible('#chart-maps'), true, 'decision maps shown');
  const [orange, blue] = await colourCounts(page, '#chart-maps canvas', ['#E69F00', '#0072B2']);
  assert(orange > 200 && blue > 200, `the maps show both classes (${orange}, ${blue} pixels)`);
  await page.click('#reset');
  await waitStatus(page, 'idle', 5_000);
  assertEqual(await page.$$eval('#results-table', (t) => t.length), 0, 'reset clears the results');
  noProblems(page);
  await page.close();
});

/** Drops `text` as a file named `name` on the element `selector` (as a person drags one from their desktop). */
async function dropFile(page, selector, name, text) {
  await page.evaluate(({ selector, name, text }) => {
    const dt = new DataTransfer();
    dt.items.add(new File([text], name, { type: 'text/csv' }));
    const zone = document.querySelector(selector);
    for (const type of ['dragenter', 'dragover', 'drop']) {
      zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    }
  }, { selector, name, text });
}

/** A 2-feature CSV: a disc inside a ring (classes 'inner', 'outer' in the middle column), with a BOM and CRLF. */
function ringCsv(n = 300) {
  const lines = ['\uFEFFx,ring,"y, cm"'];
  let state = 12345;
  const rand = () => ((state = (state * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let i = 0; i < n; i++) {
    const inner = i % 2 === 0;
    const r = inner ? 0.5 * rand() : 0.8 + 0.4 * rand();
    const a = 2 * Math.PI * rand();
    lines.push(`${(r * Math.cos(a)).toFixed(4)},${inner ? 'inner' : 'outer'},${(r * Math.sin(a)).toFixed(4)}`);
  }
  return `${lines.join('\r\n')}\r\n`;
}

test('your data: a dropped CSV is parsed in the page (no request), previewed, trained with decision maps, kept over a reload', async () => {
  const page = await newPage();
  const requests = [];
  page.on('request', (r) => requests.push(`${r.method()} ${r.url()}`));
  await open(page, '#dataset=user&methods=none,bn,ln&depth=2&width=16&batchSize=8&steps=900&evalInterval=100&lr=0.1&seed=2');
  assert(/No file yet/.test(await page.textContent('#user-data-status')), 'the panel asks for a file');
  assert(/never leaves it/.test(await page.textContent('#user-data-privacy')), 'the page says the file stays here');
  const seen = requests.length;
  await dropFile(page, '#user-data-drop', 'my rings.csv', ringCsv());
  await page.waitForSelector('#user-data-classes');
  const summary = await page.textContent('.user-data-summary');
  assert(/300 rows · 2 features · 2 classes · header row · delimiter "," · 240 rows for training, 60 held out/.test(summary), `preview: ${summary}`);
  const counts = await page.$$eval('#user-data-classes tbody tr', (rows) => rows.map((r) => r.textContent));
  assertEqual(counts.join('|'), 'inner150|outer150', 'classes with their counts');
  // The label column is the middle one, the only one that is not numbers: the preview suggests it.
  assertEqual(await page.$eval('#user-data-label', (s) => s.value), 'ring', 'the suggested label column');
  // Another pick shows why it does not work (with the file, line and column), and a run says so too.
  await page.selectOption('#user-data-label', 'y, cm');
  await page.waitForFunction(() => /my rings\.csv: line 2, column 2 \(ring\): 'inner' is not a number/.test(document.querySelector('#user-data-error')?.textContent ?? ''));
  await page.selectOption('#user-data-label', 'ring');
  await page.waitForFunction(() => /labelColumn=ring/.test(location.hash));
  assertEqual(await page.$eval('#user-data-error', (e) => e.hidden), true, 'no error with the right column');
  const hash = await page.evaluate(() => location.hash);
  assert(hash.includes('dataFile=my%20rings.csv') && hash.includes('labelColumn=ring'), `the link names the file and the column: ${hash}`);
  assert(!/inner|outer/.test(decodeURIComponent(hash)) && hash.length < 1000, 'the link holds no data');
  await page.click('#run');
  await waitStatus(page, 'done', 60_000);
  await waitCharts(page);
  const accuracy = await page.evaluate(() => globalThis.__normlab.traces()[0].result.methods.map((m) => [m.id, m.final.testAccuracy]));
  for (const [id, acc] of accuracy) {
    if (id !== 'none') assert(acc >= 0.9, `${id} learns the rings: ${acc}`);
  }
  const data = await page.evaluate(() => globalThis.__normlab.traces()[0].result.data);
  assertEqual(JSON.stringify([data.name, data.classNames, data.train, data.test]), JSON.stringify(['my rings.csv', ['inner', 'outer'], 240, 60]), 'the run used the file');
  assertEqual(await page.isVisible('#chart-maps'), true, 'decision maps shown for two features');
  const [orange, blue] = await colourCounts(page, '#chart-maps canvas', ['#E69F00', '#0072B2']);
  assert(orange > 200 && blue > 200, `the maps show both classes (${orange}, ${blue} pixels)`);
  await screenshot(page, 'playground-your-data.png');
  const after = requests.slice(seen);
  assert(after.every((r) => r.startsWith('GET ') && !/rings|\.csv/i.test(r)), `the file caused no request:\n  ${after.join('\n  ')}`);

  // A reload keeps the file (IndexedDB) and the settings (the link).
  await page.reload();
  await page.waitForSelector('#user-data-classes');
  assert((await page.textContent('#user-data-status')).startsWith('my rings.csv'), 'the file is back after a reload');
  assertEqual(await page.$eval('#user-data-label', (s) => s.value), 'ring', 'with its label column');

  // A link that names another file asks for it; Run says so and the page keeps working.
  await page.goto(`${server.url}#dataset=user&dataFile=theirs.csv&methods=bn`);
  await page.waitForSelector('#preset-list button');
  await page.waitForFunction(() => /"theirs.csv"/.test(document.querySelector('#user-data-status')?.textContent ?? ''));
  await page.click('#run');
  await waitStatus(page, 'error', 5_000);
  const attach = await page.textContent("#error");
  assert(/theirs\.csv.*choose or drop it/.test(attach), `Run names the file to attach: ${attach}`);

  // A bad file: the message names the file, the line and the column, before any run.
  await dropFile(page, 'body', 'bad.csv', 'a,b,label\r\n1,2,x\r\n3,oops,y\r\n');
  await page.waitForFunction(() => /bad\.csv: line 3, column 2/.test(document.querySelector('#user-data-error')?.textContent ?? ''));
  await page.click('#run');
  await page.waitForFunction(() => /bad\.csv/.test(document.querySelector('#error')?.textContent ?? ''), null, { timeout: 5_000 });
  const problem = await page.textContent('#error');
  assert(/bad\.csv: line 3, column 2 \(b\): 'oops' is not a number/.test(problem), `Run shows the file's problem: ${problem}`);
  noProblems(page);
  await page.close();
});

test('3 seeds on 2 workers: bands on the curves, intervals and paired differences in the table, the CLI\'s numbers', async () => {
  const page = await newPage();
  const settings = 'dataset=moons&noise=0.2&trainSize=400&methods=bn,ln&depth=1&width=16&batchSize=4&steps=600&evalInterval=100&lr=0.1&seed=5';
  await open(page, `#${settings}&seeds=3&workers=2`);
  await page.click('#run');
  await waitStatus(page, 'done', 90_000);
  await waitCharts(page);
  assertEqual(await page.evaluate(() => globalThis.__normlab.workers()), 2, 'two training workers');
  assertEqual(JSON.stringify(await page.evaluate(() => globalThis.__normlab.seeds())), '[5,6,7]', 'seeds 5, 6, 7');
  // The test-accuracy chart: a mean line and a band per method.
  const chart = await page.evaluate(() => globalThis.__normlab.chart('test'));
  assertEqual(chart.bands.length, 2, 'one band per method');
  assert(chart.bands.every((b) => b.xs.length === 6 && b.lo.every((v, i) => v <= b.hi[i])), 'bands over the 6 evaluations');
  const loss = await page.evaluate(() => globalThis.__normlab.chart('loss'));
  assertEqual(loss.bands.length, 2, 'loss bands');
  // The table: the CLI's --seeds numbers (its JSON, same seeds).
  const out = join(tmp, 'seeds.json');
  execFileSync(process.execPath, [join(root, 'dist', 'cli.js'), 'compare', '--dataset', 'moons', '--noise', '0.2', '--train-size', '400',
    '--test-size', '500', '--methods', 'bn,ln', '--hidden', '16', '--batch-size', '4', '--steps', '600', '--eval-interval', '100', '--lr', '0.1',
    '--momentum', '0.9', '--seeds', '5-7', '--json', out, '--quiet'], { stdio: 'ignore' });
  const cli = JSON.parse(readFileSync(out, 'utf8'));
  const cells = await page.$$eval('#results-table tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => ({ text: c.textContent, value: c.dataset.value }))));
  assertEqual(await page.$eval('#results-table', (t) => t.dataset.final), 'true', 'final table');
  const bn = cli.summary.methods[0].testAccuracy;
  assertEqual(Number(cells[0][1].value), bn.mean, 'BatchNorm mean = CLI');
  assert(cells[0][1].text === `${(100 * bn.mean).toFixed(1)}% ± ${(50 * (bn.ci95[1] - bn.ci95[0])).toFixed(1)}`, `interval text ${cells[0][1].text}`);
  const d = cli.summary.differences.find((x) => x.a === 'ln' && x.metric === 'testAccuracy');
  assertEqual(Number(cells[1][5].value), d.meanDifference, 'paired difference = CLI');
  assert(/\[-?\d+\.\d, -?\d+\.\d\] p = /.test(cells[1][5].text), `difference with its interval: ${cells[1][5].text}`);
  assert(/over seeds 5, 6, 7/.test(await page.textContent('#results-table caption')), 'caption names the seeds');
  // Download JSON: exactly the CLI's --seeds file.
  const json = await downloadOf(page, '#export-json');
  assertEqual(json.bytes.toString('utf8'), readFileSync(out, 'utf8'), 'JSON download = normlab compare --seeds 5-7 --json');
  await screenshot(page, 'playground-seeds.png');
  noProblems(page);
  await page.close();
});

test('the landscape preset draws the probes: loss range, gradient predictiveness, beta-smoothness, ICS per layer', async () => {
  const page = await newPage();
  await open(page);
  await page.click('button[data-preset="landscape"]');
  await waitStatus(page, 'done', 180_000);
  await waitCharts(page);
  for (const id of ['landscape', 'predictiveness', 'smoothness', 'ics-l2', 'ics-cosine']) {
    assertEqual(await page.isVisible(`#chart-${id}`), true, `${id} chart shown`);
  }
  // The records behind them, per method: BatchNorm's mean loss range below no normalization's.
  const ranges = await page.evaluate(() => globalThis.__normlab.traces()[0].methods.map((m) => {
    const rec = m.evals.filter((e) => e.landscape && e.landscape.lossMax !== null);
    return [m.id, rec.reduce((a, e) => a + e.landscape.lossMax - e.landscape.lossMin, 0) / rec.length, rec.length];
  }));
  const by = Object.fromEntries(ranges.map(([id, r]) => [id, r]));
  assert(by.bn < by.none, `BatchNorm's loss range below none's: ${JSON.stringify(ranges)}`);
  const counts = await colourCounts(page, '#chart-landscape canvas', [METHOD_COLOURS.bn, '#000000']);
  assert(counts[0] > 50, `BatchNorm's band and line drawn (${counts})`);
  assert(/\d ms \(BatchNorm\).* per evaluation/.test(await page.textContent('#chart-landscape .desc')), 'the probes\' cost shown');
  assert(/arxiv\.org\/abs\/1805\.11604/.test(await page.textContent('#chart-landscape .desc')), 'the paper named');
  const layers = await page.$$eval('#layer-ics option', (o) => o.map((x) => x.textContent));
  assert(layers.length >= 1 && /^layer \d+ \(/.test(layers[0]), `ICS layers offered: ${layers}`);
  await screenshot(page, 'playground-probes.png');
  noProblems(page);
  await page.close();
}, { timeout: 240_000 });

test('a batch-size sweep plots accuracy against batch size; CSV and PNG exports', async () => {
  const page = await newPage();
  await open(page, '#dataset=moons&methods=bn,gn,ln&width=16&groups=4&trainSize=400&sweep=4,16&sweepEpochs=2&lr=0.4&seed=3');
  assertEqual(await page.isVisible('#chart-sweep'), true, 'sweep chart shown');
  await page.click('#run');
  await waitStatus(page, 'done', 60_000);
  await waitCharts(page);
  assertEqual(await page.$$eval('#sweep-table tbody tr', (rows) => rows.map((r) => r.dataset.id)), ['4', '16'], 'one row per batch size');
  const counts = await colourCounts(page, '#chart-sweep canvas', [METHOD_COLOURS.bn, METHOD_COLOURS.gn, METHOD_COLOURS.ln]);
  counts.forEach((n) => assert(n > 20, `sweep curve pixels ${counts}`));
  const csv = await downloadOf(page, '#export-csv');
  const lines = csv.bytes.toString('utf8').trimEnd().split('\n');
  assertEqual(lines[0], 'seed,batchSize,method,kind,step,loss,accuracy,lossBatchStats,accuracyBatchStats', 'CSV header');
  assert(lines.some((l) => l.startsWith('3,4,bn,train,1,')) && lines.some((l) => l.startsWith('3,16,ln,eval,')), 'CSV has both runs (seed 3)');
  const png = await downloadOf(page, '#chart-sweep button.small');
  assertEqual([...png.bytes.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], 'PNG signature');
  assert(png.name.endsWith('.png'), 'PNG name');
  noProblems(page);
  await page.close();
});

test('usable at phone width: no horizontal scrolling, charts drawn', async () => {
  const page = await newPage({ viewport: { width: 390, height: 844 } });
  await open(page, '#dataset=circle&methods=bn,ln&width=16&steps=400&batchSize=8&seed=1');
  await page.click('#run');
  await waitStatus(page, 'done', 60_000);
  await waitCharts(page);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert(width <= 390, `page is ${width} px wide at a 390 px viewport`);
  const small = await page.$$eval('button, select, input', (els) => els.filter((e) => e.offsetParent !== null)
    .map((e) => e.getBoundingClientRect()).filter((r) => r.height < 20).length);
  assertEqual(small, 0, 'controls at least 20 px tall');
  await screenshot(page, 'playground-phone.png');
  noProblems(page);
  await page.close();
});

async function main() {
  const only = process.argv.slice(2);
  console.log('browser: the CLI\'s result for the small-batch preset (node dist/cli.js compare --preset small-batch --json)');
  const out = join(tmp, 'small-batch.json');
  execFileSync(process.execPath, [join(root, 'dist', 'cli.js'), 'compare', '--preset', 'small-batch', '--json', out, '--quiet'], { stdio: 'ignore' });
  cliJsonText = readFileSync(out, 'utf8');
  const { load } = await import('../../dist/index.js');
  methodTable = (await load()).describeMethods();
  server = await serve(join(root, 'web', 'dist'));
  browser = await launch();
  console.log(`browser: ${server.url} in headless Chromium`);
  let counts;
  try {
    counts = await run({ only });
  } finally {
    await browser.close();
    await server.close();
    rmSync(tmp, { recursive: true, force: true });
  }
  process.exitCode = counts.failed > 0 || counts.passed === 0 ? 1 : 0;
}

await main();
