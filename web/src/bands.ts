// Small multiples of percentile bands on one canvas: one panel per method, each with its own y
// axis (pre-normalization activations differ in scale between methods), a shared legend.
import { drawLegend, drawPlaceholder, drawPlot, ellipsize, fitCanvas, FONT, type AnyCanvas, type AxisOptions, type Chart, type Ctx2D } from './linechart.js';
import type { LegendItem, Panel } from './series.js';

export interface PanelChartOptions extends AxisOptions {
  /** Height of one panel in CSS pixels. */
  panelHeight?: number;
  /** Narrowest panel in CSS pixels (sets the number of columns). */
  minPanelWidth?: number;
}

export class BandsChart implements Chart {
  readonly canvas: AnyCanvas;
  #opts: PanelChartOptions;
  #panels: Panel[] = [];
  #legend: LegendItem[] = [];
  #placeholder = 'Press Run to train';
  #width = 0;
  #dpr = 1;

  constructor(canvas: AnyCanvas, opts: PanelChartOptions) {
    this.canvas = canvas;
    this.#opts = opts;
  }

  resize(width: number, dpr: number): void {
    this.#width = width;
    this.#dpr = dpr;
  }

  update(panels: Panel[], legend: LegendItem[]): number {
    this.#panels = panels;
    this.#legend = legend;
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
    const cols = Math.max(1, Math.min(n || 1, Math.max(width >= 340 ? 2 : 1, Math.floor(width / (this.#opts.minPanelWidth ?? 250)))));
    const rows = Math.max(1, Math.ceil(n / cols));
    const panelH = this.#opts.panelHeight ?? 190;
    const measure = this.canvas.getContext('2d') as Ctx2D;
    const legendH = n ? drawLegend(null, this.#legend, 8, 4, width - 16, measure) : 0;
    const height = legendH + 4 + rows * (panelH + 20);
    const ctx = fitCanvas(this.canvas, width, height, this.#dpr);
    if (n === 0) {
      drawPlaceholder(ctx, { x: 0, y: 0, w: width, h: height }, this.#placeholder);
      return height;
    }
    drawLegend(ctx, this.#legend, 8, 4, width - 16);
    const panelW = width / cols;
    this.#panels.forEach((panel, i) => {
      const x = (i % cols) * panelW;
      const y = legendH + 4 + Math.floor(i / cols) * (panelH + 20);
      ctx.font = `600 ${FONT}`;
      ctx.fillStyle = '#222222';
      ctx.textAlign = 'left';
      ctx.textBaseline = 'top';
      ctx.fillText(ellipsize(ctx, panel.title, panelW - 62), x + 58, y + 2);
      const box = { x, y: y + 18, w: panelW, h: panelH };
      drawPlot(ctx, box, panel.data, this.#opts);
      if (panel.data.lines.every((l) => l.xs.length === 0)) drawPlaceholder(ctx, box, 'no records yet');
    });
    return height;
  }
}
