// The probes' cost for `npm run bench` (scripts/bench.mjs): the landscape preset's model (digits,
// CNN 16-32, batch 32, one method at a time) through the package, one runner step at a time:
//   train           a training step, no evaluation (evalInterval beyond the run)
//   train, probes   the same with probes on: they must cost nothing between evaluations
//   train + eval    a training step and an evaluation (evalInterval 1)
//   + probes        the same with the landscape and ICS probes at that evaluation
// The differences give the ms of an evaluation with and without the probes.

/**
 * Runs the four step kinds for each method with `measure` (the bench's interleaved sampler); `nl`
 * is the loaded package, `preset` its preset(), `digits` the digits file's bytes.
 */
export function benchProbes(nl, preset, digits, measure, methods = ['none', 'bn']) {
  const base = preset('landscape').config;
  const out = [];
  for (const method of methods) {
    const runners = [];
    const make = (evalInterval, probes) => {
      const r = nl.createRunner({ ...base, methods: [method], steps: 1e7, evalInterval, probes }, digits);
      runners.push(r);
      return () => r.step(1);
    };
    try {
      const r = measure({
        train: make(1e7, null),
        'train, probes': make(1e7, base.probes),
        'train + eval': make(1, null),
        '+ probes': make(1, base.probes),
      });
      const passes = 1 + 5 + 2;  // grad L(w), five step sizes, two ICS rows (the second conv, the classifier)
      out.push({ method, passes, ...Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.ms])) });
    } finally {
      for (const r of runners) r.dispose();
    }
  }
  return out;
}

/** The table's rows: ms per training step and per evaluation, with and without the probes. */
export function probesRows(rows, fmt) {
  return rows.map((r) => {
    const evalMs = r['train + eval'] - r.train;
    const probedMs = r['+ probes'] - r.train;
    return [r.method, fmt(r.train), fmt(r['train, probes']), fmt(evalMs), fmt(probedMs),
      fmt(probedMs - evalMs), fmt((probedMs - evalMs) / r.passes)];
  });
}

export const probesColumns = ['method', 'train step', 'train step, probes on', 'evaluation', 'evaluation + probes',
  'probes', 'per pass'];
