// Parsing the user's CSV files with papaparse: the text turned into the array form of a data set
// (parseCsvDataset), with what a preview shows. Its own module, exported as 'normlab/csv-data' and
// loaded by load() with a dynamic import, because papaparse is a CommonJS package: Node and bundlers
// read it, a browser loading the package's modules without a bundler cannot (the rest of the
// package works there; only CSV text is unavailable).
import Papa from 'papaparse';
import { typeName } from './checks.js';
import { short, sortedClasses, type CsvParseOptions, type ParsedCsvDataset } from './dataset.js';

export type { CsvParseOptions, ParsedCsvDataset } from './dataset.js';

// ---- numbers ------------------------------------------------------------------------------------

const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const NON_FINITE = /^[+-]?(?:nan|inf|infinity)$/i;

/** Why a CSV field is not a feature value, or null when it is one (a finite float32). */
function featureProblem(field: string): string | null {
  const s = field.trim();
  if (s === '') return 'empty field: every feature must be a number';
  if (NON_FINITE.test(s)) return `'${s}' is not a finite number`;
  if (!NUMBER.test(s)) return `'${short(s)}' is not a number`;
  if (!Number.isFinite(Math.fround(Number(s)))) return `'${short(s)}' is out of the float32 range`;
  return null;
}

/** A field looks like data rather than a column name (a number, NaN, Infinity or empty). */
function numericLooking(field: string): boolean {
  const s = field.trim();
  return s === '' || NUMBER.test(s) || NON_FINITE.test(s);
}

// ---- CSV ---------------------------------------------------------------------------------------

/** One row of the text: its fields and the line it starts on. */
interface Row {
  fields: string[];
  line: number;
}

class CsvError extends Error {}

/** The rows of a CSV text (blank lines left out), each with its line; throws on broken quotes. */
function csvRows(text: string, file: string, delimiter: string | undefined, preview = 0): { rows: Row[]; delimiter: string } {
  const rows: Row[] = [];
  let start = 0;  // offset of the current row in the text
  let line = 1;   // the line it starts on
  // Lines up to `end` from `start` (CRLF, LF or a lone CR each end one).
  const linesBetween = (from: number, end: number) => {
    let n = 0;
    for (let i = from; i < end; i++) {
      const c = text.charCodeAt(i);
      if (c === 10 || (c === 13 && text.charCodeAt(i + 1) !== 10)) n++;
    }
    return n;
  };
  let used = ',';
  Papa.parse<string[]>(text, {
    delimiter: delimiter ?? '',
    delimitersToGuess: [',', ';', '\t', '|'],
    header: false,
    preview,
    skipEmptyLines: false,
    step(results) {
      used = results.meta.delimiter;
      const fields = results.data;
      for (const e of results.errors) {
        if (e.type !== 'Quotes') continue;
        const at = e.index ?? start;
        const errorLine = line + linesBetween(start, at);
        throw new CsvError(`${file}: line ${errorLine}, column ${fieldAt(text, start, at, used)}: ` +
          (e.code === 'MissingQuotes' ? 'a quoted field is not closed (no matching ")' : 'a quote inside a quoted field must be doubled ("")'));
      }
      if (!(fields.length === 1 && fields[0].trim() === '')) rows.push({ fields, line });
      const end = results.meta.cursor;
      line += linesBetween(start, end);
      start = end;
    },
  });
  return { rows, delimiter: used };
}

/** The rows of CSV text as a file gives it (a BOM dropped): an Error for a non-string, an empty file or broken quotes. */
function textRows(text: unknown, file: string, delimiter: string | undefined, preview = 0): { rows: Row[]; delimiter: string } {
  if (typeof text !== 'string') throw new Error(`${file}: must be CSV text (a string), got ${typeName(text)}`);
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (body.trim() === '') throw new Error(`${file}: line 1, column 1: the file is empty`);
  try {
    return csvRows(body, file, delimiter, preview);
  } catch (error) {
    if (error instanceof CsvError) throw new Error(error.message);
    throw error;
  }
}

/** The 1-based field of `text` that offset `at` falls in, for the row starting at `start`. */
function fieldAt(text: string, start: number, at: number, delimiter: string): number {
  let field = 1;
  let quoted = false;
  for (let i = start; i < at; i++) {
    if (text[i] === '"') quoted = !quoted;
    else if (!quoted && text.startsWith(delimiter, i)) field++;
  }
  return field;
}

/** "column 3 (petal width)": a column as messages name it. */
function columnName(columns: readonly string[], index: number, header: boolean): string {
  return header ? `column ${index + 1} (${columns[index]})` : `column ${index + 1}`;
}

/** What `csvColumns` reads from the first rows of a CSV text. */
export interface CsvColumns {
  /** Every column's name: the header's, or 'column 1', 'column 2', ... without one. */
  columns: string[];
  /** Whether the first row is a header (one of its fields is not a number). */
  header: boolean;
  delimiter: string;
  /**
   * The label column a preview suggests: the only column whose first data row is not a number,
   * when exactly one is; otherwise the last column (`parseCsvDataset`'s default).
   */
  suggestedLabel: number;
}

/**
 * The columns of a CSV text, from its first two rows only (for a preview that lets a person pick
 * the label column before the whole file parses). Throws as `parseCsvDataset` does for an empty
 * file or broken quotes there.
 */
export function csvColumns(text: string, options: { file?: string; delimiter?: string } = {}): CsvColumns {
  const file = options.file ?? 'csv';
  const parsed = textRows(text, file, options.delimiter, 10);
  const [first, second] = parsed.rows;
  const header = first.fields.some((f) => !numericLooking(f));
  const columns = header ? first.fields.map((f) => f.trim()) : first.fields.map((_, i) => `column ${i + 1}`);
  const data = header ? second : first;
  const words = data ? data.fields.flatMap((f, i) => (numericLooking(f) ? [] : [i])) : [];
  return { columns, header, delimiter: parsed.delimiter, suggestedLabel: words.length === 1 ? words[0] : columns.length - 1 };
}

/**
 * Parses CSV text into the array form of a data set, for `nl.compare({ dataset })` or a preview.
 *
 * - Delimiter: `,` `;` tab or `|`, detected from the text (`options.delimiter` to set it); fields in
 *   double quotes may hold delimiters, quotes (doubled) and line breaks; CRLF, LF or CR line ends; a
 *   UTF-8 byte order mark is dropped; blank lines are skipped.
 * - Header: the first row is a header when one of its fields outside the label column is not a
 *   number (nor NaN, Infinity or empty); `options.header` overrides this.
 * - Every column but the label column is a feature: a finite number (float32). Labels: integers
 *   (classes in numeric order) or names (sorted by UTF-16 code units); `options.classNames` fixes
 *   the classes instead.
 *
 * Throws an Error naming the file (`options.file`, default 'csv'), line and column (1-based, as an
 * editor shows them; a header is line 1) of the first problem: an empty file, a header without data
 * rows, a missing label column (the message lists the columns), a ragged row, a feature that is not a
 * finite number, an empty or non-integer numeric label, a label not among `classNames`, fewer than 2
 * classes, or an `imageShape` that does not match the feature columns.
 */
export function parseCsvDataset(text: string, options: CsvParseOptions = {}): ParsedCsvDataset {
  if (options === null || typeof options !== 'object') throw new Error(`parseCsvDataset: options must be an object, got ${typeName(options)}`);
  const file = options.file ?? 'csv';
  const parsed = textRows(text, file, options.delimiter);
  const { rows, delimiter } = parsed;
  const first = rows[0];
  const width = first.fields.length;
  if (width < 2) {
    throw new Error(`${file}: line ${first.line}, column 1: one column only; a data file needs feature columns and a label ` +
      `column, separated by ',', ';' or tabs`);
  }

  // The label column: by index it is known before the header; by name it needs one.
  const spec = options.labelColumn;
  const nameMatch = (names: readonly string[]) => {
    if (typeof spec !== 'string') return -1;
    const exact = names.indexOf(spec);
    if (exact >= 0) return exact;
    const loose = names.map((c, i) => [c.trim().toLowerCase(), i] as const).filter(([c]) => c === spec.trim().toLowerCase());
    return loose.length === 1 ? loose[0][1] : -1;
  };
  const indexOf = (value: number): number | null => {
    if (!Number.isInteger(value)) return null;
    const i = value < 0 ? width + value : value;
    return i >= 0 && i < width ? i : null;
  };
  const listColumns = (names: readonly string[]) => names.map((c, i) => `${i + 1} ${JSON.stringify(c)}`).join(', ');
  let label: number | null = spec === undefined ? width - 1 : typeof spec === 'number' ? indexOf(spec) : null;
  if (spec !== undefined && typeof spec !== 'number' && typeof spec !== 'string') {
    throw new Error(`${file}: labelColumn must be a column name or an index, got ${typeName(spec)}`);
  }
  const header = options.header ?? (() => {
    if (nameMatch(first.fields) >= 0) return true;
    const digits = typeof spec === 'string' && /^-?\d+$/.test(spec.trim());
    // A label column named but not in the first row: it is a header when more than one of its
    // fields (more than a label) is not a number; either way the name is then reported missing.
    if (typeof spec === 'string' && !digits) return first.fields.filter((f) => !numericLooking(f)).length > 1;
    const skip = label ?? (digits ? indexOf(Number(spec)) : null);
    return first.fields.some((f, i) => i !== skip && !numericLooking(f));
  })();
  const columns = header ? first.fields.map((f) => f.trim()) : first.fields.map((_, i) => `column ${i + 1}`);
  if (typeof spec === 'string') {
    const byName = header ? nameMatch(columns) : -1;
    label = byName >= 0 ? byName : /^-?\d+$/.test(spec.trim()) ? indexOf(Number(spec)) : null;
    if (label === null) {
      throw new Error(header
        ? `${file}: line ${first.line}: no column ${JSON.stringify(spec)} for the labels; the columns are ${listColumns(columns)}`
        : `${file}: line ${first.line}: no header row (the first row's fields are numbers), so no column is named ` +
          `${JSON.stringify(spec)}; give the label column as an index (0 to ${width - 1}, or -1 for the last)`);
    }
  }
  if (label === null) {
    throw new Error(`${file}: line ${first.line}: label column ${String(spec)} is out of range: the file has ${width} columns ` +
      `(indexes 0 to ${width - 1}, or -${width} to -1 from the end): ${listColumns(columns)}`);
  }
  const data = header ? rows.slice(1) : rows;
  if (data.length === 0) {
    throw new Error(`${file}: line ${first.line + 1}, column 1: no data rows after the header (line ${first.line})`);
  }

  const features = width - 1;
  const shape = options.imageShape === undefined ? [features] : [...options.imageShape];
  if (options.imageShape !== undefined) {
    const dims = options.imageShape;
    if (!Array.isArray(dims) || dims.length !== 3 || !dims.every((d) => Number.isInteger(d) && d >= 1)) {
      throw new Error(`${file}: imageShape must be [C, H, W], three positive integers, got ${JSON.stringify(dims)}`);
    }
    const need = dims[0] * dims[1] * dims[2];
    if (need !== features) {
      throw new Error(`${file}: line ${first.line}, column ${width}: imageShape ${dims.join(',')} needs ${need} feature columns ` +
        `(C*H*W) but the rows have ${features} (${width} columns, one of them the labels)`);
    }
  }

  const x = new Float32Array(data.length * features);
  const lines = new Int32Array(data.length);
  const raw: string[] = new Array(data.length);
  const what = header ? 'the header' : 'the first row';
  data.forEach((row, r) => {
    const f = row.fields;
    if (f.length !== width) {
      throw new Error(f.length < width
        ? `${file}: line ${row.line}, column ${f.length + 1}: the row ends after ${f.length} fields; ${what} has ${width}`
        : `${file}: line ${row.line}, column ${width + 1}: the row has ${f.length} fields; ${what} has ${width}`);
    }
    let k = r * features;
    for (let c = 0; c < width; c++) {
      if (c === label) continue;
      const problem = featureProblem(f[c]);
      if (problem !== null) throw new Error(`${file}: line ${row.line}, ${columnName(columns, c, header)}: ${problem}`);
      x[k++] = Number(f[c].trim());
    }
    const l = f[label as number].trim();
    if (l === '') throw new Error(`${file}: line ${row.line}, ${columnName(columns, label as number, header)}: empty label`);
    raw[r] = l;
    lines[r] = row.line;
  });

  // Labels: all numbers (which must be integers) or names.
  const where = (r: number) => `${file}: line ${lines[r]}, ${columnName(columns, label as number, header)}`;
  const numeric = raw.every((l) => NUMBER.test(l));
  const keys: (string | number)[] = numeric ? raw.map(Number) : raw;
  if (numeric) {
    const r = keys.findIndex((v) => !Number.isInteger(v));
    if (r >= 0) {
      throw new Error(`${where(r)}: label '${raw[r]}' is not an integer; labels must be class names or integers ` +
        '(a column of measurements cannot be the labels of a classifier)');
    }
  }
  const classNames = options.classNames ? [...options.classNames] : sortedClasses(keys);
  const index = new Map(classNames.map((c, i) => [c, i]));
  const labels = new Int32Array(data.length);
  const classCounts = new Array<number>(classNames.length).fill(0);
  keys.forEach((key, r) => {
    const c = index.get(String(key));
    if (c === undefined) {
      throw new Error(`${where(r)}: label '${short(raw[r])}' is not one of the classes (${classNames.map(short).join(', ')})`);
    }
    labels[r] = c;
    classCounts[c]++;
  });
  if (!options.classNames && classNames.length < 2) {
    throw new Error(`${where(0)}: every label is '${short(classNames[0])}' (lines ${lines[0]} to ${lines[lines.length - 1]}); ` +
      'a classifier needs at least 2 classes');
  }
  return {
    x, labels, shape, classNames, classCounts, columns, labelColumn: label, header, firstLine: first.line, delimiter, lines,
    name: options.name ?? file, source: 'csv',
  };
}

