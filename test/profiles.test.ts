import { expect } from '@jest/globals';
import { parse } from 'yaml';
import { distDir } from '../lib/paths.js';
import type { Profile } from '../lib/profile.js';
import { listProfiles, loadProfile } from '../lib/profiles.js';
import { renderProfile, staleFiles, synthesizeObjects } from '../lib/synth.js';
import { renderedProblems } from '../lib/manifest-checks.js';

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

  test('passes the restricted, label and runtime-contract checks (lib/manifest-checks.ts)', () => {
    const profile = profiles.get(name)!;
    expect(renderedProblems(profile, renderProfile(profile))).toEqual([]);
  });

  test('the files parse back to the objects', () => {
    const parsed = [...renderProfile(profiles.get(name)!).values()].map((text) => parse(text) as unknown);
    expect(parsed).toEqual(expect.arrayContaining(JSON.parse(JSON.stringify(objects())) as unknown[]));
  });
});
