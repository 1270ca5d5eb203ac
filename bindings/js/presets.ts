// Presets: comparisons that reproduce the papers' findings on data that trains in seconds. Each
// effect was checked for seeds 1, 2 and 3 (tests/js/presets.test.ts keeps checking it).
import type { BuiltinDataset, CompareConfig } from './runner.js';
import type { LayerDescription } from './model.js';

export interface Preset {
  /** Key for the CLI (`--preset`) and, for a preset with a named model (mlp, cnn), the playground. */
  name: string;
  title: string;
  /** What to look for, in plain language. */
  explanation: string;
  paper: { title: string; url: string };
  /** The comparison; presets use the built-in data sets. */
  config: CompareConfig & { dataset?: BuiltinDataset };
  /**
   * A sweep runs the configuration once per value of `batchSize`, each for `epochs` epochs with
   * the learning rate scaled linearly with the batch size (`lr * batchSize / 32`).
   */
  sweep?: { batchSize: number[]; epochs: number };
}

const digitsMlp: Pick<Preset['config'], 'dataset' | 'model'> = {
  dataset: { name: 'digits', testSize: 500 },
  model: { kind: 'mlp', hidden: [128, 128], activation: 'relu' },
};

const fourMethods: CompareConfig['methods'] = ['bn', 'brn', { method: 'gn', options: { groups: 8 } }, 'ln'];

// A residual block of two 3x3 convolutions, 16 channels (the norm fills the 'norm' slots).
const conv16: LayerDescription = { type: 'conv2d', channels: 16, kernelSize: 3, padding: 1 };
const basicBlock: LayerDescription = { type: 'residual', layers: [conv16, { type: 'norm' }, { type: 'relu' }, conv16, { type: 'norm' }] };

export const presets: readonly Preset[] = [
  {
    name: 'small-batch',
    title: 'Batches of 2: BatchNorm degrades, Batch Renorm, GroupNorm and LayerNorm hold up',
    explanation:
      'With 2 examples per batch, the batch mean and variance that BatchNorm normalizes with are very ' +
      'noisy, and the running averages used at test time describe a different normalization than the ' +
      'one the network was trained with: BatchNorm\'s test accuracy (inference mode) falls far behind. ' +
      'Batch Renorm corrects each batch toward the running statistics (r, d) and recovers most of it; ' +
      'GroupNorm and LayerNorm normalize each example on its own and do not care about the batch size.',
    paper: { title: 'Batch Renormalization (Ioffe 2017), Section 4.3', url: 'https://arxiv.org/abs/1702.03275' },
    config: {
      ...digitsMlp,
      methods: fourMethods,
      batchSize: 2,
      optimizer: { kind: 'sgd', lr: 0.00625, momentum: 0.9 },
      steps: 6485, // 10 epochs of the 1,297 training digits
      seed: 1,
    },
  },
  {
    name: 'non-iid',
    title: 'Non-i.i.d. batches: BatchNorm\'s inference accuracy collapses, Batch Renorm holds',
    explanation:
      'Every training batch holds 4 examples of each of only 2 classes, as in the Batch Renorm paper\'s ' +
      'experiment. BatchNorm learns with statistics of such skewed batches, which differ from the ' +
      'population statistics it uses at test time, and its inference accuracy collapses; normalizing ' +
      'test batches drawn the same way with their own statistics gets much of it back (the "batch ' +
      'statistics" accuracy). Batch Renorm trains with outputs that already match inference, and ' +
      'GroupNorm and LayerNorm never look at the batch.',
    paper: { title: 'Batch Renormalization (Ioffe 2017), Section 4.4', url: 'https://arxiv.org/abs/1702.03275' },
    config: {
      ...digitsMlp,
      methods: fourMethods,
      batchSize: 8,
      batching: 'noniid:2',
      optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9 },
      steps: 4000,
      seed: 1,
    },
  },
  {
    name: 'train-vs-inference',
    title: 'BatchNorm\'s train/inference gap: batch statistics vs running statistics',
    explanation:
      'BatchNorm computes a different function in training (each batch normalized with its own ' +
      'statistics) and in inference (the running averages). Where batches are unlike the population ' +
      '(here: each batch from 2 classes), the two disagree: compare each method\'s test accuracy in ' +
      'inference mode with its accuracy on test batches drawn like the training batches and normalized ' +
      'with their own statistics. For BatchNorm the two differ widely; for Batch Renorm, designed to ' +
      'make training match inference, they agree.',
    paper: { title: 'Batch Normalization (Ioffe & Szegedy 2015), Section 3.1', url: 'https://arxiv.org/abs/1502.03167' },
    config: {
      ...digitsMlp,
      methods: ['bn', 'brn'],
      batchSize: 8,
      batching: 'noniid:2',
      optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9 },
      steps: 4000,
      seed: 1,
    },
  },
  {
    name: 'domain-shift',
    title: 'AdaBN: re-estimating BatchNorm\'s statistics on a shifted domain recovers its accuracy',
    explanation:
      'After training, every test digit is made brighter (+0.5 on each pixel): a new domain. The ' +
      'population statistics that BatchNorm and Batch Renorm learned no longer fit it, and their ' +
      'accuracy drops. AdaBN re-estimates those statistics on the new domain\'s (unlabeled) inputs, ' +
      'changing no weight, and gets the accuracy back. LayerNorm and GroupNorm normalize each example ' +
      'by itself, so a brightness shift hardly moves them and there is nothing to adapt.',
    paper: { title: 'Revisiting Batch Normalization for Practical Domain Adaptation (Li et al. 2016)', url: 'https://arxiv.org/abs/1603.04779' },
    config: {
      ...digitsMlp,
      methods: fourMethods,
      batchSize: 32,
      optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9 },
      steps: 400,
      domainShift: { kind: 'shift', amount: 0.5 },
      seed: 1,
    },
  },
  {
    name: 'batch-size-sweep',
    title: 'Accuracy against batch size: BatchNorm needs large batches, the others do not',
    explanation:
      'The same model trained with batches of 2 to 32 examples (10 epochs each, learning rate scaled ' +
      'with the batch size). BatchNorm\'s accuracy drops as batches shrink; Batch Renorm narrows the ' +
      'drop; GroupNorm and LayerNorm stay flat, as in the Group Normalization paper\'s Figure 1.',
    paper: { title: 'Group Normalization (Wu & He 2018), Figure 1', url: 'https://arxiv.org/abs/1803.08494' },
    config: {
      ...digitsMlp,
      methods: fourMethods,
      batchSize: 32,
      optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
      seed: 1,
    },
    sweep: { batchSize: [2, 4, 8, 16, 32], epochs: 10 },
  },
  {
    name: 'residual-small-batch',
    title: 'A residual CNN on MNIST at batch 2: BatchNorm degrades in its fully connected layer',
    explanation:
      'A residual CNN (a strided conv, two residual blocks of 3x3 convs at 7x7, then a normalized ' +
      'fully connected layer of 64 units) trained on MNIST for one epoch with batches of 2 and of 32, ' +
      'the learning rate scaled with the batch size. At batch 2 BatchNorm\'s test accuracy (inference ' +
      'mode) falls far below its accuracy at batch 32, and far below GroupNorm\'s at batch 2; Batch ' +
      'Renorm recovers part of it. The degradation comes from the fully connected layer, whose ' +
      'BatchNorm sees 2 values per unit: the convolutional layers pool their statistics over batch x ' +
      'positions (2 x 49 values per channel), and the same body ending in global average pooling ' +
      'instead shows no small-batch effect (README, "Presets").',
    paper: { title: 'Group Normalization (Wu & He 2018), Figure 1', url: 'https://arxiv.org/abs/1803.08494' },
    config: {
      dataset: { name: 'mnist', testSize: 1000 },
      model: {
        layers: [
          { type: 'conv2d', channels: 16, kernelSize: 3, stride: 2, padding: 1 }, { type: 'norm' }, { type: 'relu' },
          { type: 'maxpool', size: 2 },
          basicBlock, { type: 'relu' },
          basicBlock, { type: 'relu' },
          { type: 'flatten' }, { type: 'linear', units: 64 }, { type: 'norm' }, { type: 'relu' },
        ],
      },
      methods: ['bn', { method: 'gn', options: { groups: 4 } }, 'brn'],
      batchSize: 32,
      optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
      // Evaluating 1,000 test images costs about as much as training here: every 1,125 steps (4 times
      // at batch 2, once at the end at batch 32) keeps a seed's sweep near 20 s.
      evalInterval: 1125,
      seed: 1,
    },
    sweep: { batchSize: [2, 32], epochs: 1 },
  },
  {
    name: 'survey-small-batch',
    title: 'The survey at batch 2: methods that use batch statistics degrade, the rest hold up',
    explanation:
      'The small-batch experiment with the survey\'s other methods. L1 BatchNorm (mean absolute ' +
      'deviation instead of the standard deviation) and Generalized BN (median and mean absolute ' +
      'deviation) still normalize with statistics of the batch, so with 2 examples per batch they fall ' +
      'behind just as BatchNorm does: a robust statistic does not fix a tiny sample. RMSNorm and FRN ' +
      'normalize each example by itself and do not notice the batch size. Switchable Norm mixes ' +
      'InstanceNorm-, LayerNorm- and BatchNorm-style statistics with learned weights and learns to rely ' +
      'on the ones that work, as its paper reports for small batches.',
    paper: { title: 'Switchable Normalization (Luo et al. 2019), Section 5.1', url: 'https://arxiv.org/abs/1806.10779' },
    config: {
      ...digitsMlp,
      methods: ['bn', 'l1bn', { method: 'gbn', options: { center: 'median' } }, 'sn',
        { method: 'frn', options: { learnableEps: true } }, 'rms'],
      batchSize: 2,
      optimizer: { kind: 'sgd', lr: 0.00625, momentum: 0.9 },
      steps: 6485, // 10 epochs of the 1,297 training digits
      seed: 1,
    },
  },
  {
    name: 'survey-weight-norm',
    title: 'Normalizing the weights instead of the activations: Weight Norm and Cosine Norm at batch 2',
    explanation:
      'The small-batch experiment with the survey\'s two methods that normalize weights rather than ' +
      'activations. Weight Norm splits every unit\'s weight vector into a length g and a direction ' +
      'v/||v||; Cosine Norm replaces the dot product w·x by the cosine of the angle between w and x, ' +
      'bounded in [-1, 1]. Neither ever looks at other examples of the batch, so training and ' +
      'inference compute the same function and a batch of 2 costs them nothing, while BatchNorm ' +
      'falls behind. LayerNorm, which normalizes each example\'s activations, is shown for reference.',
    paper: { title: 'Weight Normalization (Salimans & Kingma 2016); Cosine Normalization (Luo et al. 2017)', url: 'https://arxiv.org/abs/1602.07868' },
    config: {
      ...digitsMlp,
      methods: ['bn', 'ln', 'wn', 'cn'],
      batchSize: 2,
      optimizer: { kind: 'sgd', lr: 0.00625, momentum: 0.9 },
      steps: 6485, // 10 epochs of the 1,297 training digits
      seed: 1,
    },
  },
  {
    name: 'survey-domain-shift',
    title: 'AdaBN across the survey: every method with population statistics can be adapted',
    explanation:
      'The domain-shift experiment (test digits made brighter after training) with the survey\'s ' +
      'methods. L1 BatchNorm and Generalized BN keep running estimates of their centre and deviation, ' +
      'and Switchable Norm of its BatchNorm part: all of them lose accuracy on the new domain and get it ' +
      'back when AdaBN re-estimates those statistics on the new inputs, without changing a weight. ' +
      'RMSNorm keeps no population statistics: there is nothing to adapt, and its accuracy stays put.',
    paper: { title: 'Revisiting Batch Normalization for Practical Domain Adaptation (Li et al. 2016)', url: 'https://arxiv.org/abs/1603.04779' },
    config: {
      ...digitsMlp,
      methods: ['bn', 'l1bn', { method: 'gbn', options: { center: 'median' } }, 'sn', 'rms'],
      batchSize: 32,
      optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9 },
      steps: 400,
      domainShift: { kind: 'shift', amount: 0.5 },
      seed: 1,
    },
  },
  {
    name: 'landscape',
    title: 'BatchNorm smooths the loss landscape: the loss and its gradient along the gradient, with and without',
    explanation:
      'At every evaluation each network is probed on one fixed batch of training digits, in training mode, ' +
      'on a copy of its weights: from the current weights w, steps of 1/4 to 4 times the learning rate along ' +
      'the gradient g, the loss at each, and how far the gradient there is from g. Without normalization the ' +
      'loss along the gradient varies several times more (the larger steps overshoot and the loss climbs back), ' +
      'the gradient changes more, and the effective beta-smoothness (the largest gradient change per distance ' +
      'moved) is higher: the landscape BatchNorm trains on is smoother, the paper\'s Figure 4. LayerNorm smooths ' +
      'the loss range less than BatchNorm and its beta-smoothness not at all. The internal covariate shift ' +
      'probe (how a layer\'s gradient changes when the layers below it take their step) shows BatchNorm does ' +
      'not reduce it at the second convolution, the paper\'s other finding.',
    paper: { title: 'How Does Batch Normalization Help Optimization? (Santurkar et al. 2018), Figures 4 and 5', url: 'https://arxiv.org/abs/1805.11604' },
    config: {
      dataset: { name: 'digits', testSize: 500 },
      model: { kind: 'cnn', channels: [16, 32], activation: 'relu' },
      methods: ['none', 'bn', 'ln'],
      batchSize: 32,
      optimizer: { kind: 'sgd', lr: 0.1 },
      steps: 400,
      evalInterval: 40,
      probes: { landscape: true, ics: true },
      seed: 1,
    },
  },
];

/** The preset of that name; throws an Error listing the known ones. */
export function preset(name: string): Preset {
  const found = presets.find((p) => p.name === name);
  if (!found) throw new Error(`unknown preset '${name}' (known: ${presets.map((p) => p.name).join(', ')})`);
  return found;
}

/**
 * The training examples of a preset's built-in data set: the 1,797 digits or 10,000 MNIST images
 * less the test set (1,297 for the digits presets' split, 9,000 for MNIST with 1,000 held out).
 */
function presetTrainSize(p: Preset): number {
  const d = p.config.dataset ?? {};
  if (d.name === 'digits' || d.name === 'mnist') return (d.name === 'mnist' ? 10000 : 1797) - (d.testSize ?? 500);
  return d.trainSize ?? 1000;
}

/**
 * The configurations a preset runs: one, or one per batch size of a sweep. `trainSize` is the
 * number of training examples (for a sweep's steps per epoch), by default that of the preset's
 * data set.
 */
export function presetConfigs(p: Preset, trainSize = presetTrainSize(p)): CompareConfig[] {
  if (!p.sweep) return [p.config];
  const lr = p.config.optimizer?.lr ?? 0.1;
  return p.sweep.batchSize.map((batchSize) => ({
    ...p.config,
    batchSize,
    steps: p.sweep!.epochs * Math.floor(trainSize / batchSize),
    optimizer: { ...p.config.optimizer, lr: (lr * batchSize) / 32 },
  }));
}
