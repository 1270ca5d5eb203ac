// The user's own data: the array form a comparison takes ({ x, labels, shape, ... }) checked and its
// labels mapped to classes, NLDS image files read into it, and the types of the CSV form (whose
// parser, parseCsvDataset, is csv-data.ts: it needs papaparse). Plain TypeScript, no WebAssembly:
// the playground can check and preview data in the page. Every error names where the problem is:
// the array form's field and index, or a CSV's file (or 'csv'), line and column as an editor shows
// them (1-based, the header is line 1).
import { typeName } from './checks.js';

/** How the examples of the user's own data were read (recorded in the resolved config). */
export type DatasetSource = 'arrays' | 'csv' | 'nlds';

/**
 * The user's own examples as arrays: `nl.compare({ dataset: { x, labels, shape }, methods })`.
 * Class names: string labels become classes in sorted order (JavaScript's default sort, by UTF-16
 * code units: 'B' before 'a'); integer labels become classes in numeric order, named by their
 * decimal text ('3', '10'); with `classNames`, labels are class indices into it instead.
 */
export interface ArrayDataset {
  /** N examples of `shape`, row-major: N * prod(shape) finite values. */
  x: Float32Array;
  /** One label per example: class names, or integers (see the interface's description). */
  labels: ArrayLike<number> | readonly string[];
  /** One example's shape: `[F]` for F features (the MLP), `[C, H, W]` for images (the CNN). */
  shape: readonly number[];
  /** A test set of the same shape (with `testLabels`); without it `testFraction` is held out. */
  testX?: Float32Array;
  /** The test set's labels, of the same kind as `labels` and among its classes. */
  testLabels?: ArrayLike<number> | readonly string[];
  /**
   * The share of the examples held out for testing when no test set is given: round(fraction × N),
   * at least 1 and at most N - 1, stratified by class (each class gives its share) and drawn from
   * the run's seed. Default 0.2.
   */
  testFraction?: number;
  /** The classes' names; with it, numeric labels are indices into it and string labels must be among them. */
  classNames?: readonly string[];
  /** The data set's name in results and messages. Default 'data'. */
  name?: string;
  /** How the examples were read, recorded in the resolved config: default 'arrays' (`parseCsvDataset` and `parseNldsDataset` set theirs). */
  source?: DatasetSource;
}

/**
 * The user's own data as CSV text: `nl.compare({ dataset: { csv, labelColumn: 'species' }, methods })`.
 * The text is parsed by `parseCsvDataset` (`import { parseCsvDataset } from 'normlab/csv-data'`); see
 * there for the format. Needs papaparse, which Node and bundlers load; a browser loading the
 * package's modules without a bundler cannot, and there only the array form is available.
 */
export interface CsvDataset {
  /** The CSV text (a `,` `;` or tab delimiter, found from the text; a UTF-8 BOM and CRLF are fine). */
  csv: string;
  /**
   * The column of the labels: its header name, or an index (0-based; negative from the end, -1 is
   * the last). Default: the last column.
   */
  labelColumn?: string | number;
  /** A test set as CSV text with the same columns; without it `testFraction` is held out. */
  testCsv?: string;
  /** Rows are images of this shape (`[C, H, W]`, C*H*W feature columns), for the CNN. */
  imageShape?: readonly [number, number, number];
  /** As `ArrayDataset.testFraction`. Default 0.2. */
  testFraction?: number;
  /** The data set's name in results. Default: `file`, else 'csv'. */
  name?: string;
  /** What error messages call the text (e.g. its file name). Default 'csv'. */
  file?: string;
  /** What error messages call `testCsv`. Default 'testCsv'. */
  testFile?: string;
  /** The delimiter, when it should not be detected (e.g. '\t' for a .tsv file). */
  delimiter?: string;
  /** Whether the first row is a header; default: detected (see `parseCsvDataset`). */
  header?: boolean;
}

/** Options of `parseCsvDataset` (`normlab/csv-data`). */
export interface CsvParseOptions {
  /** As `CsvDataset.labelColumn`: a name, or a 0-based index (negative from the end); a string of digits that is no column's name is an index. Default: the last column. */
  labelColumn?: string | number;
  /** As `CsvDataset.imageShape`. */
  imageShape?: readonly number[];
  /** As `CsvDataset.delimiter`. */
  delimiter?: string;
  /** As `CsvDataset.header`. */
  header?: boolean;
  /** What error messages call the text. Default 'csv'. */
  file?: string;
  /** The data set's name. Default: `file`. */
  name?: string;
  /**
   * The classes the labels must be among (a test file's: the training file's `classNames`), in
   * their order; default: the labels' own, sorted.
   */
  classNames?: readonly string[];
}

/**
 * A parsed CSV: the array form of a data set, and what a preview shows. It can be given to a
 * comparison as its `dataset` as it is (the preview fields are ignored there).
 */
export interface ParsedCsvDataset {
  /** N examples of `shape`, row-major. */
  x: Float32Array;
  /** Class indices into `classNames`. */
  labels: Int32Array;
  /** One example's shape: `[F]`, or the `imageShape`. */
  shape: number[];
  classNames: string[];
  /** Examples per class, in the order of `classNames`. */
  classCounts: number[];
  /** Every column's name: the header's, or 'column 1', 'column 2', ... without one. */
  columns: string[];
  /** The label column's index (0-based) in `columns`. */
  labelColumn: number;
  /** Whether the first row was a header. */
  header: boolean;
  /** The line of the first row (the header's, when there is one). */
  firstLine: number;
  /** The delimiter used. */
  delimiter: string;
  /** The line each example starts on (1-based). */
  lines: Int32Array;
  name: string;
  source: 'csv';
}

/** A parsed NLDS file (the binary image format, see data/README.md): the array form of a data set. */
export interface ParsedNldsDataset {
  /** N images of `shape`, pixels divided by the file's max_value (in [0, 1]). */
  x: Float32Array;
  labels: Int32Array;
  /** `[1, H, W]`. */
  shape: number[];
  /** '0', '1', ...: one per class of the header. */
  classNames: string[];
  name: string;
  source: 'nlds';
}

// ---- labels -------------------------------------------------------------------------------------

/** @internal A label or name cut to 40 characters for messages. */
export function short(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/** @internal Class names in order: integers numerically (named by their decimal text), else names sorted. */
export function sortedClasses(labels: Iterable<string | number>): string[] {
  const unique = [...new Set(labels)];
  if (unique.every((l) => typeof l === 'number')) {
    return [...new Set((unique as number[]).sort((a, b) => a - b).map(String))];
  }
  return (unique as string[]).sort();
}

// ---- NLDS --------------------------------------------------------------------------------------

/**
 * Reads an NLDS file (normlab's binary image format: data/README.md, cpp/normlab/data/datasets.h)
 * into the array form: x of N images [1, H, W] with pixels divided by the header's max_value, and
 * classes '0', '1', ... as the header counts them. Throws an Error naming `options.file` (default
 * 'nlds') and the byte offset of a truncated, oversized or garbled file.
 */
export function parseNldsDataset(bytes: Uint8Array, options: { file?: string; name?: string } = {}): ParsedNldsDataset {
  const file = options.file ?? 'nlds';
  if (!(bytes instanceof Uint8Array)) throw new Error(`${file}: must be the file's bytes (a Uint8Array), got ${typeName(bytes)}`);
  const header = 28;
  if (bytes.length < header) throw new Error(`${file}: ${bytes.length} bytes, shorter than the 28-byte NLDS header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (String.fromCharCode(...bytes.subarray(0, 4)) !== 'NLDS') throw new Error(`${file}: not an NLDS file (bytes 0-3 are not "NLDS")`);
  const [version, count, height, width, classes, maxValue] = [4, 8, 12, 16, 20, 24].map((o) => view.getUint32(o, true));
  if (version !== 1) throw new Error(`${file}: byte 4: NLDS version ${version} is not supported (only 1)`);
  if (count === 0 || height === 0 || width === 0) throw new Error(`${file}: byte 8: the header says ${count} images of ${height}x${width}`);
  if (classes < 1 || classes > 256) throw new Error(`${file}: byte 20: num_classes must be in [1, 256], got ${classes}`);
  if (maxValue < 1 || maxValue > 255) throw new Error(`${file}: byte 24: max_value must be in [1, 255], got ${maxValue}`);
  const per = height * width;
  const size = header + count + count * per;
  if (bytes.length !== size) {
    throw new Error(`${file}: ${bytes.length} bytes, but the header's ${count} images of ${height}x${width} take ${size}`);
  }
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const l = bytes[header + i];
    if (l >= classes) throw new Error(`${file}: byte ${header + i}: the label of image ${i} is ${l}, not below num_classes ${classes}`);
    labels[i] = l;
  }
  const pixels = bytes.subarray(header + count);
  const x = new Float32Array(pixels.length);
  const scale = 1 / maxValue;
  for (let i = 0; i < pixels.length; i++) {
    if (pixels[i] > maxValue) {
      throw new Error(`${file}: byte ${header + count + i}: pixel ${i % per} of image ${Math.floor(i / per)} is ${pixels[i]}, above max_value ${maxValue}`);
    }
    x[i] = Math.fround(pixels[i]) * Math.fround(scale);
  }
  return {
    x, labels, shape: [1, height, width], classNames: Array.from({ length: classes }, (_, c) => String(c)),
    name: options.name ?? file, source: 'nlds',
  };
}

// ---- the array form, checked -------------------------------------------------------------------

/** @internal The user's data as the runner takes it: arrays of class indices, and what the config records. */
export interface ResolvedData {
  spec: { name: string; source: DatasetSource; testFraction?: number };
  x: Float32Array;
  labels: Int32Array;
  shape: number[];
  testX?: Float32Array;
  testLabels?: Int32Array;
  classNames: string[];
  /** For CSV data: where its rows are, added to the runner's messages about the data set's size. */
  rows?: string;
}

/** @internal parseCsvDataset, as load() hands it to the runner; or why it could not be loaded. */
export type CsvParser = ((text: string, options?: CsvParseOptions) => ParsedCsvDataset) | { unavailable: string };

/** @internal Whether a config's `dataset` is the user's own data (arrays or CSV) rather than a built-in set. */
export function isUserDataset(dataset: unknown): dataset is ArrayDataset | CsvDataset {
  return dataset !== null && typeof dataset === 'object' && ('x' in dataset || 'csv' in dataset);
}

const arrayKeys = ['x', 'labels', 'shape', 'testX', 'testLabels', 'testFraction', 'classNames', 'name', 'source'];
const previewKeys = ['classCounts', 'columns', 'labelColumn', 'header', 'firstLine', 'delimiter', 'lines'];
const csvKeys = ['csv', 'labelColumn', 'testCsv', 'imageShape', 'testFraction', 'name', 'file', 'testFile', 'delimiter', 'header'];

function checkKeys(dataset: object, known: readonly string[], form: string): void {
  for (const key of Object.keys(dataset)) {
    if (!known.includes(key)) throw new Error(`dataset: unknown option '${key}' for ${form} (known: ${known.join(', ')})`);
  }
}

function checkTestFraction(value: unknown, hasTest: boolean, test: string): number | undefined {
  if (value === undefined) return undefined;
  if (hasTest) throw new Error(`dataset: give ${test} or testFraction, not both`);
  if (typeof value !== 'number' || !(value > 0 && value < 1)) {
    throw new Error(`dataset.testFraction must be a number in (0, 1), got ${typeof value === 'number' ? value : typeName(value)}`);
  }
  return value;
}

/**
 * Class indices for labels: names (each among `names`, or all of them sorted into classes) or
 * integers (indices into `names` when given, else classes in numeric order). `field` names the
 * labels in messages.
 */
function classIndices(labels: unknown, field: string, names: readonly string[] | undefined, indices: boolean):
    { labels: Int32Array; classNames: string[] } {
  if (labels === null || typeof labels !== 'object' || typeof (labels as ArrayLike<unknown>).length !== 'number') {
    throw new Error(`${field} must be an array of class names or integers, got ${typeName(labels)}`);
  }
  const list = labels as ArrayLike<unknown>;
  const n = list.length;
  const strings = n > 0 && typeof list[0] === 'string';
  for (let i = 0; i < n; i++) {
    const v = list[i];
    if (strings ? typeof v !== 'string' : typeof v !== 'number') {
      throw new Error(`${field}[${i}] is ${typeName(v)}; labels must be all class names (strings) or all integers`);
    }
    if (!strings && !Number.isInteger(v)) throw new Error(`${field}[${i}] is ${String(v)}, not an integer`);
    if (strings && (v as string) === '') throw new Error(`${field}[${i}] is an empty class name`);
  }
  const values = Array.from(list) as (string | number)[];
  const out = new Int32Array(n);
  if (indices && names) {
    // Integers are indices into the given class names.
    values.forEach((v, i) => {
      if ((v as number) < 0 || (v as number) >= names.length) {
        throw new Error(`${field}[${i}] is ${v}, not a class index in [0, ${names.length}) (classNames has ${names.length})`);
      }
      out[i] = v as number;
    });
    return { labels: out, classNames: [...names] };
  }
  const classNames = names ? [...names] : sortedClasses(values);
  const index = new Map(classNames.map((c, i) => [c, i]));
  values.forEach((v, i) => {
    const c = index.get(String(v));
    if (c === undefined) {
      throw new Error(`${field}[${i}] is ${JSON.stringify(v)}, not one of the classes (${classNames.map(short).join(', ')})`);
    }
    out[i] = c;
  });
  return { labels: out, classNames };
}

/** Checks x: a Float32Array of n examples of `per` finite values. */
function checkExamples(x: unknown, n: number, per: number, field: string, labelsField: string, shape: readonly number[]): Float32Array {
  if (!(x instanceof Float32Array)) throw new Error(`${field} must be a Float32Array, got ${typeName(x)}`);
  if (x.length !== n * per) {
    throw new Error(`${field} has ${x.length} values, but ${n} examples (${labelsField}) of shape [${shape.join(', ')}] need ${n * per}`);
  }
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) {
      throw new Error(`${field}[${i}] is ${x[i]} (example ${Math.floor(i / per)}, value ${i % per}); every value must be a finite number`);
    }
  }
  return x;
}

/** @internal The checked arrays of the user's data, from the array or the CSV form of a config's `dataset`. */
export function resolveDataset(dataset: ArrayDataset | CsvDataset, parser: CsvParser): ResolvedData {
  if ('csv' in dataset) {
    if ('x' in dataset) throw new Error('dataset: give x (with labels and shape) or csv, not both');
    checkKeys(dataset, csvKeys, 'CSV data');
    if (typeof parser !== 'function') {
      throw new Error(`dataset: CSV text needs papaparse, which could not be loaded here (${parser.unavailable}); ` +
        'use a bundler, or give the examples as arrays ({ x, labels, shape })');
    }
    const parseCsvDataset = parser;
    const file = dataset.file ?? 'csv';
    const testFile = dataset.testFile ?? 'testCsv';
    const hasTest = dataset.testCsv !== undefined;
    const testFraction = checkTestFraction(dataset.testFraction, hasTest, 'testCsv');
    const options = { labelColumn: dataset.labelColumn, imageShape: dataset.imageShape, delimiter: dataset.delimiter, header: dataset.header };
    const train = parseCsvDataset(dataset.csv, { ...options, file });
    let test: ParsedCsvDataset | undefined;
    if (hasTest) {
      test = parseCsvDataset(dataset.testCsv as string, { ...options, file: testFile, classNames: train.classNames });
      if (test.columns.length !== train.columns.length) {
        throw new Error(`${testFile}: line ${test.firstLine}, column ${Math.min(test.columns.length, train.columns.length) + 1}: ` +
          `${test.columns.length} columns, but ${file} has ${train.columns.length}`);
      }
      if (test.header && train.header) {
        const j = test.columns.findIndex((c, i) => c !== train.columns[i]);
        if (j >= 0) {
          throw new Error(`${testFile}: line ${test.firstLine}, column ${j + 1}: ${JSON.stringify(test.columns[j])} where ${file} has ` +
            JSON.stringify(train.columns[j]));
        }
      }
    }
    const name = dataset.name ?? dataset.file ?? 'csv';
    return {
      spec: { name, source: 'csv', ...(testFraction === undefined ? {} : { testFraction }) },
      x: train.x, labels: train.labels, shape: train.shape, classNames: train.classNames,
      ...(test ? { testX: test.x, testLabels: test.labels } : {}),
      rows: `the data rows of ${file} are on lines ${train.lines[0]} to ${train.lines[train.lines.length - 1]}`,
    };
  }
  const d = dataset as ArrayDataset;
  // parseCsvDataset's result can be given as it is: its preview fields are not the runner's.
  checkKeys(dataset, d.source === 'csv' ? [...arrayKeys, ...previewKeys] : arrayKeys, 'the array form ({ x, labels, shape })');
  const source = d.source ?? 'arrays';
  if (source !== 'arrays' && source !== 'csv' && source !== 'nlds') {
    throw new Error(`dataset.source must be 'arrays', 'csv' or 'nlds', got ${JSON.stringify(source)}`);
  }
  if (d.name !== undefined && (typeof d.name !== 'string' || d.name === '')) {
    throw new Error(`dataset.name must be a non-empty string, got ${JSON.stringify(d.name)}`);
  }
  const shape = d.shape;
  if (!Array.isArray(shape) || shape.length < 1 || !shape.every((s) => Number.isInteger(s) && s >= 1)) {
    throw new Error(`dataset.shape must be one example's shape, [F] or [C, H, W] (positive integers), got ${JSON.stringify(shape) ?? typeName(shape)}`);
  }
  let names: string[] | undefined;
  if (d.classNames !== undefined) {
    if (!Array.isArray(d.classNames) || d.classNames.some((c) => typeof c !== 'string' || c === '')) {
      throw new Error('dataset.classNames must be an array of non-empty strings');
    }
    if (new Set(d.classNames).size !== d.classNames.length) {
      const dup = d.classNames.find((c, i) => d.classNames!.indexOf(c) !== i);
      throw new Error(`dataset.classNames has ${JSON.stringify(dup)} twice`);
    }
    names = [...d.classNames];
  }
  if (d.labels === undefined) throw new Error('dataset.labels is required with x: one label per example');
  const stringLabels = typeof (d.labels as ArrayLike<unknown>)[0] === 'string';
  const train = classIndices(d.labels, 'dataset.labels', names, !stringLabels);
  const n = train.labels.length;
  if (n === 0) throw new Error('dataset.labels is empty: the data set has no examples');
  const per = shape.reduce((a, b) => a * b, 1);
  const x = checkExamples(d.x, n, per, 'dataset.x', 'dataset.labels', shape);
  const used = new Set(train.labels);
  if (used.size < 2) {
    throw new Error(`dataset.labels: every label is class '${train.classNames[train.labels[0]]}'; a classifier needs at least 2 classes`);
  }
  const hasTest = d.testX !== undefined || d.testLabels !== undefined;
  const testFraction = checkTestFraction(d.testFraction, hasTest, 'testX/testLabels');
  let test: { x: Float32Array; labels: Int32Array } | undefined;
  if (hasTest) {
    if (d.testLabels === undefined) throw new Error('dataset.testLabels is required with testX');
    if (d.testX === undefined) throw new Error('dataset.testX is required with testLabels');
    const testStrings = typeof (d.testLabels as ArrayLike<unknown>)[0] === 'string';
    if ((d.testLabels as ArrayLike<unknown>).length > 0 && testStrings !== stringLabels) {
      throw new Error(`dataset.testLabels are ${testStrings ? 'class names' : 'numbers'} but dataset.labels are ${stringLabels ? 'class names' : 'numbers'}`);
    }
    const labels = classIndices(d.testLabels, 'dataset.testLabels', train.classNames, !stringLabels && names !== undefined).labels;
    if (labels.length === 0) throw new Error('dataset.testLabels is empty: the test set has no examples');
    test = { x: checkExamples(d.testX, labels.length, per, 'dataset.testX', 'dataset.testLabels', shape), labels };
  }
  return {
    spec: { name: d.name ?? 'data', source, ...(testFraction === undefined ? {} : { testFraction }) },
    x, labels: train.labels, shape: [...shape], classNames: train.classNames,
    ...(test ? { testX: test.x, testLabels: test.labels } : {}),
  };
}
