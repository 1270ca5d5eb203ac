// The settings form, built from the state table (state.ts): one labelled control per property,
// grouped in fieldsets, with the controls that do not apply to the current settings hidden.
// Each change is checked with the table's own parser; an invalid entry is marked and ignored.
import { checkState, CNN_ONLY, PROPS, POINT_SETS, parseValue, formatValue, type Prop, type State } from './state.js';

type Name = keyof State;

interface Field {
  name: Name;
  label: string;
  /** Labels of enum values (default: the value itself). */
  options?: Record<string, string>;
  /** Shown after the label, e.g. a unit or a hint. */
  hint?: string;
  step?: string;
}

const METHOD_LABELS: Record<string, string> = {
  none: 'No normalization',
  bn: 'BatchNorm',
  brn: 'Batch Renormalization',
  gn: 'GroupNorm',
  ln: 'LayerNorm',
  in: 'InstanceNorm (needs the CNN)',
  rms: 'RMSNorm',
  frn: 'FRN + TLU',
  l1bn: 'L1 BatchNorm',
  gbn: 'Generalized BN',
  sn: 'Switchable Norm',
  lrn: 'Local Response Norm (needs the CNN)',
  wn: 'Weight Norm',
  cn: 'Cosine Norm',
};

export const GROUPS: { title: string; fields: Field[] }[] = [
  {
    title: 'Data',
    fields: [
      {
        name: 'dataset', label: 'Data set',
        options: {
          circle: 'Circle (2-D)', xor: 'XOR (2-D)', gauss: 'Gaussians (2-D)', spiral: 'Spiral (2-D)', moons: 'Moons (2-D)',
          blobs: 'Blobs (2-D)', digits: 'Digits (8×8)', mnist: 'MNIST (28×28)',
        },
      },
      { name: 'noise', label: 'Noise', hint: '0 to 1', step: '0.05' },
      { name: 'trainSize', label: 'Training examples', step: '100' },
      { name: 'testSize', label: 'Test examples', step: '100' },
      { name: 'classes', label: 'Classes', step: '1' },
      {
        name: 'preprocess', label: 'Normalize inputs',
        options: { none: 'no', minmax: 'min-max to [0, 1]', standardize: 'standardize (z-score)', pca: 'PCA whitening', zca: 'ZCA whitening' },
      },
    ],
  },
  {
    title: 'Model',
    fields: [
      { name: 'model', label: 'Model', options: { mlp: 'MLP', cnn: 'CNN (images)' } },
      { name: 'depth', label: 'Hidden layers', step: '1' },
      { name: 'width', label: 'Units per layer', step: '1' },
      { name: 'channels', label: 'Channels per block', hint: 'e.g. 8,16' },
      { name: 'activation', label: 'Activation', options: { relu: 'ReLU', tanh: 'tanh' } },
    ],
  },
  {
    title: 'Methods',
    fields: [
      { name: 'methods', label: 'Compare', options: METHOD_LABELS },
      { name: 'bnMomentum', label: 'BatchNorm momentum', step: '0.01' },
      { name: 'rMax', label: 'Batch Renorm rMax', step: '0.5' },
      { name: 'dMax', label: 'Batch Renorm dMax', step: '0.5' },
      { name: 'renormWarmup', label: 'Renorm warmup', hint: 'fraction of steps', step: '0.05' },
      { name: 'renormRampEnd', label: 'Renorm ramp end', hint: 'fraction of steps', step: '0.05' },
      { name: 'brnMomentum', label: 'Batch Renorm alpha', hint: 'update rate', step: '0.005' },
      { name: 'groups', label: 'GroupNorm groups', step: '1' },
      { name: 'lrnSize', label: 'LRN window', hint: 'channels', step: '1' },
      { name: 'l1bnScale', label: 'L1 BatchNorm deviation', options: { 'sqrt-pi-2': '× √(π/2) (paper)', none: 'mean |x − μ|' } },
      {
        name: 'gbnCenter', label: 'Generalized BN statistics',
        options: { mean: 'mean / std', median: 'median / mean abs. deviation', quantile: 'quantile / superquantile' },
      },
      { name: 'gbnLevel', label: 'Generalized BN level', hint: '0.01 to 0.99', step: '0.05' },
      { name: 'frnEps', label: 'FRN eps', options: { learned: 'learned (paper, for 1×1)', fixed: 'fixed 1e-6' } },
      { name: 'snBN', label: 'Switchable Norm mixes', options: { on: 'IN, LN and BN statistics', off: 'IN and LN only' } },
      { name: 'cnCentered', label: 'Cosine Norm', options: { plain: 'cosine', centered: 'centred cosine (Pearson)' } },
    ],
  },
  {
    title: 'Training',
    fields: [
      { name: 'batchSize', label: 'Batch size', step: '1' },
      { name: 'batching', label: 'Batching', options: { iid: 'i.i.d.', noniid: 'non-i.i.d.' } },
      { name: 'noniidClasses', label: 'Classes per batch', step: '1' },
      { name: 'optimizer', label: 'Optimizer', options: { sgd: 'SGD', adam: 'Adam', adamw: 'AdamW' } },
      { name: 'lr', label: 'Learning rate', step: 'any' },
      { name: 'momentum', label: 'Momentum', step: '0.05' },
      { name: 'weightDecay', label: 'Weight decay', step: 'any' },
      { name: 'steps', label: 'Steps', step: '100' },
      { name: 'evalInterval', label: 'Evaluate every', hint: 'steps; 0 = steps/20', step: '1' },
      { name: 'seed', label: 'Seed', step: '1' },
    ],
  },
  {
    title: 'Batch-size sweep',
    fields: [
      { name: 'sweep', label: 'Batch sizes', hint: 'e.g. 2,4,8,16,32; empty: one run' },
      { name: 'sweepEpochs', label: 'Epochs per batch size', step: '1' },
    ],
  },
  {
    title: 'Domain shift (AdaBN)',
    fields: [
      {
        name: 'shift', label: 'Shift the test inputs',
        options: { none: 'no shift', invert: 'invert (toward 1 − x)', shift: 'shift (add)', scale: 'scale (multiply)', noise: 'add noise' },
      },
      { name: 'shiftAmount', label: 'Amount', step: '0.1' },
    ],
  },
];

/** Whether a setting matters for the others (irrelevant ones are hidden). */
export function relevant(state: State, name: Name): boolean {
  const points = POINT_SETS.includes(state.dataset);
  const sweep = state.sweep.length > 0;
  switch (name) {
    case 'noise':
    case 'trainSize':
      return points;
    case 'classes':
      return state.dataset === 'spiral' || state.dataset === 'blobs';
    case 'depth':
    case 'width':
      return state.model === 'mlp';
    case 'channels':
      return state.model === 'cnn';
    case 'bnMomentum':
      return state.methods.includes('bn');
    case 'rMax':
    case 'dMax':
    case 'renormWarmup':
    case 'renormRampEnd':
      return state.methods.includes('brn');
    case 'brnMomentum':
      return state.methods.includes('brn');
    case 'groups':
      return state.methods.includes('gn');
    case 'lrnSize':
      return state.methods.includes('lrn');
    case 'l1bnScale':
      return state.methods.includes('l1bn');
    case 'gbnCenter':
      return state.methods.includes('gbn');
    case 'gbnLevel':
      return state.methods.includes('gbn') && state.gbnCenter === 'quantile';
    case 'frnEps':
      return state.methods.includes('frn') && state.model === 'cnn';
    case 'snBN':
      return state.methods.includes('sn');
    case 'cnCentered':
      return state.methods.includes('cn');
    case 'noniidClasses':
      return state.batching === 'noniid';
    case 'momentum':
      return state.optimizer === 'sgd';
    case 'batchSize':
    case 'steps':
      return !sweep;
    case 'sweepEpochs':
      return sweep;
    case 'shiftAmount':
      return state.shift !== 'none';
    default:
      return true;
  }
}

function rangeText(prop: Prop): string {
  switch (prop.type) {
    case 'int':
    case 'number':
      return `a ${prop.type === 'int' ? 'whole number' : 'number'} from ${prop.min} to ${prop.max}`;
    case 'intList':
      return `${prop.minLength === 0 ? 'empty or ' : ''}up to ${prop.maxLength} whole numbers from ${prop.min} to ${prop.max}, separated by commas`;
    case 'enumList':
      return 'at least one';
    case 'enum':
      return `one of ${prop.values.join(', ')}`;
  }
}

interface Control {
  field: Field;
  prop: Prop;
  wrapper: HTMLElement;
  input?: HTMLInputElement | HTMLSelectElement;
  boxes?: HTMLInputElement[];
  error: HTMLElement;
}

export class Controls {
  #state: State;
  #controls = new Map<Name, Control>();
  #onChange: (state: State, notices: string[]) => void;

  constructor(form: HTMLFormElement, state: State, onChange: (state: State, notices: string[]) => void) {
    this.#state = state;
    this.#onChange = onChange;
    const props = new Map(PROPS.map((p) => [p.name, p]));
    form.addEventListener('submit', (e) => e.preventDefault());
    for (const group of GROUPS) {
      const fieldset = document.createElement('fieldset');
      const legend = document.createElement('legend');
      legend.textContent = group.title;
      fieldset.append(legend);
      for (const field of group.fields) {
        const prop = props.get(field.name)!;
        const control = this.#build(field, prop);
        this.#controls.set(field.name, control);
        fieldset.append(control.wrapper);
      }
      form.append(fieldset);
    }
    this.set(state);
  }

  get state(): State {
    return this.#state;
  }

  #build(field: Field, prop: Prop): Control {
    const id = `setting-${field.name}`;
    const wrapper = document.createElement('div');
    wrapper.className = 'field';
    wrapper.dataset.name = field.name;
    const error = document.createElement('p');
    error.className = 'field-error';
    error.id = `${id}-error`;
    error.setAttribute('aria-live', 'polite');
    const control: Control = { field, prop, wrapper, error };
    if (prop.type === 'enumList') {
      const group = document.createElement('fieldset');
      group.className = 'checks';
      const legend = document.createElement('legend');
      legend.textContent = field.label;
      group.append(legend);
      control.boxes = prop.values.map((value) => {
        const label = document.createElement('label');
        const box = document.createElement('input');
        box.type = 'checkbox';
        box.value = value;
        box.name = field.name;
        box.id = `${id}-${value}`;
        box.addEventListener('change', () => this.#commit(control));
        const swatch = document.createElement('span');
        swatch.className = `swatch method-${value}`;
        swatch.setAttribute('aria-hidden', 'true');
        label.append(box, swatch, document.createTextNode(field.options?.[value] ?? value));
        group.append(label);
        return box;
      });
      wrapper.append(group, error);
      return control;
    }
    const label = document.createElement('label');
    label.htmlFor = id;
    label.textContent = field.label;
    if (field.hint) {
      const hint = document.createElement('span');
      hint.className = 'hint';
      hint.textContent = ` (${field.hint})`;
      label.append(hint);
    }
    let input: HTMLInputElement | HTMLSelectElement;
    if (prop.type === 'enum') {
      const select = document.createElement('select');
      for (const value of prop.values) {
        const option = document.createElement('option');
        option.value = value;
        option.textContent = field.options?.[value] ?? value;
        select.append(option);
      }
      input = select;
    } else {
      const el = document.createElement('input');
      if (prop.type === 'intList') {
        el.type = 'text';
        el.inputMode = 'numeric';
        el.autocomplete = 'off';
        el.spellcheck = false;
      } else {
        el.type = 'number';
        el.min = String(prop.min);
        el.max = String(prop.max);
        el.step = field.step ?? (prop.type === 'int' ? '1' : 'any');
        el.inputMode = prop.type === 'int' ? 'numeric' : 'decimal';
      }
      input = el;
    }
    input.id = id;
    input.name = field.name;
    input.title = prop.help;
    input.setAttribute('aria-describedby', error.id);
    input.addEventListener('change', () => this.#commit(control));
    control.input = input;
    wrapper.append(label, input, error);
    return control;
  }

  #commit(control: Control): void {
    const { prop, field } = control;
    const raw = control.boxes
      ? control.boxes.filter((b) => b.checked).map((b) => b.value).join(',')
      : control.input!.value.trim();
    const value = parseValue(prop, raw);
    if (value === undefined) {
      control.error.textContent = `${field.label}: expected ${rangeText(prop)}.`;
      control.input?.setAttribute('aria-invalid', 'true');
      if (control.boxes) this.#write(control);  // undo the change (e.g. unchecking the last method)
      return;
    }
    control.error.textContent = '';
    control.input?.removeAttribute('aria-invalid');
    const next = { ...this.#state, [field.name]: value } as State;
    const checked = checkState(next);
    this.set(checked.state);
    this.#onChange(checked.state, checked.notices);
  }

  #write(control: Control): void {
    const value = this.#state[control.field.name];
    if (control.boxes) {
      const list = value as string[];
      for (const box of control.boxes) {
        box.checked = list.includes(box.value);
        // InstanceNorm and LRN normalize over spatial positions or channels: only with the CNN.
        box.disabled = CNN_ONLY.includes(box.value) && this.#state.model !== 'cnn';
      }
    } else if (control.input) {
      const text = formatValue(control.prop, value);
      if (control.input.value !== text) control.input.value = text;
      if (control.input instanceof HTMLSelectElement && control.field.name === 'model') {
        const cnn = [...control.input.options].find((o) => o.value === 'cnn');
        if (cnn) cnn.disabled = POINT_SETS.includes(this.#state.dataset);
      }
    }
  }

  /** Shows a state (from a preset or the URL). */
  set(state: State): void {
    this.#state = state;
    for (const control of this.#controls.values()) {
      this.#write(control);
      control.error.textContent = '';
      control.input?.removeAttribute('aria-invalid');
      control.wrapper.hidden = !relevant(state, control.field.name);
    }
  }
}
