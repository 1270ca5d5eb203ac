// Colours: the Okabe-Ito palette (distinguishable with the common colour-vision deficiencies),
// one colour and one dash pattern per normalization method, one colour per class.

export const OKABE_ITO = {
  black: '#000000',
  orange: '#E69F00',
  skyBlue: '#56B4E9',
  bluishGreen: '#009E73',
  yellow: '#F0E442',
  blue: '#0072B2',
  vermillion: '#D55E00',
  reddishPurple: '#CC79A7',
} as const;

const BY_METHOD: Record<string, string> = {
  none: OKABE_ITO.black,
  batchnorm: OKABE_ITO.vermillion,
  batchrenorm: OKABE_ITO.reddishPurple,
  groupnorm: OKABE_ITO.bluishGreen,
  layernorm: OKABE_ITO.blue,
  instancenorm: OKABE_ITO.skyBlue,
  // The survey's methods: the rest of Okabe-Ito, then Paul Tol's muted scheme (also safe for
  // colour-vision deficiencies), so a run of up to 12 methods has 12 distinct colours.
  rmsnorm: OKABE_ITO.orange,
  frn: '#999933',                // olive
  l1batchnorm: '#882255',        // wine
  generalizedbatchnorm: '#332288',  // indigo
  switchablenorm: '#117733',     // green
  lrn: '#661100',                // brown
  weightnorm: '#6699cc',         // light blue
  cosinenorm: '#888888',         // grey
};
const SPARE = [OKABE_ITO.orange, OKABE_ITO.skyBlue, OKABE_ITO.yellow];

/** The colour of a method (its layer name, e.g. `batchnorm`, or `none`). */
export function methodColor(method: string, index = 0): string {
  return BY_METHOD[method] ?? SPARE[index % SPARE.length];
}

/** Class colours of the decision maps: orange and blue for two classes, as in the TF Playground. */
export const CLASS_COLORS = [
  OKABE_ITO.orange, OKABE_ITO.blue, OKABE_ITO.bluishGreen, OKABE_ITO.reddishPurple,
  OKABE_ITO.vermillion, OKABE_ITO.skyBlue, OKABE_ITO.yellow, OKABE_ITO.black,
];

/** '#rrggbb' -> [r, g, b]. */
export function rgb(hex: string): [number, number, number] {
  const v = Number.parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}
