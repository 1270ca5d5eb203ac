// The method table of the C++ core as the package shows it (nl.describeMethods()): its values, the
// aliases createLayer takes, and the hand-written option interfaces of types.ts checked against it
// (keys and the defaults their docs state), so the documentation cannot drift from the core.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { load, root, type Normlab } from './helpers.js';
import { hostile } from './hostile.js';
import type { MethodInfo } from '../../dist/index.js';

let nl: Normlab;
let table: MethodInfo[];
beforeAll(async () => {
  nl = await load();
  table = nl.describeMethods();
});

const method = (name: string) => {
  const m = table.find((t) => t.name === name);
  if (!m) throw new Error(`no ${name} in the table`);
  return m;
};
const option = (name: string, key: string) => {
  const o = method(name).options.find((x) => x.key === key);
  if (!o) throw new Error(`no ${name}.${key} in the table`);
  return o;
};

describe('describeMethods', () => {
  test('describes all 14 methods: the baseline none, then the layer API\'s in the order of nl.methods', () => {
    expect(table.map((m) => m.name)).toEqual(['none', ...nl.methods]);
    expect(table).toHaveLength(14);
    expect(table.filter((m) => m.baseline).map((m) => m.name)).toEqual(['none']);
    expect(method('none')).toMatchObject({ label: 'No normalization', aliases: [], options: [], weightMethod: false });
    for (const m of table) expect(m.label.length).toBeGreaterThan(1);
    expect(method('batchrenorm').label).toBe('Batch Renorm');
    expect(method('batchnorm').aliases).toEqual(['bn']);
  });

  test('states the defaults and ranges of the core', () => {
    expect(option('batchnorm', 'momentum')).toMatchObject({ type: 'number', default: 0.1, min: 0, max: 1, nullable: true });
    expect(option('batchrenorm', 'rMax')).toMatchObject({ type: 'number', default: 3, min: 1 });
    expect(option('batchrenorm', 'rMax').max).toBeUndefined();
    expect(option('batchrenorm', 'dMax')).toMatchObject({ default: 5, min: 0 });
    expect(option('batchrenorm', 'momentum').default).toBe(0.01);
    expect(option('batchnorm', 'eps')).toMatchObject({ default: 1e-5, min: 0, exclusiveMin: true });
    expect(option('rmsnorm', 'eps').default).toBe(2 ** -23);
    expect(option('lrn', 'alphaScaling')).toMatchObject({ type: 'string', default: 'size', values: ['size', 'none'] });
    expect(option('generalizedbatchnorm', 'center').values).toEqual(['mean', 'median', 'quantile']);
    expect(option('groupnorm', 'channels')).toMatchObject({ type: 'integer', default: null, fromModel: true });
    for (const m of table) for (const o of m.options) expect(o.help.length, `${m.name}.${o.key}`).toBeGreaterThan(10);
  });

  test('usesBatchStatistics is true exactly for bn, brn, l1bn, gbn and sn; needsSpatialDims for in and lrn', () => {
    expect(table.filter((m) => m.usesBatchStatistics).map((m) => m.aliases[0]))
      .toEqual(['bn', 'brn', 'l1bn', 'gbn', 'sn']);
    expect(table.filter((m) => m.needsSpatialDims).map((m) => m.name)).toEqual(['instancenorm', 'lrn']);
    expect(table.filter((m) => m.foldable).map((m) => m.name))
      .toEqual(['batchnorm', 'batchrenorm', 'l1batchnorm', 'generalizedbatchnorm', 'weightnorm']);
    expect(table.filter((m) => m.weightMethod).map((m) => m.name)).toEqual(['weightnorm', 'cosinenorm']);
  });

  test('the population statistics AdaBN replaces are the state a layer reports', () => {
    for (const m of table.filter((t) => t.populationStatistics.length)) {
      const layer = nl.createLayer(m.name as 'batchnorm', { channels: 2 });
      expect(Object.keys(layer.getState()), m.name).toEqual(expect.arrayContaining(m.populationStatistics));
      layer.dispose();
    }
  });

  test('returns a fresh copy each call', () => {
    const a = nl.describeMethods();
    a[1].label = 'changed';
    expect(nl.describeMethods()[1].label).toBe('BatchNorm');
  });
});

describe('createLayer takes the aliases', () => {
  test("createLayer('bn') is a batchnorm with the same numbers as createLayer('batchnorm')", () => {
    const x = new Float32Array([1, 2, 3, 4, 5, 7]);
    const a = nl.createLayer('bn', { channels: 2 });
    const b = nl.createLayer('batchnorm', { channels: 2 });
    expect(a.method).toBe('batchnorm');
    const ya = a.forward(x, [3, 2], { training: true });
    // Channel 0 is [1, 3, 5]: mean 3, biased variance 8/3; hand-computed (1 - 3) / sqrt(8/3 + 1e-5).
    expect(ya[0]).toBeCloseTo(-2 / Math.sqrt(8 / 3 + 1e-5), 6);
    expect(Array.from(ya)).toEqual(Array.from(b.forward(x, [3, 2], { training: true })));
    a.dispose();
    b.dispose();
  });

  test('every alias of the table creates its method', () => {
    for (const m of table) {
      for (const alias of m.aliases) {
        const options = m.weightMethod ? { inFeatures: 2, outFeatures: 2 }
          : m.options.some((o) => o.key === 'normalizedShape') ? { normalizedShape: [2] }
            : m.name === 'lrn' ? { size: 2 } : m.name === 'groupnorm' ? { channels: 2, groups: 1 } : { channels: 2 };
        const layer = nl.createLayer(alias as 'bn', options as never);
        expect(layer.method).toBe(m.name);
        layer.dispose();
      }
    }
  });

  test('an unknown name is an Error listing the methods', () => {
    hostile('layer API');
    expect(() => nl.createLayer('bnn' as 'bn', { channels: 2 })).toThrow(/unknown normalization method 'bnn' \(known: batchnorm/);
  });

  test("'none' is the comparisons' baseline, not a layer", () => {
    hostile('layer API');
    expect(() => nl.createLayer('none' as 'bn', { channels: 2 })).toThrow(/^none: the comparisons' baseline without normalization, not a layer$/);
  });
});

describe('the documented option interfaces of types.ts agree with the table', () => {
  const source = readFileSync(join(root, 'bindings', 'js', 'types.ts'), 'utf8');
  const block = (name: string) => {
    // `export interface X {...}` or `export type X = Base & {...};`
    const m = new RegExp(`export (?:interface ${name}|type ${name} = [\\w\\s&]*?) \\{([\\s\\S]*?)\\n\\}`).exec(source);
    if (!m) throw new Error(`no interface ${name} in types.ts`);
    return m[1];
  };
  // MethodOptions maps each method to its interface: `batchnorm: BatchNormOptions;`.
  const interfaces = Object.fromEntries([...block('MethodOptions').matchAll(/(\w+): (\w+);/g)].map((m) => [m[1], m[2]]));

  /** The keys of an interface and the literal defaults its doc comments state ("Default 0.1."). */
  function documented(name: string): Map<string, unknown> {
    const props = new Map<string, unknown>();
    const body = block(name);
    const re = /(\/\*\*([\s\S]*?)\*\/\s*)?\n\s*(\w+)\??:/g;
    for (const m of body.matchAll(re)) {
      const doc = m[2] ?? '';
      const d = /Default (-?[\d.e+-]+|true|false|'[^']*'|"[^"]*")[.,;\s(]/.exec(`${doc} `);
      let value: unknown = undefined;
      if (d) {
        const raw = d[1].replace(/\.$/, '');
        value = raw === 'true' ? true : raw === 'false' ? false : /^['"]/.test(raw) ? raw.slice(1, -1) : Number(raw);
      }
      props.set(m[3], value);
    }
    return props;
  }

  test('each normalization method: the same keys, and every stated default equal to the table', () => {
    let checked = 0;
    for (const m of table.filter((t) => !t.weightMethod && !t.baseline)) {
      const props = documented(interfaces[m.name]);
      expect([...props.keys()].sort(), m.name).toEqual(m.options.map((o) => o.key).sort());
      for (const [key, value] of props) {
        if (value === undefined) continue;
        expect(value, `${m.name}.${key}`).toBe(option(m.name, key).default);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(25);
  });

  test('cosinenorm documents its model option centered', () => {
    expect(documented(interfaces.cosinenorm).has('centered')).toBe(true);
    expect(option('cosinenorm', 'centered').default).toBe(false);
  });
});
