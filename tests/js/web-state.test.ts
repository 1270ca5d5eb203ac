// The playground's URL state (web/src/state.ts) and its runner configurations (web/src/config.ts):
// round trips, defaults, garbage and hostile hashes falling back to defaults with notices, and
// presets that the runner resolves exactly as the CLI's `--preset`.
import { describe, expect, test } from 'vitest';
import { load, presetConfigs, presets } from 'normlab';
import {
  DEFAULTS, MAX_HASH_LENGTH, PROPS, checkState, defaultState, parseHash, parseValue, sameSettings, toHash, type State,
} from '../../web/src/state.js';
import { baseConfig, configsFromState, extentFor, gridPoints, stateFromPreset, trainCount } from '../../web/src/config.js';
import { relevant } from '../../web/src/controls.js';
import { hostile } from './hostile.js';

describe('URL state', () => {
  test('every property has a default that its own parser accepts', () => {
    const d = defaultState();
    expect(PROPS.map((p) => p.name).sort()).toEqual(Object.keys(d).sort());
    for (const p of PROPS) {
      const raw = Array.isArray(d[p.name]) ? (d[p.name] as unknown[]).join(',') : String(d[p.name]);
      expect(parseValue(p, raw), p.name).toEqual(d[p.name]);
    }
  });

  test('an empty hash gives the defaults and no notice', () => {
    for (const hash of ['', '#']) {
      const { state, notices } = parseHash(hash);
      expect(state).toEqual(DEFAULTS);
      expect(notices).toEqual([]);
    }
  });

  test('round trip: toHash then parseHash gives the same state, for the defaults and every preset', () => {
    const states: State[] = [defaultState(), ...presets.map(stateFromPreset)];
    const custom = defaultState();
    Object.assign(custom, {
      dataset: 'spiral', noise: 0.35, classes: 3, trainSize: 640, depth: 3, width: 24, methods: ['none', 'gn', 'ln'],
      groups: 4, batchSize: 6, batching: 'noniid', noniidClasses: 2, optimizer: 'adamw', lr: 0.0031, weightDecay: 0.01,
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

  test('the hash names every setting, with the seed', () => {
    const hash = toHash(defaultState());
    for (const p of PROPS) expect(hash).toContain(`${p.name}=`);
    expect(hash).toMatch(/[#&]seed=1(&|$)/);
  });

  test('a partial hash keeps the defaults of the settings it does not name', () => {
    const { state, notices } = parseHash('#dataset=xor&seed=42&methods=bn,ln');
    expect(notices).toEqual([]);
    expect(state).toEqual({ ...defaultState(), dataset: 'xor', seed: 42, methods: ['bn', 'ln'] });
  });

  test('methods come back in the table order, whatever order the link had', () => {
    expect(parseHash('#methods=ln,bn,none').state.methods).toEqual(['none', 'bn', 'ln']);
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
    expect(state[name as keyof State]).toEqual(DEFAULTS[name as keyof State]);
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
      expect(state, hash).toEqual(DEFAULTS);
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
    expect(sameSettings(a, { ...a, preset: 'small-batch' })).toBe(true);
    expect(sameSettings(a, { ...a, seed: 2 })).toBe(false);
    expect(sameSettings(a, { ...a, methods: ['bn'] })).toBe(false);
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
    expect(relevant({ ...s, methods: ['ln'] }, 'groups')).toBe(false);
  });
});

describe('configurations', () => {
  test('a state gives a config with only what differs from the runner defaults', () => {
    const c = baseConfig(defaultState());
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
    const custom = baseConfig({ ...defaultState(), bnMomentum: 0.01, rMax: 2, evalInterval: 10, renormRampEnd: 0.7, optimizer: 'adam', shift: 'noise', shiftAmount: 0.3 });
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
    const configs = configsFromState(s);
    expect(configs.map((c) => [c.batchSize, c.steps, c.optimizer!.lr])).toEqual([
      [2, 3 * 648, (0.1 * 2) / 32],
      [8, 3 * 162, (0.1 * 8) / 32],
    ]);
  });

  test('every preset: the playground runs exactly what `normlab compare --preset` runs', async () => {
    const nl = await load();
    const digits = await nl.loadDataset('digits');
    for (const p of presets) {
      const ours = configsFromState(stateFromPreset(p));
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
    for (const p of presets) {
      const s = stateFromPreset(p);
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
  const withMethods = (methods: State['methods'], extra: Partial<State> = {}): State => ({ ...defaultState(), methods, ...extra });

  test('each survey method runs with the options its controls set, and only those that differ from the defaults', () => {
    expect(baseConfig(withMethods(['l1bn', 'gbn', 'sn', 'frn', 'rms'])).methods).toEqual([
      'l1bn', { method: 'gbn', options: { center: 'median' } }, 'sn', { method: 'frn', options: { learnableEps: true } }, 'rms',
    ]);
    const changed = withMethods(['brn', 'l1bn', 'gbn', 'sn'], {
      brnMomentum: 0.05, l1bnScale: 'none', gbnCenter: 'quantile', gbnLevel: 0.3, snBN: 'off',
    });
    expect(baseConfig(changed).methods).toEqual([
      { method: 'brn', options: { momentum: 0.05 } },
      { method: 'l1bn', options: { scaleSqrtPiOver2: false } },
      { method: 'gbn', options: { center: 'quantile', level: 0.3 } },
      { method: 'sn', options: { useBN: false } },
    ]);
    expect(baseConfig(withMethods(['wn', 'cn'])).methods).toEqual(['wn', 'cn']);
    expect(baseConfig(withMethods(['wn', 'cn'], { cnCentered: 'centered' })).methods).toEqual(['wn', { method: 'cn', options: { centered: true } }]);
    const cnn = withMethods(['lrn', 'frn'], { dataset: 'digits', model: 'cnn', lrnSize: 3, frnEps: 'fixed' });
    expect(baseConfig(cnn).methods).toEqual([{ method: 'lrn', options: { size: 3 } }, 'frn']);
  });

  test('data normalization goes into the config, and from a preset into the state', () => {
    expect(baseConfig(defaultState()).preprocess).toBeUndefined();
    expect(baseConfig({ ...defaultState(), preprocess: 'zca' }).preprocess).toBe('zca');
    const p = { ...presets[0], config: { ...presets[0].config, preprocess: { kind: 'pca' as const, eps: 1e-5 } } };
    expect(stateFromPreset(p).preprocess).toBe('pca');
  });

  test('every survey option survives the URL', () => {
    const s = withMethods(['brn', 'l1bn', 'gbn', 'sn', 'frn', 'rms'], {
      brnMomentum: 0.05, l1bnScale: 'none', gbnCenter: 'quantile', gbnLevel: 0.3, snBN: 'off', preprocess: 'standardize',
    });
    expect(parseHash(toHash(s)).state).toEqual(s);
    expect(parseHash('#gbnLevel=1.5&frnEps=sometimes&preprocess=whiten').notices[0])
      .toMatch(/Invalid settings in the link were replaced by defaults: gbnLevel=1.5, frnEps=sometimes, preprocess=whiten/);
  });

  test('LRN needs the CNN, and FRN in the MLP needs its learned eps: corrected with notices', () => {
    const mlp = checkState(withMethods(['bn', 'lrn', 'frn'], { frnEps: 'fixed' }));
    expect(mlp.state.methods).toEqual(['bn', 'frn']);
    expect(mlp.state.frnEps).toBe('learned');
    expect(mlp.notices.join(' ')).toMatch(/LRN needs the CNN.*FRN in the MLP needs a learned eps/);
    const cnn = checkState(withMethods(['lrn', 'frn'], { dataset: 'digits', model: 'cnn', frnEps: 'fixed' }));
    expect(cnn.state.methods).toEqual(['lrn', 'frn']);
    expect(cnn.notices).toEqual([]);
  });

  test("controls show a survey method's options only when it is compared", () => {
    const s = withMethods(['gbn']);
    expect(relevant(s, 'gbnCenter')).toBe(true);
    expect(relevant(s, 'gbnLevel')).toBe(false);  // only for the quantile pair
    expect(relevant({ ...s, gbnCenter: 'quantile' }, 'gbnLevel')).toBe(true);
    expect(relevant(s, 'l1bnScale')).toBe(false);
    expect(relevant(s, 'cnCentered')).toBe(false);
    expect(relevant(withMethods(['cn']), 'cnCentered')).toBe(true);
    expect(relevant(withMethods(['frn']), 'frnEps')).toBe(false);  // the MLP always learns it
    expect(relevant(withMethods(['frn'], { dataset: 'digits', model: 'cnn' }), 'frnEps')).toBe(true);
  });

  test('every survey method trains in the runner from the playground config (CNN on digits)', async () => {
    const nl = await load();
    const s = withMethods(['l1bn', 'gbn', 'sn', 'frn', 'rms', 'lrn', 'wn', 'cn'], {
      dataset: 'digits', model: 'cnn', channels: [8], batchSize: 16, steps: 40, evalInterval: 40, frnEps: 'fixed', preprocess: 'standardize',
    });
    const result = await nl.compare(baseConfig(checkState(s).state), { chunk: 40 });
    expect(result.methods.map((m) => m.id)).toEqual(['l1bn', 'gbn', 'sn', 'frn', 'rms', 'lrn', 'wn', 'cn']);
    for (const m of result.methods) {
      expect(m.diverged, m.id).toBeNull();
      expect(m.final!.testAccuracy, m.id).toBeGreaterThan(0.3);  // 10 classes: chance is 0.1
    }
  });
});
