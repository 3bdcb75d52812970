/**
 * The image check: every registry the deploy's containers pull from answers its API (/v2/) from
 * this machine. Profiles name no pull secret, so credentials are not checked: a registry that
 * answers 401 is reachable and says what it wants. This machine is not the node: a registry it
 * cannot reach may still be reachable from the nodes (and the other way round), so a registry that
 * does not answer is a warning, not a problem.
 */
import { parseImageRef, registryBase } from '../../benchmark/image-binaries.js';
import type { CheckInput, Finding } from './checks.js';

/** How long a registry may take to answer /v2/. */
const REGISTRY_ANSWER_MS = 5000;

/** The images the deploy's pods run (init containers too), each once. */
export function imagesOf(manifests: CheckInput['manifests']): string[] {
  const spec = (m: unknown) =>
    (
      m as {
        spec?: { template?: { spec?: { containers?: { image: string }[]; initContainers?: { image: string }[] } } };
      }
    ).spec?.template?.spec;
  return [
    ...new Set(
      manifests.flatMap((m) =>
        [...(spec(m)?.containers ?? []), ...(spec(m)?.initContainers ?? [])].map((c) => c.image),
      ),
    ),
  ];
}

/** Whether the registry's API answers, and how: undefined when it does (200 or 401), else what went wrong. */
export async function registryProblem(registry: string): Promise<string | undefined> {
  const url = `${registryBase(registry)}/v2/`;
  const deadline = new AbortController();
  const timer = setTimeout(
    () => deadline.abort(new Error(`no answer within ${REGISTRY_ANSWER_MS / 1000} s`)),
    REGISTRY_ANSWER_MS,
  );
  try {
    const res = await fetch(url, { signal: deadline.signal });
    await res.body?.cancel();
    return res.status === 200 || res.status === 401 ? undefined : `${url} answered ${res.status}`;
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return `${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`;
  } finally {
    clearTimeout(timer);
  }
}

export async function registryFinding(input: CheckInput): Promise<Finding> {
  const byRegistry = new Map<string, string[]>();
  for (const image of imagesOf(input.manifests)) {
    const { registry } = parseImageRef(image);
    byRegistry.set(registry, [...(byRegistry.get(registry) ?? []), image]);
  }
  const problems = (
    await Promise.all([...byRegistry.keys()].map(async (r) => [r, await registryProblem(r)] as const))
  ).filter(([, p]) => p !== undefined);
  const note = 'profiles name no pull secret, so only reachability from this machine is checked';
  if (problems.length === 0)
    return {
      check: 'image',
      verdict: 'ok',
      text: `registr${byRegistry.size === 1 ? 'y' : 'ies'} ${[...byRegistry.keys()].join(', ')} answer${byRegistry.size === 1 ? 's' : ''} /v2/ (${note})`,
    };
  const local = problems.some(([r]) => r === 'localhost:5000');
  return {
    check: 'image',
    verdict: 'warning',
    text: `not reachable from this machine: ${problems.map(([r, p]) => `${r} (${p}; for ${byRegistry.get(r)!.join(', ')})`).join('; ')}; the nodes may still reach it (${note})`,
    fix: local
      ? 'bash scripts/local-cluster/images.sh ensure (starts the local registry on localhost:5000)'
      : `curl -sS ${registryBase(problems[0][0])}/v2/ from a node, and check its network, proxy or mirror`,
  };
}
