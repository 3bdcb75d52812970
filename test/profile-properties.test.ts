import { App, Chart } from 'cdk8s';
import fc from 'fast-check';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EtcdControlPlane } from '../lib/constructs/etcd-control-plane/index.js';
import { LocalSsdStorage } from '../lib/constructs/local-ssd-storage/index.js';
import { SandstoreCluster, type SandstoreClusterProps } from '../lib/constructs/sandstore-cluster/index.js';
import { distDir, profilesDir } from '../lib/paths.js';
import { fieldName, imageRef, parseProfile, ProfileError, type Profile } from '../lib/profile.js';
import { listProfiles } from '../lib/profiles.js';
import { SandstoreChart } from '../lib/sandstore-chart.js';
import { renderProfile } from '../lib/synth.js';
import { renderedProblems } from '../lib/manifest-checks.js';

/**
 * Property tests: from each shipped profile, many mutated ones (wrong types, out-of-range numbers,
 * odd strings, missing and extra keys, at every depth). Each is either refused by a ProfileError
 * that names every problem by field, or accepted and rendered (in memory) into output that passes
 * lib/manifest-checks.ts; nothing else is thrown and nothing is written. And the schema and the
 * constructs accept exactly the same values.
 *
 * Cases per property: PROFILE_PROPERTY_RUNS, by default what CI runs; raise it for a longer search.
 * Each run draws new cases; PROFILE_PROPERTY_SEED=<seed fast-check printed> replays a failure.
 */
const RUNS = Number(process.env.PROFILE_PROPERTY_RUNS ?? 300);
const SEED = process.env.PROFILE_PROPERTY_SEED;
const RUN_OPTIONS: fc.Parameters<unknown> = { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: Number(SEED) }) };

type Path = readonly (string | number)[];
type Mutation =
  | { readonly kind: 'replace'; readonly path: Path; readonly value: unknown }
  | { readonly kind: 'delete'; readonly path: Path }
  | { readonly kind: 'add'; readonly path: Path; readonly key: string; readonly value: unknown };

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const kindOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** Every path in `value`, the root's included. */
function pathsOf(value: unknown, at: Path = []): Path[] {
  const children = Array.isArray(value)
    ? value.map((v, i) => [i, v] as const)
    : isPlainObject(value)
      ? Object.entries(value)
      : [];
  return [at, ...children.flatMap(([key, child]) => pathsOf(child, [...at, key]))];
}

/** The value at `path`, and whether it is there (as an own property all the way). */
function lookUp(value: unknown, path: Path): { found: boolean; value?: unknown } {
  let current = value;
  for (const key of path) {
    if (typeof current !== 'object' || current === null || !Object.hasOwn(current, key)) return { found: false };
    current = (current as Record<string | number, unknown>)[key];
  }
  return { found: true, value: current };
}

/** Sets an own property, even one named "__proto__" (plain assignment would set the prototype). */
function setOwn(target: object, key: string | number, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** `base` with the mutations applied in turn; one whose place is gone by then is left out. */
function mutated(base: unknown, mutations: readonly Mutation[]): unknown {
  let root = structuredClone(base);
  for (const m of mutations) {
    if (m.path.length === 0 && m.kind === 'replace') {
      root = m.value;
      continue;
    }
    const parent = m.kind === 'add' ? lookUp(root, m.path) : lookUp(root, m.path.slice(0, -1));
    if (!parent.found || typeof parent.value !== 'object' || parent.value === null) continue;
    const container = parent.value as Record<string | number, unknown>;
    const key = m.path[m.path.length - 1];
    if (m.kind === 'add') setOwn(container, m.key, m.value);
    else if (!Object.hasOwn(container, key)) continue;
    else if (m.kind === 'replace') setOwn(container, key, m.value);
    else if (Array.isArray(container)) container.splice(Number(key), 1);
    else delete container[key];
  }
  return root;
}

/** Strings a typo, a paste or an editor could make of `original`, and stranger ones. */
function oddString(original: string): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom(
      ` ${original}`,
      `${original} `,
      `\t${original}`,
      `${original}\n`,
      `${original}\u00a0`,
      `\u200b${original}`,
      `\ufeff${original}`,
      original.toUpperCase(),
      `${original}-x`,
      `${original}.x`,
      `x/${original}`,
      `${original}:1`,
      `${original}/`,
      `${original}..x`,
      '',
      ' ',
      '\n',
      '\ud800',
      `${original}\udc00`,
      'é',
      'kube-system',
      'default',
      '0',
      '-1',
      '0Mi',
      '0.5',
      '500m',
      '1e3',
      'https://x',
    ),
    fc.constantFrom(63, 64, 128, 129, 253, 254, 256, 10_000).map((length) => 'a'.repeat(length)),
    fc.string({ unit: 'binary', maxLength: 12 }),
    fc.string({ unit: 'grapheme', maxLength: 12 }),
    fc.string({ unit: 'grapheme-ascii', maxLength: 30 }),
  );
}

/** Numbers around `original` and the edges of every numeric rule, and any double. */
function oddNumber(original: number): fc.Arbitrary<number> {
  return fc.oneof(
    fc.constantFrom(
      0,
      -0,
      -1,
      1,
      2,
      3,
      4,
      5,
      7,
      8,
      9,
      original - 1,
      original + 1,
      original + 2,
      original * 2,
      original + 0.5,
      -original,
      501,
      503,
      29_999,
      30_000,
      32_767,
      32_768,
      2 ** 31,
      2 ** 53 - 1,
      2 ** 53,
      1e21,
      9_223_372_036_855,
      Number.MAX_VALUE,
      Number.MIN_VALUE,
      NaN,
      Infinity,
      -Infinity,
    ),
    fc.integer({ min: -10, max: 600 }),
    fc.double(),
  );
}

/** Values of every other type. */
const otherType = fc.constantFrom<unknown>(null, true, false, 0, 1, -1, '', 'x', [], {}, ['x'], { x: 1 }, 3n);

/** Edits of `original` that a profile could well make, most of them valid: so that many cases render. */
function plausibleValue(original: string | number): fc.Arbitrary<unknown> {
  if (typeof original === 'number')
    return fc.constantFrom(original + 2, original * 3, original + 10, Math.max(1, original - 2));
  return fc.constantFrom(
    `${original}-x`,
    `${original}2`,
    `x${original}`,
    original.toLowerCase(),
    original.length > 1 ? original.slice(0, -1) : original,
  );
}

function oddValue(original: unknown): fc.Arbitrary<unknown> {
  if (typeof original === 'string')
    return fc.oneof({ weight: 4, arbitrary: oddString(original) }, { weight: 1, arbitrary: otherType });
  if (typeof original === 'number')
    return fc.oneof({ weight: 4, arbitrary: oddNumber(original) }, { weight: 1, arbitrary: otherType });
  return fc.oneof(otherType, fc.jsonValue({ maxDepth: 2 }));
}

/** Keys no schema field and no label key has: each added one is a problem wherever it goes. */
const extraKey = fc.oneof(
  fc.constantFrom('', ' ', '__proto__', 'x y', 'replica ', ' name', 'é', '\u0000', 'a\nb', '-x'),
  fc.string({ unit: 'binary', maxLength: 8 }).map((s) => ` ${s}`),
);

function mutation(base: unknown): fc.Arbitrary<Mutation> {
  const paths = pathsOf(base);
  const objects = paths.filter((p) => isPlainObject(lookUp(base, p).value));
  const leaves = paths.filter((p) => ['string', 'number'].includes(typeof lookUp(base, p).value));
  // `at` holds paths whose values `values` takes (leaves are strings and numbers, as filtered above).
  const replace = <T>(at: Path[], values: (original: T) => fc.Arbitrary<unknown>) =>
    fc
      .constantFrom(...at)
      .chain((path) =>
        values(lookUp(base, path).value as T).map((value): Mutation => ({ kind: 'replace', path, value })),
      );
  return fc.oneof(
    { weight: 4, arbitrary: replace(paths, oddValue) },
    { weight: 3, arbitrary: replace(leaves, plausibleValue) },
    {
      weight: 2,
      arbitrary: fc
        .constantFrom(...paths.filter((p) => p.length > 0))
        .map((path): Mutation => ({ kind: 'delete', path })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom(...objects), extraKey, fc.jsonValue({ maxDepth: 1 }))
        .map(([path, key, value]): Mutation => ({ kind: 'add', path, key, value })),
    },
  );
}

/**
 * The places the mutations certainly made wrong, still there at the end: a value of another type
 * than the shipped one's, or an added key (none is a field or a label key).
 */
function certainProblems(base: unknown, input: unknown, mutations: readonly Mutation[]): Path[] {
  return mutations.flatMap((m): Path[] => {
    if (m.kind === 'add') return lookUp(input, [...m.path, m.key]).found ? [[...m.path, m.key]] : [];
    if (m.kind === 'delete') return [];
    const now = lookUp(input, m.path);
    const stillThere = now.found && Object.is(now.value, m.value);
    return stillThere && kindOf(m.value) !== kindOf(lookUp(base, m.path).value) ? [m.path] : [];
  });
}

const isPrefix = (ancestor: Path, path: Path) =>
  ancestor.length <= path.length && ancestor.every((key, i) => String(key) === String(path[i]));

/** Refused: a ProfileError whose every problem starts with a field's path, and names each certain problem. */
function checkRefusal(name: string, err: unknown, places: { known: Path[]; certain: Path[] }): void {
  if (!(err instanceof ProfileError))
    throw new Error(`refused with something other than a ProfileError: ${(err as Error)?.stack ?? String(err)}`);
  if (err.problems.length === 0) throw new Error('a ProfileError with no problem');
  if (!err.message.startsWith(`profile "${name}" is invalid (${err.problems.length} problem`))
    throw new Error(`the message does not count the problems: ${err.message}`);
  const fields = err.problems.map((problem) => {
    const field = places.known
      .filter(
        (p) =>
          problem.startsWith(`${fieldName(p)}: got `) ||
          problem.startsWith(`${fieldName(p)}: unknown field; accepted fields here: `),
      )
      .sort((a, b) => b.length - a.length)[0];
    if (field === undefined) throw new Error(`a problem that does not start with a field's path: ${problem}`);
    if (problem.includes('\n')) throw new Error(`a problem over more than one line: ${problem}`);
    return field;
  });
  for (const place of places.certain) {
    if (!fields.some((field) => isPrefix(field, place))) {
      throw new Error(
        `${fieldName(place)} is wrong, but no problem names it or a field above it:\n${err.problems.join('\n')}`,
      );
    }
  }
}

/** Every file under `dir`, with size and modification time: what "nothing written" is checked against. */
function treeState(dir: string): Record<string, string> {
  const state: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else state[p] = `${statSync(p).size} ${statSync(p).mtimeMs}`;
    }
  };
  walk(dir);
  return state;
}

const names = listProfiles();
const shipped = new Map<string, unknown>();
let before: Record<string, string>;
beforeAll(async () => {
  for (const name of names)
    shipped.set(name, ((await import(`../profiles/${name}.js`)) as { default: unknown }).default);
  before = { ...treeState(distDir()), ...treeState(profilesDir()) };
});
afterAll(() => {
  expect({ ...treeState(distDir()), ...treeState(profilesDir()) }).toEqual(before);
});

describe.each(names)('mutations of profile %s', (name) => {
  test(`are refused naming every problem by field, or render output that passes every check (${RUNS} cases)`, () => {
    const base = shipped.get(name);
    const mutations = fc.oneof(
      { weight: 2, arbitrary: mutation(base).map((m) => [m]) },
      { weight: 1, arbitrary: fc.array(mutation(base), { minLength: 2, maxLength: 4 }) },
    );
    fc.assert(
      fc.property(mutations, (mutations) => {
        const input = mutated(base, mutations);
        let profile: Profile;
        try {
          profile = parseProfile(name, input);
        } catch (err) {
          checkRefusal(name, err, {
            known: [...pathsOf(input), ...pathsOf(base)],
            certain: certainProblems(base, input, mutations),
          });
          return;
        }
        const problems = renderedProblems(profile, renderProfile(profile));
        if (problems.length > 0) throw new Error(`accepted, but its output is wrong:\n${problems.join('\n')}`);
      }),
      RUN_OPTIONS,
    );
  });
});

/**
 * A field of the profile and the construct prop it becomes: set to a value like `sample`, the
 * construct (built with nothing else unusual) must throw exactly when the schema refuses the profile.
 */
/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-assignment --
   `build` is handed values that break its field's type on purpose (the odd strings and numbers the
   schema must refuse), so its parameter can be of no type but any. */
interface SharedRule {
  readonly field: Path;
  readonly sample: string | number;
  readonly build: (value: any, profile: Profile) => void;
}

const inChart = (build: (chart: Chart) => void) => build(new Chart(new App(), 'parity', { namespace: 'parity' }));
const etcdControlPlane = (props: ConstructorParameters<typeof EtcdControlPlane>[2]) =>
  inChart((chart) => new EtcdControlPlane(chart, 'etcd', props));
const localSsdStorage = (props: ConstructorParameters<typeof LocalSsdStorage>[2]) =>
  inChart((chart) => new LocalSsdStorage(chart, 'storage', props));
const sandstoreCluster = (profile: Profile, props: Partial<SandstoreClusterProps>) =>
  inChart(
    (chart) =>
      new SandstoreCluster(chart, 'sandstore', {
        etcd: new EtcdControlPlane(chart, 'etcd'),
        image: imageRef(profile),
        ...props,
      }),
  );

const SHARED_RULES: readonly SharedRule[] = [
  {
    field: ['namespace'],
    sample: 'sandstore',
    build: (namespace, p) => new SandstoreChart(new App(), { ...p, namespace }),
  },
  {
    field: ['image', 'registry'],
    sample: 'docker.io/sandstore',
    build: (registry, p) => sandstoreCluster(p, { image: imageRef({ ...p, image: { ...p.image, registry } }) }),
  },
  {
    field: ['image', 'tag'],
    sample: 'ssd-raft-latest',
    build: (tag, p) => sandstoreCluster(p, { image: imageRef({ ...p, image: { ...p.image, tag } }) }),
  },
  {
    field: ['raft', 'replicas'],
    sample: 3,
    build: (replicas, p) =>
      sandstoreCluster(p, { replicas, externalAccess: { basePort: p.clientAccess.nodePortBase } }),
  },
  {
    field: ['raft', 'maxBatchSize'],
    sample: 64,
    build: (maxBatchSize, p) => sandstoreCluster(p, { raft: { maxBatchSize } }),
  },
  {
    field: ['raft', 'maxBatchWaitMs'],
    sample: 10,
    build: (maxBatchWaitMs, p) => sandstoreCluster(p, { raft: { maxBatchWaitMs } }),
  },
  {
    field: ['raft', 'snapshotThresholdLogs'],
    sample: 1000,
    build: (snapshotThresholdLogs, p) => sandstoreCluster(p, { raft: { snapshotThresholdLogs } }),
  },
  { field: ['storage', 'sizePerPod'], sample: '20Gi', build: (storageSize, p) => sandstoreCluster(p, { storageSize }) },
  {
    field: ['clientAccess', 'nodePortBase'],
    sample: 30080,
    build: (basePort, p) => sandstoreCluster(p, { externalAccess: { basePort } }),
  },
  {
    field: ['clientAccess', 'advertiseHost'],
    sample: '192.168.1.20',
    build: (advertiseHost, p) => sandstoreCluster(p, { externalAccess: { advertiseHost } }),
  },
  {
    field: ['resources', 'sandstore', 'limits', 'memory'],
    sample: '2Gi',
    build: (memory, p) =>
      sandstoreCluster(p, {
        resources: { ...p.resources.sandstore, limits: { ...p.resources.sandstore.limits, memory } },
      }),
  },
  { field: ['etcd', 'replicas'], sample: 1, build: (replicas) => etcdControlPlane({ replicas }) },
  { field: ['etcd', 'image'], sample: 'quay.io/coreos/etcd:v3.5.0', build: (image) => etcdControlPlane({ image }) },
  { field: ['etcd', 'storageSize'], sample: '1Gi', build: (storageSize) => etcdControlPlane({ storageSize }) },
  {
    field: ['resources', 'etcd', 'requests', 'cpu'],
    sample: '200m',
    build: (cpu, p) =>
      etcdControlPlane({ resources: { ...p.resources.etcd, requests: { ...p.resources.etcd.requests, cpu } } }),
  },
  {
    field: ['storage', 'className'],
    sample: 'sandstore-local-ssd',
    build: (storageClassName) => localSsdStorage({ storageClassName }),
  },
  {
    field: ['storage', 'provisioner'],
    sample: 'rancher.io/local-path',
    build: (provisioner) => localSsdStorage({ provisioner }),
  },
  {
    field: ['storage', 'reclaimPolicy'],
    sample: 'Delete',
    build: (reclaimPolicy) => localSsdStorage({ reclaimPolicy }),
  },
  {
    field: ['storage', 'nodePath'],
    sample: '/var/lib/sandstore-node/ext4',
    build: (nodePath) => localSsdStorage({ nodePath }),
  },
  {
    field: ['nodeSelection', 'ssdTaint', 'key'],
    sample: 'node.sandstore.io/disk',
    build: (key) => localSsdStorage({ taint: { key } }),
  },
  {
    field: ['nodeSelection', 'ssdTaint', 'value'],
    sample: 'ssd',
    build: (value) => localSsdStorage({ taint: { key: 'k', value } }),
  },
];
/* eslint-enable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-assignment */

test(`the schema and the constructs accept the same values, field by field (${RUNS} cases)`, () => {
  const base = shipped.get('ssd-raft');
  const profile = parseProfile('ssd-raft', base);
  const cases = fc.constantFrom(...SHARED_RULES).chain((rule) =>
    (typeof rule.sample === 'number' ? oddNumber(rule.sample) : oddString(rule.sample)).map((value) => ({
      rule,
      value,
    })),
  );
  fc.assert(
    fc.property(cases, ({ rule, value }) => {
      // Set whether or not the shipped profile has it (ssd-raft has no advertiseHost).
      const input = structuredClone(base);
      setOwn(lookUp(input, rule.field.slice(0, -1)).value as object, rule.field[rule.field.length - 1], value);
      const refusedBySchema = throws(() => parseProfile('ssd-raft', input));
      const refusedByConstruct = throws(() => rule.build(value, profile));
      if (refusedBySchema !== refusedByConstruct) {
        throw new Error(
          `${fieldName(rule.field)} = ${JSON.stringify(value)}: ${refusedBySchema ? 'refused' : 'accepted'} by the schema, ${refusedByConstruct ? 'refused' : 'accepted'} by the construct`,
        );
      }
    }),
    RUN_OPTIONS,
  );
});

function throws(run: () => void): boolean {
  try {
    run();
    return false;
  } catch {
    return true;
  }
}
