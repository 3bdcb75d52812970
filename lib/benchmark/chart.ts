/**
 * The comparison as a picture: latency percentiles (p50, p95, p99) and throughput per operation,
 * one bar series per group (the median over its runs), and over a bar whose group has several runs
 * a whisker for the bootstrap 95% confidence interval of that median. Drawn offline:
 * echarts' server-side SVG renderer, then resvg for the PNG, with a font that ships in
 * node_modules (dejavu-fonts-ttf), so a machine with no fonts installed still gets its labels.
 *
 * echarts and resvg (a native binary) are imported when a chart is drawn, not when this module is
 * loaded: the runner's other commands never pay for them.
 */
import { createRequire } from 'node:module';
import type {
  BarSeriesOption,
  CustomSeriesOption,
  CustomSeriesRenderItemAPI,
  CustomSeriesRenderItemParams,
  CustomSeriesRenderItemReturn,
  EChartsOption,
  SeriesOption,
} from 'echarts';
import { OPERATIONS, type Operation } from './record.js';
import type { GroupResult, OperationStats, Spread } from './runs.js';

/** The SVG's size in CSS pixels. */
export const CHART_WIDTH = 1600;
export const CHART_HEIGHT = 1000;
/** The PNG is drawn at twice the SVG's size, so that it stays sharp in a README and when zoomed. */
export const PNG_SCALE = 2;

/** The family echarts names in the SVG and resvg finds in FONT_FILES. */
export const FONT_FAMILY = 'DejaVu Sans';
const FONT_FILES = ['dejavu-fonts-ttf/ttf/DejaVuSans.ttf', 'dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf'];

/** The font files, resolved from this module (also from the runner's bundle, which lives under node_modules). */
export function chartFontFiles(): string[] {
  const require = createRequire(import.meta.url);
  return FONT_FILES.map((f) => require.resolve(f));
}

/**
 * Advance widths of DejaVu Sans and DejaVu Sans Bold (2.37) for the characters 32 to 126, in
 * thousandths of an em, read from the font files. echarts lays out text (legend, titles, axis
 * labels) with a width table of Arial when it has no canvas to measure with; DejaVu is wider, so
 * with Arial's table a legend's entries ran into each other.
 */
const DEJAVU_WIDTHS = {
  regular: [
    318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636, 636, 636, 636, 636,
    636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686, 698, 770, 632, 575, 775, 752, 295, 295, 656, 557, 863,
    748, 787, 603, 787, 695, 635, 611, 732, 684, 989, 685, 611, 685, 390, 337, 390, 838, 500, 500, 613, 635, 550, 635,
    615, 352, 635, 634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 411, 521, 392, 634, 592, 818, 592, 592, 525, 636,
    337, 636, 838,
  ],
  bold: [
    348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365, 696, 696, 696, 696, 696, 696, 696,
    696, 696, 696, 400, 400, 838, 838, 838, 580, 1000, 774, 762, 734, 830, 683, 683, 821, 837, 372, 372, 775, 637, 995,
    837, 850, 733, 850, 770, 720, 682, 812, 774, 1103, 771, 724, 725, 457, 365, 457, 838, 500, 500, 675, 716, 593, 716,
    678, 435, 716, 712, 343, 343, 665, 343, 1042, 712, 687, 716, 716, 493, 595, 478, 712, 652, 924, 645, 652, 582, 712,
    365, 712, 838,
  ],
} as const;
/** Any other character (an en dash is 500, most letters beyond ASCII about this). */
const OTHER_WIDTH = 650;

/**
 * The width in pixels of `text` in `font` (a CSS font shorthand such as `bold 16px DejaVu Sans`) as
 * resvg will draw it.
 */
export function textWidth(text: string, font = `12px ${FONT_FAMILY}`): number {
  const size = Number(/(\d+(?:\.\d+)?)px/.exec(font)?.[1] ?? 12);
  const table = /\bbold(er)?\b|\b[6-9]00\b/.test(font) ? DEJAVU_WIDTHS.bold : DEJAVU_WIDTHS.regular;
  let em = 0;
  for (const ch of text) em += table[(ch.codePointAt(0) ?? 0) - 32] ?? OTHER_WIDTH;
  return (em / 1000) * size;
}

/** A bar's layout, fixed here so that a whisker can be placed over the centre of its bar. */
const BAR_CATEGORY_GAP = 0.3;
const BAR_GAP = 0.2;
/** A single group's bars would otherwise fill the whole category. */
const BAR_MAX_WIDTH = 80;

/** What the chart's titles say about the runs. */
export interface ChartText {
  readonly title: string;
  readonly subtitle: string;
}

interface Panel {
  readonly title: string;
  readonly axisName: string;
  readonly value: (s: OperationStats) => Spread;
  readonly log: boolean;
}

/** Values spanning more than this factor get a log axis, so that the short bars are not flat lines. */
const LOG_RATIO = 20;

/** Every value a panel draws: each bar's median and its whisker's ends. */
function values(
  results: readonly GroupResult[],
  ops: readonly Operation[],
  pick: (s: OperationStats) => Spread,
): number[] {
  return results.flatMap((r) =>
    ops
      .map((op) => r.operations[op])
      .filter((s): s is OperationStats => s !== undefined)
      .flatMap((s) => {
        const { median, interval } = pick(s);
        return interval ? [median, interval.low, interval.high] : [median];
      }),
  );
}

function wantsLog(all: readonly number[]): boolean {
  const positive = all.filter((v) => v > 0);
  if (positive.length === 0) return false;
  return Math.max(...positive) / Math.min(...positive) > LOG_RATIO;
}

function panels(results: readonly GroupResult[], ops: readonly Operation[]): Panel[] {
  const latency = (title: string, pick: (s: OperationStats) => Spread) => ({ title, pick });
  // One decision for the three latency panels: the same scale reads the same way in each.
  const latencies = [
    latency('p50 latency', (s) => s.p50),
    latency('p95 latency', (s) => s.p95),
    latency('p99 latency', (s) => s.p99),
  ];
  const latencyLog = wantsLog(latencies.flatMap((l) => values(results, ops, l.pick)));
  const throughput = (s: OperationStats) => s.opsPerSecond;
  const throughputLog = wantsLog(values(results, ops, throughput));
  const scale = (log: boolean) => (log ? ' (log scale)' : '');
  return [
    ...latencies.map((l) => ({
      title: `${l.title} in ms${scale(latencyLog)}`,
      axisName: `${l.title} (ms)`,
      value: l.pick,
      log: latencyLog,
    })),
    {
      title: `throughput in successful ops/s${scale(throughputLog)}`,
      axisName: 'successful operations per second',
      value: throughput,
      log: throughputLog,
    },
  ];
}

const LEGEND_TOP = 84;
const LEGEND_FONT_SIZE = 14;
const LEGEND_ITEM_GAP = 28;
const LEGEND_ROW_HEIGHT = 26;
/** echarts' legend symbol (25 px) and the gap after it. */
const LEGEND_SYMBOL = 30;
const MARGIN = 40;
const PANEL_TITLE_HEIGHT = 34;

/** How many rows the legend wraps into: echarts fills a row, left to right, up to the chart's width. */
export function legendRows(names: readonly string[]): number {
  let rows = 1;
  let x = 0;
  for (const name of names) {
    const item = LEGEND_SYMBOL + textWidth(name, `${LEGEND_FONT_SIZE}px ${FONT_FAMILY}`);
    if (x > 0 && x + item > CHART_WIDTH - 2 * MARGIN) {
      rows += 1;
      x = 0;
    }
    x += item + LEGEND_ITEM_GAP;
  }
  return rows;
}

interface Box {
  readonly left: number;
  readonly top: number;
  readonly width: number;
  readonly height: number;
}

/** Where each of the four panels sits (its title above; axis labels and names inside), two by two under the legend. */
function panelBox(i: number, legendBottom: number): Box {
  const col = i % 2;
  const row = Math.floor(i / 2);
  const gap = 60;
  const width = (CHART_WIDTH - 2 * MARGIN - gap) / 2;
  const rowHeight = (CHART_HEIGHT - legendBottom - MARGIN) / 2;
  return {
    left: MARGIN + col * (width + gap),
    top: legendBottom + row * rowHeight + PANEL_TITLE_HEIGHT,
    width,
    height: rowHeight - PANEL_TITLE_HEIGHT - 28,
  };
}

/** A log axis cannot place zero: a zero (or missing) value is left out there. */
const plotted = (v: number | undefined, log: boolean) => (v === undefined || (log && v <= 0) ? null : v);

/**
 * A bar's value in two significant digits (thousands as k): the table has the exact numbers, and
 * a short label fits over a narrow bar.
 */
export function barLabel(value: number): string {
  if (value >= 1000) return `${Number((value / 1000).toPrecision(2))}k`;
  return String(Number(value.toPrecision(2)));
}

/**
 * Where a log axis starts: a power of ten at least a factor of two below the smallest value, so
 * that every bar grows up from it and the shortest is still seen.
 */
function logFloor(all: readonly number[]): number | undefined {
  const positive = all.filter((v) => v > 0);
  return positive.length > 0 ? 10 ** Math.floor(Math.log10(Math.min(...positive) / 2)) : undefined;
}

/** Where a log axis ends: a power of ten with room above the tallest bar (or whisker) for its label. */
function logCeiling(all: readonly number[]): number | undefined {
  const positive = all.filter((v) => v > 0);
  return positive.length > 0 ? 10 ** Math.ceil(Math.log10(Math.max(...positive) * 1.5)) : undefined;
}

const SERIES_COLORS = [
  '#4e79a7',
  '#f28e2b',
  '#59a14f',
  '#e15759',
  '#76b7b2',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
];
const WHISKER_COLOR = '#222222';
/** The name the whiskers have in the legend. */
export const INTERVAL_LEGEND = '95% CI of the median (bootstrap)';
/** An I-beam, the legend's symbol for a whisker. */
const WHISKER_ICON = 'path://M0,0h12v2h-5v16h5v2h-12v-2h5v-16h-5z';

function barSeries(
  result: GroupResult,
  ops: readonly Operation[],
  panel: Panel,
  i: number,
  color: string,
): BarSeriesOption {
  return {
    type: 'bar',
    name: result.group.label,
    xAxisIndex: i,
    yAxisIndex: i,
    barGap: `${BAR_GAP * 100}%`,
    barCategoryGap: `${BAR_CATEGORY_GAP * 100}%`,
    barMaxWidth: BAR_MAX_WIDTH,
    itemStyle: { color },
    data: ops.map((op) => {
      const s = result.operations[op];
      return plotted(s ? panel.value(s).median : undefined, panel.log);
    }),
  };
}

/** One bar's annotation: its value, and the interval of its median when the group has several runs. */
type Mark = [category: number, median: number, low: number, high: number, group: number, whisker: number];

function marks(results: readonly GroupResult[], ops: readonly Operation[], panel: Panel): Mark[] {
  return results
    .flatMap((r, g) =>
      ops.map((op, c): Mark | undefined => {
        const s = r.operations[op];
        if (!s) return undefined;
        const v = panel.value(s);
        const [median, lo, hi] = [
          plotted(v.median, panel.log),
          plotted(v.interval?.low, panel.log),
          plotted(v.interval?.high, panel.log),
        ];
        if (median === null) return undefined;
        const whisker = lo !== null && hi !== null;
        return [c, median, whisker ? lo : median, whisker ? hi : median, g, whisker ? 1 : 0];
      }),
    )
    .filter((m): m is Mark => m !== undefined);
}

const LABEL_FONT_SIZE = 11;

/**
 * Each bar's value over it (over its whisker when it has one), and the whisker of a group with
 * several runs, the 95% interval of its median: a custom series, because echarts has no error
 * bars. It finds a bar's centre from the category's width and the fixed gaps above. Labels wider
 * than their bars are turned upright.
 */
function markSeries(
  results: readonly GroupResult[],
  ops: readonly Operation[],
  panel: Panel,
  i: number,
): CustomSeriesOption {
  const k = results.length;
  const data = marks(results, ops, panel);
  const labelFont = `${LABEL_FONT_SIZE}px ${FONT_FAMILY}`;
  // One orientation for a whole panel: a mix of upright and level labels reads as noise.
  const widest = Math.max(0, ...data.map((m) => textWidth(barLabel(m[1]), labelFont)));
  const renderItem = (
    _params: CustomSeriesRenderItemParams,
    api: CustomSeriesRenderItemAPI,
  ): CustomSeriesRenderItemReturn => {
    const [c, median, lo, hi, g, whiskered] = [0, 1, 2, 3, 4, 5].map((d) => Number(api.value(d))) as Mark;
    const band = (api.size?.([1, 0]) as number[] | undefined)?.[0] ?? 0;
    // echarts centres the category's bars: k bars and k - 1 gaps, each bar at most BAR_MAX_WIDTH.
    const bar = Math.min(BAR_MAX_WIDTH, (band * (1 - BAR_CATEGORY_GAP)) / (k + BAR_GAP * (k - 1)));
    const bars = bar * (k + BAR_GAP * (k - 1));
    const x = (api.coord([c, median])[0] ?? 0) - bars / 2 + g * bar * (1 + BAR_GAP) + bar / 2;
    const y = (v: number) => api.coord([c, v])[1] ?? 0;
    const style = { stroke: WHISKER_COLOR, lineWidth: 1.5 };
    const cap = Math.min(7, bar / 3);
    const whisker = whiskered
      ? [
          { type: 'line' as const, shape: { x1: x, y1: y(lo), x2: x, y2: y(hi) }, style },
          { type: 'line' as const, shape: { x1: x - cap, y1: y(lo), x2: x + cap, y2: y(lo) }, style },
          { type: 'line' as const, shape: { x1: x - cap, y1: y(hi), x2: x + cap, y2: y(hi) }, style },
        ]
      : [];
    const text = barLabel(median);
    const top = Math.min(y(median), y(hi)) - 4;
    const upright = widest > bar * (1 + BAR_GAP) - 2;
    const label = {
      type: 'text' as const,
      x,
      y: top,
      rotation: upright ? Math.PI / 2 : 0,
      style: {
        text,
        fill: '#333333',
        fontSize: LABEL_FONT_SIZE,
        fontFamily: FONT_FAMILY,
        align: upright ? ('left' as const) : ('center' as const),
        verticalAlign: upright ? ('middle' as const) : ('bottom' as const),
      },
    };
    return { type: 'group', children: [...whisker, label] };
  };
  return {
    type: 'custom',
    name: INTERVAL_LEGEND,
    xAxisIndex: i,
    yAxisIndex: i,
    data,
    renderItem,
    z: 10,
    silent: true,
    itemStyle: { color: WHISKER_COLOR },
  };
}

/** The echarts option: titles, a shared legend, four panels. */
export function chartOption(results: readonly GroupResult[], text: ChartText): EChartsOption {
  const ops = OPERATIONS.filter((op) => results.some((r) => r.operations[op]));
  const shown = results.filter((r) => ops.some((op) => r.operations[op]));
  const ps = panels(shown, ops);
  const whiskers = shown.some((r) => ops.some((op) => (r.operations[op]?.n ?? 0) > 1));
  const color = (g: number) => SERIES_COLORS[g % SERIES_COLORS.length] ?? '#4e79a7';
  const names = shown.map((r) => r.group.label);
  const legendBottom =
    LEGEND_TOP + legendRows([...names, ...(whiskers ? [INTERVAL_LEGEND] : [])]) * LEGEND_ROW_HEIGHT + 20;
  const boxes = ps.map((_, i) => panelBox(i, legendBottom));
  return {
    animation: false,
    backgroundColor: '#ffffff',
    textStyle: { fontFamily: FONT_FAMILY },
    title: [
      {
        text: text.title,
        subtext: text.subtitle,
        left: 'center',
        top: 14,
        textStyle: { fontSize: 22, fontWeight: 'bold', color: '#222222' },
        subtextStyle: { fontSize: 13, color: '#555555' },
      },
      ...boxes.map((box, i) => ({
        text: ps[i]?.title,
        left: box.left + 10,
        top: box.top - PANEL_TITLE_HEIGHT,
        textStyle: { fontSize: 16, fontWeight: 'bold' as const, color: '#222222' },
      })),
    ],
    legend: {
      top: LEGEND_TOP,
      left: 'center',
      width: CHART_WIDTH - 2 * MARGIN,
      itemGap: LEGEND_ITEM_GAP,
      textStyle: { fontSize: LEGEND_FONT_SIZE, color: '#222222' },
      data: [
        ...names,
        ...(whiskers ? [{ name: INTERVAL_LEGEND, icon: WHISKER_ICON, itemStyle: { color: WHISKER_COLOR } }] : []),
      ],
    },
    grid: boxes.map((box) => ({ ...box, outerBoundsMode: 'same' as const, outerBoundsContain: 'all' as const })),
    xAxis: ps.map((_, i) => ({
      type: 'category' as const,
      gridIndex: i,
      data: [...ops],
      axisLabel: { fontSize: 13, color: '#333333' },
      axisTick: { alignWithLabel: true },
    })),
    yAxis: ps.map((p, i) => {
      const start = p.log ? logFloor(values(shown, ops, p.value)) : undefined;
      const end = p.log ? logCeiling(values(shown, ops, p.value)) : undefined;
      return {
        type: p.log ? ('log' as const) : ('value' as const),
        gridIndex: i,
        ...(start === undefined ? {} : { min: start, startValue: start }),
        ...(end === undefined ? {} : { max: end }),
        name: p.axisName,
        nameLocation: 'middle' as const,
        nameGap: 50,
        nameTextStyle: { fontSize: 13, color: '#333333' },
        axisLabel: { fontSize: 12, color: '#333333', formatter: (v: number) => barLabel(v) },
        splitLine: { lineStyle: { color: '#e6e6e6' } },
      };
    }),
    series: ps.flatMap((p, i): SeriesOption[] => [
      ...shown.map((r, g) => barSeries(r, ops, p, i, color(g))),
      markSeries(shown, ops, p, i),
    ]),
  };
}

/** The chart as SVG text, by echarts' server-side renderer (no DOM, no canvas). */
export async function renderSvg(option: EChartsOption): Promise<string> {
  const echarts = await import('echarts');
  echarts.setPlatformAPI({ measureText: (text, font) => ({ width: textWidth(text, font) }) });
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width: CHART_WIDTH, height: CHART_HEIGHT });
  try {
    chart.setOption(option);
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}

export interface Png {
  readonly data: Buffer;
  readonly width: number;
  readonly height: number;
}

/**
 * The SVG as PNG, by resvg, with only `fontFiles` for text (never the machine's fonts: the picture
 * is the same everywhere).
 */
export async function svgToPng(svg: string, fontFiles: readonly string[] = chartFontFiles()): Promise<Png> {
  const { Resvg } = await import('@resvg/resvg-js');
  const resvg = new Resvg(svg, {
    font: {
      fontFiles: [...fontFiles],
      loadSystemFonts: false,
      defaultFontFamily: FONT_FAMILY,
      sansSerifFamily: FONT_FAMILY,
    },
    fitTo: { mode: 'zoom', value: PNG_SCALE },
    background: '#ffffff',
    logLevel: 'off',
  });
  const image = resvg.render();
  return { data: image.asPng(), width: image.width, height: image.height };
}
