import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../lib/paths.js';
import { imageRef, parseProfile, type Profile, type ProfileInput } from '../lib/profile.js';
import { buildAndPushImage, ImageBuildError, ImagePreflightError, type ImageOptions } from '../lib/image/build.js';
import { dockerBuildArgs, registryHost } from '../lib/image/docker-args.js';
import { preflight } from '../lib/image/preflight.js';
import ssdRaft from '../profiles/ssd-raft.js';

/**
 * The image flow against real processes: a stub `docker` (test/runner/fixtures/docker-stub.sh) is the
 * only thing on PATH, records every invocation, and fails on request; the source checkout and the
 * docker config are temp directories.
 *
 * test/e2e/image-registry.test.ts proves the flow with a real dockerd and an authenticated registry
 * (no daemon, no login, a wrong password, no Dockerfile, a compile error, a read-only registry, the
 * pushed digest on the real node). The stand-in stays only for what a real daemon cannot be made to
 * do here: show the exact argv the runner passes (build args, platform, target, order of calls);
 * registries other than loopback (Docker Hub's aliases in config.json, credHelpers and credsStore
 * entries, whose helpers and registries this machine does not have); a docker CLI missing from PATH
 * together with other problems; and exit codes of a build or push failing in ways the engine here
 * cannot produce on demand.
 */

let work: string;
let stubBin: string;
let emptyBin: string;
let source: string;
let dockerConfig: string;
let home: string;
let callLog: string;

const hubLogin = { auths: { 'https://index.docker.io/v1/': { auth: Buffer.from('me:secret').toString('base64') } } };

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'sandstore-image-'));
  stubBin = join(work, 'bin');
  emptyBin = join(work, 'empty-bin');
  source = join(work, 'sandstore');
  dockerConfig = join(work, 'docker-config');
  home = join(work, 'home');
  callLog = join(work, 'docker-calls.log');
  for (const dir of [stubBin, emptyBin, join(source, 'deploy', 'docker'), dockerConfig, home])
    mkdirSync(dir, { recursive: true });
  copyFileSync(join(projectRoot(), 'test', 'runner', 'fixtures', 'docker-stub.sh'), join(stubBin, 'docker'));
  chmodSync(join(stubBin, 'docker'), 0o755);
  writeFileSync(join(source, 'deploy', 'docker', 'Dockerfile'), 'FROM scratch AS runner\n');
  writeDockerConfig(hubLogin);
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

function writeDockerConfig(config: unknown, dir = dockerConfig): void {
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
}

/** The stub is the only executable on PATH, so the real docker can never be reached. */
function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: stubBin, DOCKER_CONFIG: dockerConfig, HOME: home, STUB_DOCKER_LOG: callLog, ...extra };
}

/** Each docker invocation so far, as its argv. */
function dockerCalls(): string[][] {
  let text: string;
  try {
    text = readFileSync(callLog, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.split('\t'));
}
const commands = () => dockerCalls().map((argv) => argv[0]);

function profile(
  overrides: { image?: Partial<ProfileInput['image']>; build?: Partial<ProfileInput['build']> } = {},
): Profile {
  return parseProfile('ssd-raft', {
    ...ssdRaft,
    image: { ...ssdRaft.image, ...overrides.image },
    build: { ...ssdRaft.build, ...overrides.build },
  });
}

function options(overrides: Partial<ImageOptions> = {}): ImageOptions & { lines: string[] } {
  const lines: string[] = [];
  return { profile: profile(), sourcePath: source, log: (line) => lines.push(line), env: env(), lines, ...overrides };
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

/** Runs the whole flow, expects a pre-flight refusal, and returns its problems. */
async function preflightRefusal(opts: ImageOptions): Promise<readonly string[]> {
  const error = await rejectionOf(buildAndPushImage(opts));
  expect(error).toBeInstanceOf(ImagePreflightError);
  return (error as ImagePreflightError).problems;
}

describe('the image reference and dockerBuildArgs', () => {
  test('the tag is <registry>/<repository>:<tag> from the profile, as the seed names it', () => {
    expect(imageRef(profile())).toBe('docker.io/sandstore/sandstore-node:ssd-raft-latest');
  });

  test('the build argv carries platform, target, Dockerfile, Go tags, GOOS/GOARCH and the tag', () => {
    expect(dockerBuildArgs(profile(), '/src/sandstore')).toEqual([
      'build',
      '--platform',
      'linux/amd64',
      '--target',
      'runner',
      '--file',
      '/src/sandstore/deploy/docker/Dockerfile',
      '--build-arg',
      'TAGS=grpc etcd',
      '--build-arg',
      'GO_FLAGS=-tags=grpc,etcd',
      '--build-arg',
      'GOOS=linux',
      '--build-arg',
      'GOARCH=amd64',
      '--tag',
      'docker.io/sandstore/sandstore-node:ssd-raft-latest',
      '/src/sandstore',
    ]);
  });

  test('GOARCH follows the profile platform', () => {
    const args = dockerBuildArgs(profile({ build: { platform: 'linux/arm64', goTags: ['grpc'] } }), '/src');
    expect(args.slice(1, 3)).toEqual(['--platform', 'linux/arm64']);
    expect(args).toContain('GOARCH=arm64');
    expect(args).toContain('TAGS=grpc');
    expect(args).toContain('GO_FLAGS=-tags=grpc');
  });

  test.each([
    ['docker.io/sandstore', 'docker.io'],
    ['ghcr.io/someone/images', 'ghcr.io'],
    ['localhost:5000', 'localhost:5000'],
    ['registry.lan:5000/team', 'registry.lan:5000'],
    ['someone', 'docker.io'],
  ])('registry %s is pushed to host %s', (registry, host) => {
    expect(registryHost(registry)).toBe(host);
  });
});

describe('buildAndPushImage', () => {
  test('happy path: docker info, then build with every argument, then push, in that order', async () => {
    const opts = options();
    const result = await buildAndPushImage(opts);

    const image = 'docker.io/sandstore/sandstore-node:ssd-raft-latest';
    expect(result).toEqual({ image, pushed: true, digest: `sha256:${'0'.repeat(64)}` });
    expect(dockerCalls()).toEqual([
      ['info', '--format', '{{.ServerVersion}}'],
      [
        'build',
        '--platform',
        'linux/amd64',
        '--target',
        'runner',
        '--file',
        join(source, 'deploy', 'docker', 'Dockerfile'),
        '--build-arg',
        'TAGS=grpc etcd',
        '--build-arg',
        'GO_FLAGS=-tags=grpc,etcd',
        '--build-arg',
        'GOOS=linux',
        '--build-arg',
        'GOARCH=amd64',
        '--tag',
        image,
        source,
      ],
      ['push', image],
    ]);
    // Docker's own output is streamed through, and each step reports its duration.
    expect(opts.lines).toContain('  #1 [internal] load build definition from Dockerfile');
    expect(opts.lines).toContain(`  The push refers to repository [${image}]`);
    expect(opts.lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^build: done in \d+\.\d s$/),
        expect.stringMatching(/^push: done in \d+\.\d s$/),
      ]),
    );
  });

  test('push: false builds only, and needs no registry credentials', async () => {
    rmSync(join(dockerConfig, 'config.json'));
    const result = await buildAndPushImage(options({ push: false }));
    expect(result).toEqual({ image: 'docker.io/sandstore/sandstore-node:ssd-raft-latest', pushed: false });
    expect(commands()).toEqual(['info', 'build']);
  });

  test("a failed build is not pushed: ImageBuildError for step build with docker's exit code", async () => {
    const opts = options({ env: env({ STUB_DOCKER_BUILD_FAIL: '1' }) });
    const error = await rejectionOf(buildAndPushImage(opts));
    expect(error).toBeInstanceOf(ImageBuildError);
    expect(error).toMatchObject({ step: 'build', dockerExitCode: 3 });
    expect((error as Error).message).toMatch(
      /docker build .* failed \(exit code 3\): ERROR: failed to solve.*Nothing was pushed/,
    );
    expect(commands()).toEqual(['info', 'build']);
    expect(opts.lines).toContainEqual(expect.stringMatching(/^build: failed after \d+\.\d s$/));
  });

  test('a failed push is ImageBuildError for step push, with what to check', async () => {
    const error = await rejectionOf(buildAndPushImage(options({ env: env({ STUB_DOCKER_PUSH_FAIL: '1' }) })));
    expect(error).toBeInstanceOf(ImageBuildError);
    expect(error).toMatchObject({ step: 'push', dockerExitCode: 4 });
    expect((error as Error).message).toMatch(/denied: requested access.*docker login/);
    expect(commands()).toEqual(['info', 'build', 'push']);
  });
});

describe('pre-flight refuses before any build', () => {
  test('no docker CLI on PATH', async () => {
    const problems = await preflightRefusal(options({ env: env({ PATH: emptyBin }) }));
    expect(problems).toEqual([expect.stringMatching(/the docker CLI is not on PATH .*install Docker/)]);
    expect(dockerCalls()).toEqual([]);
  });

  test("daemon down: names the problem with the first line of docker's error", async () => {
    const problems = await preflightRefusal(options({ env: env({ STUB_DOCKER_INFO_FAIL: '1' }) }));
    expect(problems).toEqual([
      expect.stringMatching(
        /^the Docker daemon is not reachable \(`docker info` exit code 1: Cannot connect to the Docker daemon at unix:\/\/\/var\/run\/docker\.sock\. Is the docker daemon running\?\): start Docker/,
      ),
    ]);
    expect(problems[0]).not.toContain('errors pretty printing');
    expect(commands()).toEqual(['info']);
  });

  test("no credentials for the profile's registry while another registry has some", async () => {
    const problems = await preflightRefusal(
      options({ profile: profile({ image: { registry: 'ghcr.io/sandstore' } }) }),
    );
    expect(problems).toEqual([
      expect.stringMatching(
        /^no credentials for registry ghcr\.io in .*config\.json \(it has entries only for: index\.docker\.io\): run `docker login ghcr\.io`/,
      ),
    ]);
    expect(commands()).toEqual(['info']);
  });

  test('no docker config at all', async () => {
    rmSync(join(dockerConfig, 'config.json'));
    const problems = await preflightRefusal(options());
    expect(problems).toEqual([
      expect.stringMatching(
        /^no credentials for registry docker\.io: .*config\.json does not exist; run `docker login`/,
      ),
    ]);
    expect(commands()).toEqual(['info']);
  });

  test('source checkout without deploy/docker/Dockerfile', async () => {
    rmSync(join(source, 'deploy', 'docker', 'Dockerfile'));
    const problems = await preflightRefusal(options());
    expect(problems).toEqual([
      expect.stringMatching(
        /^the source path .* has no deploy\/docker\/Dockerfile: --source must be the root of a Sand Store checkout/,
      ),
    ]);
    expect(commands()).toEqual(['info']);
  });

  test('source path that does not exist', async () => {
    const problems = await preflightRefusal(options({ sourcePath: join(work, 'nowhere') }));
    expect(problems).toEqual([expect.stringMatching(/^the source path .*nowhere does not exist: pass --source=/)]);
  });

  test('several problems are reported together', async () => {
    const opts = options({
      profile: profile({ image: { registry: 'ghcr.io/sandstore' } }),
      sourcePath: join(work, 'nowhere'),
      env: env({ STUB_DOCKER_INFO_FAIL: '1' }),
    });
    const error = await rejectionOf(buildAndPushImage(opts));
    expect(error).toBeInstanceOf(ImagePreflightError);
    const { problems, message, details, exitCode } = error as ImagePreflightError;
    expect(problems).toEqual([
      expect.stringMatching(/Docker daemon is not reachable/),
      expect.stringMatching(/no credentials for registry ghcr\.io/),
      expect.stringMatching(/nowhere does not exist/),
    ]);
    // A refusal (exit code 2): the CLI prints the message, then each problem on its own line.
    expect({ message, details, exitCode }).toEqual({
      message: 'cannot build the image (3 problems); nothing was built or pushed and no cluster was contacted:',
      details: problems,
      exitCode: 2,
    });
    expect(commands()).toEqual(['info']);
  });

  test('no docker, no credentials and no source: all three reported', async () => {
    rmSync(join(dockerConfig, 'config.json'));
    const problems = await preflightRefusal(
      options({ sourcePath: join(work, 'nowhere'), env: env({ PATH: emptyBin }) }),
    );
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/docker CLI is not on PATH/);
  });
});

describe('registry credentials', () => {
  const ghcr = () => profile({ image: { registry: 'ghcr.io/sandstore' } });
  const problemsWith = (config: unknown, p = ghcr()) => {
    writeDockerConfig(config);
    return preflight(options({ profile: p }));
  };

  test('a credHelpers entry for the host counts, and is named in the log', async () => {
    writeDockerConfig({ ...hubLogin, credHelpers: { 'ghcr.io': 'gcloud' } });
    const opts = options({ profile: ghcr() });
    expect(await preflight(opts)).toEqual([]);
    expect(opts.lines).toContain(
      'pre-flight: credentials for ghcr.io: credHelpers["ghcr.io"] (docker-credential-gcloud)',
    );
  });

  test('a credsStore counts (as docker login with a keychain leaves it: an empty auths entry)', async () => {
    writeDockerConfig({ auths: { 'ghcr.io': {} }, credsStore: 'desktop' });
    const opts = options({ profile: ghcr() });
    expect(await preflight(opts)).toEqual([]);
    expect(opts.lines).toContainEqual(
      expect.stringMatching(/^pre-flight: credentials for ghcr\.io: credsStore "desktop"/),
    );
  });

  test('an auths entry under https://<host> counts', async () => {
    expect(await problemsWith({ auths: { 'https://ghcr.io': { auth: 'eDp5' } } })).toEqual([]);
  });

  test('an auths entry without auth or token, and no store, does not count', async () => {
    expect(await problemsWith({ auths: { 'ghcr.io': {} } })).toEqual([
      expect.stringMatching(/no credentials for registry ghcr\.io/),
    ]);
  });

  test('docker.io is found under https://index.docker.io/v1/, which docker login writes', async () => {
    const opts = options();
    expect(await preflight(opts)).toEqual([]);
    expect(opts.lines).toContainEqual(
      expect.stringMatching(/^pre-flight: credentials for docker\.io: auths\["https:\/\/index\.docker\.io\/v1\/"\]/),
    );
  });

  test('docker.io credentials do not count for another registry, nor the other way round', async () => {
    expect(await problemsWith({ auths: { 'ghcr.io': { auth: 'eDp5' } } }, profile())).toEqual([
      expect.stringMatching(/no credentials for registry docker\.io .*: run `docker login`,/),
    ]);
  });

  test('without DOCKER_CONFIG, ~/.docker/config.json is read', async () => {
    mkdirSync(join(home, '.docker'));
    writeDockerConfig(hubLogin, join(home, '.docker'));
    rmSync(join(dockerConfig, 'config.json'));
    const { DOCKER_CONFIG: _unused, ...withoutConfig } = env();
    expect(await preflight(options({ env: withoutConfig }))).toEqual([]);
  });

  test('a registry on this machine that answers nothing is left to the push (no problem found here)', async () => {
    rmSync(join(dockerConfig, 'config.json'));
    expect(await preflight(options({ profile: profile({ image: { registry: 'localhost:5000' } }) }))).toEqual([]);
  });
});
