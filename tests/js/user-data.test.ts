// The user's own data through the package: parseCsvDataset on hand-written CSV (values, classes and
// lines checked by hand), the array form and the CSV form training identically, the stratified
// held-out split's class counts, NLDS images, and every kind of bad data refused with an Error
// naming the field, or the CSV's line and column, before anything is built.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { load, root, type Normlab } from './helpers.js';
import { hostile } from './hostile.js';
import { parseNldsDataset, type ArrayDataset, type CompareConfig } from '../../dist/index.js';
import { csvColumns, parseCsvDataset } from '../../dist/csv-data.js';

let nl: Normlab;
beforeAll(async () => {
  nl = await load();
});

const BOM = '\ufeff';

/** Two features and a class per row: three well separated blobs, deterministic. */
function blobs(n: number): { x: Float32Array; labels: string[] } {
  const names = ['setosa', 'versicolor', 'virginica'];
  const x = new Float32Array(2 * n);
  const labels: string[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    // A fixed jitter from the index, in [-0.3, 0.3], on centres 2 apart.
    const jx = ((i * 37) % 61) / 100 - 0.3;
    const jy = ((i * 53) % 61) / 100 - 0.3;
    x[2 * i] = Math.fround(2 * c + jx);
    x[2 * i + 1] = Math.fround(-c + jy);
    labels.push(names[c]);
  }
  return { x, labels };
}

/** The same examples as CSV: a header, the labels in the middle column. */
function blobsCsv(n: number, eol = '\n'): string {
  const { x, labels } = blobs(n);
  const lines = ['"sepal, length",species,width'];
  for (let i = 0; i < n; i++) lines.push(`${x[2 * i]},${labels[i]},${x[2 * i + 1]}`);
  return lines.join(eol) + eol;
}

const run: Omit<CompareConfig, 'dataset'> = {
  model: { kind: 'mlp', hidden: [16] },
  methods: ['bn', 'ln'],
  batchSize: 8,
  optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
  steps: 60,
  evalInterval: 30,
  seed: 4,
};

describe('parseCsvDataset', () => {
  test('a header with a quoted comma, a BOM, CRLF and string labels in a middle column: every value', () => {
    const text = `${BOM}id,"size, cm",species,weight\r\n1,0.5,b,-2\r\n2,1e1,a,3.25\r\n\r\n3,".75",B,0\r\n`;
    const d = parseCsvDataset(text, { labelColumn: 'species' });
    expect(d.header).toBe(true);
    expect(d.columns).toEqual(['id', 'size, cm', 'species', 'weight']);
    expect(d.labelColumn).toBe(2);
    expect(d.delimiter).toBe(',');
    expect(d.shape).toEqual([3]);
    expect([...d.x]).toEqual([1, 0.5, -2, 2, 10, 3.25, 3, 0.75, 0]);
    // Classes sorted by UTF-16 code units: 'B' (66) before 'a' (97) and 'b'.
    expect(d.classNames).toEqual(['B', 'a', 'b']);
    expect([...d.labels]).toEqual([2, 1, 0]);
    expect(d.classCounts).toEqual([1, 1, 1]);
    // The blank line 4 is skipped; the last row is on line 5.
    expect([...d.lines]).toEqual([2, 3, 5]);
    expect(d.name).toBe('csv');
    expect(d.source).toBe('csv');
  });

  test('semicolons and tabs are found; a header is detected only when a feature field is not a number', () => {
    const semi = parseCsvDataset('1;2;cat\n3;4;dog\n5;6;cat\n');
    expect(semi.delimiter).toBe(';');
    expect(semi.header).toBe(false);  // the label column's names do not make a header
    expect(semi.columns).toEqual(['column 1', 'column 2', 'column 3']);
    expect([...semi.x]).toEqual([1, 2, 3, 4, 5, 6]);
    expect([...semi.labels]).toEqual([0, 1, 0]);
    const tab = parseCsvDataset('a\tb\tlabel\n1\t2\t0\n3\t4\t1\n', { labelColumn: 0 });
    expect(tab.delimiter).toBe('\t');
    expect(tab.header).toBe(true);
    expect(tab.labelColumn).toBe(0);
    expect(tab.shape).toEqual([2]);
    expect([...tab.x]).toEqual([2, 0, 4, 1]);
    expect(tab.classNames).toEqual(['1', '3']);
    // A string of digits that is no column's name is an index; -1 is the last column.
    expect(parseCsvDataset('a,b,c\n1,x,2\n3,y,4\n', { labelColumn: '1' }).labelColumn).toBe(1);
    expect(parseCsvDataset('a,b,c\n1,x,2\n3,y,4\n', { labelColumn: -2 }).labelColumn).toBe(1);
  });

  test('integer labels become classes in numeric order, named by their text', () => {
    const d = parseCsvDataset('x,y,label\n0.5,1,10\n0.1,2,2\n0.3,3,10.0\n0,0,-1\n');
    expect(d.classNames).toEqual(['-1', '2', '10']);
    expect([...d.labels]).toEqual([2, 1, 2, 0]);
    expect(d.classCounts).toEqual([1, 1, 2]);
  });

  test('a quoted field over two lines: the rows after it keep their line numbers', () => {
    const d = parseCsvDataset('v,w,label\n1,2,"two\nlines"\n3,4,b\n\n5,6,b', { labelColumn: 'label', header: true });
    expect([...d.lines]).toEqual([2, 4, 6]);
    expect(d.classNames).toEqual(['b', 'two\nlines']);
    // The quoted field is a feature here, so the row is refused at the line it starts on.
    expect(() => parseCsvDataset('v,note,label\n1,"two\nlines",a\n3,4,b\n')).toThrow(/^csv: line 2, column 2 \(note\): 'two\nlines' is not a number$/);
  });

  test('imageShape: rows are images', () => {
    const row = (l: number) => `${Array.from({ length: 12 }, (_, i) => i + l).join(',')},${l}`;
    const d = parseCsvDataset(`${row(0)}\n${row(1)}\n`, { imageShape: [3, 2, 2] });
    expect(d.shape).toEqual([3, 2, 2]);
    expect(d.x.length).toBe(24);
    expect(d.x[12]).toBe(1);
  });
});

describe('csvColumns (a preview picks the label column before the whole file parses)', () => {
  test('the only column of words is suggested as the labels; otherwise the last', () => {
    expect(csvColumns('\uFEFFx,species,"y, cm"\r\n1,a,2\r\n3,b,4\r\n')).toEqual(
      { columns: ['x', 'species', 'y, cm'], header: true, delimiter: ',', suggestedLabel: 1 });
    expect(csvColumns('1;2;0\n3;4;1\n')).toEqual({ columns: ['column 1', 'column 2', 'column 3'], header: false, delimiter: ';', suggestedLabel: 2 });
    // Two columns of words: no guess, the last column (parseCsvDataset's default).
    expect(csvColumns('a\tb\tc\nx\ty\t1\n').suggestedLabel).toBe(2);
    // Only the first rows are read: a bad row further down is the full parse's to report.
    expect(csvColumns('a,b\n1,x\n2,y\n3\n').suggestedLabel).toBe(1);
    hostile('bad data');
    expect(() => csvColumns(' \r\n', { file: 'empty.csv' })).toThrow('empty.csv: line 1, column 1: the file is empty');
    hostile('bad data');
    expect(() => csvColumns('a,b\n"1,2\n', { file: 'q.csv' })).toThrow(/q\.csv: line 2, column 1: a quoted field is not closed/);
  });
});

describe('training on the user\'s own data', () => {
  test('{ x, labels, shape } trains, and equals the same data given as CSV', async () => {
    const { x, labels } = blobs(150);
    const arrays = await nl.compare({ ...run, dataset: { x, labels, shape: [2], name: 'blobs3' } });
    const csv = await nl.compare({ ...run, dataset: { csv: blobsCsv(150, '\r\n'), labelColumn: 'species', name: 'blobs3' } });
    expect(arrays.data).toEqual({ train: 120, test: 30, classes: 3, name: 'blobs3', classNames: ['setosa', 'versicolor', 'virginica'] });
    expect(csv.data).toEqual(arrays.data);
    expect(arrays.config.dataset).toEqual({ name: 'blobs3', source: 'arrays', testFraction: 0.2 });
    expect(csv.config.dataset).toEqual({ name: 'blobs3', source: 'csv', testFraction: 0.2 });
    expect(csv.methods).toEqual(arrays.methods);
    for (const m of arrays.methods) expect(m.final!.testAccuracy, m.label).toBeGreaterThanOrEqual(0.9);
  });

  test('the held-out test set is stratified: class counts by hand, and the same for the same seed', () => {
    // 15 examples of class 0, 10 of class 1, 5 of class 2: 0.2 of 30 is 6 = 3 + 2 + 1.
    const labels = Array.from({ length: 30 }, (_, i) => [0, 0, 0, 1, 1, 2][i % 6]);
    const x = Float32Array.from({ length: 30 }, (_, i) => i);
    const dataset: ArrayDataset = { x, labels, shape: [1], classNames: ['a', 'b', 'c'] };
    const counts = (l: Int32Array) => [0, 1, 2].map((c) => l.filter((v) => v === c).length);
    using r = nl.createRunner({ ...run, dataset, batchSize: 4 });
    const test = r.samples('test');
    const train = r.samples('train');
    expect(counts(test.labels)).toEqual([3, 2, 1]);
    expect(counts(train.labels)).toEqual([12, 8, 4]);
    // Every example once, with its own label.
    expect([...test.x, ...train.x].sort((a, b) => a - b)).toEqual([...x]);
    train.x.forEach((v, i) => expect(train.labels[i]).toBe(labels[v]));
    using again = nl.createRunner({ ...run, dataset, batchSize: 4 });
    expect(again.samples('test').x).toEqual(test.x);
    using other = nl.createRunner({ ...run, dataset, batchSize: 4, seed: 9 });
    expect(other.samples('test').x).not.toEqual(test.x);
    expect(counts(other.samples('test').labels)).toEqual([3, 2, 1]);
    expect(r.dataInfo()).toEqual({ sampleShape: [1], classes: 3, classNames: ['a', 'b', 'c'] });
    // testFraction 0.5: 15 = 7.5 + 5 + 2.5 by largest remainder.
    using half = nl.createRunner({ ...run, dataset: { ...dataset, testFraction: 0.5 }, batchSize: 4 });
    expect(half.samples('test').labels.length).toBe(15);
  });

  test('a given test set, with numeric labels mapped by their value', () => {
    const { x, labels } = blobs(60);
    const numeric = labels.map((l) => ({ setosa: 7, versicolor: 3, virginica: 11 })[l]!);
    const result = nl.createRunner({ ...run, steps: 2, dataset: { x: x.slice(0, 80), labels: numeric.slice(0, 40), shape: [2],
      testX: x.slice(80), testLabels: numeric.slice(40) } });
    try {
      expect(result.result().data).toEqual({ train: 40, test: 20, classes: 3, name: 'data', classNames: ['3', '7', '11'] });
      expect(result.config.dataset).toEqual({ name: 'data', source: 'arrays', testFraction: null });
      // Test examples 40, 41, 42 (as given): versicolor (3, class 0), virginica (11, class 2), setosa (7, class 1).
      expect([...result.samples('test', 3).labels]).toEqual([0, 2, 1]);
    } finally {
      result.dispose();
    }
  });

  test('NLDS images: the digits as the user\'s data train exactly like the built-in digits', async () => {
    const bytes = readFileSync(join(root, 'data', 'digits.nlds'));
    const d = parseNldsDataset(new Uint8Array(bytes), { name: 'my digits' });
    expect(d.shape).toEqual([1, 8, 8]);
    expect(d.labels.length).toBe(1797);
    expect(d.classNames).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(d.x.every((v) => v >= 0 && v <= 1 && Number.isInteger(v * 16))).toBe(true);
    const config = { ...run, model: { kind: 'cnn' as const, channels: [4] }, steps: 20, evalInterval: 10 };
    const builtin = await nl.compare({ ...config, dataset: { name: 'digits' } });
    const mine = await nl.compare({ ...config, dataset: { ...d, testFraction: 500 / 1797 } });
    expect(mine.data).toMatchObject({ train: 1297, test: 500, name: 'my digits' });
    expect(mine.config.dataset).toEqual({ name: 'my digits', source: 'nlds', testFraction: 500 / 1797 });
    expect(mine.methods).toEqual(builtin.methods);
  });
});

describe('images as CSV rows', () => {
  test('8x8 digits as CSV with imageShape [1, 8, 8] train a described residual CNN', async () => {
    const d = parseNldsDataset(new Uint8Array(readFileSync(join(root, 'data', 'digits.nlds'))));
    const rows = Array.from(d.labels, (l, i) => `${Array.from(d.x.subarray(64 * i, 64 * (i + 1))).join(',')},${l}`);
    const parsed = parseCsvDataset(rows.join('\n'), { imageShape: [1, 8, 8], name: 'digits.csv' });
    expect(parsed.shape).toEqual([1, 8, 8]);
    expect(parsed.x).toEqual(d.x);
    const result = await nl.compare({
      dataset: parsed,
      model: { layers: 'conv:8,norm,relu,res[conv:8,norm,relu,conv:8,norm],relu,pool:2' } as never,
      methods: ['bn', 'gn'], batchSize: 32, steps: 150, evalInterval: 150, optimizer: { lr: 0.05, momentum: 0.9 }, seed: 1,
    });
    expect(result.methods[0].model).toMatch(/^conv2d batchnorm relu residual/);
    expect(result.data).toMatchObject({ train: 1438, test: 359, classes: 10, name: 'digits.csv' });
    for (const m of result.methods) expect(m.final!.testAccuracy, m.label).toBeGreaterThan(0.8);
  });
});

describe('bad data: an Error naming the field, or the line and column, and no runner', () => {
  const ok = 'a,b,label\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n';
  const csvCases: [string, string, Record<string, unknown>, RegExp][] = [
    ['a ragged row (too few fields)', 'a,b,label\n1,2,x\n3,y\n', {}, /^csv: line 3, column 3: the row ends after 2 fields; the header has 3$/],
    ['a ragged row (too many fields)', 'a,b,label\n1,2,x\n3,4,5,y\n', {}, /^csv: line 3, column 4: the row has 4 fields; the header has 3$/],
    ['a ragged row without a header', '1,2,x\r\n3,4,y\r\n5,6\r\n', {}, /^csv: line 3, column 3: the row ends after 2 fields; the first row has 3$/],
    ['a word for a feature', 'a,b,label\n1,2,x\n3,four,y\n', {}, /^csv: line 3, column 2 \(b\): 'four' is not a number$/],
    ['NaN', 'a,b,label\n1,2,x\n3,4,y\nNaN,6,x\n', {}, /^csv: line 4, column 1 \(a\): 'NaN' is not a finite number$/],
    ['-Infinity', 'a,b,label\n1,2,x\n3,-Infinity,y\n', {}, /^csv: line 3, column 2 \(b\): '-Infinity' is not a finite number$/],
    ['out of float32 range', 'a,b,label\n1,2,x\n3,1e39,y\n', {}, /^csv: line 3, column 2 \(b\): '1e39' is out of the float32 range$/],
    ['an empty feature', 'a,b,label\n1,2,x\n,4,y\n', {}, /^csv: line 3, column 1 \(a\): empty field: every feature must be a number$/],
    ['an empty label', 'a,b,label\n1,2,x\n3,4,\n', {}, /^csv: line 3, column 3 \(label\): empty label$/],
    ['a missing label column', ok, { labelColumn: 'species' },
      /^csv: line 1: no column "species" for the labels; the columns are 1 "a", 2 "b", 3 "label"$/],
    ['a label column index out of range', ok, { labelColumn: 3 },
      /^csv: line 1: label column 3 is out of range: the file has 3 columns \(indexes 0 to 2, or -3 to -1 from the end\): 1 "a", 2 "b", 3 "label"$/],
    ['a label column by name without a header', '1,2,x\n3,4,y\n', { labelColumn: 'label' },
      /^csv: line 1: no header row \(the first row's fields are numbers\), so no column is named "label"; give the label column as an index/],
    ['an empty file', '', {}, /^csv: line 1, column 1: the file is empty$/],
    ['a file of a BOM and blank lines', `${BOM}\r\n\r\n`, {}, /^csv: line 1, column 1: the file is empty$/],
    ['a header without rows', 'a,b,label\n', {}, /^csv: line 2, column 1: no data rows after the header \(line 1\)$/],
    ['a header and blank lines only', 'a,b,label\r\n\r\n\r\n', {}, /^csv: line 2, column 1: no data rows after the header \(line 1\)$/],
    ['a single class', 'a,b,label\n1,2,x\n3,4,x\n5,6,x\n', {}, /^csv: line 2, column 3 \(label\): every label is 'x' \(lines 2 to 4\); a classifier needs at least 2 classes$/],
    ['one column', 'a\n1\n2\n', {}, /^csv: line 1, column 1: one column only/],
    ['a non-integer numeric label', 'a,b,label\n1,2,0\n3,4,1.5\n', {}, /^csv: line 3, column 3 \(label\): label '1.5' is not an integer; labels must be class names or integers/],
    ['an unclosed quote', 'a,b,label\n1,2,x\n3,"4,y\n5,6,x\n', {}, /^csv: line 3, column 2: a quoted field is not closed/],
    ['imageShape that does not match the features', ok, { imageShape: [1, 2, 2] },
      /^csv: line 1, column 3: imageShape 1,2,2 needs 4 feature columns \(C\*H\*W\) but the rows have 2 \(3 columns, one of them the labels\)$/],
    ['a test file with a label the training file lacks', ok, { testCsv: 'a,b,label\n1,2,x\n3,4,z\n' },
      /^testCsv: line 3, column 3 \(label\): label 'z' is not one of the classes \(x, y\)$/],
    ['a test file with other columns', ok, { testCsv: 'a,c,label\n1,2,x\n' }, /^testCsv: line 1, column 2: "c" where csv has "b"$/],
    ['a test file with fewer columns', ok, { testCsv: 'a,label\n1,x\n' }, /^testCsv: line 1, column 3: 2 columns, but csv has 3$/],
    ['fewer training examples than the batch size', ok, {},
      /^csv: 3 training examples \(4 less 1 held out for testing\) are fewer than the batch size 8 \(the data rows of csv are on lines 2 to 5\)$/],
    ['a named file, too few rows for the batch', ok, { file: 'iris.csv', testFraction: 0.5 },
      /^iris.csv: 2 training examples \(4 less 2 held out for testing\) are fewer than the batch size 8 \(the data rows of iris.csv are on lines 2 to 5\)$/],
    ['testCsv and testFraction', ok, { testCsv: ok, testFraction: 0.3 }, /^dataset: give testCsv or testFraction, not both$/],
    ['an unknown option', ok, { labelColum: 'label' }, /^dataset: unknown option 'labelColum' for CSV data \(known: csv, labelColumn, testCsv/],
  ];
  test.each(csvCases)('csv: %s', (_label, csv, extra, message) => {
    hostile('bad data');
    expect(() => nl.createRunner({ ...run, dataset: { csv, ...extra } as never })).toThrow(message);
    expect(nl.memory().liveRunners).toBe(0);
  });

  const x = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  const good = { x, labels: ['a', 'b', 'a', 'b'], shape: [2] };
  const arrayCases: [string, Record<string, unknown>, RegExp][] = [
    ['x of the wrong length', { x: x.slice(1) }, /^dataset.x has 7 values, but 4 examples \(dataset.labels\) of shape \[2\] need 8$/],
    ['x not a Float32Array', { x: [1, 2, 3, 4, 5, 6, 7, 8] }, /^dataset.x must be a Float32Array, got Array$/],
    ['NaN in x', { x: Float32Array.from([1, 2, 3, NaN, 5, 6, 7, 8]) }, /^dataset.x\[3\] is NaN \(example 1, value 1\); every value must be a finite number$/],
    ['Infinity in x', { x: Float32Array.from([1, 2, 3, 4, 5, 6, Infinity, 8]) }, /^dataset.x\[6\] is Infinity \(example 3, value 0\)/],
    ['a non-integer label', { labels: [0, 1, 0.5, 1] }, /^dataset.labels\[2\] is 0.5, not an integer$/],
    ['NaN as a label', { labels: [0, 1, NaN, 1] }, /^dataset.labels\[2\] is NaN, not an integer$/],
    ['mixed labels', { labels: ['a', 'b', 1, 'a'] }, /^dataset.labels\[2\] is number; labels must be all class names \(strings\) or all integers$/],
    ['an empty class name', { labels: ['a', '', 'a', 'b'] }, /^dataset.labels\[1\] is an empty class name$/],
    ['a shape that does not match x', { shape: [3] }, /^dataset.x has 8 values, but 4 examples \(dataset.labels\) of shape \[3\] need 12$/],
    ['a shape that is not one example\'s', { shape: [4, 0] }, /^dataset.shape must be one example's shape, \[F\] or \[C, H, W\] \(positive integers\), got \[4,0\]$/],
    ['no labels', { labels: undefined }, /^dataset.labels is required with x/],
    ['a single class', { labels: ['a', 'a', 'a', 'a'] }, /^dataset.labels: every label is class 'a'; a classifier needs at least 2 classes$/],
    ['a label index beyond classNames', { labels: [0, 1, 2, 1], classNames: ['a', 'b'] }, /^dataset.labels\[2\] is 2, not a class index in \[0, 2\)/],
    ['a name not in classNames', { classNames: ['a', 'c'] }, /^dataset.labels\[1\] is "b", not one of the classes \(a, c\)$/],
    ['a duplicate class name', { classNames: ['a', 'b', 'a'] }, /^dataset.classNames has "a" twice$/],
    ['testX of the wrong length', { testX: x.slice(0, 3), testLabels: ['a', 'b'] }, /^dataset.testX has 3 values, but 2 examples \(dataset.testLabels\) of shape \[2\] need 4$/],
    ['testLabels of an unknown class', { testX: x.slice(0, 4), testLabels: ['a', 'z'] }, /^dataset.testLabels\[1\] is "z", not one of the classes \(a, b\)$/],
    ['testX without testLabels', { testX: x }, /^dataset.testLabels is required with testX$/],
    ['testFraction 1', { testFraction: 1 }, /^dataset.testFraction must be a number in \(0, 1\), got 1$/],
    ['testFraction with a test set', { testFraction: 0.2, testX: x, testLabels: good.labels }, /^dataset: give testX\/testLabels or testFraction, not both$/],
    ['both x and csv', { csv: 'a,b\n1,x\n' }, /^dataset: give x \(with labels and shape\) or csv, not both$/],
    ['an unknown option', { label: [0, 1] }, /^dataset: unknown option 'label' for the array form/],
    ['an unknown source', { source: 'xlsx' }, /^dataset.source must be 'arrays', 'csv' or 'nlds', got "xlsx"$/],
    ['fewer training examples than the batch size', {}, /^data: 3 training examples \(4 less 1 held out for testing\) are fewer than the batch size 8$/],
  ];
  test.each(arrayCases)('arrays: %s', (_label, change, message) => {
    hostile('bad data');
    expect(() => nl.createRunner({ ...run, dataset: { ...good, ...change } as never })).toThrow(message);
    expect(nl.memory().liveRunners).toBe(0);
  });

  test('data bytes with the user\'s data, or with a generated set (they were once ignored)', () => {
    hostile('bad data');
    expect(() => nl.createRunner({ ...run, dataset: good }, new Uint8Array(4))).toThrow(/data bytes are for the digits and mnist data sets/);
    hostile('bad data');
    expect(() => nl.createRunner({ ...run, dataset: { name: 'moons' } }, new Uint8Array(4)))
      .toThrow(/^createRunner: data bytes are for the digits and mnist data sets, not "moons", which is generated; your own data goes in config.dataset/);
    expect(nl.memory().liveRunners).toBe(0);
  });

  test('a data set larger than the memory estimate allows: refused before it is copied into the module', () => {
    hostile('bad data');
    // 4 examples of 4,000 features into three 4096-wide layers (each within the per-layer limit of
    // 2^24 weights): 4 methods' parameters with gradients and momentum alone are about 2.4 GiB.
    const wide = { x: new Float32Array(4 * 4000), labels: ['a', 'b', 'a', 'b'], shape: [4000] };
    expect(() => nl.createRunner({ ...run, methods: ['bn', 'brn', 'ln', 'gn'], model: { kind: 'mlp', hidden: [4096, 4096, 4096] }, batchSize: 2,
      dataset: wide })).toThrow(/^data: this run needs about \d+ MiB \(data 1, parameters \d+, activations \d+ MiB for 4 methods\), more than the \d+ MiB of memory available; use fewer methods, a smaller model or a smaller batch, or fewer examples or features$/);
    const csv = `${Array.from({ length: 4000 }, (_, i) => `f${i}`).join(',')},label\n` +
      ['a', 'b', 'a', 'b'].map((l) => `${new Array(4000).fill('0').join(',')},${l}`).join('\n');
    expect(() => nl.createRunner({ ...run, methods: ['bn', 'brn', 'ln', 'gn'], model: { kind: 'mlp', hidden: [4096, 4096, 4096] }, batchSize: 2,
      dataset: { csv, file: 'wide.csv' } })).toThrow(/^wide.csv: this run needs about \d+ MiB .* \(the data rows of wide.csv are on lines 2 to 5\)$/);
    expect(nl.memory().liveRunners).toBe(0);
  });

  test('NLDS files: truncated, garbled or with a label beyond its classes', () => {
    const bytes = new Uint8Array(readFileSync(join(root, 'data', 'digits.nlds')));
    const cases: [Uint8Array, RegExp][] = [
      [bytes.slice(0, 20), /^my.nlds: 20 bytes, shorter than the 28-byte NLDS header$/],
      [bytes.slice(0, 1000), /^my.nlds: 1000 bytes, but the header's 1797 images of 8x8 take 116833$/],
      [Uint8Array.from([...bytes.slice(0, 28 + 3)].map((b, i) => (i === 0 ? 0 : b))), /^my.nlds: not an NLDS file/],
      [(() => { const b = bytes.slice(); b[28 + 5] = 10; return b; })(), /^my.nlds: byte 33: the label of image 5 is 10, not below num_classes 10$/],
      [(() => { const b = bytes.slice(); b[28 + 1797 + 70] = 17; return b; })(), /^my.nlds: byte 1895: pixel 6 of image 1 is 17, above max_value 16$/],
    ];
    for (const [b, message] of cases) {
      hostile('bad data');
      expect(() => parseNldsDataset(b, { file: 'my.nlds' })).toThrow(message);
    }
  });
});
