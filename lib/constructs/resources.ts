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
 * than 0 (memory in whole bytes) and no limit is below its request.
 */
export function checkResources(who: string, field: string, r: ContainerResources): void {
  for (const part of ['requests', 'limits'] as const) {
    check(who, `${field}.${part}.cpu`, r[part].cpu, rules.cpu);
    check(who, `${field}.${part}.memory`, r[part].memory, rules.bytes);
  }
  for (const kind of ['cpu', 'memory'] as const) {
    check(who, `${field}.limits.${kind}`, r.limits[kind], rules.notBelowRequest(r.requests[kind], `${field}.requests.${kind}`));
  }
}

/** The API form of checked resources. */
export function toResourceRequirements(r: ContainerResources): ResourceRequirements {
  const convert = (part: CpuMemory) => ({ cpu: Quantity.fromString(part.cpu), memory: Quantity.fromString(part.memory) });
  return { requests: convert(r.requests), limits: convert(r.limits) };
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
