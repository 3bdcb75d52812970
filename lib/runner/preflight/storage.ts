/**
 * The storage checks: the StorageClass dist/ applies against one of that name on the cluster
 * (its provisioner and binding mode cannot be changed in place), and evidence that something serves
 * its provisioner name, without which every claim, and so every pod, stays Pending.
 */
import type { KubeObject, Lease, Pod, PersistentVolume, ObjectOf } from '../kube.js';
import { isProfiles } from '../ownership.js';
import type { CheckInput, Finding } from './checks.js';
import { kubectl, provisionerFix } from './fixes.js';

const plannedClass = (input: CheckInput) =>
  input.manifests.find((m) => m.kind === 'StorageClass') as
    (KubeObject & { provisioner: string; volumeBindingMode?: string }) | undefined;

export async function storageClassFinding(input: CheckInput): Promise<Finding> {
  const planned = plannedClass(input);
  if (!planned) return { check: 'storage class', verdict: 'ok', text: 'the profile makes no StorageClass' };
  const live = (await input.list('StorageClass')).find((c) => c.metadata.name === planned.metadata.name);
  const wanted = `provisioner ${planned.provisioner}, ${planned.volumeBindingMode ?? 'Immediate'}`;
  if (!live)
    return {
      check: 'storage class',
      verdict: 'ok',
      text: `${planned.metadata.name} does not exist yet; deploy creates it (${wanted})`,
    };
  const differs =
    live.provisioner !== planned.provisioner ||
    (live.volumeBindingMode ?? 'Immediate') !== (planned.volumeBindingMode ?? 'Immediate');
  const has = `provisioner ${live.provisioner}, ${live.volumeBindingMode ?? 'Immediate'}`;
  if (isProfiles(live, input.profile.name)) {
    return differs
      ? {
          check: 'storage class',
          verdict: 'warning',
          text: `${live.metadata.name} is this profile's and has ${has}, not ${wanted}: deploy deletes and re-creates it (StorageClass parameters are immutable)`,
        }
      : { check: 'storage class', verdict: 'ok', text: `${live.metadata.name} exists as this profile's (${has})` };
  }
  return {
    check: 'storage class',
    verdict: 'problem',
    text: `StorageClass ${live.metadata.name} exists and is not this profile's (${has}${differs ? `; the profile needs ${wanted}, and a StorageClass's parameters are immutable` : ''})`,
    fix: `set storage.className in profiles/${input.profile.name}.ts to a name of its own, or ${kubectl(input.context)} delete storageclass ${live.metadata.name} (if nothing else uses it)`,
  };
}

/**
 * The name a leader-election lock of `provisioner` has: sig-storage-lib-external-provisioner's
 * ("/" → "-") and CSI external-provisioner's (anything but [a-zA-Z0-9-] → "-").
 */
export function leaderLockNames(provisioner: string): string[] {
  return [...new Set([provisioner.replaceAll('/', '-'), provisioner.replace(/[^a-zA-Z0-9-]/g, '-')])];
}

/**
 * Images of provisioners that run as pods, by the name they serve: rancher's local-path (k3s, kind,
 * minikube's addon), minikube's own.
 */
const KNOWN_PROVISIONER_IMAGES: Readonly<Record<string, RegExp>> = {
  'rancher.io/local-path': /(^|\/)local-path-provisioner(:|@|$)/,
  'k8s.io/minikube-hostpath': /(^|\/)storage-provisioner(:|@|$)/,
};

/** A lock held (renewed within its duration, with a grace of one more) at `now`, from its renew time and duration. */
export function heldAt(renewTime: string | undefined, durationSeconds: number | undefined, now: number): boolean {
  const renewed = renewTime ? Date.parse(renewTime) : NaN;
  return Number.isFinite(renewed) && now - renewed <= 2 * (durationSeconds ?? 15) * 1000;
}

interface LeaderRecord {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  renewTime?: string;
}

/** The leader-election record in an Endpoints lock's annotation; empty when there is none or it is not JSON. */
function leaderRecord(raw: string | undefined): LeaderRecord {
  try {
    return raw ? (JSON.parse(raw) as LeaderRecord) : {};
  } catch {
    return {};
  }
}

/** Leases, and Endpoints with the older libraries' leader annotation, named after the provisioner and held now. */
export function leaderLockEvidence(
  provisioner: string,
  leases: readonly Lease[],
  endpoints: readonly ObjectOf<'Endpoints'>[],
  now: number,
): string | undefined {
  const names = new Set(leaderLockNames(provisioner));
  const ago = (t: string) => `${Math.max(0, Math.round((now - Date.parse(t)) / 1000))}s ago`;
  for (const l of leases.filter((x) => names.has(x.metadata.name))) {
    if (heldAt(l.spec?.renewTime, l.spec?.leaseDurationSeconds, now))
      return `its leader-election Lease ${l.metadata.namespace}/${l.metadata.name}, held by ${l.spec?.holderIdentity ?? '?'}, renewed ${ago(l.spec?.renewTime ?? '')}`;
  }
  for (const e of endpoints.filter((x) => names.has(x.metadata.name))) {
    const raw = e.metadata.annotations?.['control-plane.alpha.kubernetes.io/leader'];
    const record = leaderRecord(raw);
    if (heldAt(record.renewTime, record.leaseDurationSeconds, now))
      return `its leader-election lock Endpoints ${e.metadata.namespace}/${e.metadata.name}, held by ${record.holderIdentity ?? '?'}, renewed ${ago(record.renewTime!)}`;
  }
  return undefined;
}

const runningReady = (p: Pod) =>
  p.status?.phase === 'Running' && (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

/** A Running, Ready pod of a provisioner known to serve the name, or a CSI driver of that name registered on a node. */
export function runningEvidence(
  provisioner: string,
  pods: readonly Pod[],
  csiNodes: readonly ObjectOf<'CSINode'>[],
): string | undefined {
  const image = KNOWN_PROVISIONER_IMAGES[provisioner];
  const pod =
    image && pods.find((p) => runningReady(p) && (p.spec?.containers ?? []).some((c) => image.test(c.image ?? '')));
  if (pod)
    return `pod ${pod.metadata.namespace}/${pod.metadata.name} (${(pod.spec?.containers ?? []).map((c) => c.image).join(', ')}) is Running and Ready`;
  const csi = csiNodes.find((n) => (n.spec?.drivers ?? []).some((d) => d.name === provisioner));
  if (csi) return `CSI driver ${provisioner} is registered on node ${csi.metadata.name}`;
  return undefined;
}

/** Bound volumes that something made under the name: it served once; whether it still runs, they cannot say. */
export function provisionedVolumes(provisioner: string, volumes: readonly PersistentVolume[]): PersistentVolume[] {
  return volumes.filter(
    (v) => v.metadata.annotations?.['pv.kubernetes.io/provisioned-by'] === provisioner && v.status?.phase === 'Bound',
  );
}

/** Reads that the provisioner evidence needs and a narrow context may not have: [] with the refusal noted. */
async function readOrNote<K extends string>(input: CheckInput, kind: K, notes: string[]): Promise<ObjectOf<K>[]> {
  try {
    return await input.list(kind);
  } catch (err) {
    notes.push(`${kind} not readable (${(err as Error).message.slice(0, 120)})`);
    return [];
  }
}

export async function provisionerFinding(input: CheckInput): Promise<Finding> {
  const planned = plannedClass(input);
  if (!planned) return { check: 'provisioner', verdict: 'ok', text: 'the profile makes no StorageClass' };
  const name = planned.provisioner;
  if (name.startsWith('kubernetes.io/') && name !== 'kubernetes.io/no-provisioner')
    return {
      check: 'provisioner',
      verdict: 'ok',
      text: `${name} is built into kube-controller-manager (or migrated to its CSI driver)`,
    };
  const notes: string[] = [];
  const [leases, endpoints, pods, csiNodes, volumes] = await Promise.all([
    readOrNote(input, 'Lease', notes),
    readOrNote(input, 'Endpoints', notes),
    readOrNote(input, 'Pod', notes),
    readOrNote(input, 'CSINode', notes),
    readOrNote(input, 'PersistentVolume', notes),
  ]);
  const evidence = leaderLockEvidence(name, leases, endpoints, Date.now()) ?? runningEvidence(name, pods, csiNodes);
  if (evidence) return { check: 'provisioner', verdict: 'ok', text: `${name} is served: ${evidence}` };
  const made = provisionedVolumes(name, volumes);
  if (made.length > 0) {
    return {
      check: 'provisioner',
      verdict: 'warning',
      text: `${name}: no running provisioner seen (no held leader-election lock, known pod or CSI driver), but ${made.length} bound volume${made.length === 1 ? ' was' : 's were'} provisioned under that name (e.g. ${made[0].metadata.name}), so something served it once`,
    };
  }
  const unread = notes.length > 0 ? `; ${notes.join('; ')}` : '';
  return {
    check: 'provisioner',
    verdict: notes.length >= 4 ? 'notRun' : 'problem',
    text: `nothing is seen serving provisioner ${name}: no leader-election Lease or Endpoints ${leaderLockNames(name).join(' or ')} renewed recently, no Running pod of a known provisioner for it, no CSI driver of that name on a node, no volume provisioned by it; claims of StorageClass ${planned.metadata.name} would stay Pending${unread}`,
    fix: provisionerFix(name, await input.distribution(), input.context),
  };
}
