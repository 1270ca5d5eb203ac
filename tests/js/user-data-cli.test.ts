// `normlab compare --data FILE`: a CSV with a header, a quoted comma in a column name, a BOM, CRLF
// and string labels in a middle column trains and gives the same JSON twice; a .tsv, an .nlds file
// and a CSV of 8x8 images for the CNN train; and every kind of bad data exits with code 2, a
// message naming the file, the line and the column, no stack trace and no output file.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { root } from './helpers.js';
import { hostile } from './hostile.js';
import { parseNldsDataset } from '../../dist/index.js';

const work = mkdtempSync(join(tmpdir(), 'normlab-cli-data-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [join(root, 'dist', 'cli.js'), ...args], { encoding: 'utf8', cwd: work });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** 150 rows of three separated classes: two features around the label, which sits in the middle. */
function irisLike(): string {
  const names = ['setosa', 'versicolor', 'virginica'];
  const rows = ['\ufeff"petal, length",species,width'];
  for (let i = 0; i < 150; i++) {
    const c = i % 3;
    const jx = ((i * 37) % 61) / 100 - 0.3;
    const jy = ((i * 53) % 61) / 100 - 0.3;
    rows.push(`${(2 * c + jx).toFixed(3)},${names[c]},${(-c + jy).toFixed(3)}`);
  }
  return `${rows.join('\r\n')}\r\n`;
}

const small = ['--methods', 'bn,ln', '--hidden', '8', '--batch-size', '8', '--steps', '60', '--eval-interval', '30', '--lr', '0.1',
  '--momentum', '0.9', '--seed', '2'];

test('a CSV with a header, a quoted comma, a BOM, CRLF and string labels in a middle column trains, the same JSON twice', () => {
  writeFileSync(join(work, 'iris.csv'), irisLike());
  const args = ['compare', '--data', 'iris.csv', '--label-column', 'species', ...small];
  const a = cli(...args, '--json', 'a.json');
  const b = cli(...args, '--json', 'b.json', '--quiet');
  expect(a.code, a.stderr).toBe(0);
  expect(b.code, b.stderr).toBe(0);
  expect(a.stdout).toMatch(/^iris\.csv, mlp 8, batch 8 iid, sgd lr 0\.1, 60 steps, seed 2 \(120 train \/ 30 test/m);
  const ja = readFileSync(join(work, 'a.json'), 'utf8');
  expect(ja).toBe(readFileSync(join(work, 'b.json'), 'utf8'));
  const result = JSON.parse(ja);
  expect(result.data).toEqual({ train: 120, test: 30, classes: 3, name: 'iris.csv', classNames: ['setosa', 'versicolor', 'virginica'] });
  expect(result.config.dataset).toEqual({ name: 'iris.csv', source: 'csv', testFraction: 0.2 });
  for (const m of result.methods) expect(m.final.testAccuracy, m.label).toBeGreaterThanOrEqual(0.9);
  // The label column by index (0-based), and another held-out share.
  const byIndex = cli('compare', '--data', 'iris.csv', '--label-column', '1', '--test-fraction', '0.4', ...small, '--quiet', '--json', 'c.json');
  expect(byIndex.code, byIndex.stderr).toBe(0);
  expect(JSON.parse(readFileSync(join(work, 'c.json'), 'utf8')).data).toMatchObject({ train: 90, test: 60 });
});

test('a .tsv with a test file, and everything else (preprocessing, non-i.i.d. batches) as on the built-in sets', () => {
  const tsv = irisLike().replaceAll(',', '\t').replace('"petal\t length"', 'petal length');
  const lines = tsv.split('\r\n');
  writeFileSync(join(work, 'train.tsv'), `${lines.slice(0, 121).join('\r\n')}\r\n`);
  writeFileSync(join(work, 'test.tsv'), `${[lines[0], ...lines.slice(121)].join('\r\n')}`);
  const r = cli('compare', '--data', 'train.tsv', '--test-data', 'test.tsv', '--label-column', 'species', ...small,
    '--preprocess', 'standardize', '--batching', 'noniid:2', '--quiet', '--json', 'tsv.json');
  expect(r.code, r.stderr).toBe(0);
  const result = JSON.parse(readFileSync(join(work, 'tsv.json'), 'utf8'));
  expect(result.data).toMatchObject({ train: 120, test: 30, classes: 3 });
  expect(result.config).toMatchObject({ batching: 'noniid:2', preprocess: { kind: 'standardize' }, dataset: { testFraction: null } });
});

test('a CSV of 8x8 images with --image-shape 1,8,8 trains the CNN, and the .nlds file itself', () => {
  const d = parseNldsDataset(new Uint8Array(readFileSync(join(root, 'data', 'digits.nlds'))));
  const rows = [`${Array.from({ length: 64 }, (_, i) => `p${i}`).join(',')},digit`];
  for (let i = 0; i < d.labels.length; i++) rows.push(`${Array.from(d.x.subarray(64 * i, 64 * (i + 1))).join(',')},${d.labels[i]}`);
  writeFileSync(join(work, 'digits.csv'), `${rows.join('\n')}\n`);
  const cnn = ['--model', 'cnn', '--channels', '8', '--methods', 'bn,gn', '--groups', '2', '--batch-size', '32', '--steps', '150',
    '--eval-interval', '150', '--lr', '0.05', '--momentum', '0.9', '--quiet'];
  const csv = cli('compare', '--data', 'digits.csv', '--image-shape', '1,8,8', ...cnn, '--json', 'digits-csv.json');
  expect(csv.code, csv.stderr).toBe(0);
  const fromCsv = JSON.parse(readFileSync(join(work, 'digits-csv.json'), 'utf8'));
  expect(fromCsv.methods[0].model).toMatch(/^conv2d batchnorm relu maxpool/);
  expect(fromCsv.data).toMatchObject({ train: 1438, test: 359, classes: 10 });
  for (const m of fromCsv.methods) expect(m.final.testAccuracy, m.label).toBeGreaterThan(0.8);
  // The same images from the .nlds file: the same run, since the pixels and labels are the same.
  const nlds = cli('compare', '--data', join(root, 'data', 'digits.nlds'), ...cnn, '--json', 'digits-nlds.json');
  expect(nlds.code, nlds.stderr).toBe(0);
  const fromNlds = JSON.parse(readFileSync(join(work, 'digits-nlds.json'), 'utf8'));
  expect(fromNlds.config.dataset).toEqual({ name: 'digits.nlds', source: 'nlds', testFraction: 0.2 });
  expect(fromNlds.methods).toEqual(fromCsv.methods);
});

test('--help lists the data flags', () => {
  const r = cli('--help');
  for (const flag of ['--data FILE', '--label-column NAME|INDEX', '--test-data FILE', '--test-fraction F', '--image-shape C,H,W']) {
    expect(r.stdout).toContain(flag);
  }
});

describe('bad data: exit code 2, the file, line and column, no stack trace, no output', () => {
  const header = 'a,b,label\n';
  const cases: [string, string, string[], RegExp][] = [
    ['a ragged row', `${header}1,2,x\n3,4,y\n5,6\n`, [], /^normlab: bad\.csv: line 4, column 3: the row ends after 2 fields; the header has 3$/],
    ['a word for a feature', `${header}1,2,x\n3,four,y\n`, [], /^normlab: bad\.csv: line 3, column 2 \(b\): 'four' is not a number$/],
    ['NaN', `${header}1,2,x\nNaN,4,y\n`, [], /^normlab: bad\.csv: line 3, column 1 \(a\): 'NaN' is not a finite number$/],
    ['Infinity', `${header}1,2,x\n3,Infinity,y\n`, [], /^normlab: bad\.csv: line 3, column 2 \(b\): 'Infinity' is not a finite number$/],
    ['a missing label column', `${header}1,2,x\n3,4,y\n`, ['--label-column', 'class'],
      /^normlab: bad\.csv: line 1: no column "class" for the labels; the columns are 1 "a", 2 "b", 3 "label"$/],
    ['an empty file', '', [], /^normlab: bad\.csv: line 1, column 1: the file is empty$/],
    ['a header without rows', header, [], /^normlab: bad\.csv: line 2, column 1: no data rows after the header \(line 1\)$/],
    ['a single class', `${header}1,2,x\n3,4,x\n`, [], /^normlab: bad\.csv: line 2, column 3 \(label\): every label is 'x' \(lines 2 to 3\); a classifier needs at least 2 classes$/],
    ['fewer training examples than the batch size', `${header}1,2,x\n3,4,y\n5,6,x\n7,8,y\n`, ['--batch-size', '8'],
      /^normlab: bad\.csv: 3 training examples \(4 less 1 held out for testing\) are fewer than the batch size 8 \(the data rows of bad\.csv are on lines 2 to 5\)$/],
    ['--image-shape that does not match', `${header}1,2,x\n3,4,y\n`, ['--image-shape', '1,3,3'],
      /^normlab: bad\.csv: line 1, column 3: imageShape 1,3,3 needs 9 feature columns \(C\*H\*W\) but the rows have 2/],
    ['a file too large for the memory estimate', `${Array.from({ length: 4000 }, (_, i) => `f${i}`).join(',')},label\n` +
      ['a', 'b', 'a', 'b'].map((l) => `${new Array(4000).fill('0').join(',')},${l}`).join('\n'),
      ['--hidden', '4096,4096,4096', '--momentum', '0.9', '--batch-size', '2'],
      /^normlab: bad\.csv: this run needs about \d+ MiB \(data 1, parameters \d+, activations \d+ MiB for 4 methods\), more than the \d+ MiB of memory available; .* \(the data rows of bad\.csv are on lines 2 to 5\)$/],
    ['a label that is not an integer', `${header}1,2,0\n3,4,0.5\n`, [], /^normlab: bad\.csv: line 3, column 3 \(label\): label '0\.5' is not an integer/],
  ];
  test.each(cases)('%s', (_label, content, args, message) => {
    hostile('bad data');
    writeFileSync(join(work, 'bad.csv'), content);
    rmSync(join(work, 'out.json'), { force: true });
    const r = cli('compare', '--data', 'bad.csv', ...args, '--quiet', '--json', 'out.json');
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trimEnd()).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join(work, 'out.json'))).toBe(false);
  });

  test('a sweep whose largest batch does not fit the data: refused before the first run trains', () => {
    hostile('bad data');
    writeFileSync(join(work, 'twenty.csv'), `${header}${Array.from({ length: 20 }, (_, i) => `${i},${i % 3},${i % 2 ? 'y' : 'x'}`).join('\n')}\n`);
    const r = cli('compare', '--preset', 'batch-size-sweep', '--data', 'twenty.csv', '--quiet', '--json', 'sweep.json');
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trimEnd()).toMatch(/^normlab: twenty\.csv: 16 training examples \(20 less 4 held out for testing\) are fewer than the batch size 32 \(the data rows of twenty\.csv are on lines 2 to 21\)$/);
    expect(r.stdout).toBe('');
    expect(existsSync(join(work, 'sweep.json'))).toBe(false);
  });

  const flagCases: [string[], RegExp][] = [
    [['--data', 'missing.csv'], /^normlab: --data missing\.csv: ENOENT/],
    [['--data', 'notes.txt'], /^normlab: --data notes\.txt: unknown kind of file '\.txt' \(known: \.csv, \.tsv, \.nlds\)$/],
    [['--data', 'iris.csv', '--test-data', 't.csv', '--test-fraction', '0.3'], /^normlab: give --test-data or --test-fraction, not both$/],
    [['--data', 'iris.csv', '--test-fraction', '1.5'], /dataset.testFraction must be a number in \(0, 1\), got 1.5/],
    [['--data', 'iris.csv', '--dataset', 'moons'], /^normlab: --dataset is for the built-in data sets; --data gives your own$/],
    [['--label-column', 'species'], /^normlab: --label-column goes with --data FILE \(your own data\)$/],
    [['--data', 'iris.csv', '--image-shape', '1,8'], /^normlab: --image-shape must be C,H,W \(three positive integers, e.g. 1,8,8\), got '1,8'$/],
    [['--data', 'iris.csv', '--test-data', 'test.tsv'], /^normlab: --test-data test\.tsv must be a \.csv file like --data iris\.csv$/],
    [['--data', 'garbage.nlds'], /^normlab: garbage\.nlds: not an NLDS file/],
    [['--data', join(root, 'data', 'digits.nlds'), '--image-shape', '1,8,8'], /^normlab: --image-shape is for CSV files/],
  ];
  test.each(flagCases)('%j', (args, message) => {
    hostile('bad data');
    writeFileSync(join(work, 'garbage.nlds'), 'not an image file at all, just words');
    const r = cli('compare', ...args, '--quiet', '--steps', '5');
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trimEnd()).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
