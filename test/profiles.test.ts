import { parse } from 'yaml';
import { DEPLOY_PHASE_ANNOTATION, LabelKeys, MANAGED_BY, PART_OF } from '../lib/labels.js';
import { distDir } from '../lib/paths.js';
import type { Profile } from '../lib/profile.js';
import { listProfiles, loadProfile } from '../lib/profiles.js';
import { renderProfile, staleFiles, synthesizeObjects } from '../lib/synth.js';
import { podTemplates, restrictedViolations } from './helpers.js';

const names = listProfiles();
const profiles = new Map<string, Profile>();
beforeAll(async () => {
  for (const name of names) profiles.set(name, await loadProfile(name));
});

test('the shipped profiles are there', () => {
  expect(names).toEqual(expect.arrayContaining(['local', 'raft5-etcd3', 'ssd-raft']));
});

describe.each(names)('profile %s', (name) => {
  const objects = () => synthesizeObjects(profiles.get(name)!);

  test('synthesizes the YAML in the snapshot', () => {
    expect(Object.fromEntries(renderProfile(profiles.get(name)!))).toMatchSnapshot();
  });

  test('is deterministic: the same profile gives byte-identical files', () => {
    expect(renderProfile(profiles.get(name)!)).toEqual(renderProfile(profiles.get(name)!));
  });

  test('dist/ is up to date with the code (run `npm run synth` and commit if this fails)', () => {
    expect(staleFiles(distDir(), name, renderProfile(profiles.get(name)!))).toEqual([]);
  });

  test('every object, pod template and claim template carries the profile labels', () => {
    const expected = { [LabelKeys.partOf]: PART_OF, [LabelKeys.managedBy]: MANAGED_BY, [LabelKeys.profile]: name, [LabelKeys.instance]: name };
    for (const o of objects() as any[]) {
      expect({ object: `${o.kind}/${o.metadata.name}`, labels: o.metadata.labels }).toMatchObject({ labels: expected });
      expect(o.metadata.labels[LabelKeys.name]).toBeTruthy();
      expect(o.metadata.labels[LabelKeys.component]).toBeTruthy();
      expect(o.metadata.annotations?.[DEPLOY_PHASE_ANNOTATION]).toBeTruthy();
      if (o.spec?.template) expect(o.spec.template.metadata.labels).toMatchObject(expected);
      for (const claim of o.spec?.volumeClaimTemplates ?? []) expect(claim.metadata.labels).toMatchObject(expected);
    }
  });

  test('every pod passes the Pod Security Standard "restricted", and the namespace enforces it', () => {
    for (const { owner, template } of podTemplates(objects())) {
      expect({ owner, problems: restrictedViolations(template.spec) }).toEqual({ owner, problems: [] });
    }
    const ns = objects().find((o) => o.kind === 'Namespace')!;
    expect(ns.metadata.labels).toMatchObject({ 'pod-security.kubernetes.io/enforce': 'restricted' });
  });

  test('storage-heavy pods are placed on SSD nodes and claim from the SSD class', () => {
    const p = profiles.get(name)!;
    for (const sts of objects().filter((o) => o.kind === 'StatefulSet') as any[]) {
      const pod = sts.spec.template.spec;
      expect(pod.nodeSelector).toEqual(p.nodeSelection.nodeSelector);
      if (p.nodeSelection.ssdTaint) expect(pod.tolerations).toEqual([expect.objectContaining({ key: p.nodeSelection.ssdTaint.key })]);
      expect(sts.spec.volumeClaimTemplates[0].spec.storageClassName).toBe(p.storage.className);
    }
  });

  test('the files parse back to the objects', () => {
    const parsed = [...renderProfile(profiles.get(name)!).values()].map((text) => parse(text));
    expect(parsed).toEqual(expect.arrayContaining(JSON.parse(JSON.stringify(objects()))));
  });
});
