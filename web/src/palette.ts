// Colours: the Okabe-Ito palette (distinguishable with the common colour-vision deficiencies),
// one colour per normalization method, one colour per class. This is the one place the methods'
// colours are kept: a method's colour is the one at its position in the method list (methods.ts:
// 'none' first, then the method table's order), so a method added to the table gets the next one.

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

/**
 * The methods' colours by position: 'none' (black), then the method table's order. Okabe-Ito
 * first, then Paul Tol's muted scheme (also safe for colour-vision deficiencies), so a run of up to
 * 14 methods has 14 distinct colours; past the end, the list starts over.
 */
export const METHOD_COLORS: readonly string[] = [
  OKABE_ITO.black,
  OKABE_ITO.vermillion,
  OKABE_ITO.reddishPurple,
  OKABE_ITO.blue,
  OKABE_ITO.bluishGreen,
  OKABE_ITO.skyBlue,
  '#661100',  // brown
  OKABE_ITO.orange,
  '#999933',  // olive
  '#882255',  // wine
  '#332288',  // indigo
  '#117733',  // green
  '#6699cc',  // light blue
  '#888888',  // grey
];

/** The colour of the method at `position` in the method list ('none' is 0). */
export function methodColor(position: number): string {
  const n = METHOD_COLORS.length;
  return METHOD_COLORS[((position % n) + n) % n];
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
