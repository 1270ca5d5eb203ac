// The methods the playground offers, from the method table of the C++ core (`describeMethods()`,
// which the training worker reads once the WebAssembly module is loaded and posts to the page):
// their ids, labels, colours, which options get a control, and which charts apply. Nothing here
// names a method of the table, except the page's own starting values in PAGE_DEFAULTS and the one
// option it does not offer (NOT_OFFERED), each with its reason.
import type { MethodInfo, OptionInfo } from 'normlab';
import { methodColor } from './palette.js';

export type OptionValue = number | boolean | string;

export interface PageMethod {
  /** The id in links, configurations and results: the first alias, else the name (`bn`, `frn`). */
  key: string;
  /** The layer API's name (`batchnorm`), or `none`. */
  name: string;
  /** Every name the method goes by (name and aliases). */
  names: readonly string[];
  /** For checkboxes, legends and tables: "Batch Renorm". */
  label: string;
  /** Training normalizes with statistics of the batch: test accuracy with batch statistics differs. */
  usesBatchStatistics: boolean;
  /** Only for inputs with spatial dims: the CNN. */
  needsSpatialDims: boolean;
  /** The options the page has a control for, in the table's order. */
  options: readonly PageOption[];
  color: string;
}

export interface PageOption {
  /** The URL key, namespaced by the method's key as the CLI's `--option METHOD.KEY=VALUE`: `brn.rMax`. */
  name: string;
  /** The method's key (`brn`). */
  method: string;
  info: OptionInfo;
  /** What the controls start with; null: left out of the configuration (the model or layer decides). */
  initial: OptionValue | null;
  /**
   * Whether an empty control is a value of its own: the option is left out (the model fills it in,
   * or the table has no default), or, for a nullable option, null is passed (`passNull`).
   */
  optional: boolean;
  /** Empty means null, passed to the layer (BatchNorm's momentum: the cumulative average). */
  passNull: boolean;
}

/** Options a model fills in from the shape of the activations: never the user's (as in the CLI). */
const SHAPE_OPTIONS = new Set(['channels', 'normalizedShape']);

/**
 * The page's starting values where they differ from the table's default, so that the page's first
 * run and its checkboxes show something worth comparing.
 */
export const PAGE_DEFAULTS: Readonly<Record<string, OptionValue>> = {
  // The table leaves groups to the model; 8 also names the arm "GroupNorm (8 groups)".
  'gn.groups': 8,
  // LRN's window has no default in the layer API (it is required).
  'lrn.size': 5,
  // Median and mean absolute deviation: the robust pair, the one the survey presets use.
  'gbn.center': 'median',
  // The MLP's activations are 1x1: with a fixed eps FRN becomes a sign function (see checkState).
  'frn.learnableEps': true,
};

/**
 * Options of the table without a control: Generalized BN's deviation follows from its centre (the
 * paper's pairs; the layer refuses any other pair), so the centre alone chooses the pair.
 */
export const NOT_OFFERED: ReadonlySet<string> = new Set(['gbn.deviation']);

/** Whether an option can have a control: a number, a boolean or one of a list of strings. */
function offerable(o: OptionInfo): boolean {
  if (SHAPE_OPTIONS.has(o.key)) return false;
  return o.type === 'number' || o.type === 'integer' || o.type === 'boolean' || (o.type === 'string' && (o.values?.length ?? 0) > 0);
}

function pageOption(method: string, info: OptionInfo): PageOption {
  const name = `${method}.${info.key}`;
  const leftOut = info.fromModel === true || info.default === null;
  const fallback = info.fromModel ? null : info.default;
  const initial = PAGE_DEFAULTS[name] ?? (typeof fallback === 'object' ? null : fallback);
  return { name, method, info, initial, optional: leftOut || info.nullable === true, passNull: !leftOut && info.nullable === true };
}

/** The methods of the table ('none' first), in the table's order. */
export class Methods {
  readonly list: readonly PageMethod[];
  readonly #byName = new Map<string, PageMethod>();

  constructor(table: readonly MethodInfo[]) {
    this.list = table.map((m, position): PageMethod => {
      const key = m.aliases[0] ?? m.name;
      const offered = m.options.filter((o) => offerable(o) && !NOT_OFFERED.has(`${key}.${o.key}`));
      return {
        key,
        name: m.name,
        names: [m.name, ...m.aliases],
        label: m.label,
        usesBatchStatistics: m.usesBatchStatistics,
        needsSpatialDims: m.needsSpatialDims,
        options: offered.map((o) => pageOption(key, o)),
        color: methodColor(position),
      };
    });
    for (const m of this.list) for (const n of m.names) this.#byName.set(n, m);
  }

  /** The method a key, name or alias stands for. */
  get(name: string): PageMethod | undefined {
    return this.#byName.get(name);
  }

  /** Every option control of every method, method by method. */
  get options(): PageOption[] {
    return this.list.flatMap((m) => m.options);
  }
}
