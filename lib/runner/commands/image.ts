import { buildAndPushImage } from '../../image/build.js';
import { loadProfile } from '../../profiles.js';
import { profileOption, sourceOption, type LocalCommand } from './command.js';

/** `image` (Flow 1): build the profile's image and push it; never talks to a cluster. */
export const imageCommand: LocalCommand<{ source: string; push: boolean }> = {
  name: 'image',
  description: "build the profile's image for its platform (build.platform) and push it (Flow 1); no cluster call",
  local: true,
  configure: (command) =>
    command
      .addOption(profileOption())
      .addOption(sourceOption('Sand Store source checkout (holds deploy/docker/Dockerfile)'))
      .option('--no-push', 'build only'),
  run: async (report, opts) => {
    const profile = await loadProfile(opts.profile);
    const result = await buildAndPushImage({
      profile,
      sourcePath: opts.source,
      push: opts.push,
      log: (line) => report.info(line),
    });
    report.success(result.digest ? `${result.image} built and pushed: ${result.digest}` : `${result.image} built`);
  },
};
