/**
 * cdk8s entry point: pick the profile(s), compose, synthesize into dist/<profile>/. Nothing else.
 *
 *   npm run synth                          every profile
 *   npm run synth -- --profile=ssd-raft    one profile; touches only dist/ssd-raft/
 *   npm run synth -- --check               write nothing; exit 1 if dist/ is stale
 *   npx cdk8s synth                        every profile into cdk8s.out/ (cdk8s.yaml; CDK8S_OUTDIR), then validated
 *
 * Exit codes: 0 written (or up to date); 1 --check found dist/ stale, or writing failed; 2 refused
 * with nothing written or deleted (bad arguments, an unknown, broken or invalid profile, an output
 * path that is not the synth's or cannot be used, files in it the synth did not write).
 */
import { Command, CommanderError, Option } from 'commander';
import { join } from 'node:path';
import { CommandError, fileSystemFailure, isFileSystemError } from './lib/errors.js';
import { recordRender } from './lib/freshness.js';
import { strictOptionValues } from './lib/options.js';
import {
  checkWritable,
  hasOutputMarker,
  OUTPUT_MARKER,
  planOutput,
  removeOrphan,
  writeProfileAtomically,
} from './lib/output-dir.js';
import { distDir } from './lib/paths.js';
import type { Profile } from './lib/profile.js';
import { listProfiles, loadProfile, UnknownProfileError } from './lib/profiles.js';
import type { RenderedProfile } from './lib/synth.js';

const EXIT_REFUSED = 2;

/** The command line; built inside the error handling below, since its default (dist/) needs the project's root. */
function synthProgram(): Command {
  const program = new Command('synth')
    .description('Synthesize Sand Store manifests from profiles/ into dist/<profile>/')
    .addOption(new Option('--profile <name>', 'synthesize only this profile (default: every profile)'))
    .addOption(new Option('--check', 'write nothing; exit 1 if dist/ differs from what the code synthesizes'))
    .addOption(new Option('--outdir <dir>', 'output directory').env('CDK8S_OUTDIR').default(distDir(), 'dist/'))
    .showHelpAfterError('(add --help for the options)')
    .exitOverride();
  return strictOptionValues(program);
}

async function main(opts: { profile?: string; check?: boolean; outdir: string }): Promise<number> {
  const names = opts.profile === undefined ? listProfiles() : [opts.profile];
  // Load and validate every profile, check the output path, render, and only then write anything:
  // one bad profile, or one file the synth did not write, writes nothing.
  const profiles = new Map<string, Profile>();
  const failures: string[] = [];
  for (const name of names) {
    try {
      profiles.set(name, await loadProfile(name));
    } catch (err) {
      if (err instanceof UnknownProfileError) throw err;
      failures.push(
        err instanceof CommandError ? err.message : `profile "${name}" cannot be loaded: ${(err as Error).message}`,
      );
    }
  }
  if (failures.length > 0) return nothingWritten(failures);

  // Refuses an output path that is not ours and files we did not write (before cdk8s is even loaded).
  const plan = planOutput(opts.outdir, names, opts.profile === undefined ? names : undefined);
  if (!opts.check) checkWritable(opts.outdir);

  // cdk8s is loaded only now: a refusal above costs no more than reading the profiles.
  const { renderProfile, staleFiles } = await import('./lib/synth.js');
  const rendered = new Map<string, RenderedProfile>();
  for (const [name, profile] of profiles) {
    try {
      rendered.set(name, renderProfile(profile));
    } catch (err) {
      // A construct's own check (a value the schema let through) is a refusal too: nothing is written.
      failures.push(`profile "${name}" cannot be synthesized: ${(err as Error).message}`);
    }
  }
  if (failures.length > 0) return nothingWritten(failures);

  if (opts.check) {
    const stale = [...rendered].flatMap(([name, files]) => staleFiles(opts.outdir, name, files));
    stale.push(...plan.orphans.map((o) => `${o}/: no such profile any more`));
    if (!hasOutputMarker(opts.outdir))
      stale.push(`${OUTPUT_MARKER}: missing (the file that marks the directory as the synth's)`);
    if (stale.length > 0) {
      console.error(
        `synth --check: dist/ is stale; run \`npm run synth\` and commit the result:\n${stale.map((s) => `  - ${s}`).join('\n')}`,
      );
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
  for (const orphan of plan.orphans) {
    removeOrphan(opts.outdir, orphan);
    console.log(`synth: removed ${orphan}/ (no such profile; it held only synthesized files)`);
  }
  return 0;
}

function nothingWritten(failures: readonly string[]): number {
  console.error(`synth: nothing written.\n${failures.join('\n')}`);
  return EXIT_REFUSED;
}

/** Every failure as a sentence with its exit code; a stack trace only on request (SANDSTORE_DEBUG). */
function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_REFUSED; // printed by commander
  if (err instanceof CommandError) {
    console.error([`synth: ${err.message}`, ...err.details.map((d) => `  ${d}`)].join('\n'));
    return err.exitCode;
  }
  // The file system said no (permissions, a full or read-only disk): what and where, not a bug.
  if (isFileSystemError(err)) return exitCodeFor(fileSystemFailure(err));
  const e = err as NodeJS.ErrnoException;
  console.error(
    `synth: internal error: ${e?.message ?? String(err)} (a bug in sandstore-deploy; run again with SANDSTORE_DEBUG=1 for the stack trace and report it)`,
  );
  if (process.env.SANDSTORE_DEBUG) console.error(e?.stack ?? String(err));
  return 1;
}

try {
  const program = synthProgram();
  program.parse();
  process.exitCode = await main(program.opts<{ profile?: string; check?: boolean; outdir: string }>());
} catch (err) {
  process.exitCode = exitCodeFor(err);
}
