/**
 * cdk8s entry point: pick the profile(s), compose, synthesize into dist/<profile>/. Nothing else.
 *
 *   npm run synth                          every profile
 *   npm run synth -- --profile=ssd-raft    one profile; touches only dist/ssd-raft/
 *   npm run synth -- --check               write nothing; exit 1 if dist/ is stale
 */
import { Command, Option } from 'commander';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { recordRender } from './lib/freshness.js';
import { distDir } from './lib/paths.js';
import { ProfileError, type Profile } from './lib/profile.js';
import { listProfiles, loadProfile, UnknownProfileError } from './lib/profiles.js';
import { orphanedOutputs, renderProfile, staleFiles, writeProfileAtomically, type RenderedProfile } from './lib/synth.js';

const program = new Command('synth')
  .description('Synthesize Sand Store manifests from profiles/ into dist/<profile>/')
  .addOption(new Option('--profile <name>', 'synthesize only this profile (default: every profile)'))
  .addOption(new Option('--check', 'write nothing; exit 1 if dist/ differs from what the code synthesizes'))
  .addOption(new Option('--outdir <dir>', 'output directory').env('CDK8S_OUTDIR').default(distDir(), 'dist/'))
  .showHelpAfterError();
program.parse();
const opts = program.opts<{ profile?: string; check?: boolean; outdir: string }>();

async function main(): Promise<number> {
  const names = opts.profile === undefined ? listProfiles() : [opts.profile];
  // Validate and render everything before writing anything: one bad profile writes nothing.
  const rendered = new Map<string, RenderedProfile>();
  const profiles = new Map<string, Profile>();
  const failures: string[] = [];
  for (const name of names) {
    try {
      const profile: Profile = await loadProfile(name);
      profiles.set(name, profile);
      rendered.set(name, renderProfile(profile));
    } catch (err) {
      if (err instanceof UnknownProfileError) {
        console.error(`synth: ${err.message}`);
        return 2;
      }
      failures.push(err instanceof ProfileError ? err.message : `profile "${name}": ${(err as Error).message}`);
    }
  }
  if (failures.length > 0) {
    console.error(`synth: nothing written.\n${failures.join('\n')}`);
    return 1;
  }

  const orphans = opts.profile === undefined ? orphanedOutputs(opts.outdir, names) : [];
  if (opts.check) {
    const stale = [...rendered].flatMap(([name, files]) => staleFiles(opts.outdir, name, files));
    stale.push(...orphans.map((o) => `${o}/: no such profile any more`));
    if (stale.length > 0) {
      console.error(`synth --check: dist/ is stale; run \`npm run synth\` and commit the result:\n${stale.map((s) => `  - ${s}`).join('\n')}`);
      return 1;
    }
    for (const [name, files] of rendered) recordRender(profiles.get(name)!, files);
    console.log(`synth --check: dist/ is up to date (${names.join(', ')})`);
    return 0;
  }
  for (const [name, files] of rendered) {
    writeProfileAtomically(opts.outdir, name, files);
    // So that the runner knows this output fresh without rendering it again.
    recordRender(profiles.get(name)!, files);
    console.log(`synth: ${name}: ${files.size} files in ${join(opts.outdir, name)}`);
  }
  for (const orphan of orphans) {
    rmSync(join(opts.outdir, orphan), { recursive: true, force: true });
    console.log(`synth: removed ${orphan}/ (no such profile)`);
  }
  return 0;
}

process.exitCode = await main();
