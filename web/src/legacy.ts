// Links made before the method options' URL keys were namespaced (`brn.rMax`) used one flat key per
// option the page then offered (`rMax`), some with values of their own. This frozen table maps
// each of those keys to its namespaced key and value, so that old links still load; new links
// never use them. It records a URL format of the past: it is not derived from the method table.

export interface LegacyKey {
  /** The namespaced key it became. */
  key: string;
  /** Old value -> new value, where they differ; absent: the value is kept as it is. */
  values?: Readonly<Record<string, string>>;
}

export const LEGACY_KEYS: ReadonlyMap<string, LegacyKey> = new Map<string, LegacyKey>([
  ['bnMomentum', { key: 'bn.momentum' }],
  ['rMax', { key: 'brn.rMax' }],
  ['dMax', { key: 'brn.dMax' }],
  ['brnMomentum', { key: 'brn.momentum' }],
  ['groups', { key: 'gn.groups' }],
  ['lrnSize', { key: 'lrn.size' }],
  ['l1bnScale', { key: 'l1bn.scaleSqrtPiOver2', values: { 'sqrt-pi-2': 'true', none: 'false' } }],
  ['gbnCenter', { key: 'gbn.center' }],
  ['gbnLevel', { key: 'gbn.level' }],
  ['frnEps', { key: 'frn.learnableEps', values: { learned: 'true', fixed: 'false' } }],
  ['snBN', { key: 'sn.useBN', values: { on: 'true', off: 'false' } }],
  ['cnCentered', { key: 'cn.centered', values: { plain: 'false', centered: 'true' } }],
]);

/**
 * The namespaced key and value of an old key's pair, or null when `name` is not an old key.
 * `raw` is undefined when the old key had values of its own and `raw` was none of them.
 */
export function fromLegacy(name: string, raw: string): { key: string; raw: string | undefined } | null {
  const legacy = LEGACY_KEYS.get(name);
  if (!legacy) return null;
  if (!legacy.values) return { key: legacy.key, raw };
  return { key: legacy.key, raw: Object.hasOwn(legacy.values, raw) ? legacy.values[raw] : undefined };
}
