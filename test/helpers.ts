import { App, Chart } from 'cdk8s';
import type { Manifest } from '../lib/synth.js';

/** Builds constructs in a fresh chart and returns the synthesized objects. */
export function synthesize(
  build: (chart: Chart) => void,
  props: { namespace?: string; labels?: Record<string, string> } = {},
): Manifest[] {
  const app = new App();
  const chart = new Chart(app, 'test', { disableResourceNameHashes: true, ...props });
  build(chart);
  return chart.toJson() as Manifest[];
}

export { find, findIn, ofKind, type Expected } from '../lib/k8s-types.js';
