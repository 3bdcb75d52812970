import { execFileSync } from 'node:child_process';

/**
 * Brings the local control plane up (idempotent: a running one is reused) before any e2e test.
 * Fails loudly when it cannot: the e2e suite is never skipped silently.
 */
export default async function globalSetup(): Promise<void> {
  const name = process.env.SANDSTORE_E2E_CLUSTER ?? 'sandstore-local';
  execFileSync('bash', ['scripts/local-cluster/up.sh', '--name', name], { stdio: 'inherit' });
}
