import { join } from 'node:path';
import { imageRef, type Profile } from '../profile.js';

/** Where a Sand Store checkout keeps the Dockerfile the image is built from. */
export const DOCKERFILE = join('deploy', 'docker', 'Dockerfile');

/**
 * The argv after `docker` that builds the profile's image. GO_FLAGS is `-tags=a,b` rather than the
 * seed's `-tags a b`: one word with no spaces, so it survives the Dockerfile expanding $GO_FLAGS
 * unquoted, and Go reads comma-separated tags.
 */
export function dockerBuildArgs(profile: Profile, sourcePath: string): string[] {
  const { goTags, platform } = profile.build;
  const goArch = platform.split('/')[1];
  return [
    'build',
    '--platform',
    platform,
    '--target',
    'runner',
    '--file',
    join(sourcePath, DOCKERFILE),
    '--build-arg',
    `TAGS=${goTags.join(' ')}`,
    '--build-arg',
    `GO_FLAGS=-tags=${goTags.join(',')}`,
    '--build-arg',
    'GOOS=linux',
    '--build-arg',
    `GOARCH=${goArch}`,
    '--tag',
    imageRef(profile),
    sourcePath,
  ];
}

/**
 * The registry host an image under `registry` is pushed to, as docker decides it: the first path
 * component when it looks like a host (has a "." or ":" or is "localhost"), else Docker Hub
 * ("myuser" alone means docker.io/myuser).
 */
export function registryHost(registry: string): string {
  const first = registry.split('/')[0];
  const isHost = first.includes('.') || first.includes(':') || first === 'localhost';
  return isHost ? first.toLowerCase() : 'docker.io';
}
