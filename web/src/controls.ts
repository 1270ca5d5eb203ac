// The settings form, built from the settings table (state.ts): one labelled control per property,
// grouped in fieldsets, with the controls that do not apply to the current settings hidden. The
// methods' checkboxes and, per method, a fieldset of its options (range, default and help from the
// method table) are generated from the table. Each change is checked with the table's own parser;
// an invalid entry is marked and ignored.
import type { PageMethod, PageOption } from './methods.js';
import {
  POINT_SETS, USER_DATA, formatValue, hasImages, parseValue, valueOf, withValue, type GeneralKey, type Prop, type Settings, type State,
} from './state.js';

interface Field {
  /** The URL key of the setting. */
  name: string;
  label: string;
  /** Labels of enum values (default: the value itself). */
  options?: Record<string, string>;
  /** Shown after the label, e.g. a unit or a hint. */
  hint?: string;
  step?: string;
  /** Shown under the control. */
  help?: string;
}

export const GROUPS: { title: string; fields: (Field & { name: GeneralKey })[] }[] = [
  {
    title: 'Data',
    fields: [
      {
        name: 'dataset', label: 'Data set',
        options: {
          circle: 'Circle (2-D)', xor: 'XOR (2-D)', gauss: 'Gaussians (2-D)', spiral: 'Spiral (2-D)', moons: 'Moons (2-D)',
          blobs: 'Blobs (2-D)', digits: 'Digits (8×8)', mnist: 'MNIST (28×28)', user: 'Your data (CSV file)',
        },
      },
      // Your data's file, preview and label column: the panel of userdata.ts, placed here by main.ts.
      { name: 'testFraction', label: 'Held out for testing', hint: 'share of the rows', step: '0.05' },
      { name: 'imageShape', label: 'Rows are images', hint: 'C,H,W, e.g. 1,8,8; empty: features' },
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
      // The labels of the methods, and a fieldset of options per method, come from the method table.
      { name: 'methods', label: 'Compare' },
      { name: 'renormWarmup', label: 'Renorm warmup', hint: 'fraction of steps', step: '0.05' },
      { name: 'renormRampEnd', label: 'Renorm ramp end', hint: 'fraction of steps', step: '0.05' },
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
      { name: 'seeds', label: 'Seeds', hint: 'seed, seed + 1, …', options: { 1: '1 (one run)', 3: '3 (95% intervals)', 5: '5', 10: '10' } },
      { name: 'workers', label: 'Workers', hint: '0 = cores less one', step: '1' },
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
    title: 'Why it works (probes)',
    fields: [
      {
        name: 'probes', label: 'Probes at each evaluation',
        options: { none: 'off', landscape: 'loss landscape', ics: 'internal covariate shift', both: 'both' },
        help: 'Santurkar et al. 2018: how smooth the loss is along the gradient, and how much each layer\'s gradient moves when the layers below update. Costs extra passes at each evaluation only.',
      },
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
export function relevant(state: State, name: string): boolean {
  const points = POINT_SETS.includes(state.dataset);
  const user = state.dataset === USER_DATA;
  const sweep = state.sweep.length > 0;
  // A method's option (`brn.rMax`): when the method is compared.
  const dot = name.indexOf('.');
  if (dot > 0) return state.methods.includes(name.slice(0, dot));
  switch (name) {
    case 'noise':
    case 'trainSize':
      return points;
    case 'classes':
      return state.dataset === 'spiral' || state.dataset === 'blobs';
    case 'testSize':
      return !user;
    case 'testFraction':
    case 'imageShape':
      return user;
    case 'depth':
    case 'width':
      return state.model === 'mlp';
    case 'channels':
      return state.model === 'cnn';
    case 'renormWarmup':
    case 'renormRampEnd':
      // The runner's schedule of Batch Renorm's limits.
      return state.methods.includes('brn');
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
      return `a ${prop.type === 'int' ? 'whole number' : 'number'} ${numberRange(prop.min, prop.max, prop.minExclusive) || 'of any size'}` +
        `${prop.option?.optional ? ', or nothing' : ''}`;
    case 'intList':
      return `${prop.minLength === 0 ? 'empty or ' : ''}up to ${prop.maxLength} whole numbers from ${prop.min} to ${prop.max}, separated by commas`;
    case 'enumList':
      return 'at least one';
    case 'boolean':
      return 'true or false';
    case 'enum':
      return `one of ${prop.values.join(', ')}`;
    case 'text':
      return `text of up to ${prop.maxLength} characters`;
  }
}

/** "from 0 to 1", "above 0", "at least 1" ('' when unbounded). */
function numberRange(min: number, max: number, minExclusive = false): string {
  const low = Number.isFinite(min) ? (minExclusive ? `above ${min}` : `at least ${min}`) : '';
  if (Number.isFinite(min) && Number.isFinite(max) && !minExclusive) return `from ${min} to ${max}`;
  const high = Number.isFinite(max) ? `at most ${max}` : '';
  return [low, high].filter(Boolean).join(' and ');
}

/** A number for a hint: small ones as powers of ten (1e-5), to 3 significant digits. */
function short(v: number): string {
  return v !== 0 && Math.abs(v) < 1e-3 ? Number(v.toPrecision(3)).toExponential() : String(v);
}

/** The hint of an option's control: its range and the layer's default, from the table ("> 0; default 1e-5"). */
function optionHint(prop: Prop, option: PageOption): string {
  const parts: string[] = [];
  if (prop.type === 'int' || prop.type === 'number') {
    const { min, max, minExclusive } = prop;
    if (Number.isFinite(min) && Number.isFinite(max) && !minExclusive) parts.push(`${short(min)} to ${short(max)}`);
    else {
      const bounds = [Number.isFinite(min) ? `${minExclusive ? '>' : '≥'} ${short(min)}` : '', Number.isFinite(max) ? `≤ ${short(max)}` : ''];
      parts.push(bounds.filter(Boolean).join(', '));
    }
  }
  const d = option.info.default;
  if (option.info.fromModel) parts.push('empty: the model picks');
  else if (d === null) parts.push('required');
  else parts.push(`default ${typeof d === 'number' ? short(d) : d}`);
  if (option.passNull) parts.push('empty: null');
  return parts.filter(Boolean).join('; ');
}

/** Arrow steps of a number option: the order of magnitude of its starting value. */
function optionStep(prop: Prop, option: PageOption): string {
  if (prop.type === 'int') return '1';
  const v = typeof option.initial === 'number' ? option.initial : option.info.default;
  return typeof v === 'number' && v !== 0 ? String(10 ** Math.floor(Math.log10(Math.abs(v)))) : 'any';
}

/** The field of a method's option: its key as the label, hint and help from the table. */
function optionField(prop: Prop, option: PageOption): Field {
  const field: Field = { name: option.name, label: option.info.key, hint: optionHint(prop, option), help: option.info.help };
  if (prop.type === 'int' || prop.type === 'number') field.step = optionStep(prop, option);
  return field;
}

/** What an empty choice means for an option that may be empty. */
function leftOut(option: PageOption): string {
  return option.passNull ? 'null' : option.info.fromModel ? 'the model picks' : 'not set';
}

/** A method's checkbox label; methods that need spatial dims say so. */
function methodLabel(m: PageMethod): string {
  return m.needsSpatialDims ? `${m.label} (needs the CNN)` : m.label;
}

interface Control {
  field: Field;
  prop: Prop;
  wrapper: HTMLElement;
  input?: HTMLInputElement | HTMLSelectElement;
  boxes?: HTMLInputElement[];
  error: HTMLElement;
}

/** A swatch in a method's colour (set through the CSSOM, which a strict CSP allows). */
function swatch(color: string): HTMLElement {
  const el = document.createElement('span');
  el.className = 'swatch';
  el.style.backgroundColor = color;
  el.setAttribute('aria-hidden', 'true');
  return el;
}

export class Controls {
  #settings: Settings;
  #state: State;
  #controls = new Map<string, Control>();
  /** The fieldset of each method's options, by method key. */
  #methodSets = new Map<string, HTMLFieldSetElement>();
  #onChange: (state: State, notices: string[]) => void;

  constructor(form: HTMLFormElement, settings: Settings, state: State, onChange: (state: State, notices: string[]) => void) {
    this.#settings = settings;
    this.#state = state;
    this.#onChange = onChange;
    form.addEventListener('submit', (e) => e.preventDefault());
    for (const group of GROUPS) {
      const fieldset = document.createElement('fieldset');
      const legend = document.createElement('legend');
      legend.textContent = group.title;
      fieldset.append(legend);
      for (const field of group.fields) {
        const prop = settings.prop(field.name)!;
        if (field.name === 'methods') {
          field.options = Object.fromEntries(settings.methods.list.map((m) => [m.key, methodLabel(m)]));
        }
        fieldset.append(this.#add(field, prop));
      }
      if (group.title === 'Methods') {
        for (const m of settings.methods.list) {
          if (m.options.length) fieldset.append(this.#methodSet(m));
        }
      }
      form.append(fieldset);
    }
    this.set(state);
  }

  get state(): State {
    return this.#state;
  }

  #add(field: Field, prop: Prop): HTMLElement {
    const control = this.#build(field, prop);
    this.#controls.set(field.name, control);
    return control.wrapper;
  }

  /** The fieldset of one method's options, shown while the method is compared. */
  #methodSet(m: PageMethod): HTMLFieldSetElement {
    const set = document.createElement('fieldset');
    set.className = 'method-options';
    set.dataset.method = m.key;
    const legend = document.createElement('legend');
    legend.append(swatch(m.color), document.createTextNode(`${m.label} options`));
    set.append(legend);
    for (const option of m.options) {
      const prop = this.#settings.prop(option.name)!;
      set.append(this.#add(optionField(prop, option), prop));
    }
    this.#methodSets.set(m.key, set);
    return set;
  }

  #build(field: Field, prop: Prop): Control {
    const id = `setting-${field.name.replace(/\./g, '-')}`;
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
      const colors = new Map(this.#settings.methods.list.map((m) => [m.key, m.color]));
      control.boxes = prop.values.map((value) => {
        const label = document.createElement('label');
        const box = document.createElement('input');
        box.type = 'checkbox';
        box.value = value;
        box.name = field.name;
        box.id = `${id}-${value}`;
        box.addEventListener('change', () => this.#commit(control));
        label.append(box, swatch(colors.get(value) ?? '#888888'), document.createTextNode(field.options?.[value] ?? value));
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
    const option = prop.option;
    if (prop.type === 'enum' || prop.type === 'boolean') {
      const select = document.createElement('select');
      const values = prop.type === 'enum' ? prop.values : ['true', 'false'];
      for (const value of option?.optional ? ['', ...values] : values) {
        const o = document.createElement('option');
        o.value = value;
        o.textContent = value === '' && option ? leftOut(option) : field.options?.[value] ?? value;
        select.append(o);
      }
      input = select;
    } else {
      const el = document.createElement('input');
      if (prop.type === 'intList' || prop.type === 'text') {
        el.type = 'text';
        el.inputMode = prop.type === 'text' ? 'text' : 'numeric';
        el.autocomplete = 'off';
        el.spellcheck = false;
      } else {
        el.type = 'number';
        if (Number.isFinite(prop.min)) el.min = String(prop.min);
        if (Number.isFinite(prop.max)) el.max = String(prop.max);
        el.step = field.step ?? (prop.type === 'int' ? '1' : 'any');
        el.inputMode = prop.type === 'int' ? 'numeric' : 'decimal';
        if (option?.optional) el.placeholder = leftOut(option);
      }
      input = el;
    }
    input.id = id;
    input.name = field.name;
    input.title = prop.help;
    const described = [error.id];
    wrapper.append(label, input);
    if (field.help) {
      const help = document.createElement('p');
      help.className = 'help';
      help.id = `${id}-help`;
      help.textContent = field.help;
      wrapper.append(help);
      described.unshift(help.id);
    }
    wrapper.append(error);
    input.setAttribute('aria-describedby', described.join(' '));
    input.addEventListener('change', () => this.#commit(control));
    control.input = input;
    return control;
  }

  #commit(control: Control): void {
    const { prop, field } = control;
    let raw: string;
    if (control.boxes) {
      // The methods still compared keep their places; a newly checked one runs last.
      const checked = control.boxes.filter((b) => b.checked).map((b) => b.value);
      const kept = (valueOf(this.#state, prop) as string[]).filter((v) => checked.includes(v));
      raw = [...kept, ...checked.filter((v) => !kept.includes(v))].join(',');
    } else {
      raw = control.input!.value.trim();
    }
    const value = parseValue(prop, raw);
    if (value === undefined) {
      control.error.textContent = `${field.label}: expected ${rangeText(prop)}.`;
      control.input?.setAttribute('aria-invalid', 'true');
      if (control.boxes) this.#write(control);  // undo the change (e.g. unchecking the last method)
      return;
    }
    control.error.textContent = '';
    control.input?.removeAttribute('aria-invalid');
    const checked = this.#settings.checkState(withValue(this.#state, prop, value));
    this.set(checked.state);
    this.#onChange(checked.state, checked.notices);
  }

  #write(control: Control): void {
    const value = valueOf(this.#state, control.prop);
    if (control.boxes) {
      const list = value as string[];
      for (const box of control.boxes) {
        box.checked = list.includes(box.value);
        // Methods that normalize over spatial positions: only with the CNN.
        box.disabled = this.#settings.methods.get(box.value)?.needsSpatialDims === true && this.#state.model !== 'cnn';
      }
    } else if (control.input) {
      const text = formatValue(value);
      if (control.input.value !== text) control.input.value = text;
      if (control.input instanceof HTMLSelectElement && control.field.name === 'model') {
        const cnn = [...control.input.options].find((o) => o.value === 'cnn');
        if (cnn) cnn.disabled = !hasImages(this.#state);
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
    for (const [key, set] of this.#methodSets) set.hidden = !state.methods.includes(key);
  }
}
