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

/** Validates (naming `field`) and converts to the API form. */
export function toResourceRequirements(who: string, field: string, r: ContainerResources): ResourceRequirements {
  const convert = (part: 'requests' | 'limits') => {
    check(who, `${field}.${part}.cpu`, r[part].cpu, rules.quantity);
    check(who, `${field}.${part}.memory`, r[part].memory, rules.quantity);
    return { cpu: Quantity.fromString(r[part].cpu), memory: Quantity.fromString(r[part].memory) };
  };
  return { requests: convert('requests'), limits: convert('limits') };
}

/**
 * One ReadWriteOnce volume of `size` per pod, from `storageClassName` (or the cluster's default
 * class when undefined). `field` names the size in the error a bad quantity raises.
 */
export function volumeClaimSpec(who: string, field: string, size: string, storageClassName?: string): PersistentVolumeClaimSpec {
  check(who, field, size, rules.quantity);
  return {
    accessModes: ['ReadWriteOnce'],
    ...(storageClassName === undefined ? {} : { storageClassName }),
    resources: { requests: { storage: Quantity.fromString(size) } },
  };
}
