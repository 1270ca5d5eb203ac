#!/usr/bin/env node
// The `normlab` command: `normlab compare --preset non-iid`, `normlab compare --dataset moons
// --methods bn,gn --batch-size 4 ...`, `normlab presets`. A progress bar on stderr, a summary
// table on stdout; --json and --csv write the full result. Bad flags or configs: exit code 2.
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import { load, parseNldsDataset, parseSeeds, resultsCsv, seedConfig, seedsOf, type ArrayDataset, type BuiltinDataset, type CompareConfig,
  type CompareResult, type CsvDataset, type MethodEntry, type MethodInfo, type OptionInfo, type SeedsResult, type Stat } from './index.js';
import { compareInWorkers } from './workers.js';
import { expandGrid, mergeParts, parseShard, partLines, shardPoints, type SweepResult } from './sweep.js';
import { didYouMean, fold } from './suggest.js';
import { momentumWarning } from './checks.js';
import { serve } from './serve.js';
import { preset, presetConfigs, presets } from './presets.js';
import { compactLayers } from './model.js';
import { probeSummary } from './probes.js';

class UsageError extends Error {}

/** The usage text; the method names and aliases come from the method table. */
function help(table: readonly MethodInfo[]): string {
  const ids = table.map((m) => m.aliases[0] ?? m.name).join(',');
  const weight = table.filter((m) => m.weightMethod).map((m) => `${m.aliases[0] ?? m.name} = ${m.label.toLowerCase()}`).join(', ');
  return `normlab: compare normalization methods by training one model per method

Usage:
  normlab compare [--preset NAME] [--config FILE.json] [flags]   train and compare
  normlab sweep --config GRID.json [--workers N] [--json F] [--csv F] [--shard I/N --out PART.jsonl]
                                   every point of a grid: { "base": config, "grid": { "optimizer.lr":
                                   [0.01, 0.1], "batchSize": [4, 32] } }; --shard I/N (or auto/N, from
                                   JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID) runs slice I of N
  normlab merge PART.jsonl... [--json F] [--csv F]               the shards' parts as one sweep
  normlab playground [--port N] [--host H] [--open]             the playground, served from this
                                   installation (default port 8080, or a free one if it is taken)
  normlab presets                                                list the presets
  normlab --help

Flags of compare (each overrides the preset and the config file):
  --dataset circle|xor|gauss|spiral|moons|blobs|digits|mnist
  --noise X            2-D sets' noise                --classes K      spiral/blobs classes
  --train-size N       2-D sets' training examples    --test-size N    held-out examples
  --data FILE          your own data instead: .csv or .tsv (a row per example, a header row
                       optional), or .nlds images
  --label-column NAME|INDEX   the labels' column: its header name, or a 0-based index (-1, the
                       default, is the last); every other column is a feature
  --test-data FILE     a test set with the same columns  --test-fraction F   or hold out this
                       share of --data, stratified by class, drawn from the seed (default 0.2)
  --image-shape C,H,W  the features of a row are an image (C*H*W columns), e.g. for --model cnn
  --model mlp|cnn      --hidden 128,128 (mlp)         --channels 8,16 (cnn)
  --width W --depth D  mlp: D hidden layers of W units (same as --hidden W,W,...)
  --activation relu|tanh
  --layers DESC        describe the model's body instead, e.g. "conv:16,norm,relu,pool:2,
                       res[conv:16,norm,relu,conv:16,norm],relu,gap": linear:N, conv:C[:K[:S[:P]]],
                       norm (the compared method), relu, tanh, pool:K, gap, flatten, res[...]
  --methods LIST       comma-separated: ${ids} (or batchnorm,
                       ...; ${weight} of the hidden Linear/Conv2d layers)
  --lrn-size N         LRN's window (required for lrn) --frn-learnable-eps  FRN learns eps (mlp)
  --cosine-centered    cosine norm subtracts the means first (Pearson correlation)
  --groups G           GroupNorm's groups              --r-max R, --d-max D   Batch Renorm's limits
  --batch-size N       --batching iid|noniid:K
  --optimizer sgd|adam|adamw   --lr X   --momentum X   --nesterov   --weight-decay X
  --schedule constant|step|cosine
  --steps N            --eval-interval N               --seed N
  --seeds LIST         several seeds, e.g. 1-10 or 1,2,7: one comparison per seed, summarized as
                       mean +/- the 95% interval over the seeds, with paired differences
  --baseline ID        with --seeds: the method the differences are against (default the first)
  --workers N          train the arms (method x seed x batch size) on N threads (default: the
                       machine's ${availableParallelism()}; 1 = this thread); the results are identical for any N
  --renorm-warmup F    --renorm-ramp-end F             --no-renorm-schedule
  --preprocess minmax|standardize|pca|zca   data normalization fitted on the training inputs
  --domain-shift KIND[:AMOUNT]   AdaBN: invert, shift, scale or noise the test inputs and report
                       accuracy there before and after re-estimating BatchNorm's statistics
  --option METHOD.KEY=VALUE      a layer option of one method, repeatable:
                       --option bn.momentum=0.01 --option brn.rMax=2 (the options are listed below)
  --probes LIST        at every evaluation, on a fixed training batch (Santurkar et al. 2018,
                       arXiv 1805.11604): landscape (the loss and gradient at steps along the
                       gradient: loss range, gradient change, beta-smoothness), ics (internal
                       covariate shift per layer), or none; the training is the same with or without
  --probe-etas LIST    the landscape's step sizes, e.g. 0.025,0.05,0.1 (default: lr x 1/4,1/2,1,2,4)
Output:
  --json FILE          the full result (identical for identical configurations and seeds)
  --csv FILE           the curves: seed,batchSize,method,kind,step,loss,accuracy,lossBatchStats,accuracyBatchStats
  --quiet              no progress bar
${methodsHelp(table)}`;
}

type Flags = Map<string, string | true>;

/** The flags that may be given more than once, each occurrence kept in order. */
const repeatFlags = new Set(['option']);

const valueFlags = new Set([
  'preset', 'config', 'dataset', 'noise', 'width', 'depth', 'classes', 'train-size', 'test-size', 'model', 'hidden', 'channels',
  'activation', 'methods', 'groups', 'lrn-size', 'r-max', 'd-max', 'batch-size', 'batching', 'optimizer', 'lr', 'momentum',
  'weight-decay', 'schedule', 'steps', 'eval-interval', 'seed', 'renorm-warmup', 'renorm-ramp-end', 'json', 'csv',
  'domain-shift', 'preprocess', 'data', 'label-column', 'test-data', 'test-fraction', 'image-shape', 'layers',
  'seeds', 'baseline', 'workers', 'shard', 'out', 'port', 'host', 'probes', 'probe-etas',
]);
const switchFlags = new Set(['frn-learnable-eps', 'cosine-centered', 'nesterov', 'no-renorm-schedule', 'quiet', 'help', 'version', 'open']);

// ---- output files: checked before anything trains; '-' is standard output --------------------------

/** The tables and lines for people: stdout, or stderr when a result file goes to stdout ('-'). */
let say = (line: string) => console.log(line);

/**
 * Checks that every output of `names` given in `flags` can be written, before anything trains:
 * its folder exists and is writable, it is not a folder, an existing file is writable. '-' is
 * standard output (one output at most), and then the tables go to stderr.
 */
function checkOutputs(flags: Flags, names: readonly string[]): void {
  const given = names.filter((n) => flags.has(n));
  const toStdout = given.filter((n) => text(flags, n) === '-');
  if (toStdout.length > 1) throw new UsageError(`only one output can be standard output: ${toStdout.map((n) => `--${n} -`).join(' and ')}`);
  say = toStdout.length ? (line: string) => process.stderr.write(`${line}\n`) : (line: string) => console.log(line);
  for (const name of given) {
    const file = text(flags, name)!;
    if (file === '-') continue;
    const folder = dirname(resolve(file));
    let what: string | undefined;
    try {
      if (!statSync(folder).isDirectory()) what = `${folder} is not a folder`;
      else accessSync(folder, constants.W_OK);
    } catch (error) {
      const code = (error as { code?: string }).code;
      what = code === 'ENOENT' ? `the folder ${folder} does not exist` : code === 'EACCES' || code === 'EPERM' ? `the folder ${folder} is not writable` : (error as Error).message;
    }
    if (!what) {
      try {
        if (statSync(file).isDirectory()) what = `${file} is a folder; give a file name`;
        else accessSync(file, constants.W_OK);
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code === 'EACCES' || code === 'EPERM') what = `${file} is not writable`;
      }
    }
    if (what) throw new UsageError(`--${name} ${file}: ${what} (checked before training, so no run is lost)`);
  }
}

/** Writes an output file, or standard output for '-'. */
function emit(file: string, content: string): void {
  if (file === '-') process.stdout.write(content);
  else writeFileSync(file, content);
}

/** Every flag of the commands, for did-you-mean. */
const allFlags = () => [...valueFlags, ...switchFlags, ...repeatFlags, 'version'];

/**
 * The flags of `args` (Node's util.parseArgs, strict): values of value flags, true for switches,
 * every occurrence of a repeatable flag. A negative number is a value (`--lr -1`). Positionals are
 * returned for the commands that take them (merge); the others refuse them.
 */
function parseFlags(args: string[], { positionals = false } = {}): { flags: Flags; repeated: Map<string, string[]>; files: string[] } {
  // `--lr -1`: parseArgs would take -1 for a flag; a negative number after a value flag is its value.
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith('--') ? args[i].slice(2) : '';
    if ((valueFlags.has(name) || repeatFlags.has(name)) && /^-\d|^-\.\d/.test(args[i + 1] ?? '')) joined.push(`${args[i]}=${args[++i]}`);
    else joined.push(args[i]);
  }
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {};
  for (const f of valueFlags) options[f] = { type: 'string' };
  for (const f of switchFlags) options[f] = { type: 'boolean' };
  for (const f of repeatFlags) options[f] = { type: 'string', multiple: true };
  let parsed;
  try {
    parsed = parseArgs({ args: joined, options, strict: true, allowPositionals: true });
  } catch (error) {
    const e = error as Error & { code?: string };
    const flag = /'(--?[^'<\s]+)/.exec(e.message)?.[1] ?? '';
    const bare = flag.replace(/^-+/, '').split('=')[0];
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      throw new UsageError(`unknown flag ${flag}${didYouMean(bare, allFlags(), (n) => `--${n}`)} (see normlab --help)`);
    }
    if (/does not take an argument/.test(e.message)) throw new UsageError(`--${bare} takes no value`);
    if (/argument missing|argument is ambiguous/.test(e.message)) throw new UsageError(`--${bare} needs a value`);
    throw new UsageError(e.message.split('\n')[0]);
  }
  if (!positionals && parsed.positionals.length) {
    const arg = parsed.positionals[0];
    throw new UsageError(`unexpected argument '${arg}'${arg.startsWith('-') ? '' : ' (flags start with --)'}`);
  }
  const flags: Flags = new Map();
  const repeated = new Map<string, string[]>();
  for (const [name, value] of Object.entries(parsed.values)) {
    if (Array.isArray(value)) repeated.set(name, value as string[]);
    else if (value !== undefined && value !== false) flags.set(name, value as string | true);
  }
  return { flags, repeated, files: parsed.positionals };
}

/**
 * The method a name stands for, from the method table ('none' included): its name, an alias or the
 * label the tables print, in any case and with or without spaces or dashes ('BatchNorm', 'Batch Renorm').
 */
function findMethod(table: readonly MethodInfo[], name: string): MethodInfo | undefined {
  const f = fold(name);
  return table.find((m) => m.name === name || m.aliases.includes(name)) ??
    table.find((m) => [m.name, ...m.aliases, m.label].some((n) => fold(n) === f));
}

/** Every name and alias of the table (for did-you-mean). */
const methodNames = (table: readonly MethodInfo[]) => table.flatMap((m) => [m.name, ...m.aliases]);

/** A method name of --methods or --baseline as the table's name, or a usage error with a suggestion. */
function methodName(table: readonly MethodInfo[], name: string, flag: string): string {
  const m = findMethod(table, name);
  if (!m) {
    throw new UsageError(`${flag}: unknown method '${name}'${didYouMean(name, [...methodNames(table), ...table.map((x) => x.label)])} ` +
      `(known: ${table.map((x) => (x.aliases[0] ? `${x.name}/${x.aliases[0]}` : x.name)).join(', ')})`);
  }
  return m.name;
}

/** A name among `known`, in any case; else a usage error naming them all, with a suggestion. */
function oneOf(flag: string, value: string, known: readonly string[], what: string): string {
  const hit = known.find((k) => k === value) ?? known.find((k) => fold(k) === fold(value));
  if (hit === undefined) throw new UsageError(`--${flag}: unknown ${what} '${value}'${didYouMean(value, known)} (known: ${known.join(', ')})`);
  return hit;
}

/** The built-in data sets. */
const DATASET_NAMES = ['circle', 'xor', 'gauss', 'spiral', 'moons', 'blobs', 'digits', 'mnist'];

/**
 * A `--option` value as the JSON value the layer reads: null, a boolean, a number or a list of
 * integers where the option's type takes one, else the text itself. The layer then checks it and
 * its message is the layer API's own ("batchnorm: momentum must be in [0, 1] or null, got 2").
 */
function optionValue(option: OptionInfo, raw: string): unknown {
  if (raw === 'null') return null;
  const number = raw.trim() === '' ? NaN : Number(raw);
  switch (option.type) {
    case 'boolean':
      return raw === 'true' ? true : raw === 'false' ? false : Number.isFinite(number) ? number : raw;
    case 'integer[]':
      return /^\s*-?[\d.e+]+(\s*,\s*-?[\d.e+]+)*\s*$/.test(raw) ? raw.split(',').map(Number) : raw;
    case 'string':
      return raw;
    default:
      return Number.isFinite(number) ? number : raw;
  }
}

/** "in [0, 1]", "> 0", ">= 1": an option's range in words. */
function range(option: OptionInfo): string {
  if (option.min !== undefined && option.max !== undefined) {
    return `in ${option.exclusiveMin ? '(' : '['}${option.min}, ${option.max}]`;
  }
  if (option.min !== undefined) return `${option.exclusiveMin ? '>' : '>='} ${option.min}`;
  if (option.max !== undefined) return `<= ${option.max}`;
  return 'a number';
}

/**
 * `--option METHOD.KEY=VALUE` occurrences applied to the methods of the config they name (by name
 * or alias), each checked against the method table. Returns warnings for options whose method is
 * not compared.
 */
function applyOptions(config: CompareConfig, specs: readonly string[], table: readonly MethodInfo[]): string[] {
  const warnings: string[] = [];
  const parsed = specs.map((spec) => {
    const flag = `--option ${spec}`;
    const m = /^([^.=]+)\.([^=]+)=(.*)$/s.exec(spec);
    if (!m) throw new UsageError(`--option must be METHOD.KEY=VALUE (e.g. bn.momentum=0.01), got '${spec}'`);
    const [, methodName, key, raw] = m;
    const info = findMethod(table, methodName);
    if (!info) {
      const known = table.filter((t) => !t.baseline).map((t) => [t.name, ...t.aliases].join('/')).join(', ');
      throw new UsageError(`${flag}: unknown method '${methodName}' (known: ${known})`);
    }
    const option = info.options.find((o) => o.key === key);
    if (!option) {
      const keys = info.options.map((o) => o.key);
      throw new UsageError(`${flag}: ${info.name} has no option '${key}' ` +
        `(${keys.length ? `its options: ${keys.join(', ')}` : 'it takes no options'})`);
    }
    if (shapeOptions.has(key)) {
      throw new UsageError(`${flag}: ${info.name}'s ${key} is the model's: it comes from the activations' shape`);
    }
    return { spec, info, key, value: optionValue(option, raw) };
  });
  for (const { spec, info } of parsed) {
    const used = config.methods.some((e) => findMethod(table, typeof e === 'string' ? e : e.method)?.name === info.name);
    if (!used) warnings.push(`--option ${spec} has no effect: ${info.name} is not among the compared methods`);
  }
  config.methods = config.methods.map((e) => {
    const entry: MethodEntry = typeof e === 'string' ? { method: e } : { ...e, options: { ...e.options } };
    const name = findMethod(table, entry.method)?.name;
    for (const p of parsed) {
      if (p.info.name === name) entry.options = { ...entry.options, [p.key]: p.value };
    }
    return entry;
  });
  return warnings;
}

/** Options a model always fills in from the activations' shape: not the user's to set. */
const shapeOptions = new Set(['channels', 'normalizedShape']);

/** The help's list of every method's options, with defaults and ranges, from the method table. */
function methodsHelp(table: readonly MethodInfo[]): string {
  const lines = ['Methods and their options (--option METHOD.KEY=VALUE):'];
  for (const m of table) {
    lines.push(`  ${[m.name, ...m.aliases].join(', ')}: ${m.label}${m.needsSpatialDims ? ' (cnn only)' : ''}`);
    for (const o of m.options) {
      if (shapeOptions.has(o.key)) continue;
      const parts: string[] = [o.type];
      if (o.default !== null || o.nullable) parts.push(`default ${JSON.stringify(o.default)}`);
      else if (o.fromModel) parts.push('default: the model picks');
      if (o.min !== undefined || o.max !== undefined) parts.push(`${range(o)}${o.nullable ? ' or null' : ''}`);
      if (o.values) parts.push(o.values.join('|'));
      lines.push(`      ${o.key.padEnd(18)} ${parts.join(', ')}: ${o.help}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function number(flags: Flags, name: string, integer = false): number | undefined {
  const raw = flags.get(name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw === true || raw.trim() === '' || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'}, got '${String(raw)}'`);
  }
  return value;
}

function list(flags: Flags, name: string): number[] | undefined {
  const raw = flags.get(name);
  if (typeof raw !== 'string') return undefined;
  const values = raw.split(',').map(Number);
  if (values.some((v) => !Number.isInteger(v) || v < 1)) {
    throw new UsageError(`--${name} must be a comma-separated list of positive integers, got '${raw}'`);
  }
  return values;
}

function text(flags: Flags, name: string): string | undefined {
  const raw = flags.get(name);
  return typeof raw === 'string' ? raw : undefined;
}

/** The flags that set one option of one method (each a shorthand of `--option METHOD.KEY=VALUE`). */
const optionFlags: { flag: string; method: string; key: string; value: (flags: Flags) => unknown }[] = [
  { flag: 'groups', method: 'groupnorm', key: 'groups', value: (f) => number(f, 'groups', true) },
  { flag: 'r-max', method: 'batchrenorm', key: 'rMax', value: (f) => number(f, 'r-max') },
  { flag: 'd-max', method: 'batchrenorm', key: 'dMax', value: (f) => number(f, 'd-max') },
  { flag: 'lrn-size', method: 'lrn', key: 'size', value: (f) => number(f, 'lrn-size', true) },
  { flag: 'frn-learnable-eps', method: 'frn', key: 'learnableEps', value: () => true },
  { flag: 'cosine-centered', method: 'cosinenorm', key: 'centered', value: () => true },
];

/** The flags of the user's own data (--data and the flags that only go with it). */
const dataFlags = ['label-column', 'test-data', 'test-fraction', 'image-shape'];

/** A data file's text or bytes; a missing or unreadable file is a usage error naming its flag. */
function readData(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new UsageError(`--${flag} ${file}: ${(error as Error).message}`);
  }
}

/** The kind of a data file from its extension. */
function dataKind(flag: string, file: string): 'csv' | 'tsv' | 'nlds' {
  const ext = extname(file).toLowerCase().slice(1);
  if (ext === 'csv' || ext === 'tsv' || ext === 'nlds') return ext;
  throw new UsageError(`--${flag} ${file}: unknown kind of file '${extname(file)}' (known: .csv, .tsv, .nlds)`);
}

/**
 * The dataset of --data FILE with --label-column, --test-data or --test-fraction, and --image-shape:
 * CSV text (parsed by the runner, so its messages name the file, line and column) or NLDS images.
 */
function userDataset(flags: Flags): ArrayDataset | CsvDataset {
  const file = text(flags, 'data')!;
  const testFile = text(flags, 'test-data');
  if (testFile !== undefined && flags.has('test-fraction')) throw new UsageError('give --test-data or --test-fraction, not both');
  const testFraction = number(flags, 'test-fraction');
  const kind = dataKind('data', file);
  if (testFile !== undefined && dataKind('test-data', testFile) !== kind) {
    throw new UsageError(`--test-data ${testFile} must be a .${kind} file like --data ${file}`);
  }
  const name = basename(file);
  if (kind === 'nlds') {
    for (const flag of ['label-column', 'image-shape']) {
      if (flags.has(flag)) throw new UsageError(`--${flag} is for CSV files; ${file} holds images and their labels`);
    }
    const nlds = (flag: string, path: string) => {
      const bytes = readData(flag, path);
      try {
        return parseNldsDataset(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), { file: path, name });
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
    };
    const train = nlds('data', file);
    const test = testFile === undefined ? undefined : nlds('test-data', testFile);
    if (test && (test.shape.join() !== train.shape.join() || test.classNames.length !== train.classNames.length)) {
      throw new UsageError(`--test-data ${testFile}: ${test.classNames.length} classes of ${test.shape.slice(1).join('x')} images, ` +
        `but ${file} has ${train.classNames.length} classes of ${train.shape.slice(1).join('x')}`);
    }
    return { ...train, ...(test ? { testX: test.x, testLabels: test.labels } : {}), ...(testFraction === undefined ? {} : { testFraction }) };
  }
  let imageShape: [number, number, number] | undefined;
  const shape = text(flags, 'image-shape');
  if (shape !== undefined) {
    const dims = shape.split(',').map((d) => (d.trim() === '' ? NaN : Number(d)));
    if (dims.length !== 3 || !dims.every((d) => Number.isInteger(d) && d >= 1)) {
      throw new UsageError(`--image-shape must be C,H,W (three positive integers, e.g. 1,8,8), got '${shape}'`);
    }
    imageShape = dims as [number, number, number];
  }
  return {
    csv: readData('data', file).toString('utf8'),
    file,
    name,
    ...(kind === 'tsv' ? { delimiter: '\t' } : {}),
    ...(flags.has('label-column') ? { labelColumn: text(flags, 'label-column') } : {}),
    ...(imageShape ? { imageShape } : {}),
    ...(testFile === undefined ? {} : { testCsv: readData('test-data', testFile).toString('utf8'), testFile }),
    ...(testFraction === undefined ? {} : { testFraction }),
  };
}

/** The flags that set something of one method only. */
const METHOD_FLAGS: [string, string][] = [
  ['groups', 'groupnorm'], ['r-max', 'batchrenorm'], ['d-max', 'batchrenorm'], ['lrn-size', 'lrn'], ['frn-learnable-eps', 'frn'],
  ['cosine-centered', 'cosinenorm'], ['renorm-warmup', 'batchrenorm'], ['renorm-ramp-end', 'batchrenorm'], ['no-renorm-schedule', 'batchrenorm'],
];

/**
 * Warnings for flags that change nothing in this comparison (a method's flag without the method, a
 * model's flag with the other model, the 2-D sets' flags with an image set), and for a layer
 * momentum of 0.5 or more, which under PyTorch's convention (normlab's) keeps little memory.
 */
function noEffect(flags: Flags, config: CompareConfig, table: readonly MethodInfo[]): string[] {
  const out: string[] = [];
  const entries = config.methods.map((e) => (typeof e === 'string' ? { method: e } : e));
  const compared = new Set<string | undefined>(entries.map((e) => findMethod(table, e.method)?.name));
  const listed = text(flags, 'methods') ?? entries.map((e) => e.method).join(',');
  for (const [flag, method] of METHOD_FLAGS) {
    if (flags.has(flag) && !compared.has(method)) {
      const label = table.find((m) => m.name === method)?.label ?? method;
      out.push(`--${flag} has no effect: it is for ${label}, which is not compared (--methods ${listed})`);
    }
  }
  const model = config.model ?? {};
  const kind = model.layers !== undefined ? 'layers' : model.kind ?? 'mlp';
  for (const flag of ['hidden', 'width', 'depth']) {
    if (flags.has(flag) && kind !== 'mlp') out.push(`--${flag} has no effect: it sizes the mlp, and the model is the ${kind === 'layers' ? 'described one (--layers)' : kind}`);
  }
  if (flags.has('channels') && kind !== 'cnn') out.push(`--channels has no effect: it sizes the cnn, and the model is the ${kind === 'layers' ? 'described one (--layers)' : kind}`);
  const name = (config.dataset as { name?: string } | undefined)?.name;
  if (name === 'digits' || name === 'mnist') {
    for (const flag of ['noise', 'train-size', 'classes']) {
      if (flags.has(flag)) out.push(`--${flag} has no effect: it is for the generated 2-D sets, and ${name} is a fixed image set`);
    }
  }
  for (const e of entries) {
    const m = findMethod(table, e.method);
    const momentum = (e.options as Record<string, unknown> | undefined)?.momentum;
    if (m && m.options.some((o) => o.key === 'momentum') && typeof momentum === 'number' && momentum >= 0.5) {
      out.push(momentumWarning(m.name, momentum));
    }
  }
  return out;
}

/** The configuration from the preset, the config file, then the flags. */
function buildConfig(flags: Flags, options: readonly string[], table: readonly MethodInfo[]):
    { config: CompareConfig; sweep?: CompareConfig[]; title?: string; warnings: string[] } {
  let config: CompareConfig = { methods: ['bn', 'brn', 'ln', 'gn'] };
  let sweep: CompareConfig[] | undefined;
  let title: string | undefined;
  const presetName = text(flags, 'preset');
  if (presetName !== undefined) {
    const names = presets.map((x) => x.name);
    const name = names.find((n) => fold(n) === fold(presetName));
    if (name === undefined) {
      throw new UsageError(`unknown preset '${presetName}'${didYouMean(presetName, names)} (known: ${names.join(', ')})`);
    }
    const p = preset(name);
    config = structuredClone(p.config);
    title = p.title;
    if (p.sweep) sweep = presetConfigs(p);
  }
  const file = text(flags, 'config');
  if (file !== undefined) {
    let fromFile: unknown;
    try {
      fromFile = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new UsageError(`--config ${file}: ${(error as Error).message}`);
    }
    if (fromFile === null || typeof fromFile !== 'object' || Array.isArray(fromFile)) {
      throw new UsageError(`--config ${file}: must hold a JSON object`);
    }
    config = { ...config, ...(fromFile as CompareConfig) };
  }
  if (flags.has('data')) {
    const builtin = ['dataset', 'noise', 'classes', 'train-size', 'test-size'].find((f) => flags.has(f));
    if (builtin) throw new UsageError(`--${builtin} is for the built-in data sets; --data gives your own`);
    config.dataset = userDataset(flags);
  } else {
    const flag = dataFlags.find((f) => flags.has(f));
    if (flag) throw new UsageError(`--${flag} goes with --data FILE (your own data)`);
    const dataset: BuiltinDataset = { ...(config.dataset as BuiltinDataset) };
    if (flags.has('dataset')) dataset.name = oneOf('dataset', text(flags, 'dataset')!, DATASET_NAMES, 'data set') as never;
    if (flags.has('noise')) dataset.noise = number(flags, 'noise');
    if (flags.has('classes')) dataset.classes = number(flags, 'classes', true);
    if (flags.has('train-size')) dataset.trainSize = number(flags, 'train-size', true);
    if (flags.has('test-size')) dataset.testSize = number(flags, 'test-size', true);
    config.dataset = dataset;
  }
  let model = { ...config.model };
  if (flags.has('layers')) {
    const named = ['model', 'hidden', 'width', 'depth', 'channels', 'activation'].filter((f) => flags.has(f));
    if (named.length) throw new UsageError(`--layers describes the whole model: give it without --${named.join(', --')}`);
    model = { layers: text(flags, 'layers')! };
  }
  if (flags.has('model')) model.kind = text(flags, 'model') as never;
  if (flags.has('hidden')) model.hidden = list(flags, 'hidden');
  if (flags.has('width') || flags.has('depth')) {
    if (flags.has('hidden')) throw new UsageError('give either --hidden or --width/--depth, not both');
    const width = number(flags, 'width', true) ?? model.hidden?.[0] ?? 128;
    const depth = number(flags, 'depth', true) ?? model.hidden?.length ?? 2;
    if (width < 1 || depth < 1) throw new UsageError('--width and --depth must be positive integers');
    model.hidden = Array.from({ length: depth }, () => width);
  }
  if (flags.has('channels')) model.channels = list(flags, 'channels');
  if (flags.has('activation')) model.activation = text(flags, 'activation') as never;
  config.model = model;
  if (flags.has('methods')) {
    const names = text(flags, 'methods')!.split(',').map((s) => s.trim()).filter(Boolean);
    if (names.length === 0) throw new UsageError('--methods needs at least one method');
    config.methods = names.map((n) => methodName(table, n, '--methods')) as CompareConfig['methods'];
  }
  if (optionFlags.some((o) => flags.has(o.flag))) {
    config.methods = config.methods.map((m) => {
      const entry: MethodEntry = typeof m === 'string' ? { method: m } : { ...m, options: { ...m.options } };
      const name = findMethod(table, entry.method)?.name;
      for (const o of optionFlags) {
        if (o.method === name && flags.has(o.flag)) entry.options = { ...entry.options, [o.key]: o.value(flags) };
      }
      return entry;
    });
  }
  const warnings = options.length ? applyOptions(config, options, table) : [];
  if (flags.has('batch-size')) config.batchSize = number(flags, 'batch-size', true);
  if (flags.has('batching')) config.batching = text(flags, 'batching') as never;
  const optimizer = { ...config.optimizer };
  if (flags.has('optimizer')) optimizer.kind = oneOf('optimizer', text(flags, 'optimizer')!, ['sgd', 'adam', 'adamw'], 'optimizer') as never;
  if (flags.has('lr')) optimizer.lr = number(flags, 'lr');
  if (flags.has('momentum')) optimizer.momentum = number(flags, 'momentum');
  if (flags.has('nesterov')) optimizer.nesterov = true;
  if (flags.has('weight-decay')) optimizer.weightDecay = number(flags, 'weight-decay');
  config.optimizer = optimizer;
  if (flags.has('schedule')) config.schedule = { ...config.schedule, kind: text(flags, 'schedule') as never };
  if (flags.has('steps')) config.steps = number(flags, 'steps', true);
  if (flags.has('eval-interval')) config.evalInterval = number(flags, 'eval-interval', true);
  if (flags.has('seed')) {
    if (flags.has('seeds')) throw new UsageError('give --seed or --seeds, not both');
    config.seed = number(flags, 'seed', true);
    delete config.seeds;
  }
  if (flags.has('seeds')) {
    try {
      config.seeds = parseSeeds(text(flags, 'seeds')!);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    delete config.seed;
  }
  if (flags.has('baseline')) {
    if (!config.seeds) throw new UsageError('--baseline goes with --seeds (the differences over seeds are against it)');
    config.baseline = text(flags, 'baseline');
    // A method's name or label stands for its id when the comparison has it once ('BatchNorm' -> 'bn').
    const m = findMethod(table, config.baseline!);
    const ids = config.methods.map((e) => (typeof e === 'string' ? e : e.id ?? e.method));
    if (m && !ids.includes(config.baseline!)) {
      const same = config.methods.map((e, i) => [findMethod(table, typeof e === 'string' ? e : e.method)?.name, i] as const).filter(([n]) => n === m.name);
      if (same.length === 1) {
        const e = config.methods[same[0][1]];
        config.baseline = typeof e !== 'string' && e.id ? e.id : m.aliases[0] ?? m.name;
      }
    }
  }
  if (flags.has('no-renorm-schedule')) {
    config.renormSchedule = false;
  } else if (flags.has('renorm-warmup') || flags.has('renorm-ramp-end')) {
    const current = config.renormSchedule || {};
    config.renormSchedule = {
      ...current,
      ...(flags.has('renorm-warmup') ? { warmup: number(flags, 'renorm-warmup') } : {}),
      ...(flags.has('renorm-ramp-end') ? { rampEnd: number(flags, 'renorm-ramp-end') } : {}),
    };
  }
  if (flags.has('preprocess')) config.preprocess = text(flags, 'preprocess') as never;
  if (flags.has('domain-shift')) {
    const [kind, amount] = text(flags, 'domain-shift')!.split(':');
    const value = amount === undefined ? undefined : Number(amount);
    if (amount !== undefined && (amount.trim() === '' || !Number.isFinite(value))) {
      throw new UsageError(`--domain-shift: the amount after ':' must be a number, got '${amount}'`);
    }
    config.domainShift = { kind: kind as never, ...(value === undefined ? {} : { amount: value }) };
  }
  if (flags.has('probes')) config.probes = probesFlag(text(flags, 'probes')!);
  if (flags.has('probe-etas')) {
    const raw = text(flags, 'probe-etas')!;
    const etas = raw.split(',').map((v) => (v.trim() === '' ? NaN : Number(v)));
    if (!etas.every((v) => Number.isFinite(v) && v > 0)) {
      throw new UsageError(`--probe-etas must be a comma-separated list of step sizes > 0, e.g. 0.025,0.05,0.1, got '${raw}'`);
    }
    if (!config.probes?.landscape) {
      throw new UsageError('--probe-etas are the landscape probe\'s step sizes: give them with --probes landscape');
    }
    config.probes = { ...config.probes, etas };
  }
  if (sweep) {
    // A sweep keeps its own batch sizes, steps and scaled learning rates; other flags apply to all.
    sweep = sweep.map((s) => ({ ...config, batchSize: s.batchSize, steps: flags.has('steps') ? config.steps : s.steps,
      optimizer: { ...config.optimizer, lr: flags.has('lr') ? config.optimizer!.lr : s.optimizer!.lr } }));
  }
  warnings.push(...noEffect(flags, config, table));
  return { config, sweep, title, warnings };
}

/** The probes of `--probes landscape,ics` (or `none`). */
function probesFlag(raw: string): CompareConfig['probes'] {
  const names = raw.split(',').map((s) => s.trim());
  const known = ['landscape', 'ics', 'none'];
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length || names.length === 0 || (names.includes('none') && names.length > 1)) {
    throw new UsageError(`--probes must be landscape, ics, both (landscape,ics) or none, got '${raw}'` +
      (unknown.length ? ` (unknown: ${unknown.map((n) => `'${n}'`).join(', ')})` : ''));
  }
  if (names.includes('none')) return null;
  return { landscape: names.includes('landscape'), ics: names.includes('ics') };
}

/** The probes' table: per method, the means over the evaluations (and seeds) of the landscape and ICS. */
function probesTable(runs: readonly CompareResult[]): string {
  const s = probeSummary(runs);
  const config = runs[0].config.probes!;
  const layers = [...new Set(s.flatMap((m) => m.ics.map((r) => r.layer)))].sort((a, b) => a - b);
  // A layer's kind, short: "conv2d", "linear", "residual".
  const kind = (l: number) => s.flatMap((m) => m.ics).find((r) => r.layer === l)!.kind.replace(/\(.*$/, '');
  const f = (v: number | null) => (v === null ? '-' : v.toPrecision(3));
  const rows = [['method',
    ...(config.landscape ? ['loss range along g', 'gradient change', 'beta-smoothness'] : []),
    ...layers.flatMap((l) => [`ICS l2 layer ${l} (${kind(l)})`, `cosine ${l}`])]];
  for (const m of s) {
    rows.push([m.label,
      ...(config.landscape ? [f(m.lossRange), f(m.gradientDistance), f(m.betaSmoothness)] : []),
      ...layers.flatMap((l) => {
        const row = m.ics.find((r) => r.layer === l);
        return [f(row?.l2 ?? null), f(row?.cosine ?? null)];
      })]);
  }
  const n = runs[0].methods[0].eval.length;
  const skipped = s.filter((m) => m.nonFinite > 0).map((m) => `${m.label}: ${m.nonFinite}`);
  return `Probes on a fixed training batch, training mode (Santurkar et al. 2018), means over ${n} evaluations` +
    `${runs.length > 1 ? ` of each of ${runs.length} seeds` : ''}${config.etas ? `; step sizes ${config.etas.join(', ')}` : ''}\n${table(rows)}` +
    (skipped.length ? `\nevaluations with a non-finite loss along the gradient, left out of the means: ${skipped.join(', ')}` : '');
}

function pct(v: number | null | undefined): string {
  return v === null || v === undefined ? '   -  ' : `${(100 * v).toFixed(1).padStart(5)}%`;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, j) => Math.max(...rows.map((r) => r[j].length)));
  return rows
    .map((r, i) => {
      const line = r.map((cell, j) => (j === 0 ? cell.padEnd(widths[j]) : cell.padStart(widths[j]))).join('  ');
      return i === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line;
    })
    .join('\n');
}

function summary(result: CompareResult): string {
  const shift = result.config.domainShift;
  const rows = [['method', 'test acc (inference)', 'test acc (batch stats)', 'test loss', 'train loss',
    ...(shift ? [`${shift.kind} ${shift.amount}: before AdaBN`, 'after AdaBN'] : []), 'note']];
  for (const m of result.methods) {
    const f = m.final;
    rows.push([
      m.label,
      pct(f?.testAccuracy),
      pct(f?.testAccuracyBatchStats),
      f ? f.testLoss.toFixed(3) : '-',
      f?.trainLoss != null ? f.trainLoss.toFixed(3) : '-',
      ...(shift ? [pct(f?.target?.accuracy), pct(f?.target?.accuracyAdapted)] : []),
      m.diverged ? `diverged at step ${m.diverged.step}` : '',
    ]);
  }
  return table(rows);
}

/** "82.4% +/- 3.1" (accuracy, in points) or "0.412 +/- 0.031" (loss): the mean and the interval's half-width. */
function meanPm(s: Stat, percent: boolean): string {
  if (s.n === 0) return '-';
  const f = (v: number) => (percent ? (100 * v).toFixed(1) : v.toFixed(3));
  const half = s.ci95 ? (s.ci95[1] - s.ci95[0]) / 2 : null;
  return `${f(s.mean)}${percent ? '%' : ''}${half === null ? '' : ` +/- ${f(half)}`}`;
}

/** The table of a comparison over seeds: per method the means with their intervals, and the paired difference. */
function seedsSummary(result: SeedsResult): string {
  const s = result.summary;
  const base = s.methods.find((m) => m.id === s.baseline)!;
  const rows = [['method', 'test acc (inference)', 'test acc (batch stats)', 'test loss', 'train loss', `vs ${base.label} (inference, paired)`]];
  for (const m of s.methods) {
    const d = s.differences.find((x) => x.a === m.id && x.metric === 'testAccuracy');
    const diff = m.id === s.baseline ? 'baseline' : !d ? '-'
      : `${(100 * d.meanDifference).toFixed(1)} pts` + (d.ci95 ? ` [${(100 * d.ci95[0]).toFixed(1)}, ${(100 * d.ci95[1]).toFixed(1)}] p=${d.p!.toPrecision(2)}` : '');
    rows.push([m.label, meanPm(m.testAccuracy, true), meanPm(m.testAccuracyBatchStats, true), meanPm(m.testLoss, false), meanPm(m.trainLoss, false), diff]);
  }
  const n = result.seeds.length;
  return `${table(rows)}
+/-: half-width of the 95% t interval of the mean over the ${n} seeds (not over test examples); ` +
    `[lo, hi]: the same for the difference of each seed's pair, p: paired t-test`;
}

class Progress {
  #last = -1;
  constructor(private readonly quiet: boolean, private readonly label: string) {}
  update(step: number, steps: number): void {
    if (this.quiet) return;
    const fraction = step / steps;
    if (process.stderr.isTTY) {
      const width = 30;
      const filled = Math.round(fraction * width);
      process.stderr.write(`\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(100 * fraction).toFixed(0).padStart(3)}% step ${step}/${steps}`);
      if (step >= steps) process.stderr.write('\n');
    } else {
      const decile = Math.floor(fraction * 10);
      if (decile > this.#last) {
        this.#last = decile;
        process.stderr.write(`${this.label} ${decile * 10}% (step ${step}/${steps})\n`);
      }
    }
  }
}

/** The workers of --workers (default: the machine's available parallelism). */
function workers(flags: Flags): number {
  if (!flags.has('workers')) return availableParallelism();
  const n = number(flags, 'workers', true)!;
  if (n < 1 || n > 256) throw new UsageError(`--workers must be from 1 to 256, got ${n}`);
  return n;
}

function describeRun(c: CompareResult['config'], seeds?: number[]): string {
  const model = c.model.kind === 'layers' ? `layers ${compactLayers(c.model.layers)}`
    : `${c.model.kind} ${c.model.kind === 'mlp' ? c.model.hidden.join('-') : c.model.channels.join('-')}`;
  return `${c.dataset.name}, ${model}, batch ${c.batchSize} ${c.batching}, ${c.optimizer.kind} lr ${c.optimizer.lr}, ${c.steps} steps, ` +
    (seeds ? `seeds ${seeds.length > 6 ? `${seeds.slice(0, 5).join(',')},...,${seeds.at(-1)} (${seeds.length})` : seeds.join(',')}` : `seed ${c.seed}`);
}

/**
 * Checks every run (and its first seed) before the first trains, so bad data or settings (a batch
 * larger than the training set) never leave a partial result behind.
 */
async function checkRuns(nl: Awaited<ReturnType<typeof load>>, runs: readonly CompareConfig[], where = (_: number) => ''): Promise<void> {
  for (const [k, run] of runs.entries()) {
    try {
      const seeds = seedsOf(run);
      const name = (run.dataset as { name?: string } | undefined)?.name;
      const builtin = !(run.dataset && ('x' in run.dataset || 'csv' in run.dataset));
      const bytes = builtin && (name === 'digits' || name === 'mnist') ? await nl.loadDataset(name) : undefined;
      const runner = nl.createRunner(seeds ? seedConfig(run, seeds[0]) : run, bytes);
      const ids = runner.config.methods.map((m) => m.id);
      runner.dispose();
      if (run.baseline !== undefined && !ids.includes(run.baseline)) {
        throw new Error(`--baseline: no method '${run.baseline}' in the comparison (methods: ${ids.join(', ')})`);
      }
    } catch (error) {
      throw new UsageError(`${where(k)}${(error as Error).message}`);
    }
  }
}

/** Refuses the flags of other commands. */
function onlyFlags(command: string, flags: Flags, others: readonly string[]): void {
  for (const f of others) if (flags.has(f)) throw new UsageError(`--${f} is not a flag of ${command} (see normlab --help)`);
}

async function compare(flags: Flags, repeated: Map<string, string[]>): Promise<void> {
  onlyFlags('compare', flags, ['shard', 'out', 'port', 'host', 'open']);
  checkOutputs(flags, ['json', 'csv']);
  const nl = await load();
  const { config, sweep, title, warnings } = buildConfig(flags, repeated.get('option') ?? [], nl.describeMethods());
  for (const w of warnings) process.stderr.write(`normlab: warning: ${w}\n`);
  const quiet = flags.has('quiet');
  const threads = workers(flags);
  const runs = sweep ?? [config];
  await checkRuns(nl, runs);
  if (title) say(`${title}\n`);
  const progress = new Progress(quiet, runs.length > 1 ? `${runs.length} batch sizes` : 'training');
  const t0 = performance.now();
  let results: (CompareResult | SeedsResult)[];
  try {
    results = await compareInWorkers(runs, { workers: threads, onProgress: (p) => progress.update(p.steps, p.totalSteps) });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const seconds = (performance.now() - t0) / 1000;
  for (const result of results) {
    if ('summary' in result) {
      const first = result.runs[0];
      say(`${describeRun(first.config, result.seeds)} (${first.data.train} train / ${first.data.test} test)`);
      say(`${seedsSummary(result)}\n`);
      if (first.config.probes) say(`${probesTable(result.runs)}\n`);
    } else {
      say(`${describeRun(result.config)} (${result.data.train} train / ${result.data.test} test)`);
      say(`${summary(result)}\n`);
      if (result.config.probes) say(`${probesTable([result])}\n`);
    }
  }
  if (!quiet) process.stderr.write(`normlab: ${seconds.toFixed(1)} s with ${threads} worker${threads > 1 ? 's' : ''}\n`);
  if (results.length > 1) {
    const one = (r: CompareResult | SeedsResult) => ('summary' in r ? r.runs[0] : r);
    const methods = one(results[0]).methods;
    const rows = [['batch size', ...methods.map((m) => m.label)]];
    for (const r of results) {
      rows.push([String(one(r).config.batchSize), ...methods.map((m, i) => ('summary' in r ? meanPm(r.summary.methods[i].testAccuracy, true)
        : pct(r.methods[i].final?.testAccuracy)))]);
    }
    say(`Test accuracy (inference mode) against batch size\n${table(rows)}`);
  }
  const jsonFile = text(flags, 'json');
  if (jsonFile) emit(jsonFile, `${JSON.stringify(results.length === 1 ? results[0] : { runs: results }, null, 1)}\n`);
  const csvFile = text(flags, 'csv');
  if (csvFile) emit(csvFile, resultsCsv(results.flatMap((r) => ('summary' in r ? r.runs : [r]))));
}

/** A CSV field: quoted when it holds a comma, a quote or a line break. */
function csvField(value: unknown): string {
  const t = typeof value === 'string' ? value : JSON.stringify(value);
  return /[",\r\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
}

/** A sweep's curves: each point's grid values, then the columns of compare --csv. */
function sweepCsv(result: SweepResult): string {
  const keys = Object.keys(result.grid.grid);
  const lines = [`point,${keys.map((k) => `grid.${k}`).join(',')},${resultsCsv([]).trimEnd()}`];
  result.points.forEach((p, k) => {
    const prefix = `${k},${keys.map((key) => csvField(p.values[key])).join(',')},`;
    const runs = 'summary' in p.result ? p.result.runs : [p.result];
    for (const line of resultsCsv(runs).trimEnd().split('\n').slice(1)) lines.push(prefix + line);
  });
  return `${lines.join('\n')}\n`;
}

/** Writes the sweep's --json and --csv. */
function writeSweep(flags: Flags, result: SweepResult): void {
  const jsonFile = text(flags, 'json');
  if (jsonFile) emit(jsonFile, `${JSON.stringify(result, null, 1)}\n`);
  const csvFile = text(flags, 'csv');
  if (csvFile) emit(csvFile, sweepCsv(result));
}

/** A short line per point: its values and each method's final test accuracy (a mean over seeds). */
function sweepTable(result: SweepResult): string {
  const keys = Object.keys(result.grid.grid);
  const one = (r: CompareResult | SeedsResult) => ('summary' in r ? r.runs[0] : r);
  const methods = one(result.points[0].result).methods;
  const rows = [[...keys, ...methods.map((m) => m.label)]];
  for (const p of result.points) {
    const r = p.result;
    rows.push([...keys.map((k) => JSON.stringify(p.values[k])), ...methods.map((m, i) => ('summary' in r
      ? meanPm(r.summary.methods[i].testAccuracy, true) : pct(r.methods[i].final?.testAccuracy)))]);
  }
  return `Test accuracy (inference mode) at each point\n${table(rows)}`;
}

async function sweep(flags: Flags): Promise<void> {
  const file = text(flags, 'config');
  if (file === undefined) throw new UsageError('sweep needs --config GRID.json ({ "base": config, "grid": { "path": [values] } })');
  for (const f of flags.keys()) {
    if (!['config', 'workers', 'json', 'csv', 'shard', 'out', 'quiet'].includes(f)) {
      throw new UsageError(`--${f} is not a flag of sweep (set it in the grid's base, or as a grid key)`);
    }
  }
  let grid: unknown;
  try {
    grid = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new UsageError(`--config ${file}: ${(error as Error).message}`);
  }
  let points;
  try {
    points = expandGrid(grid, file);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  let shard: [number, number] | undefined;
  if (flags.has('shard')) {
    try {
      shard = parseShard(text(flags, 'shard')!, process.env);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    if (!flags.has('out')) throw new UsageError('--shard writes its points as JSON lines: give --out PART.jsonl');
    if (flags.has('json') || flags.has('csv')) throw new UsageError('--shard writes --out PART.jsonl; normlab merge writes --json and --csv');
  } else if (flags.has('out')) {
    throw new UsageError('--out is for --shard (a part of a sweep); the whole sweep writes --json and --csv');
  }
  checkOutputs(flags, ['json', 'csv', 'out']);
  const mine = shard ? shardPoints(points, shard) : points;
  const nl = await load();
  await checkRuns(nl, mine.map((p) => p.config), (k) => `point ${mine[k].index} (${JSON.stringify(mine[k].values)}): `);
  const progress = new Progress(flags.has('quiet'), shard ? `shard ${shard[0]}/${shard[1]}` : `${points.length} points`);
  let results: (CompareResult | SeedsResult)[] = [];
  if (mine.length) {
    try {
      results = await compareInWorkers(mine.map((p) => p.config), { workers: workers(flags), onProgress: (p) => progress.update(p.steps, p.totalSteps) });
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }
  const done = mine.map((p, k) => ({ index: p.index, values: p.values, result: results[k] }));
  if (shard) {
    emit(text(flags, 'out')!, partLines(grid as SweepResult['grid'], shard, points.length, done));
    say(`shard ${shard[0]}/${shard[1]}: ${done.length} of ${points.length} points written to ${text(flags, 'out')}`);
    return;
  }
  const result: SweepResult = { grid: grid as SweepResult['grid'], points: done.map(({ values, result: r }) => ({ values, result: r })) };
  console.log(sweepTable(result));
  writeSweep(flags, result);
}

function merge(args: string[]): void {
  const { flags, files } = parseFlags(args, { positionals: true });
  for (const f of flags.keys()) {
    if (!['json', 'csv', 'quiet'].includes(f)) throw new UsageError(`--${f} is not a flag of merge (it takes the part files, --json and --csv)`);
  }
  if (files.length === 0) throw new UsageError('merge needs the part files: normlab merge part-*.jsonl --json all.json');
  checkOutputs(flags, ['json', 'csv']);
  let result: SweepResult;
  try {
    result = mergeParts(files.map((name) => {
      try {
        return { name, text: readFileSync(name, 'utf8') };
      } catch (error) {
        throw new Error(`${name}: ${(error as Error).message}`);
      }
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  console.log(sweepTable(result));
  writeSweep(flags, result);
}

/** Opens `url` in the system's browser (best effort: says so when it cannot). */
function openBrowser(url: string): void {
  const [cmd, args] = process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '""', url]] : ['xdg-open', [url]];
  const child = spawn(cmd as string, args as string[], { stdio: 'ignore', detached: true });
  child.on('error', () => process.stderr.write(`normlab: could not open a browser (${cmd}); open ${url} yourself\n`));
  child.unref();
}

/** `normlab playground`: the playground's static build in this installation, on a local port. */
async function playground(flags: Flags): Promise<void> {
  for (const f of flags.keys()) {
    if (!['port', 'host', 'open', 'quiet'].includes(f)) throw new UsageError(`--${f} is not a flag of playground (it takes --port, --host and --open)`);
  }
  const dir = fileURLToPath(new URL('./playground/', import.meta.url));
  if (!existsSync(join(dir, 'index.html'))) {
    throw new UsageError(`the playground is not in this installation (${dir} has no index.html): reinstall normlab, ` +
      'or in its repository build it with npm run build:web');
  }
  const host = text(flags, 'host') ?? '127.0.0.1';
  const given = flags.has('port');
  const port = given ? number(flags, 'port', true)! : 8080;
  if (port < 0 || port > 65535) throw new UsageError(`--port must be from 0 to 65535, got ${port}`);
  let served;
  try {
    served = await serve(dir, { port, host });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'EADDRINUSE' && !given) served = await serve(dir, { port: 0, host });
    else throw new UsageError(`cannot serve on ${host}:${port}: ${code === 'EADDRINUSE' ? 'the port is in use; choose another --port' : (error as Error).message}`);
  }
  console.log(`normlab playground: ${served.url}  (Ctrl-C to stop)`);
  if (flags.has('open')) openBrowser(served.url);
}

function listPresets(): void {
  for (const p of presets) {
    console.log(`${p.name}\n  ${p.title}\n  ${p.paper.title}: ${p.paper.url}\n`);
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === '--version' || command === '-v' || command === 'version' || rest.includes('--version')) {
      const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
      console.log(pkg.version);
      return 0;
    }
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      process.stdout.write(help((await load()).describeMethods()));
      return command === undefined ? 2 : 0;
    }
    if (command === 'presets') {
      if (rest.length) throw new UsageError('presets takes no arguments');
      listPresets();
      return 0;
    }
    if (command === 'compare') {
      const { flags, repeated } = parseFlags(rest);
      if (flags.has('help')) {
        process.stdout.write(help((await load()).describeMethods()));
        return 0;
      }
      await compare(flags, repeated);
      return 0;
    }
    if (command === 'sweep') {
      const { flags } = parseFlags(rest);
      if (flags.has('help')) {
        process.stdout.write(help((await load()).describeMethods()));
        return 0;
      }
      await sweep(flags);
      return 0;
    }
    if (command === 'playground') {
      const { flags } = parseFlags(rest);
      await playground(flags);
      return 0;
    }
    if (command === 'merge') {
      merge(rest);
      return 0;
    }
    const commands = ['compare', 'sweep', 'merge', 'playground', 'presets'];
    throw new UsageError(`unknown command '${command}'${didYouMean(command, commands)} (known: ${commands.join(', ')})`);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`normlab: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}

process.exitCode = await main(process.argv.slice(2));
