/**
 * Line charts as one standalone SVG document, for the curves the bench draws
 * (bench/scale_bench.ts writes `bench/out/scale.svg`): panels stacked one
 * above the other on a shared x axis (logarithmic or linear), each with its
 * own y axis (linear from 0, or logarithmic), its legend, and each series as
 * a line through its points with a dot on each.
 *
 * @example Two panels on one x axis
 * ```ts ignore
 * import { lineChart } from "./_svg.ts";
 *
 * const svg = lineChart({
 *   title: "Rate and memory",
 *   xLabel: "sockets",
 *   panels: [
 *     { yLabel: "round trips/s", series: [{ name: "rate", points: [[1, 5e4], [1000, 9e4]] }] },
 *     { yLabel: "B/socket", yLog: true, series: [{ name: "memory", points: [[1, 900], [1000, 700]] }] },
 *   ],
 * });
 * Deno.writeTextFileSync("chart.svg", svg);
 * ```
 *
 * @module
 */

/** One line of a panel. */
export interface Series {
  /** The legend's text for it. */
  name: string;
  /**
   * `[x, y]` pairs, drawn in x order; a point with a non-finite coordinate,
   * or one that is not above 0 on a logarithmic axis, is left out.
   */
  points: readonly (readonly [number, number])[];
  /** Drawn dashed (e.g. the reference a series is compared with). */
  dashed?: boolean;
}

/** One plot with its own y axis. */
export interface Panel {
  /** The y axis's label. */
  yLabel: string;
  /** The lines. */
  series: readonly Series[];
  /** A logarithmic y axis with a tick per power of ten (default: linear from 0). */
  yLog?: boolean;
}

/** What {@linkcode lineChart} draws. */
export interface ChartOptions {
  /** The heading above the panels. */
  title: string;
  /** The shared x axis's label, under the last panel. */
  xLabel: string;
  /** The panels, top to bottom. */
  panels: readonly Panel[];
  /** A logarithmic x axis with a tick per power of ten (default `true`). */
  xLog?: boolean;
  /** Width in pixels (default 760). */
  width?: number;
  /** Height of each panel's plot area in pixels (default 220). */
  plotHeight?: number;
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];
const LEFT = 90;
const RIGHT = 30;
const LEGEND_ROW = 18;

/**
 * Renders `options` as an SVG document.
 *
 * @param options The title, the x label and the panels.
 * @returns The document's text, starting with the XML declaration.
 * @throws {RangeError} If there is no panel or no point to draw.
 */
export function lineChart(options: ChartOptions): string {
  const width = options.width ?? 760;
  const plotHeight = options.plotHeight ?? 220;
  const xLog = options.xLog ?? true;
  let color = 0;
  const panels = options.panels.map((p) => ({
    ...p,
    series: p.series.map((s) => ({
      ...s,
      color: COLORS[color++ % COLORS.length],
      points: s.points
        .filter(([x, y]) =>
          Number.isFinite(x) && Number.isFinite(y) && (!xLog || x > 0) && (!p.yLog || y > 0)
        )
        .toSorted((a, b) => a[0] - b[0]),
    })),
  }));
  const xs = panels.flatMap((p) => p.series.flatMap((s) => s.points.map(([x]) => x)));
  if (xs.length === 0) throw new RangeError("lineChart: no point to draw");
  const xTicks = xLog ? decades(Math.min(...xs), Math.max(...xs)) : niceTicks(Math.max(...xs));
  const [x0, x1] = [xTicks[0], xTicks[xTicks.length - 1]];
  const right = width - RIGHT;
  const xMap = (x: number): number => LEFT + scale(x, x0, x1, xLog) * (right - LEFT);

  const body: string[] = [
    text(width / 2, 26, options.title, { anchor: "middle", size: 16, weight: "bold" }),
  ];
  let top = 44;
  for (const panel of panels) {
    // The legend, wrapped to the width, then the plot under it.
    let lx = LEFT, ly = top + 12;
    for (const s of panel.series) {
      const w = 34 + s.name.length * 6.6;
      if (lx + w > right && lx > LEFT) {
        lx = LEFT;
        ly += LEGEND_ROW;
      }
      const dash = s.dashed ? ` stroke-dasharray="6 4"` : "";
      body.push(
        `<line x1="${num(lx)}" y1="${num(ly - 4)}" x2="${num(lx + 24)}" y2="${num(ly - 4)}" ` +
          `stroke="${s.color}" stroke-width="2"${dash}/>`,
        text(lx + 30, ly, s.name, { anchor: "start" }),
      );
      lx += w + 16;
    }
    const plotTop = ly + 14, plotBottom = plotTop + plotHeight;
    const ys = panel.series.flatMap((s) => s.points.map(([, y]) => y));
    const yTicks = panel.yLog
      ? decades(ys.length ? Math.min(...ys) : 1, ys.length ? Math.max(...ys) : 10)
      : niceTicks(ys.length ? Math.max(...ys) : 1);
    const [y0, y1] = [yTicks[0], yTicks[yTicks.length - 1]];
    const yMap = (y: number): number =>
      plotBottom - scale(y, y0, y1, panel.yLog ?? false) * plotHeight;
    for (const t of xTicks) {
      body.push(line(xMap(t), plotTop, xMap(t), plotBottom, "#e5e5e5"));
      body.push(text(xMap(t), plotBottom + 16, formatTick(t), { anchor: "middle" }));
    }
    for (const t of yTicks) {
      body.push(line(LEFT, yMap(t), right, yMap(t), "#e5e5e5"));
      body.push(text(LEFT - 8, yMap(t) + 4, formatTick(t), { anchor: "end" }));
    }
    body.push(line(LEFT, plotBottom, right, plotBottom, "#333"));
    body.push(line(LEFT, plotTop, LEFT, plotBottom, "#333"));
    body.push(
      text(22, (plotTop + plotBottom) / 2, panel.yLabel, { anchor: "middle", rotate: true }),
    );
    for (const s of panel.series) {
      const coords = s.points.map(([x, y]) => [num(xMap(x)), num(yMap(y))]);
      const dash = s.dashed ? ` stroke-dasharray="6 4"` : "";
      body.push(`<g class="series" data-name="${escapeXml(s.name)}">`);
      body.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="2"${dash} ` +
          `points="${coords.map((c) => c.join(",")).join(" ")}"/>`,
      );
      for (const [cx, cy] of coords) {
        body.push(`<circle cx="${cx}" cy="${cy}" r="3.5" fill="${s.color}"/>`);
      }
      body.push(`</g>`);
    }
    top = plotBottom + 30;
  }
  body.push(text((LEFT + right) / 2, top + 4, options.xLabel, { anchor: "middle" }));
  const height = Math.ceil(top + 20);
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeXml(options.title)}</title>`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    ...body,
    `</svg>`,
  ].join("\n") + "\n";
}

/** Where `v` falls between `lo` and `hi`, 0 to 1, on a linear or log scale. */
function scale(v: number, lo: number, hi: number, log: boolean): number {
  if (log) return (Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo) || 1);
  return (v - lo) / (hi - lo || 1);
}

/** The powers of ten from at or below `min` to at or above `max`. */
function decades(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(min)), hi = Math.max(lo + 1, Math.ceil(Math.log10(max)));
  return Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i));
}

/** 0 and round steps (1, 2 or 5 × a power of ten) up to at or above `max`. */
function niceTicks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw)!;
  const ticks = [0];
  while (ticks[ticks.length - 1] < max) ticks.push(ticks.length * step);
  return ticks;
}

/** A tick label: 1,000 as "1k", 2,500,000 as "2.5M". */
function formatTick(v: number): string {
  const short = (x: number): string => Number(x.toPrecision(3)).toString();
  if (Math.abs(v) >= 1e6) return `${short(v / 1e6)}M`;
  if (Math.abs(v) >= 1e3) return `${short(v / 1e3)}k`;
  return short(v);
}

function num(v: number): string {
  return v.toFixed(1);
}

function line(x1: number, y1: number, x2: number, y2: number, stroke: string): string {
  return `<line x1="${num(x1)}" y1="${num(y1)}" x2="${num(x2)}" y2="${num(y2)}" ` +
    `stroke="${stroke}"/>`;
}

function text(
  x: number,
  y: number,
  content: string,
  style: { anchor: "start" | "middle" | "end"; size?: number; weight?: string; rotate?: boolean },
): string {
  const attrs = [`x="${num(x)}"`, `y="${num(y)}"`, `text-anchor="${style.anchor}"`];
  if (style.size) attrs.push(`font-size="${style.size}"`);
  if (style.weight) attrs.push(`font-weight="${style.weight}"`);
  if (style.rotate) attrs.push(`transform="rotate(-90 ${num(x)} ${num(y)})"`);
  return `<text ${attrs.join(" ")}>${escapeXml(content)}</text>`;
}

/**
 * Escapes the five characters XML gives a meaning to.
 *
 * @param s Text.
 * @returns Text safe in an element or an attribute.
 */
export function escapeXml(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;").replaceAll("'", "&apos;");
}
