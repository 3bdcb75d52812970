import { App, Chart } from 'cdk8s';
import type { Manifest } from '../lib/synth.js';

/** Builds constructs in a fresh chart and returns the synthesized objects. */
export function synthesize(build: (chart: Chart) => void, props: { namespace?: string; labels?: Record<string, string> } = {}): Manifest[] {
  const app = new App();
  const chart = new Chart(app, 'test', { disableResourceNameHashes: true, ...props });
  build(chart);
  return chart.toJson() as Manifest[];
}

export function find(objects: readonly Manifest[], kind: string, name: string): any {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} among: ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
}

export function ofKind(objects: readonly Manifest[], kind: string): any[] {
  return objects.filter((o) => o.kind === kind);
}

