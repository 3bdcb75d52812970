import { Option } from 'commander';
import { RefusedError } from '../../errors.js';
import { distDir } from '../../paths.js';
import { loadProfile } from '../../profiles.js';
import { rules } from '../../validation.js';
import { readManifests } from '../manifests.js';
import { rbacObjects, type Subject } from '../rbac.js';
import { profileOption, type LocalCommand } from './command.js';

interface RbacOptions {
  readonly user?: string;
  readonly group?: string;
  readonly serviceAccount?: string;
}

/** The one subject named by --user, --group or --service-account=<namespace>/<name>; refused otherwise. */
export function subjectOf(opts: RbacOptions): Subject {
  const given = [opts.user, opts.group, opts.serviceAccount].filter((v) => v !== undefined);
  if (given.length !== 1)
    throw new RefusedError(
      "name who is granted the permissions, once: --user=<name> (as the client certificate's CN or the " +
        'identity provider names them), --group=<name> or --service-account=<namespace>/<name>',
    );
  if (opts.user !== undefined) return { kind: 'User', name: opts.user };
  if (opts.group !== undefined) return { kind: 'Group', name: opts.group };
  const [namespace, name, ...rest] = opts.serviceAccount!.split('/');
  if (rest.length > 0 || rules.dnsLabel(namespace ?? '') !== undefined || rules.dnsSubdomain(name ?? '') !== undefined)
    throw new RefusedError(
      `--service-account: expected <namespace>/<name>, such as default/alice, got ${JSON.stringify(opts.serviceAccount)}`,
    );
  return { kind: 'ServiceAccount', namespace, name };
}

/**
 * `rbac`: prints, as YAML, the Role, ClusterRole and bindings that let a teammate run every command
 * on one profile, for an admin to review and apply (`npm run -s rbac -- ... | kubectl apply -f -`).
 * It never talks to a cluster: granting is the admin's act, never the runner's.
 */
export const rbacCommand: LocalCommand<RbacOptions> = {
  name: 'rbac',
  description:
    'print the RBAC objects (namespace, Roles, ClusterRole, bindings) that let a user run every command on the profile, for an admin to apply; no cluster call',
  local: true,
  configure: (command) =>
    command
      .addOption(profileOption(false).makeOptionMandatory())
      .addOption(new Option('--user <name>', "grant a user (a client certificate's CN, an OIDC user)"))
      .addOption(new Option('--group <name>', 'grant a group'))
      .addOption(new Option('--service-account <namespace/name>', 'grant a ServiceAccount')),
  run: async (report, opts) => {
    const subject = subjectOf(opts);
    const profile = await loadProfile(opts.profile);
    const manifests = await readManifests(distDir(), profile);
    const { stringify } = (await import('yaml')).default;
    report.info(
      [
        `# The permissions of sandstore-deploy's runner for profile ${profile.name}, granted to ${subject.kind} ` +
          `${subject.kind === 'ServiceAccount' ? `${subject.namespace}/` : ''}${subject.name}.`,
        `# Apply as a cluster admin: npm run -s rbac -- --profile=${profile.name} ... | kubectl apply -f -`,
        '# What each rule is for: docs/commands.md#permissions',
        ...rbacObjects(profile, manifests, subject).map((o) => `---\n${stringify(o).trimEnd()}`),
      ].join('\n'),
    );
  },
};
