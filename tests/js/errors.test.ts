// Every bad input of the layer API gets a JS Error whose message names the layer and the problem,
// and the same module keeps computing correct results afterwards.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { expectClose, f32, fixture, load, testValues, type Normlab } from './helpers.js';
import { hostile } from './hostile.js';

let nl: Normlab;
beforeAll(async () => {
  nl = await load();
});

/** The module still matches PyTorch on a fixture case, and no layer was left behind. */
function expectModuleHealthy(): void {
  const c = fixture('batchnorm').cases[1];
  using layer = nl.createLayer('batchnorm', c.options as never);
  layer.setParams({ gamma: f32(c.params!.gamma), beta: f32(c.params!.beta) });
  const step = c.steps[0];
  expectClose('y after errors', layer.forward(f32(step.x), c.shape, { training: true }), step.y);
  expectClose('dx after errors', layer.backward(f32(step.dy)), step.dx);
}

afterAll(() => {
  expectModuleHealthy();
  expect(nl.memory().liveLayers).toBe(0);
});

type Case = [label: string, run: () => unknown, message: RegExp];

const creation: Case[] = [
  ['unknown method', () => nl.createLayer('batchnrom' as never, { channels: 3 } as never),
    /unknown normalization method 'batchnrom' \(known: batchnorm, batchrenorm, layernorm, groupnorm, instancenorm[,)]/],
  ['method not a string', () => nl.createLayer(3 as never, {} as never), /method must be a string/],
  ['options not an object', () => nl.createLayer('batchnorm', 3 as never), /batchnorm: options must be an object, got number/],
  ['options null', () => nl.createLayer('batchnorm', null as never), /batchnorm: options must be an object, got null/],
  ['options an array', () => nl.createLayer('batchnorm', [] as never), /batchnorm: options must be an object, got Array/],
  ['unknown option', () => nl.createLayer('batchnorm', { channels: 3, chanels: 3 } as never),
    /batchnorm: unknown option 'chanels' \(known: channels, eps, momentum, affine, trackRunningStats\)/],
  ['channels missing', () => nl.createLayer('batchnorm', {} as never), /batchnorm: option channels is required/],
  ['channels 0', () => nl.createLayer('batchnorm', { channels: 0 }), /batchnorm: channels must be a positive integer, got 0/],
  ['channels negative', () => nl.createLayer('groupnorm', { channels: -4, groups: 2 }), /groupnorm: channels must be a positive integer, got -4/],
  ['channels fractional', () => nl.createLayer('instancenorm', { channels: 2.5 }), /instancenorm: option channels must be an integer, got 2.5/],
  ['channels a string', () => nl.createLayer('batchnorm', { channels: '3' } as never), /batchnorm: option channels must be a number, got "3"/],
  ['channels NaN', () => nl.createLayer('batchnorm', { channels: NaN }), /batchnorm: option channels must be an integer, got "NaN"/],
  ['channels too many (found by fuzzing)', () => nl.createLayer('batchnorm', { channels: 555555113 }),
    /batchnorm: channels must be at most 16777216, got 555555113/],
  ['normalizedShape too large', () => nl.createLayer('layernorm', { normalizedShape: [4096, 4096, 2] }),
    /layernorm: normalizedShape must have at most 16777216 elements, got \[4096,4096,2\]/],
  ['groups 0', () => nl.createLayer('groupnorm', { channels: 4, groups: 0 }), /groupnorm: groups must be a positive integer, got 0/],
  ['groups not dividing', () => nl.createLayer('groupnorm', { channels: 6, groups: 4 }), /groupnorm: groups \(4\) must divide channels \(6\)/],
  ['eps 0', () => nl.createLayer('layernorm', { normalizedShape: [4], eps: 0 }), /layernorm: eps must be a finite number > 0, got 0/],
  ['eps negative', () => nl.createLayer('batchnorm', { channels: 2, eps: -1e-5 }), /batchnorm: eps must be a finite number > 0, got -1e-05/],
  ['eps NaN', () => nl.createLayer('batchnorm', { channels: 2, eps: NaN }), /batchnorm: eps must be a finite number > 0, got NaN/],
  ['eps Infinity', () => nl.createLayer('groupnorm', { channels: 2, groups: 1, eps: Infinity }), /groupnorm: eps must be a finite number > 0, got Infinity/],
  ['momentum > 1', () => nl.createLayer('batchnorm', { channels: 2, momentum: 1.5 }), /batchnorm: momentum must be in \[0, 1\] or null, got 1.5/],
  ['momentum < 0', () => nl.createLayer('batchrenorm', { channels: 2, momentum: -0.1 }), /batchrenorm: momentum must be in \[0, 1\], got -0.1/],
  ['momentum NaN', () => nl.createLayer('batchnorm', { channels: 2, momentum: NaN }), /batchnorm: momentum must be in \[0, 1\] or null, got NaN/],
  ['momentum null for batchrenorm', () => nl.createLayer('batchrenorm', { channels: 2, momentum: null as never }),
    /batchrenorm: momentum must be in \[0, 1\], got null \(the cumulative average is a batchnorm option\)/],
  ['rMax < 1', () => nl.createLayer('batchrenorm', { channels: 2, rMax: 0.5 }), /batchrenorm: rMax must be a finite number >= 1, got 0.5/],
  ['dMax < 0', () => nl.createLayer('batchrenorm', { channels: 2, dMax: -1 }), /batchrenorm: dMax must be a finite number >= 0, got -1/],
  ['affine not boolean', () => nl.createLayer('batchnorm', { channels: 2, affine: 1 } as never), /batchnorm: option affine must be true or false, got 1/],
  ['normalizedShape missing', () => nl.createLayer('layernorm', {} as never), /layernorm: option normalizedShape is required/],
  ['normalizedShape empty', () => nl.createLayer('layernorm', { normalizedShape: [] }), /layernorm: option normalizedShape must be a non-empty array/],
  ['normalizedShape with 0', () => nl.createLayer('layernorm', { normalizedShape: [3, 0] }), /layernorm: option normalizedShape: shape dim 1 must be a positive integer, got 0/],
  ['options with a BigInt', () => nl.createLayer('batchnorm', { channels: 2n } as never), /batchnorm: options must be plain data/],
  ['lrn size missing', () => nl.createLayer('lrn', {} as never), /lrn: option size is required/],
  ['lrn size 0', () => nl.createLayer('lrn', { size: 0 }), /lrn: size must be an integer >= 1, got 0/],
  ['lrn k 0', () => nl.createLayer('lrn', { size: 3, k: 0 }), /lrn: k must be a finite number > 0, got 0/],
  ['lrn alphaScaling unknown', () => nl.createLayer('lrn', { size: 3, alphaScaling: 'tf' as never }),
    /lrn: option alphaScaling must be "size" \(alpha\/size, PyTorch\) or "none" \(alpha, the AlexNet paper and TensorFlow\), got "tf"/],
  ['rmsnorm eps NaN', () => nl.createLayer('rmsnorm', { normalizedShape: [4], eps: NaN }), /rmsnorm: eps must be a finite number > 0, got NaN/],
  ['frn learnableEps not boolean', () => nl.createLayer('frn', { channels: 2, learnableEps: 'yes' as never }),
    /frn: option learnableEps must be true or false, got "yes"/],
  ['l1batchnorm momentum null', () => nl.createLayer('l1batchnorm', { channels: 2, momentum: null as never }),
    /l1batchnorm: momentum must be in \[0, 1\], got null/],
  ['l1batchnorm unknown option', () => nl.createLayer('l1batchnorm', { channels: 2, trackRunningStats: false } as never),
    /l1batchnorm: unknown option 'trackRunningStats' \(known: channels, eps, momentum, affine, scaleSqrtPiOver2\)/],
  ['gbn unknown center', () => nl.createLayer('generalizedbatchnorm', { channels: 2, center: 'mode' as never }),
    /generalizedbatchnorm: unknown center 'mode' \(known: mean, median, quantile\)/],
  ['gbn unknown deviation', () => nl.createLayer('generalizedbatchnorm', { channels: 2, deviation: 'var' as never }),
    /generalizedbatchnorm: unknown deviation 'var' \(known: std, mad, superquantile\)/],
  ['gbn unpaired', () => nl.createLayer('generalizedbatchnorm', { channels: 2, center: 'mean', deviation: 'mad' }),
    /generalizedbatchnorm: center 'mean' does not pair with deviation 'mad' \(the paper's pairs: mean\/std, median\/mad, quantile\/superquantile\)/],
  ['gbn level 1', () => nl.createLayer('generalizedbatchnorm', { channels: 2, center: 'quantile', level: 1 }),
    /generalizedbatchnorm: level must be a number in \(0, 1\), got 1/],
  ['gbn level NaN', () => nl.createLayer('generalizedbatchnorm', { channels: 2, center: 'quantile', level: NaN }),
    /generalizedbatchnorm: level must be a number in \(0, 1\), got NaN/],
  ['gbn center not a string', () => nl.createLayer('generalizedbatchnorm', { channels: 2, center: 1 as never }),
    /generalizedbatchnorm: option center must be a string, got 1/],
  ['sn unknown option', () => nl.createLayer('switchablenorm', { channels: 2, useLN: false } as never),
    /switchablenorm: unknown option 'useLN' \(known: channels, eps, momentum, affine, useIN, useBN\)/],
];

describe('creating a layer', () => {
  test.each(creation)('%s', (_label, run, message) => {
    hostile('layer API');
    const before = nl.memory();
    expect(run).toThrow(message);
    expect(nl.memory().liveLayers).toBe(before.liveLayers);
  });
});

describe('using a layer', () => {
  const cases: Case[] = [
    ['input not a Float32Array', () => nl.createLayer('batchnorm', { channels: 3 }).forward([1, 2, 3] as never, [1, 3]),
      /batchnorm: input must be a Float32Array, got Array/],
    ['input a Float64Array', () => nl.createLayer('batchnorm', { channels: 3 }).forward(new Float64Array(6) as never, [2, 3]),
      /batchnorm: input must be a Float32Array, got Float64Array/],
    ['length != product(shape)', () => nl.createLayer('batchnorm', { channels: 3 }).forward(new Float32Array(10), [2, 3]),
      /batchnorm: input has 10 values but shape \[2,3\] needs 6/],
    ['shape not an array', () => nl.createLayer('batchnorm', { channels: 3 }).forward(new Float32Array(6), '2,3' as never),
      /batchnorm: shape must be an array of numbers/],
    ['shape with a string', () => nl.createLayer('batchnorm', { channels: 3 }).forward(new Float32Array(6), [2, '3'] as never),
      /batchnorm: shape must be an array of numbers/],
    ['negative dim', () => nl.createLayer('batchnorm', { channels: 3 }).forward(new Float32Array(6), [-2, 3]),
      /batchnorm: input: shape dim 0 must be a positive integer, got -2/],
    ['fractional dim', () => nl.createLayer('batchnorm', { channels: 3 }).forward(new Float32Array(6), [2, 3, 0.5]),
      /batchnorm: input: shape dim 2 must be a positive integer, got 0.5/],
    ['zero dim', () => nl.createLayer('layernorm', { normalizedShape: [3] }).forward(new Float32Array(0), [0, 3]),
      /layernorm: input: shape dim 0 must be a positive integer, got 0/],
    ['overflowing dims', () => nl.createLayer('batchnorm', { channels: 3 }).forward(new Float32Array(6), [2 ** 20, 3, 2 ** 20]),
      /batchnorm: input: shape has more than 2147483647 elements/],
    ['NaN dim', () => nl.createLayer('batchnorm', { channels: 3 }).forward(new Float32Array(6), [NaN, 3]),
      /batchnorm: input: shape dim 0 must be a positive integer, got NaN/],
    ['wrong channels', () => nl.createLayer('groupnorm', { channels: 4, groups: 2 }).forward(new Float32Array(6), [2, 3]),
      /groupnorm: input shape \[2,3\] has 3 channels \(dim 1\), layer has 4/],
    ['rank too small for BN', () => nl.createLayer('batchnorm', { channels: 3 }).forward(new Float32Array(3), [3]),
      /batchnorm: input shape \[3\] must have at least 2 dims/],
    ['rank too small for IN', () => nl.createLayer('instancenorm', { channels: 3 }).forward(new Float32Array(6), [2, 3]),
      /instancenorm: input shape \[2,3\] must have at least 3 dims/],
    ['one spatial element in IN', () => nl.createLayer('instancenorm', { channels: 3 }).forward(new Float32Array(6), [2, 3, 1]),
      /instancenorm: expected more than 1 spatial element, got input shape \[2,3,1\]/],
    ['trailing dims != normalizedShape', () => nl.createLayer('layernorm', { normalizedShape: [3, 4] }).forward(new Float32Array(24), [2, 4, 3]),
      /layernorm: input shape \[2,4,3\] does not end with normalizedShape \[3,4\]/],
    ['one value per channel in BN training', () => nl.createLayer('batchnorm', { channels: 3 }).forward(new Float32Array(3), [1, 3], { training: true }),
      /batchnorm: expected more than 1 value per channel when using batch statistics, got input shape \[1,3\]/],
    ['one value per channel in BRN training', () => nl.createLayer('batchrenorm', { channels: 3 }).forward(new Float32Array(3), [1, 3, 1], { training: true }),
      /batchrenorm: expected more than 1 value per channel when using batch statistics, got input shape \[1,3,1\]/],
    ['lrn on rank 2', () => nl.createLayer('lrn', { size: 3 }).forward(new Float32Array(6), [2, 3]),
      /lrn: input shape \[2,3\] must have at least 3 dims \[N,C,L,...\]/],
    ['rmsnorm trailing dims', () => nl.createLayer('rmsnorm', { normalizedShape: [3, 4] }).forward(new Float32Array(24), [2, 4, 3]),
      /rmsnorm: input shape \[2,4,3\] does not end with normalizedShape \[3,4\]/],
    ['frn on [N,C] without learnableEps', () => nl.createLayer('frn', { channels: 3 }).forward(new Float32Array(6), [2, 3]),
      /frn: input shape \[2,3\] has one value per sample and channel, where nu2 = x\^2 and FRN is gamma\*sign\(x\) \+ beta; use learnableEps: true/],
    ['frn on 1x1 maps without learnableEps', () => nl.createLayer('frn', { channels: 3 }).forward(new Float32Array(6), [2, 3, 1, 1], { training: true }),
      /frn: input shape \[2,3,1,1\] has one value per sample and channel/],
    ['one value per channel in L1BN training', () => nl.createLayer('l1batchnorm', { channels: 3 }).forward(new Float32Array(3), [1, 3], { training: true }),
      /l1batchnorm: expected more than 1 value per channel when using batch statistics, got input shape \[1,3\]/],
    ['gbn on rank 1', () => nl.createLayer('generalizedbatchnorm', { channels: 3 }).forward(new Float32Array(3), [3]),
      /generalizedbatchnorm: input shape \[3\] must have at least 2 dims \[N,C,...\]/],
    ['gbn one value per channel in training', () => nl.createLayer('generalizedbatchnorm', { channels: 3 }).forward(new Float32Array(3), [1, 3], { training: true }),
      /generalizedbatchnorm: expected more than 1 value per channel when using batch statistics, got input shape \[1,3\]/],
    ['gbn negative runningDeviation', () => nl.createLayer('generalizedbatchnorm', { channels: 2 }).setState({ runningDeviation: f32([1, -1]) }),
      /generalizedbatchnorm: runningDeviation\[1\] must be >= 0, got -1/],
    ['sn on [N,C] with IN', () => nl.createLayer('switchablenorm', { channels: 3 }).forward(new Float32Array(6), [2, 3]),
      /switchablenorm: input shape \[2,3\] has 1 spatial element, too few for instance statistics; use useIN: false/],
    ['sn meanWeight of the wrong length', () => nl.createLayer('switchablenorm', { channels: 3, useBN: false }).setParams({ meanWeight: new Float32Array(3) }),
      /switchablenorm: meanWeight needs 2 values, got 3/],
    ['negative runningDev', () => nl.createLayer('l1batchnorm', { channels: 2 }).setState({ runningDev: f32([1, -1]) }),
      /l1batchnorm: runningDev\[1\] must be >= 0, got -1/],
    ['rmsnorm has no beta', () => nl.createLayer('rmsnorm', { normalizedShape: [3] }).setParams({ beta: new Float32Array(3) }),
      /rmsnorm: no parameter 'beta' \(known: gamma\)/],
    ['training not a boolean', () => nl.createLayer('batchnorm', { channels: 3 }).forward(new Float32Array(6), [2, 3], { training: 'yes' } as never),
      /batchnorm: options.training must be true or false, got yes/],
    ['backward without a forward', () => nl.createLayer('layernorm', { normalizedShape: [3] }).backward(new Float32Array(6)),
      /layernorm: backward needs a training-mode forward first/],
    ['backward after an inference forward only', () => {
      const l = nl.createLayer('batchnorm', { channels: 3 });
      l.forward(new Float32Array(6), [2, 3]);
      return l.backward(new Float32Array(6));
    }, /batchnorm: backward needs a training-mode forward first/],
    ['dy of the wrong length', () => {
      const l = nl.createLayer('groupnorm', { channels: 4, groups: 2 });
      l.forward(testValues(8, 1), [2, 4], { training: true });
      return l.backward(new Float32Array(7));
    }, /groupnorm: dy has 7 values but the last training forward's input \[2,4\] has 8/],
    ['dy not a Float32Array', () => nl.createLayer('batchnorm', { channels: 3 }).backward([1] as never),
      /batchnorm: dy must be a Float32Array, got Array/],
    ['params of the wrong length', () => nl.createLayer('batchnorm', { channels: 3 }).setParams({ gamma: new Float32Array(2) }),
      /batchnorm: gamma needs 3 values, got 2/],
    ['params not Float32Array', () => nl.createLayer('batchnorm', { channels: 3 }).setParams({ gamma: [1, 2, 3] as never }),
      /batchnorm: gamma must be a Float32Array, got Array/],
    ['unknown param', () => nl.createLayer('batchnorm', { channels: 3 }).setParams({ gama: new Float32Array(3) } as never),
      /batchnorm: no parameter 'gama' \(known: gamma, beta\)/],
    ['params when affine is false', () => nl.createLayer('layernorm', { normalizedShape: [3], affine: false }).setParams({ gamma: new Float32Array(3) }),
      /layernorm: no parameter 'gamma' \(it has none\)/],
    ['NaN in params', () => nl.createLayer('batchnorm', { channels: 3 }).setParams({ beta: f32([0, NaN, 0]) }),
      /batchnorm: beta\[1\] is not finite/],
    ['state of the wrong length', () => nl.createLayer('batchnorm', { channels: 3 }).setState({ runningMean: new Float32Array(4) }),
      /batchnorm: runningMean needs 3 values, got 4/],
    ['negative runningVar', () => nl.createLayer('batchnorm', { channels: 2 }).setState({ runningVar: f32([1, -1]) }),
      /batchnorm: runningVar\[1\] must be >= 0, got -1/],
    ['runningStd 0', () => nl.createLayer('batchrenorm', { channels: 2 }).setState({ runningStd: f32([0, 1]) }),
      /batchrenorm: runningStd\[0\] must be > 0, got 0/],
    ['state on a stateless method', () => nl.createLayer('groupnorm', { channels: 2, groups: 1 }).setState({ runningMean: new Float32Array(2) } as never),
      /groupnorm: no state 'runningMean' \(it has none\)/],
    ['fractional numBatchesTracked', () => nl.createLayer('batchnorm', { channels: 2 }).setState({ numBatchesTracked: 1.5 }),
      /batchnorm: numBatchesTracked must be a whole number >= 0, got 1.5/],
    ['setLimits rMax < 1', () => nl.createLayer('batchrenorm', { channels: 2 }).setLimits({ rMax: 0.9 }),
      /batchrenorm: rMax must be a finite number >= 1, got 0.9/],
    ['setLimits dMax NaN', () => nl.createLayer('batchrenorm', { channels: 2 }).setLimits({ dMax: NaN }),
      /batchrenorm: dMax must be a finite number >= 0, got NaN/],
    ['setLimits not numbers', () => nl.createLayer('batchrenorm', { channels: 2 }).setLimits({ dMax: '1' } as never),
      /batchrenorm: dMax must be a number, got string/],
  ];

  test.each(cases)('%s', (_label, run, message) => {
    hostile('layer API');
    // Each case leaves its layer to this scope, which disposes it whether or not it threw.
    expect(() => nl.scope(() => {
      run();
    })).toThrow(message);
    expect(nl.memory().liveLayers).toBe(0);
  });
});

describe('after dispose', () => {
  const calls: [string, (l: ReturnType<typeof make>) => unknown][] = [
    ['forward', (l) => l.forward(new Float32Array(4), [2, 2])],
    ['backward', (l) => l.backward(new Float32Array(4))],
    ['grads', (l) => l.grads()],
    ['getParams', (l) => l.getParams()],
    ['setParams', (l) => l.setParams({ gamma: new Float32Array(2) })],
    ['getState', (l) => l.getState()],
    ['setState', (l) => l.setState({ runningMean: new Float32Array(2) })],
    ['setLimits', (l) => l.setLimits({ rMax: 2 })],
    ['lastCorrection', (l) => l.lastCorrection()],
  ];
  const make = () => nl.createLayer('batchrenorm', { channels: 2 });
  test.each(calls)('%s throws', (name, call) => {
    hostile('layer API');
    const layer = make();
    layer.dispose();
    layer.dispose(); // idempotent
    expect(layer.disposed).toBe(true);
    expect(() => call(layer)).toThrow(`batchrenorm: ${name}() called after dispose()`);
  });
});

describe('failed calls change nothing', () => {
  test('setParams is all or nothing', () => {
    using layer = nl.createLayer('batchnorm', { channels: 2 });
    layer.setParams({ gamma: f32([2, 3]), beta: f32([4, 5]) });
    expect(() => layer.setParams({ gamma: f32([7, 7]), beta: f32([1]) })).toThrow(/beta needs 2 values/);
    expect(layer.getParams()).toEqual({ gamma: f32([2, 3]), beta: f32([4, 5]) });
  });

  test('a failed forward keeps the last training cache for backward', () => {
    using layer = nl.createLayer('layernorm', { normalizedShape: [4] });
    using twin = nl.createLayer('layernorm', { normalizedShape: [4] });
    const x = testValues(8, 7, 2, 1);
    const dy = testValues(8, 8);
    layer.forward(x, [2, 4], { training: true });
    twin.forward(x, [2, 4], { training: true });
    expect(() => layer.forward(new Float32Array(6), [2, 3], { training: true })).toThrow(/does not end with/);
    expect(layer.backward(dy)).toEqual(twin.backward(dy));
  });
});

describe('memory', () => {
  test('a tensor too large for WebAssembly memory is refused, and the module keeps working', () => {
    hostile('layer API');
    // 400M floats: the copy into WASM plus the training cache need 3.2 GB, over the 2 GiB limit.
    const n = 400_000_000;
    const x = new Float32Array(n);
    using layer = nl.createLayer('batchnorm', { channels: 4 });
    const before = nl.memory().usedBytes;
    expect(() => layer.forward(x, [n / 4, 4], { training: true }))
      .toThrow(/batchnorm: a tensor of 400000000 values needs about 3051.8 MiB of WebAssembly memory, more than its limit of 2048.0 MiB/);
    expect(nl.memory().usedBytes).toBe(before);
    expectModuleHealthy();
  });

  test('creating and disposing 10,000 layers leaves the heap flat', () => {
    const x = testValues(2 * 8 * 9, 3, 2, 1);
    const churn = (count: number) => {
      for (let i = 0; i < count; i++) {
        const method = (['batchnorm', 'batchrenorm', 'groupnorm', 'instancenorm'] as const)[i % 4];
        const options = method === 'groupnorm' ? { channels: 8, groups: 4 } : { channels: 8 };
        const layer = nl.createLayer(method, options as never);
        layer.forward(x, [2, 8, 9], { training: true });
        layer.backward(x);
        layer.dispose();
      }
    };
    churn(100); // warm up the allocator's free lists
    const before = nl.memory();
    churn(10_000);
    const after = nl.memory();
    expect(after.liveLayers).toBe(0);
    expect(after.usedBytes).toBe(before.usedBytes);
    expect(after.heapBytes).toBe(before.heapBytes);
  });

  test('scope disposes what it does not return', () => {
    const kept = nl.scope(() => {
      nl.createLayer('batchnorm', { channels: 2 });
      nl.createLayer('layernorm', { normalizedShape: [2] });
      return nl.createLayer('groupnorm', { channels: 2, groups: 2 });
    });
    expect(nl.memory().liveLayers).toBe(1);
    expect(kept.disposed).toBe(false);
    kept.dispose();
    expect(nl.memory().liveLayers).toBe(0);
  });
});
