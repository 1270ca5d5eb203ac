// Decision maps: each method's class probabilities on a grid over the plane, one square panel per
// method on one canvas. A cell takes the colour of its most likely class, stronger the surer the
// model is (white: undecided); grey where the model diverged (NaN). The training points are drawn
// on top in their class colour with a white rim, as in the TensorFlow Playground.
import type { Extent } from './config.js';
import { drawLegend, drawPlaceholder, ellipsize, fitCanvas, FONT, formatTick, SMALL_FONT, type AnyCanvas, type Chart, type Ctx2D } from './linechart.js';
import { CLASS_COLORS, rgb } from './palette.js';
import type { MapPoints } from './protocol.js';
import type { LegendItem } from './series.js';

export interface MapPanel {
  title: string;
  subtitle?: string;
  /** n * n * classes probabilities, row-major from the top-left. */
  probs: Float32Array;
  n: number;
  classes: number;
}

/** RGBA pixels (n x n) of a probability grid. */
export function mapPixels(probs: Float32Array, n: number, classes: number): Uint8ClampedArray {
  const out = new Uint8ClampedArray(n * n * 4);
  const colors = CLASS_COLORS.map(rgb);
  for (let i = 0; i < n * n; i++) {
    let best = 0;
    let p = probs[i * classes];
    for (let c = 1; c < classes; c++) {
      if (probs[i * classes + c] > p) {
        p = probs[i * classes + c];
        best = c;
      }
    }
    let r = 200;
    let g = 200;
    let b = 200;
    if (Number.isFinite(p)) {
      const t = 0.85 * Math.max(0, Math.min(1, (p - 1 / classes) / (1 - 1 / classes)));
      const [cr, cg, cb] = colors[best % colors.length];
      r = 255 + (cr - 255) * t;
      g = 255 + (cg - 255) * t;
      b = 255 + (cb - 255) * t;
    }
    out.set([r, g, b, 255], i * 4);
  }
  return out;
}

/** The points inside the extent, as dots in their class colour with a white rim. */
function drawPoints(ctx: Ctx2D, points: MapPoints, e: Extent, x: number, y: number, side: number): void {
  const r = Math.max(1.5, side / 90);
  ctx.save();
  ctx.beginPath();
  ctx.rect(x, y, side, side);
  ctx.clip();
  ctx.lineWidth = 1;
  ctx.strokeStyle = '#ffffff';
  for (let i = 0; i < points.labels.length; i++) {
    const px = x + ((points.x[2 * i] - e.xMin) / (e.xMax - e.xMin)) * side;
    const py = y + ((e.yMax - points.x[2 * i + 1]) / (e.yMax - e.yMin)) * side;
    ctx.beginPath();
    ctx.arc(px, py, r, 0, 2 * Math.PI);
    ctx.fillStyle = CLASS_COLORS[points.labels[i] % CLASS_COLORS.length];
    ctx.fill();
    ctx.stroke();
  }
  ctx.restore();
}

export class Heatmap implements Chart {
  readonly canvas: AnyCanvas;
  #panels: MapPanel[] = [];
  #extent: Extent = { xMin: -1, xMax: 1, yMin: -1, yMax: 1 };
  #classes = 2;
  #classNames: readonly string[] | undefined;
  #points: MapPoints | null = null;
  #placeholder = 'Press Run to train';
  #width = 0;
  #dpr = 1;

  constructor(canvas: AnyCanvas) {
    this.canvas = canvas;
  }

  resize(width: number, dpr: number): void {
    this.#width = width;
    this.#dpr = dpr;
  }

  /** The maps; the legend names the classes by `classNames` (your data's) or by number. */
  update(panels: MapPanel[], extent: Extent, points: MapPoints | null = null, classNames?: readonly string[]): number {
    this.#panels = panels;
    this.#classNames = classNames;
    this.#extent = extent;
    this.#points = points;
    this.#classes = panels[0]?.classes ?? 2;
    return this.draw();
  }

  reset(placeholder = 'Press Run to train'): number {
    this.#panels = [];
    this.#placeholder = placeholder;
    return this.draw();
  }

  draw(): number {
    const width = this.#width;
    if (width === 0) return 0;
    const n = this.#panels.length;
    // Two maps side by side even on a phone; as many as fit (190 px each) on wider screens.
    const cols = Math.max(1, Math.min(n || 1, Math.max(width >= 300 ? 2 : 1, Math.floor(width / 190))));
    const rows = Math.max(1, Math.ceil(n / cols));
    const cellW = width / cols;
    const side = Math.max(60, Math.min(220, cellW - 40));
    const legend: LegendItem[] = Array.from({ length: this.#classes }, (_, c) => ({
      label: this.#classNames?.[c] ?? `class ${c}`, color: CLASS_COLORS[c % CLASS_COLORS.length], fill: 0.6,
    }));
    const measure = this.canvas.getContext('2d') as Ctx2D;
    const legendH = n ? drawLegend(null, legend, 8, 4, width - 16, measure) : 0;
    const rowH = side + 56;
    const height = n ? legendH + rows * rowH : 160;
    const ctx = fitCanvas(this.canvas, width, height, this.#dpr);
    if (n === 0) {
      drawPlaceholder(ctx, { x: 0, y: 0, w: width, h: height }, this.#placeholder);
      return height;
    }
    drawLegend(ctx, legend, 8, 4, width - 16);
    const e = this.#extent;
    this.#panels.forEach((panel, i) => {
      const x = (i % cols) * cellW + (cellW - side) / 2 + 8;
      const y = legendH + Math.floor(i / cols) * rowH + 20;
      ctx.font = `600 ${FONT}`;
      ctx.fillStyle = '#222222';
      ctx.textAlign = 'left';
      ctx.textBaseline = 'bottom';
      ctx.fillText(ellipsize(ctx, panel.title, cellW - (x - (i % cols) * cellW) - 4), x, y - 4);
      const image = new ImageData(mapPixels(panel.probs, panel.n, panel.classes) as Uint8ClampedArray<ArrayBuffer>, panel.n, panel.n);
      const tile = new OffscreenCanvas(panel.n, panel.n);
      tile.getContext('2d')!.putImageData(image, 0, 0);
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(tile, x, y, side, side);
      if (this.#points) drawPoints(ctx, this.#points, e, x, y, side);
      ctx.strokeStyle = '#444444';
      ctx.lineWidth = 1;
      ctx.strokeRect(x + 0.5, y + 0.5, side, side);
      ctx.font = SMALL_FONT;
      ctx.fillStyle = '#222222';
      ctx.textBaseline = 'top';
      ctx.textAlign = 'left';
      ctx.fillText(formatTick(e.xMin, 0.1), x, y + side + 3);
      ctx.textAlign = 'right';
      ctx.fillText(formatTick(e.xMax, 0.1), x + side, y + side + 3);
      ctx.textAlign = 'center';
      ctx.fillText('x₁', x + side / 2, y + side + 3);
      ctx.save();
      ctx.translate(x - 4, y + side / 2);
      ctx.rotate(-Math.PI / 2);
      ctx.textBaseline = 'bottom';
      ctx.fillText('x₂', 0, 0);
      ctx.restore();
      ctx.textAlign = 'right';
      ctx.textBaseline = 'top';
      ctx.fillText(formatTick(e.yMax, 0.1), x - 4, y);
      ctx.textBaseline = 'bottom';
      ctx.fillText(formatTick(e.yMin, 0.1), x - 4, y + side);
      if (panel.subtitle) {
        ctx.textAlign = 'left';
        ctx.textBaseline = 'top';
        ctx.fillText(ellipsize(ctx, panel.subtitle, cellW - (x - (i % cols) * cellW) - 4), x, y + side + 18);
      }
    });
    return height;
  }
}
