// @ts-check
'use strict';
/**
 * The validation plugin cdk8s.yaml declares, so that a plain `cdk8s synth` checks what it
 * synthesized: cdk8s-cli loads it with require() (hence CommonJS) after the app ran, and calls
 * validate() with the manifests it found. The checks themselves are the project's TypeScript
 * (check-manifests.ts); they run as a process through scripts/run-ts.mjs, bundled like main.ts,
 * and answer in JSON. A failed report makes cdk8s synth print it and exit 2.
 */
const { spawn } = require('node:child_process');
const { join } = require('node:path');

const ROOT = join(__dirname, '..', '..');

/**
 * Runs the checks on `manifests`; resolves with their answer, or rejects saying why there is none.
 * @param {readonly string[]} manifests
 * @param {boolean} linters
 * @typedef {import('cdk8s-cli/plugins').ValidationViolation} Violation
 * @returns {Promise<{ violations: Violation[], metadata: Record<string, string> }>}
 */
function runChecks(manifests, linters) {
  const args = [
    join(ROOT, 'scripts', 'run-ts.mjs'),
    'lib/cdk8s-validation/check-manifests.ts',
    ...(linters ? ['--linters'] : []),
    ...manifests,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        if (code !== 0) throw new Error(`exit ${code}: ${stderr.trim()}`);
        resolve(JSON.parse(stdout));
      } catch (err) {
        reject(new Error(`the manifest checks did not run (${err instanceof Error ? err.message : String(err)})`));
      }
    });
  });
}

/** @implements {import('cdk8s-cli/plugins').Validation} */
class SandstoreManifestChecks {
  /** @param {{ linters?: boolean }} properties from cdk8s.yaml: `linters: false` skips kube-score and checkov */
  constructor(properties) {
    this.linters = properties.linters !== false;
  }

  /** @param {import('cdk8s-cli/plugins').ValidationContext} context */
  async validate(context) {
    let result;
    try {
      result = await runChecks(context.manifests, this.linters);
    } catch (err) {
      // Not checked is not passed: the synth fails, saying why.
      const message = err instanceof Error ? err.message : String(err);
      result = {
        violations: [
          {
            ruleName: 'sandstore-deploy manifest checks',
            recommendation: message,
            fix: 'run again with SANDSTORE_DEBUG=1',
            violatingResources: [],
          },
        ],
        metadata: {},
      };
    }
    for (const violation of result.violations) context.report.addViolation(violation);
    context.report.submit(result.violations.length > 0 ? 'failure' : 'success', result.metadata);
  }
}

module.exports = { SandstoreManifestChecks };
