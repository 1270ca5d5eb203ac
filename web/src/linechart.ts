// Line charts on a canvas: axes with ticks and labels, a legend, lines, dashed lines, markers and
// filled bands. `drawPlot` draws one plot into a box (bands.ts reuses it for small multiples);
// `LineChart` is a chart of a given width with `update` and `reset`. No DOM: the charts draw on an
// OffscreenCanvas in the charts worker (or on any canvas), sized by `resize`.
import { dataRange, niceTicks, type LegendItem, type LineChartData } from './series.js';

export interface AxisOptions {
  xLabel: string;
  yLabel: string;
  /** Fixed ends of the y axis; otherwise the data's range (padded a little). */
  yMin?: number;
  yMax?: number;
  /** Limits of an automatic y range (e.g. 0 and 100 for percentages). */
  yFloor?: number;
  yCeil?: number;
  /** A log2 x axis (batch sizes). */
  xLog2?: boolean;
  /** Tick label suffix on the y axis, e.g. '%'. */
  yUnit?: string;
}

export interface LineChartOptions extends AxisOptions {
  /** CSS pixels. */
  height?: number;
}

export type Ctx2D = CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D;
export type AnyCanvas = HTMLCanvasElement | OffscreenCanvas;

/** What every chart class offers: a size to draw at, a redraw that returns its height (CSS px). */
export interface Chart {
  resize(width: number, dpr: number): void;
  draw(): number;
}

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

export const FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
export const SMALL_FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const AXIS = '#444444';
const GRID = '#e6e6e6';
const TEXT = '#222222';

/** Sizes the canvas's backing store for its CSS size and pixel ratio; a cleared white context. */
export function fitCanvas(canvas: AnyCanvas, width: number, height: number, pixelRatio: number): Ctx2D {
  const dpr = Math.min(3, pixelRatio || 1);
  const w = Math.max(1, Math.round(width * dpr));
  const h = Math.max(1, Math.round(height * dpr));
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  const ctx = canvas.getContext('2d') as Ctx2D;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, width, height);
  return ctx;
}

/** Tick label: compact thousands (12k), up to 3 significant decimals. */
export function formatTick(v: number, step: number): string {
  if (Math.abs(v) >= 10000 && Number.isInteger(v / 1000)) return `${v / 1000}k`;
  const decimals = step >= 1 ? 0 : Math.min(4, Math.ceil(-Math.log10(step) - 1e-9));
  return v.toFixed(decimals);
}

function legendSample(ctx: Ctx2D, item: LegendItem, x: number, y: number): void {
  if (item.fill !== undefined) {
    ctx.globalAlpha = Math.min(1, item.fill * 1.6);
    ctx.fillStyle = item.color;
    ctx.fillRect(x, y - 5, 22, 10);
    ctx.globalAlpha = 1;
    return;
  }
  ctx.strokeStyle = item.color;
  ctx.lineWidth = 2.5;
  ctx.setLineDash(item.dash ?? []);
  ctx.beginPath();
  ctx.moveTo(x, y);
  ctx.lineTo(x + 22, y);
  ctx.stroke();
  ctx.setLineDash([]);
}

/** Draws the legend items in rows within `width` starting at (x, y); returns the height used. */
export function drawLegend(ctx: Ctx2D | null, items: LegendItem[], x: number, y: number, width: number, measure?: Ctx2D): number {
  if (items.length === 0) return 0;
  const m = ctx ?? measure!;
  m.font = FONT;
  const rowH = 18;
  let cx = x;
  let cy = y + rowH / 2;
  for (const item of items) {
    const w = 28 + m.measureText(item.label).width + 14;
    if (cx > x && cx + w > x + width) {
      cx = x;
      cy += rowH;
    }
    if (ctx) {
      legendSample(ctx, item, cx, cy);
      ctx.fillStyle = TEXT;
      ctx.textBaseline = 'middle';
      ctx.textAlign = 'left';
      ctx.fillText(item.label, cx + 28, cy);
    }
    cx += w;
  }
  return cy + rowH / 2 - y + 4;
}

function log2(v: number): number {
  return Math.log(v) / Math.LN2;
}

/** Draws axes, grid, bands and lines of `data` into `box` (which includes room for the labels). */
export function drawPlot(ctx: Ctx2D, box: Box, data: LineChartData, opts: AxisOptions): void {
  const left = opts.yLabel ? 58 : 44;
  const bottom = opts.xLabel ? 38 : 22;
  const plot: Box = { x: box.x + left, y: box.y + 6, w: Math.max(10, box.w - left - 12), h: Math.max(10, box.h - bottom - 6) };

  const range = dataRange(data);
  let yLo = opts.yMin ?? range?.[0] ?? opts.yFloor ?? 0;
  let yHi = opts.yMax ?? range?.[1] ?? opts.yCeil ?? 1;
  const span = yHi - yLo || Math.abs(yHi) * 0.1 || 1;
  if (opts.yMin === undefined) yLo -= span * 0.06;
  if (opts.yMax === undefined) yHi += span * 0.06;
  if (opts.yFloor !== undefined) yLo = Math.max(yLo, opts.yFloor);
  if (opts.yCeil !== undefined) yHi = Math.min(yHi, opts.yCeil);
  if (!(yHi > yLo)) yHi = yLo + 1;
  let xLo = data.xMin ?? Math.min(...data.lines.flatMap((l) => l.xs), 0);
  let xHi = data.xMax ?? Math.max(...data.lines.flatMap((l) => l.xs), 1);
  if (!Number.isFinite(xLo)) xLo = 0;
  if (!Number.isFinite(xHi) || xHi <= xLo) xHi = xLo + 1;
  const fx = opts.xLog2 ? log2 : (v: number) => v;
  const X = (v: number) => plot.x + ((fx(v) - fx(xLo)) / (fx(xHi) - fx(xLo) || 1)) * plot.w;
  const Y = (v: number) => plot.y + plot.h - ((v - yLo) / (yHi - yLo)) * plot.h;

  // Grid and ticks.
  ctx.font = SMALL_FONT;
  ctx.fillStyle = TEXT;
  ctx.lineWidth = 1;
  const yTicks = niceTicks(yLo, yHi, Math.max(2, Math.round(plot.h / 45)));
  const yStep = yTicks.length > 1 ? yTicks[1] - yTicks[0] : 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const t of yTicks) {
    const y = Math.round(Y(t)) + 0.5;
    ctx.strokeStyle = GRID;
    ctx.beginPath();
    ctx.moveTo(plot.x, y);
    ctx.lineTo(plot.x + plot.w, y);
    ctx.stroke();
    ctx.fillText(`${formatTick(t, yStep)}${opts.yUnit ?? ''}`, plot.x - 6, y);
  }
  if (opts.xLog2 && xLo <= 0) {
    xLo = 1;
    xHi = Math.max(xHi, 2);
  }
  const xTicks = opts.xLog2
    ? Array.from({ length: Math.max(0, Math.min(30, Math.floor(log2(xHi)) - Math.ceil(log2(xLo)) + 1)) }, (_, i) => 2 ** (Math.ceil(log2(xLo)) + i))
    : niceTicks(xLo, xHi, Math.max(2, Math.round(plot.w / 90)));
  const xStep = xTicks.length > 1 ? xTicks[1] - xTicks[0] : 1;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (const t of xTicks) {
    const x = Math.round(X(t)) + 0.5;
    ctx.strokeStyle = GRID;
    ctx.beginPath();
    ctx.moveTo(x, plot.y);
    ctx.lineTo(x, plot.y + plot.h);
    ctx.stroke();
    const label = opts.xLog2 ? String(t) : formatTick(t, xStep);
    const half = ctx.measureText(label).width / 2;
    ctx.fillText(label, Math.min(x, box.x + box.w - half - 2), plot.y + plot.h + 5);
  }
  ctx.strokeStyle = AXIS;
  ctx.beginPath();
  ctx.moveTo(plot.x + 0.5, plot.y);
  ctx.lineTo(plot.x + 0.5, plot.y + plot.h + 0.5);
  ctx.lineTo(plot.x + plot.w, plot.y + plot.h + 0.5);
  ctx.stroke();
  ctx.font = FONT;
  if (opts.xLabel) {
    ctx.textAlign = 'center';
    ctx.textBaseline = 'bottom';
    ctx.fillText(opts.xLabel, plot.x + plot.w / 2, box.y + box.h - 2);
  }
  if (opts.yLabel) {
    ctx.save();
    ctx.translate(box.x + 12, plot.y + plot.h / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText(opts.yLabel, 0, 0);
    ctx.restore();
  }

  ctx.save();
  ctx.beginPath();
  ctx.rect(plot.x, plot.y - 2, plot.w + 2, plot.h + 4);
  ctx.clip();
  for (const b of data.bands) {
    const idx = b.xs.map((_, i) => i).filter((i) => Number.isFinite(b.lo[i]) && Number.isFinite(b.hi[i]));
    if (idx.length < 1) continue;
    ctx.globalAlpha = b.alpha;
    ctx.fillStyle = b.color;
    ctx.beginPath();
    idx.forEach((i, k) => (k === 0 ? ctx.moveTo(X(b.xs[i]), Y(b.hi[i])) : ctx.lineTo(X(b.xs[i]), Y(b.hi[i]))));
    for (let k = idx.length - 1; k >= 0; k--) ctx.lineTo(X(b.xs[idx[k]]), Y(b.lo[idx[k]]));
    ctx.closePath();
    ctx.fill();
    ctx.globalAlpha = 1;
  }
  for (const l of data.lines) {
    ctx.strokeStyle = l.color;
    ctx.lineWidth = l.width ?? 2;
    ctx.lineJoin = 'round';
    ctx.setLineDash(l.dash ?? []);
    ctx.beginPath();
    let pen = false;
    for (let i = 0; i < l.xs.length; i++) {
      const v = l.ys[i];
      if (!Number.isFinite(v)) {
        pen = false;
        continue;
      }
      const x = X(l.xs[i]);
      const y = Y(v);
      if (pen) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
      pen = true;
    }
    ctx.stroke();
    ctx.setLineDash([]);
    if (l.markers || l.xs.length === 1) {
      ctx.fillStyle = l.color;
      for (let i = 0; i < l.xs.length; i++) {
        if (!Number.isFinite(l.ys[i])) continue;
        ctx.beginPath();
        ctx.arc(X(l.xs[i]), Y(l.ys[i]), 3.5, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
  }
  ctx.restore();
}

/** `text`, cut with an ellipsis to fit `maxWidth` in the context's current font. */
export function ellipsize(ctx: Ctx2D, text: string, maxWidth: number): string {
  if (ctx.measureText(text).width <= maxWidth) return text;
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (ctx.measureText(`${text.slice(0, mid)}…`).width <= maxWidth) lo = mid;
    else hi = mid - 1;
  }
  return `${text.slice(0, lo)}…`;
}

export function drawPlaceholder(ctx: Ctx2D, box: Box, text: string): void {
  ctx.font = FONT;
  ctx.fillStyle = '#777777';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(text, box.x + box.w / 2, box.y + box.h / 2);
}

/** A line chart of a given width. */
export class LineChart implements Chart {
  readonly canvas: AnyCanvas;
  #opts: LineChartOptions;
  #data: LineChartData | null = null;
  #placeholder = 'Press Run to train';
  #width = 0;
  #dpr = 1;

  constructor(canvas: AnyCanvas, opts: LineChartOptions) {
    this.canvas = canvas;
    this.#opts = opts;
  }

  resize(width: number, dpr: number): void {
    this.#width = width;
    this.#dpr = dpr;
  }

  update(data: LineChartData, options: Partial<AxisOptions> = {}): number {
    this.#data = data;
    Object.assign(this.#opts, options);
    return this.draw();
  }

  reset(placeholder = 'Press Run to train'): number {
    this.#data = null;
    this.#placeholder = placeholder;
    return this.draw();
  }

  draw(): number {
    const width = this.#width;
    const height = this.#opts.height ?? 260;
    if (width === 0) return height;
    const ctx = fitCanvas(this.canvas, width, height, this.#dpr);
    const data = this.#data;
    const legendH = data ? drawLegend(ctx, data.legend, 8, 4, width - 16) : 0;
    const box = { x: 0, y: legendH + 2, w: width, h: height - legendH - 2 };
    const empty = !data || data.lines.every((l) => l.xs.length === 0);
    drawPlot(ctx, box, data ?? { lines: [], bands: [], legend: [] }, this.#opts);
    if (empty) drawPlaceholder(ctx, box, this.#placeholder);
    return height;
  }
}
