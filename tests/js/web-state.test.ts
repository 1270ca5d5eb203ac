// The playground's URL state (web/src/state.ts) and its runner configurations (web/src/config.ts):
// round trips, defaults, garbage and hostile hashes falling back to defaults with notices, the
// methods' options from the method table under namespaced keys (and the flat keys of old links),
// and presets that the runner resolves exactly as the CLI's `--preset`.
import { beforeAll, describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load, presetConfigs, presets, type MethodInfo, type Normlab } from 'normlab';
import { parseCsvDataset } from 'normlab/csv-data';
import { root } from './helpers.js';
import {
  DEFAULTS, MAX_HASH_LENGTH, PAGE_PRESETS, Settings, formatValue, parseValue, valueOf, type GeneralKey, type State,
} from '../../web/src/state.js';
import {
  baseConfig, configsFromState, extentFor, extentOfPoints, gridPoints, heldOut, stateFromPreset, trainCount, type UserFile,
} from '../../web/src/config.js';
import { relevant } from '../../web/src/controls.js';
import { LEGACY_KEYS } from '../../web/src/legacy.js';
import { Methods, NOT_OFFERED, PAGE_DEFAULTS, type OptionValue } from '../../web/src/methods.js';
import { METHOD_COLORS, OKABE_ITO } from '../../web/src/palette.js';
import { hostile } from './hostile.js';

let nl: Normlab;
let table: MethodInfo[];
let methods: Methods;
let settings: Settings;
beforeAll(async () => {
  nl = await load();
  table = nl.describeMethods();
  methods = new Methods(table);
  settings = new Settings(methods);
});

const defaultState = () => settings.defaultState();
const parseHash = (hash: string) => settings.parseHash(hash);
const toHash = (state: State) => settings.toHash(state);
const checkState = (state: State) => settings.checkState(state);
/** The defaults with some options changed. */
const withOptions = (state: State, options: Record<string, OptionValue | null>): State => ({ ...state, options: { ...state.options, ...options } });

describe('URL state', () => {
  test('every property has a default that its own parser accepts', () => {
    const d = defaultState();
    expect(settings.generalProps.map((p) => p.name).sort()).toEqual(Object.keys(d).filter((k) => k !== 'options').sort());
    expect(settings.optionProps.map((p) => p.name).sort()).toEqual(Object.keys(d.options).sort());
    for (const p of settings.props) {
      expect(parseValue(p, formatValue(valueOf(d, p))), p.name).toEqual(valueOf(d, p));
    }
  });

  test('an empty hash gives the defaults and no notice', () => {
    for (const hash of ['', '#']) {
      const { state, notices } = parseHash(hash);
      expect(state).toEqual(defaultState());
      expect(notices).toEqual([]);
    }
  });

  test('round trip: toHash then parseHash gives the same state, for the defaults and every preset', () => {
    const states: State[] = [defaultState(), ...PAGE_PRESETS.map((p) => stateFromPreset(p, settings))];
    const custom = withOptions(defaultState(), { 'gn.groups': 4, 'brn.rMax': 2.5, 'sn.useIN': false, 'gn.eps': 1e-3 });
    Object.assign(custom, {
      dataset: 'spiral', noise: 0.35, classes: 3, trainSize: 640, depth: 3, width: 24, methods: ['none', 'gn', 'ln'],
      batchSize: 6, batching: 'noniid', noniidClasses: 2, optimizer: 'adamw', lr: 0.0031, weightDecay: 0.01,
      steps: 777, evalInterval: 11, seed: 2147483647, sweep: [2, 4, 64], sweepEpochs: 3, activation: 'tanh',
    } satisfies Partial<State>);
    states.push(custom);
    for (const s of states) {
      const hash = toHash(s);
      const back = parseHash(hash);
      expect(back.notices, hash).toEqual([]);
      expect(back.state).toEqual(s);
      expect(toHash(back.state)).toBe(hash);
    }
  });

  test('the hash names every setting and every option of the compared methods, with the seed', () => {
    const d = defaultState();
    const hash = toHash(d);
    // Every general setting, but your data's while it is not the data set.
    const userKeys = ['dataFile', 'labelColumn', 'testFraction', 'imageShape'];
    for (const p of settings.generalProps) {
      if (userKeys.includes(p.name)) expect(hash).not.toContain(`&${p.name}=`);
      else expect(hash).toContain(`&${p.name}=`.replace(/^&preset/, '#preset'));
    }
    const user = toHash({ ...d, dataset: 'user' });
    for (const k of userKeys) expect(user).toContain(`&${k}=`);
    for (const p of settings.optionProps) {
      if (d.methods.includes(p.option!.method)) expect(hash).toContain(`&${p.name}=`);
      else expect(hash).not.toContain(`&${p.name}=`);
    }
    expect(hash).toMatch(/[#&]seed=1(&|$)/);
    expect(hash).toContain('&brn.rMax=3&brn.dMax=5&');
    // Another method's option that differs from its default is kept too (so the hash gives it back).
    expect(toHash(withOptions(d, { 'cn.centered': true }))).toContain('&cn.centered=true&');
  });

  test('a partial hash keeps the defaults of the settings it does not name', () => {
    const { state, notices } = parseHash('#dataset=xor&seed=42&methods=bn,ln');
    expect(notices).toEqual([]);
    expect(state).toEqual({ ...defaultState(), dataset: 'xor', seed: 42, methods: ['bn', 'ln'] });
  });

  test("methods run in the link's order, named by key, name or alias", () => {
    expect(parseHash('#methods=ln,bn,none').state.methods).toEqual(['ln', 'bn', 'none']);
    expect(parseHash('#methods=batchrenorm,layernorm,gn').state.methods).toEqual(['brn', 'ln', 'gn']);
    expect(parseHash('#methods=bn,batchnorm').notices.join(' ')).toMatch(/methods=bn,batchnorm/);
  });

  const garbage: [string, string][] = [
    ['#seed=banana', 'seed'],
    ['#seed=-1', 'seed'],
    ['#seed=1.5', 'seed'],
    ['#seed=99999999999999999999', 'seed'],
    ['#lr=1e999', 'lr'],
    ['#lr=NaN', 'lr'],
    ['#lr=Infinity', 'lr'],
    ['#lr=0', 'lr'],
    ['#lr=0x10', 'lr'],
    ['#noise=', 'noise'],
    ['#noise=2', 'noise'],
    ['#batchSize=1e3', 'batchSize'],
    ['#dataset=imagenet', 'dataset'],
    ['#dataset=MOONS', 'dataset'],
    ['#methods=', 'methods'],
    ['#methods=bn,bn', 'methods'],
    ['#methods=bn,foo', 'methods'],
    ['#channels=8,,16', 'channels'],
    ['#channels=1,2,3,4,5', 'channels'],
    ['#sweep=2,4,x', 'sweep'],
    ['#steps=%', 'steps'],
    ['#seed=1&seed=2', 'seed'],
  ];
  test.each(garbage)('garbage %s falls back to the default of %s with a notice', (hash, name) => {
    hostile('URL state');
    const { state, notices } = parseHash(hash);
    expect(state[name as GeneralKey]).toEqual(DEFAULTS[name as GeneralKey]);
    expect(notices.length).toBeGreaterThan(0);
    expect(notices.join(' ')).toContain(name);
  });

  test('hostile hashes give the defaults, notices of bounded length, and nothing executable', () => {
    const hostileHashes = [
      '#dataset=<img src=x onerror=alert(1)>',
      '#<script>alert(1)</script>=1',
      '#__proto__=1&constructor=2&prototype=3',
      '#__proto__[polluted]=1',
      `#seed=${'9'.repeat(5000)}`,
      `#${'a=1&'.repeat(1000)}`,
      '#%E0%A4%A',
      '#dataset=%00%01%02',
      '#methods=javascript:alert(1)',
      '#' + '\u202e\u0000\ud800'.repeat(50),
    ];
    for (const hash of hostileHashes) {
      hostile('URL state');
      const { state, notices } = parseHash(hash);
      expect(state, hash).toEqual(defaultState());
      expect(notices.length, hash).toBeGreaterThan(0);
      for (const n of notices) {
        expect(n.length).toBeLessThan(400);
        expect(n).not.toMatch(/[<>]script|onerror=alert\(1\)>/);
        expect(n).toMatch(/^[\x20-\x7e…–—]*$/);
      }
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  test('an overlong hash is not parsed at all', () => {
    hostile('URL state');
    const { state, notices } = parseHash(`#seed=5&x=${'y'.repeat(MAX_HASH_LENGTH)}`);
    expect(state.seed).toBe(1);
    expect(notices[0]).toMatch(/too long/);
  });

  test('unknown settings are ignored with a notice, the valid ones kept', () => {
    const { state, notices } = parseHash('#seed=7&colour=red&dataset=circle');
    expect(state.seed).toBe(7);
    expect(state.dataset).toBe('circle');
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatch(/Unknown.*colour/);
  });

  test('settings that do not go together are corrected with a notice', () => {
    let r = parseHash('#dataset=moons&model=cnn');
    expect(r.state.model).toBe('mlp');
    expect(r.notices.join(' ')).toMatch(/CNN/);
    r = parseHash('#dataset=digits&model=mlp&methods=bn,in');
    expect(r.state.methods).toEqual(['bn']);
    expect(r.notices.join(' ')).toMatch(/InstanceNorm/);
    r = parseHash('#dataset=digits&model=mlp&methods=in');
    expect(r.state.methods).toEqual(DEFAULTS.methods);
    r = parseHash('#renormWarmup=0.6&renormRampEnd=0.2');
    expect([r.state.renormWarmup, r.state.renormRampEnd]).toEqual([DEFAULTS.renormWarmup, DEFAULTS.renormRampEnd]);
    expect(r.notices).toHaveLength(1);
    r = parseHash('#dataset=digits&model=cnn&methods=bn,in');
    expect(r.notices).toEqual([]);
    expect(r.state.methods).toEqual(['bn', 'in']);
  });

  test('checkState does not modify its input', () => {
    const s = { ...defaultState(), model: 'cnn' as const };
    checkState(s);
    expect(s.model).toBe('cnn');
  });

  test('sameSettings ignores the preset name only', () => {
    const a = defaultState();
    expect(settings.sameSettings(a, { ...a, preset: 'small-batch' })).toBe(true);
    expect(settings.sameSettings(a, { ...a, seed: 2 })).toBe(false);
    expect(settings.sameSettings(a, { ...a, methods: ['bn'] })).toBe(false);
    expect(settings.sameSettings(a, withOptions(a, { 'bn.momentum': 0.2 }))).toBe(false);
  });

  test('controls hide what does not apply', () => {
    const s = defaultState();
    expect(relevant(s, 'noise')).toBe(true);
    expect(relevant({ ...s, dataset: 'digits' }, 'noise')).toBe(false);
    expect(relevant(s, 'classes')).toBe(false);
    expect(relevant({ ...s, dataset: 'spiral' }, 'classes')).toBe(true);
    expect(relevant({ ...s, optimizer: 'adam' }, 'momentum')).toBe(false);
    expect(relevant({ ...s, sweep: [2, 4] }, 'batchSize')).toBe(false);
    expect(relevant({ ...s, sweep: [2, 4] }, 'sweepEpochs')).toBe(true);
    expect(relevant({ ...s, methods: ['ln'] }, 'gn.groups')).toBe(false);
    expect(relevant(s, 'gn.groups')).toBe(true);
  });
});

describe('the methods and their options come from the method table', () => {
  test("the method list is the table ('none' first), each with its first alias (or name) as key and the table's label", () => {
    expect(methods.list.map((m) => m.key)).toEqual(table.map((m) => m.aliases[0] ?? m.name));
    expect(methods.list[0].key).toBe('none');
    expect(methods.list.map((m) => m.label)).toEqual(table.map((m) => m.label));
    expect(settings.prop('methods')).toMatchObject({ type: 'enumList', values: methods.list.map((m) => m.key) });
    for (const m of table) for (const name of [m.name, ...m.aliases]) expect(methods.get(name)?.name, name).toBe(m.name);
    expect(methods.get('__proto__')).toBeUndefined();
  });

  test('every option of the table has a control (but the shape options and the listed exceptions), with its range, default and help', () => {
    for (const m of table) {
      const key = m.aliases[0] ?? m.name;
      const expected = m.options.filter((o) => !['channels', 'normalizedShape'].includes(o.key) && !NOT_OFFERED.has(`${key}.${o.key}`));
      const props = settings.optionProps.filter((p) => p.option!.method === key);
      expect(props.map((p) => p.name), m.name).toEqual(expected.map((o) => `${key}.${o.key}`));
      for (const [i, p] of props.entries()) {
        const o = expected[i];
        expect(p.help).toBe(o.help);
        if (p.type === 'int' || p.type === 'number') {
          expect(p.type).toBe(o.type === 'integer' ? 'int' : 'number');
          expect([p.min, p.max, p.minExclusive]).toEqual([o.min ?? -Infinity, o.max ?? Infinity, o.exclusiveMin === true]);
        } else if (p.type === 'enum') {
          expect(p.values).toEqual(o.values);
        } else {
          expect([p.type, o.type]).toEqual(['boolean', 'boolean']);
        }
        const start = defaultState().options[p.name];
        if (Object.hasOwn(PAGE_DEFAULTS, p.name)) expect(start).toBe(PAGE_DEFAULTS[p.name]);
        else expect(start, p.name).toBe(o.fromModel ? null : o.default);
      }
    }
    // The numbers, read from the table: Batch Renorm's rMax from 1 up (no upper bound), dMax from 0.
    expect(settings.prop('brn.rMax')).toMatchObject({ type: 'number', min: 1, max: Infinity });
    expect(settings.prop('brn.dMax')).toMatchObject({ type: 'number', min: 0, max: Infinity });
    expect(defaultState().options).toMatchObject({ 'bn.momentum': 0.1, 'brn.rMax': 3, 'brn.dMax': 5, 'brn.momentum': 0.01 });
    expect(parseHash('#brn.rMax=250').state.options['brn.rMax']).toBe(250);
    expect(parseHash('#brn.rMax=0.5').notices.join(' ')).toContain('brn.rMax=0.5');
    expect(parseHash('#bn.eps=0').notices.join(' ')).toContain('bn.eps=0');  // eps > 0
  });

  test('namespaced keys set the options (method.key, as the CLI takes them)', () => {
    const { state, notices } = parseHash('#methods=bn,brn,sn&brn.rMax=2&bn.momentum=0.01&sn.useBN=false&sn.useIN=&gn.groups=4');
    expect(notices).toEqual([]);
    expect(state.methods).toEqual(['bn', 'brn', 'sn']);
    expect(state.options).toMatchObject({ 'brn.rMax': 2, 'bn.momentum': 0.01, 'sn.useBN': false, 'sn.useIN': null, 'gn.groups': 4 });
    const hash = toHash(state);
    expect(hash).toContain('&brn.rMax=2&');
    expect(hash).toContain('&bn.momentum=0.01&');
    expect(hash).toContain('&gn.groups=4&');  // not compared, but not the default
    expect(baseConfig(state, methods).methods).toEqual([
      { method: 'bn', options: { momentum: 0.01 } }, { method: 'brn', options: { rMax: 2 } }, { method: 'sn', options: { useBN: false } },
    ]);
  });

  test('the flat keys of old links load as their namespaced keys; the hash written back uses the new ones', () => {
    const old = '#methods=bn,brn,gn,l1bn,gbn,sn,frn,cn&bnMomentum=0.01&rMax=2&dMax=1&brnMomentum=0.05&groups=4&lrnSize=3' +
      '&l1bnScale=none&gbnCenter=quantile&gbnLevel=0.3&frnEps=learned&snBN=off&cnCentered=centered&seed=5';
    const now = '#methods=bn,brn,gn,l1bn,gbn,sn,frn,cn&bn.momentum=0.01&brn.rMax=2&brn.dMax=1&brn.momentum=0.05&gn.groups=4&lrn.size=3' +
      '&l1bn.scaleSqrtPiOver2=false&gbn.center=quantile&gbn.level=0.3&frn.learnableEps=true&sn.useBN=false&cn.centered=true&seed=5';
    const a = parseHash(old);
    const b = parseHash(now);
    expect(a.notices).toEqual([]);
    expect(b.notices).toEqual([]);
    expect(a.state).toEqual(b.state);
    expect(a.state.options).toMatchObject({
      'bn.momentum': 0.01, 'brn.rMax': 2, 'brn.dMax': 1, 'brn.momentum': 0.05, 'gn.groups': 4, 'lrn.size': 3,
      'l1bn.scaleSqrtPiOver2': false, 'gbn.center': 'quantile', 'gbn.level': 0.3, 'frn.learnableEps': true, 'sn.useBN': false, 'cn.centered': true,
    });
    const written = toHash(a.state);
    for (const oldKey of LEGACY_KEYS.keys()) expect(written).not.toMatch(new RegExp(`[#&]${oldKey}=`));
    expect(parseHash(written).state).toEqual(a.state);
    // Every old key maps to an option the page has.
    for (const [oldKey, { key }] of LEGACY_KEYS) expect(settings.prop(key), oldKey).toBeDefined();
    // The old values of their own: each one, and a wrong one names the old key.
    expect(parseHash('#l1bnScale=sqrt-pi-2').state.options['l1bn.scaleSqrtPiOver2']).toBe(true);
    expect(parseHash('#frnEps=fixed&dataset=digits&model=cnn').state.options['frn.learnableEps']).toBe(false);
    expect(parseHash('#snBN=on&cnCentered=plain').state.options).toMatchObject({ 'sn.useBN': true, 'cn.centered': false });
    expect(parseHash('#l1bnScale=true').notices.join(' ')).toContain('l1bnScale=true');
    // An old key and its new key in one link: the second is a repeat.
    expect(parseHash('#rMax=2&brn.rMax=4').notices.join(' ')).toMatch(/brn\.rMax \(given twice\)/);
  });

  test('one colour per method, by its place in the list (the palette is the one place colours live)', () => {
    expect(methods.list.map((m) => m.color)).toEqual(METHOD_COLORS.slice(0, methods.list.length));
    expect(new Set(methods.list.map((m) => m.color)).size).toBe(methods.list.length);
    expect(methods.get('bn')!.color).toBe(OKABE_ITO.vermillion);
    expect(methods.get('none')!.color).toBe(OKABE_ITO.black);
  });

  test('batch statistics and spatial dims come from the table', () => {
    expect(methods.list.filter((m) => m.usesBatchStatistics).map((m) => m.key)).toEqual(['bn', 'brn', 'l1bn', 'gbn', 'sn']);
    expect(methods.list.filter((m) => m.needsSpatialDims).map((m) => m.key)).toEqual(['in', 'lrn']);
  });
});

describe('configurations', () => {
  test('a state gives a config with only what differs from the runner defaults', () => {
    const c = baseConfig(defaultState(), methods);
    expect(c).toEqual({
      dataset: { name: 'moons', noise: 0.2, trainSize: 1000, testSize: 500 },
      model: { kind: 'mlp', hidden: [32, 32], activation: 'relu' },
      methods: ['none', 'bn', 'brn', { method: 'gn', options: { groups: 8 } }, 'ln'],
      batchSize: 4,
      batching: 'iid',
      optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9 },
      steps: 1500,
      seed: 1,
    });
    const custom = baseConfig({
      ...withOptions(defaultState(), { 'bn.momentum': 0.01, 'brn.rMax': 2 }),
      evalInterval: 10, renormRampEnd: 0.7, optimizer: 'adam', shift: 'noise', shiftAmount: 0.3,
    }, methods);
    expect(custom.methods[1]).toEqual({ method: 'bn', options: { momentum: 0.01 } });
    expect(custom.methods[2]).toEqual({ method: 'brn', options: { rMax: 2 } });
    expect(custom.evalInterval).toBe(10);
    expect(custom.renormSchedule).toEqual({ warmup: 0.1, rampEnd: 0.7 });
    expect(custom.optimizer).toEqual({ kind: 'adam', lr: 0.05 });
    expect(custom.domainShift).toEqual({ kind: 'noise', amount: 0.3 });
  });

  test('a sweep runs one config per batch size with scaled steps and learning rate', () => {
    const s = { ...defaultState(), dataset: 'digits' as const, testSize: 500, sweep: [2, 8], sweepEpochs: 3, lr: 0.1 };
    expect(trainCount(s)).toBe(1297);
    const configs = configsFromState(s, methods);
    expect(configs.map((c) => [c.batchSize, c.steps, c.optimizer!.lr])).toEqual([
      [2, 3 * 648, (0.1 * 2) / 32],
      [8, 3 * 162, (0.1 * 8) / 32],
    ]);
  });

  test('the page offers every preset with a named model; those with a described one stay in the CLI', () => {
    expect(PAGE_PRESETS.map((p) => p.name)).toEqual(presets.filter((p) => p.config.model?.layers === undefined).map((p) => p.name));
    expect(presets.find((p) => p.name === 'residual-small-batch')).toBeDefined();
    expect(PAGE_PRESETS.find((p) => p.name === 'residual-small-batch')).toBeUndefined();
    expect(() => stateFromPreset(presets.find((p) => p.name === 'residual-small-batch')!, settings)).toThrow(/named models/);
    expect(parseHash('#preset=residual-small-batch').notices.join(' ')).toContain('preset');
    const described = { ...presets[0], name: 'described', config: { ...presets[0].config, model: { layers: 'linear:8,norm,relu' } } };
    expect(() => stateFromPreset(described, settings)).toThrow(/named models/);
  });

  test('every preset of the page: the playground runs exactly what `normlab compare --preset` runs', async () => {
    const digits = await nl.loadDataset('digits');
    for (const p of PAGE_PRESETS) {
      const ours = configsFromState(stateFromPreset(p, settings), methods);
      const theirs = presetConfigs(p);
      expect(ours.length, p.name).toBe(theirs.length);
      ours.forEach((config, i) => {
        const data = config.dataset?.name === 'digits' ? digits : undefined;
        const a = nl.createRunner(config, data);
        const b = nl.createRunner(theirs[i], data);
        expect(a.config, p.name).toEqual(b.config);
        a.dispose();
        b.dispose();
      });
    }
  });

  test('a preset state round-trips through the URL', () => {
    for (const p of PAGE_PRESETS) {
      const s = stateFromPreset(p, settings);
      expect(s.preset).toBe(p.name);
      expect(parseHash(toHash(s)).state).toEqual(s);
    }
  });

  test('the decision-map grid covers the extent row by row from the top-left', () => {
    const e = extentFor('circle');
    const g = gridPoints(e, 4);
    expect(g.length).toBe(32);
    expect(g[0]).toBeCloseTo(e.xMin + (e.xMax - e.xMin) / 8);
    expect(g[1]).toBeCloseTo(e.yMax - (e.yMax - e.yMin) / 8);
    expect(g[2]).toBeGreaterThan(g[0]);
    expect(g[9]).toBeLessThan(g[1]);
    for (const name of ['circle', 'xor', 'gauss', 'spiral', 'moons', 'blobs']) {
      const x = extentFor(name);
      expect(x.xMax - x.xMin).toBeCloseTo(x.yMax - x.yMin);
    }
  });
});

describe('survey methods and data normalization in the playground', () => {
  const withMethods = (list: State['methods'], extra: Partial<State> = {}, options: Record<string, OptionValue | null> = {}): State =>
    ({ ...withOptions(defaultState(), options), methods: list, ...extra });

  test('each survey method runs with the options its controls set, and only those that differ from the defaults', () => {
    expect(baseConfig(withMethods(['l1bn', 'gbn', 'sn', 'frn', 'rms']), methods).methods).toEqual([
      'l1bn', { method: 'gbn', options: { center: 'median' } }, 'sn', { method: 'frn', options: { learnableEps: true } }, 'rms',
    ]);
    const changed = withMethods(['brn', 'l1bn', 'gbn', 'sn'], {}, {
      'brn.momentum': 0.05, 'l1bn.scaleSqrtPiOver2': false, 'gbn.center': 'quantile', 'gbn.level': 0.3, 'sn.useBN': false,
    });
    expect(baseConfig(changed, methods).methods).toEqual([
      { method: 'brn', options: { momentum: 0.05 } },
      { method: 'l1bn', options: { scaleSqrtPiOver2: false } },
      { method: 'gbn', options: { center: 'quantile', level: 0.3 } },
      { method: 'sn', options: { useBN: false } },
    ]);
    expect(baseConfig(withMethods(['wn', 'cn']), methods).methods).toEqual(['wn', 'cn']);
    expect(baseConfig(withMethods(['wn', 'cn'], {}, { 'cn.centered': true }), methods).methods).toEqual(['wn', { method: 'cn', options: { centered: true } }]);
    const cnn = withMethods(['lrn', 'frn'], { dataset: 'digits', model: 'cnn' }, { 'lrn.size': 3, 'frn.learnableEps': false });
    expect(baseConfig(cnn, methods).methods).toEqual([{ method: 'lrn', options: { size: 3 } }, 'frn']);
    // An option the model fills in is passed once it is set, even to the table's default.
    expect(baseConfig(withMethods(['sn'], {}, { 'sn.useIN': true }), methods).methods).toEqual([{ method: 'sn', options: { useIN: true } }]);
  });

  test("a nullable option's empty value is null, passed to the layer (BatchNorm's cumulative average)", async () => {
    const { state, notices } = parseHash('#methods=bn,brn&bn.momentum=&seed=2');
    expect(notices).toEqual([]);
    expect(state.options['bn.momentum']).toBeNull();
    expect(parseHash('#brn.momentum=').notices.join(' ')).toContain('brn.momentum=');  // not nullable
    expect(toHash(state)).toContain('&bn.momentum=&');
    expect(parseHash(toHash(state)).state).toEqual(state);
    const config = { ...baseConfig(state, methods), steps: 20, evalInterval: 20 };
    expect(config.methods).toEqual([{ method: 'bn', options: { momentum: null } }, 'brn']);
    const p = { ...presets[0], config: { ...presets[0].config, methods: [{ method: 'bn' as const, options: { momentum: null } }] } };
    expect(stateFromPreset(p, settings).options['bn.momentum']).toBeNull();
    using runner = nl.createRunner(config);
    expect(runner.config.methods[0].options).toMatchObject({ momentum: null });
  });

  test('data normalization goes into the config, and from a preset into the state', () => {
    expect(baseConfig(defaultState(), methods).preprocess).toBeUndefined();
    expect(baseConfig({ ...defaultState(), preprocess: 'zca' }, methods).preprocess).toBe('zca');
    const p = { ...presets[0], config: { ...presets[0].config, preprocess: { kind: 'pca' as const, eps: 1e-5 } } };
    expect(stateFromPreset(p, settings).preprocess).toBe('pca');
  });

  test('every survey option survives the URL', () => {
    const s = withMethods(['brn', 'l1bn', 'gbn', 'sn', 'frn', 'rms'], { preprocess: 'standardize' }, {
      'brn.momentum': 0.05, 'l1bn.scaleSqrtPiOver2': false, 'gbn.center': 'quantile', 'gbn.level': 0.3, 'sn.useBN': false,
    });
    expect(parseHash(toHash(s)).state).toEqual(s);
    expect(parseHash('#gbnLevel=1.5&frnEps=sometimes&preprocess=whiten').notices[0])
      .toMatch(/Invalid settings in the link were replaced by defaults: gbnLevel=1.5, frnEps=sometimes, preprocess=whiten/);
  });

  test('LRN needs the CNN, and FRN in the MLP needs its learned eps: corrected with notices', () => {
    const mlp = checkState(withMethods(['bn', 'lrn', 'frn'], {}, { 'frn.learnableEps': false }));
    expect(mlp.state.methods).toEqual(['bn', 'frn']);
    expect(mlp.state.options['frn.learnableEps']).toBe(true);
    expect(mlp.notices.join(' ')).toMatch(/LRN needs the CNN.*FRN in the MLP needs a learned eps/);
    const cnn = checkState(withMethods(['lrn', 'frn'], { dataset: 'digits', model: 'cnn' }, { 'frn.learnableEps': false }));
    expect(cnn.state.methods).toEqual(['lrn', 'frn']);
    expect(cnn.notices).toEqual([]);
  });

  test("a BatchNorm momentum of Keras's convention is kept, with a notice that spells out PyTorch's", () => {
    const { state, notices } = parseHash('#methods=bn,ln&bn.momentum=0.99');
    expect(state.options['bn.momentum']).toBe(0.99);
    expect(notices.join(' ')).toMatch(/BatchNorm momentum 0.99: normlab follows PyTorch, .*Keras's momentum 0.99 is PyTorch's 0.01/);
    expect(parseHash('#methods=bn&bn.momentum=0.1').notices).toEqual([]);
  });

  test("controls show a method's options only when it is compared", () => {
    const s = withMethods(['gbn']);
    expect(relevant(s, 'gbn.center')).toBe(true);
    expect(relevant(s, 'gbn.level')).toBe(true);
    expect(relevant(s, 'l1bn.scaleSqrtPiOver2')).toBe(false);
    expect(relevant(s, 'cn.centered')).toBe(false);
    expect(relevant(withMethods(['cn']), 'cn.centered')).toBe(true);
    expect(relevant(withMethods(['frn']), 'frn.learnableEps')).toBe(true);
  });

  test('every survey method trains in the runner from the playground config (CNN on digits)', async () => {
    const s = withMethods(['l1bn', 'gbn', 'sn', 'frn', 'rms', 'lrn', 'wn', 'cn'], {
      dataset: 'digits', model: 'cnn', channels: [8], batchSize: 16, steps: 40, evalInterval: 40, preprocess: 'standardize',
    }, { 'frn.learnableEps': false });
    const result = await nl.compare(baseConfig(checkState(s).state, methods), { chunk: 40 });
    expect(result.methods.map((m) => m.id)).toEqual(['l1bn', 'gbn', 'sn', 'frn', 'rms', 'lrn', 'wn', 'cn']);
    for (const m of result.methods) {
      expect(m.diverged, m.id).toBeNull();
      expect(m.final!.testAccuracy, m.id).toBeGreaterThan(0.3);  // 10 classes: chance is 0.1
    }
  });
});

describe('your data', () => {
  // Three classes in a middle column, a quoted comma in a column name, a BOM and CRLF: the file a
  // user drops on the page, as the CLI reads it too.
  const rows: string[] = [];
  for (let i = 0; i < 60; i++) {
    const c = ['setosa', 'versicolor', 'virginica'][i % 3];
    const a = ((i * 37) % 17) / 17 + (i % 3);
    const b = ((i * 11) % 13) / 13 - (i % 3) / 2;
    rows.push(`${a.toFixed(4)},${c},${b.toFixed(4)}`);
  }
  const text = `\uFEFFwidth,species,"height, cm"\r\n${rows.join('\r\n')}\r\n`;
  const file = (name = 'flowers.csv'): UserFile => ({ name, text, rows: 60, columns: 3 });
  const userState = (extra: Partial<State> = {}): State =>
    checkState({ ...defaultState(), dataset: 'user', dataFile: 'flowers.csv', labelColumn: 'species', ...extra }).state;

  test('its settings round-trip through the URL; the data never is in it', () => {
    const s = userState({ testFraction: 0.25, imageShape: [], labelColumn: 'height, cm' });
    const hash = toHash(s);
    expect(hash).toContain('&dataFile=flowers.csv&labelColumn=height,%20cm&testFraction=0.25&imageShape=&');
    expect(hash).not.toContain('setosa');
    const back = parseHash(hash);
    expect(back.notices).toEqual([]);
    expect(back.state).toEqual(s);
  });

  test('bad values in a link fall back with a notice: control characters, a two-number shape, a fraction of 0 or 0.95', () => {
    for (const [hash, name] of [
      ['#dataset=user&dataFile=a%00b.csv', 'dataFile'], ['#dataset=user&labelColumn=%1B[31m', 'labelColumn'],
      [`#dataset=user&dataFile=${'x'.repeat(201)}`, 'dataFile'], ['#dataset=user&testFraction=0', 'testFraction'],
      ['#dataset=user&testFraction=0.95', 'testFraction'],
    ] as const) {
      hostile('URL state');
      const { state, notices } = parseHash(hash);
      expect(state[name], hash).toEqual(DEFAULTS[name]);
      expect(notices.join(' '), hash).toContain(name);
    }
    hostile('URL state');
    const two = parseHash('#dataset=user&imageShape=1,8');
    expect(two.state.imageShape).toEqual([]);
    expect(two.notices.join(' ')).toMatch(/three numbers, C,H,W/);
  });

  test('the CNN needs an image shape; the controls show what applies to your data', () => {
    const mlp = checkState({ ...defaultState(), dataset: 'user', model: 'cnn' });
    expect(mlp.state.model).toBe('mlp');
    expect(mlp.notices.join(' ')).toMatch(/give your data an image shape/);
    expect(checkState({ ...defaultState(), dataset: 'user', model: 'cnn', imageShape: [1, 8, 8] }).state.model).toBe('cnn');
    const s = userState();
    expect(['testFraction', 'imageShape'].map((k) => relevant(s, k))).toEqual([true, true]);
    expect(['noise', 'trainSize', 'testSize', 'classes'].map((k) => relevant(s, k))).toEqual([false, false, false, false]);
    expect(relevant(defaultState(), 'testFraction')).toBe(false);
  });

  test('without its file a run says which file to attach; with it, the config is the CSV form', () => {
    expect(() => baseConfig(userState(), methods)).toThrow(/"flowers.csv": choose or drop it under Data \(the link holds the settings, not the data\)/);
    expect(() => baseConfig(userState({ dataFile: '' }), methods)).toThrow(/choose or drop a CSV file/);
    expect(() => baseConfig(userState({ dataFile: 'theirs.csv' }), methods, file())).toThrow(
      /"theirs.csv" \(the file here is "flowers.csv"\): choose or drop it/);
    const c = baseConfig(userState(), methods, file());
    expect(c.dataset).toEqual({ csv: text, file: 'flowers.csv', name: 'flowers.csv', testFraction: 0.2, labelColumn: 'species' });
    const tsv = baseConfig(userState({ labelColumn: '', dataFile: 'f.tsv' }), methods, file('f.tsv')).dataset;
    expect(tsv).toEqual({ csv: text, file: 'f.tsv', name: 'f.tsv', testFraction: 0.2, delimiter: '\t' });
  });

  test('a sweep counts epochs in the training rows: 60 rows, 12 held out at 0.2', () => {
    expect(heldOut(60, 0.2)).toBe(12);
    expect(heldOut(3, 0.01)).toBe(1);   // at least one
    expect(heldOut(3, 0.9)).toBe(2);    // at most n - 1
    expect(trainCount(userState(), file())).toBe(48);
    const runs = configsFromState(userState({ sweep: [4, 16], sweepEpochs: 2 }), methods, file());
    expect(runs.map((r) => [r.batchSize, r.steps])).toEqual([[4, 2 * 12], [16, 2 * 3]]);
  });

  test('the decision maps frame two features: their range widened by a tenth each side', () => {
    const e = extentOfPoints(new Float32Array([0, -1, 2, 3, 1, 1]));
    expect(e.xMin).toBeCloseTo(-0.2, 6);
    expect(e.xMax).toBeCloseTo(2.2, 6);
    expect(e.yMin).toBeCloseTo(-1.4, 6);
    expect(e.yMax).toBeCloseTo(3.4, 6);
    // One value: a tenth of its size (at least 0.1) each side.
    expect(extentOfPoints(new Float32Array([5, 0, 5, 0]))).toEqual({ xMin: 4.5, xMax: 5.5, yMin: -0.1, yMax: 0.1 });
  });

  test('the playground runs your data exactly as `normlab compare --data` does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'normlab-web-data-'));
    try {
      writeFileSync(join(dir, 'flowers.csv'), text);
      const s = userState({ methods: ['bn', 'ln'], depth: 1, width: 8, batchSize: 8, steps: 60, evalInterval: 30, seed: 4 });
      const config = baseConfig(s, methods, file());
      const page = await nl.compare(config, { chunk: 60 });
      const r = spawnSync(process.execPath, [join(root, 'dist', 'cli.js'), 'compare', '--data', 'flowers.csv', '--label-column', 'species',
        '--methods', 'bn,ln', '--hidden', '8', '--batch-size', '8', '--steps', '60', '--eval-interval', '30', '--seed', '4',
        '--lr', '0.05', '--momentum', '0.9', '--json', 'out.json', '--quiet'], { cwd: dir, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const cli = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8'));
      expect(page).toEqual(cli);
      expect(page.data.classNames).toEqual(['setosa', 'versicolor', 'virginica']);
      // The page's own parse (its preview) agrees with what the runner trained on.
      const parsed = parseCsvDataset(text, { file: 'flowers.csv', labelColumn: 'species' });
      expect(parsed.classCounts).toEqual([20, 20, 20]);
      expect(parsed.columns).toEqual(['width', 'species', 'height, cm']);
      expect(page.data.train + page.data.test).toBe(60);
      expect(page.data.test).toBe(heldOut(60, 0.2));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
