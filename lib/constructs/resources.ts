import { Quantity, type PersistentVolumeClaimSpec, type ResourceRequirements } from '../../imports/k8s.js';
import { check, rules } from '../validation.js';

/** CPU and memory as Kubernetes quantities, e.g. `{ cpu: '500m', memory: '1Gi' }`. */
export interface CpuMemory {
  readonly cpu: string;
  readonly memory: string;
}

/** Requests (what the scheduler reserves) and limits (what the kubelet enforces). */
export interface ContainerResources {
  readonly requests: CpuMemory;
  readonly limits: CpuMemory;
}

/**
 * Throws, naming `field` (e.g. `resources.requests.cpu`), unless every value is an amount greater
 * than 0 (memory in whole bytes, at least what a container starts with) and no limit is below its request.
 */
export function checkResources(who: string, field: string, r: ContainerResources): void {
  for (const part of ['requests', 'limits'] as const) {
    check(who, `${field}.${part}.cpu`, r[part].cpu, rules.cpu);
    check(who, `${field}.${part}.memory`, r[part].memory, rules.memory);
  }
  for (const kind of ['cpu', 'memory'] as const) {
    check(
      who,
      `${field}.limits.${kind}`,
      r.limits[kind],
      rules.notBelowRequest(r.requests[kind], `${field}.requests.${kind}`),
    );
  }
}

/**
 * Node disk a container uses outside its volumes (its writable layer, which the read-only root keeps
 * empty, its log as the kubelet keeps it, and its pod's emptyDir volumes): requested so the
 * scheduler counts it, limited so a runaway container is evicted before it fills the node's disk.
 */
export interface EphemeralStorage {
  readonly request: string;
  readonly limit: string;
}

/** The ephemeral storage of each kind of container the constructs make (constants, not profile fields). */
export const EPHEMERAL_STORAGE = {
  /**
   * A program that writes a few lines to its log and nothing else (etcdctl, the membership wait):
   * its log stays well under a megabyte.
   */
  quiet: { request: '16Mi', limit: '64Mi' },
  /**
   * A container that may log a lot or write to a /tmp emptyDir (Sand Store, etcd, the events stream,
   * the smoke client, which writes its own log under /tmp). The kubelet rotates a container's log at
   * 5 files of 10 MiB by default; the limit leaves room for a kubelet that keeps more.
   */
  logging: { request: '64Mi', limit: '1Gi' },
} as const satisfies Record<string, EphemeralStorage>;

/** The API form of checked resources, with the container's ephemeral storage. */
export function toResourceRequirements(r: ContainerResources, ephemeral: EphemeralStorage): ResourceRequirements {
  const convert = (part: CpuMemory, storage: string) => ({
    cpu: Quantity.fromString(part.cpu),
    memory: Quantity.fromString(part.memory),
    'ephemeral-storage': Quantity.fromString(storage),
  });
  return { requests: convert(r.requests, ephemeral.request), limits: convert(r.limits, ephemeral.limit) };
}

/**
 * One ReadWriteOnce volume of `size` (a checked quantity) per pod, from `storageClassName` (or the
 * cluster's default class when undefined).
 */
export function volumeClaimSpec(size: string, storageClassName?: string): PersistentVolumeClaimSpec {
  return {
    accessModes: ['ReadWriteOnce'],
    ...(storageClassName === undefined ? {} : { storageClassName }),
    resources: { requests: { storage: Quantity.fromString(size) } },
  };
}
