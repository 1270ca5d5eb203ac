// The README's API example, type-checked against the shipped declarations (npm run test:types).
import { load, type BatchRenormLayer, type Model, type NormLayer, type WeightLayer } from 'normlab';

const nl = await load();

// BatchNorm over a batch of 4 images with 16 channels of 8x8.
const [N, C, H, W] = [4, 16, 8, 8];
const x = new Float32Array(N * C * H * W).map((_, i) => Math.sin(i));
const layer: NormLayer<'batchnorm'> = nl.createLayer('batchnorm', { channels: C });
layer.setParams({ gamma: new Float32Array(C).fill(1.5), beta: new Float32Array(C) });
const y: Float32Array = layer.forward(x, [N, C, H, W], { training: true });
const dx: Float32Array = layer.backward(new Float32Array(y.length).fill(1));
const { gamma: dgamma, beta: dbeta } = layer.grads();
const { runningMean, runningVar, numBatchesTracked } = layer.getState();
console.log(dx.length, dgamma?.length, dbeta?.length, runningMean.length, runningVar.length, numBatchesTracked);
layer.dispose();

// Batch Renorm: the paper's limits schedule moves rMax and dMax between steps.
const brn: BatchRenormLayer = nl.createLayer('batchrenorm', { channels: C, rMax: 1, dMax: 0 });
brn.setLimits({ rMax: 2, dMax: 1 });
brn.forward(x, [N, C, H, W], { training: true });
const correction = brn.lastCorrection();
if (correction) console.log(correction.r[0], correction.d[0]);
const { runningStd } = brn.getState();
console.log(runningStd[0], brn.limits().rMax);
brn.dispose();

// LayerNorm, GroupNorm, InstanceNorm; a scope disposes what it does not return.
const norms = nl.scope(() => ({
  ln: nl.createLayer('layernorm', { normalizedShape: [C, H, W] }),
  gn: nl.createLayer('groupnorm', { channels: C, groups: 4 }),
  in: nl.createLayer('instancenorm', { channels: C, affine: false }),
}));
for (const l of [norms.ln, norms.gn, norms.in]) {
  console.log(l.method, l.forward(x, [N, C, H, W])[0]);
  l.dispose();
}

// Weight Norm of a Linear layer and centred Cosine Norm of a Conv2d: the layers themselves.
const wn: WeightLayer<'weightnorm'> = nl.createLayer('weightnorm', { inFeatures: C * H * W, outFeatures: 10, seed: 1 });
const logits = wn.forward(x, [N, C * H * W], { training: true });
wn.backward(new Float32Array(logits.length).fill(0.1));
const { weight_g, weight_v, bias } = wn.grads();
console.log(wn.kind, wn.outputShape([N, C * H * W]), weight_g.length, weight_v.length, bias?.length);
wn.setParams({ weight_g: wn.getParams().weight_g.map((g) => 2 * g) });
wn.dispose();
{
  using cn = nl.createLayer('cosinenorm', { inChannels: C, outChannels: 4, kernelSize: 3, padding: 1, centered: true });
  const maps = cn.forward(x, [N, C, H, W]);
  console.log(cn.options.centered, cn.outputShape([N, C, H, W]), maps.length, cn.getParams().weight.length);
}
console.log(nl.methods.join(', '), nl.memory().liveLayers);

// A model of your own: the comparison runner's model and training step, on your arrays.
{
  using model: Model = nl.model({
    input: [C, H, W], layers: 'conv:8,norm,relu,pool:2,res[conv:8,norm,relu],gap', classes: 3,
    norm: { method: 'gn', options: { groups: 4 } }, optimizer: { kind: 'adam', lr: 0.01 }, seed: 1,
  });
  const labels = [0, 1, 2, 1];
  const losses: number[] = await model.fit(x, labels, { epochs: 2, batchSize: 2, onStep: (step, loss) => console.log(step, loss) });
  const { loss, accuracy } = model.evaluate(x, labels);
  const probs: Float32Array = model.predict(x);
  const weights: Record<string, Float32Array> = model.getWeights();
  model.setWeights(weights);
  const { model: folded, report } = model.fold();
  folded.dispose();
  console.log(losses.length, loss, accuracy, probs.length, report.kept.length, nl.memory().liveModels);
}
