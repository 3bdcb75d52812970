import { createHash } from 'node:crypto';
import { App } from 'cdk8s';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { generatedHeader } from './output-dir.js';
import type { Profile } from './profile.js';
import { SandstoreChart } from './sandstore-chart.js';

/** A Kubernetes object as synthesized. */
export interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
  };
  readonly [key: string]: unknown;
}

/** A profile's synthesized YAML: file name → contents, one object per file, in a stable order. */
export type RenderedProfile = ReadonlyMap<string, string>;

/** Composes the profile's chart and returns its objects (pure: no I/O). */
export function synthesizeObjects(profile: Profile): Manifest[] {
  const app = new App();
  const chart = new SandstoreChart(app, profile);
  return chart.toJson() as Manifest[];
}

/** The longest file name Linux (and macOS) filesystems take, in bytes. */
const MAX_FILE_NAME_BYTES = 255;

/**
 * The file an object goes to: `<kind>-<name>.yaml`, readable and free of hashes. A name Kubernetes
 * accepts can still be too long for a file (a StorageClass's may have 253 characters): such a name
 * is cut and ends with 12 hex digits of its SHA-256, so that the file stays unique and stable.
 */
function manifestFileName(m: Manifest): string {
  const kind = m.kind.toLowerCase();
  const plain = `${kind}-${m.metadata.name}.yaml`;
  if (Buffer.byteLength(plain) <= MAX_FILE_NAME_BYTES) return plain;
  const digest = createHash('sha256').update(m.metadata.name).digest('hex').slice(0, 12);
  // Names are ASCII (DNS subdomains), so characters are bytes.
  const keep = MAX_FILE_NAME_BYTES - `${kind}--${digest}.yaml`.length;
  return `${kind}-${m.metadata.name.slice(0, keep)}-${digest}.yaml`;
}

export function renderProfile(profile: Profile): RenderedProfile {
  const files = new Map<string, string>();
  for (const m of synthesizeObjects(profile)) {
    const file = manifestFileName(m);
    if (files.has(file)) throw new Error(`profile "${profile.name}": two objects would both be written to ${file}`);
    files.set(file, generatedHeader(profile.name) + stringify(m, { lineWidth: 0, sortMapEntries: false }));
  }
  return new Map([...files.entries()].sort(([a], [b]) => a.localeCompare(b)));
}

/** How dist/<profile>/ differs from what the code and profile synthesize now; empty when up to date. */
export function staleFiles(outDir: string, profileName: string, expected: RenderedProfile): string[] {
  const dir = join(outDir, profileName);
  const onDisk = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.yaml')) : [];
  const problems: string[] = [];
  for (const [file, text] of expected) {
    if (!onDisk.includes(file)) problems.push(`${profileName}/${file}: missing`);
    else if (readFileSync(join(dir, file), 'utf8') !== text) problems.push(`${profileName}/${file}: differs`);
  }
  for (const file of onDisk) if (!expected.has(file)) problems.push(`${profileName}/${file}: no longer generated`);
  return problems;
}
