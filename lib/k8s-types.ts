import type {
  V1ConfigMap,
  V1CSINode,
  V1Endpoints,
  V1Job,
  V1Lease,
  V1Namespace,
  V1NetworkPolicy,
  V1Node,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Pod,
  V1PodDisruptionBudget,
  V1Role,
  V1RoleBinding,
  V1ServiceAccount,
  V1Service,
  V1StatefulSet,
  V1StorageClass,
} from '@kubernetes/client-node';
import type { Manifest } from './synth.js';

/**
 * A client-node model type as JSON carries it. The synthesized YAML and the API server's answers are
 * read as plain JSON, so the timestamps that client-node's deserializer would turn into Dates are
 * still strings, and the fields it renames for being JavaScript words (`_from`) keep their names.
 */
export type Json<T> = T extends Date
  ? string
  : T extends readonly (infer E)[]
    ? Json<E>[]
    : T extends object
      ? { [K in keyof T as JsonName<K>]: Json<T[K]> }
      : T;

/** A model's field name as JSON has it: client-node's `_from` is `from`. */
export type JsonName<K> = K extends `_${infer Name}` ? Name : K;

/** client-node's model of each kind the project synthesizes and the runner handles. */
export interface KindModels {
  Namespace: V1Namespace;
  Node: V1Node;
  ConfigMap: V1ConfigMap;
  Service: V1Service;
  Pod: V1Pod;
  PersistentVolumeClaim: V1PersistentVolumeClaim;
  PersistentVolume: V1PersistentVolume;
  StatefulSet: V1StatefulSet;
  Job: V1Job;
  PodDisruptionBudget: V1PodDisruptionBudget;
  NetworkPolicy: V1NetworkPolicy;
  ServiceAccount: V1ServiceAccount;
  Role: V1Role;
  RoleBinding: V1RoleBinding;
  StorageClass: V1StorageClass;
  Lease: V1Lease;
  Endpoints: V1Endpoints;
  CSINode: V1CSINode;
}

export type KindName = keyof KindModels;

/** The fields of `kind` besides apiVersion, kind and metadata (spec, status, data, ...), as JSON. */
export type BodyOf<K extends KindName> = Json<Omit<KindModels[K], 'apiVersion' | 'kind' | 'metadata'>>;

/** A synthesized object of a kind client-node models: its spec and other fields typed. */
export type ManifestOf<K extends KindName> = Manifest & BodyOf<K>;

/**
 * Whether `m` is of `kind`, typed as such. Here, not in synth.ts, so that the runner can use it
 * without loading cdk8s.
 */
export function isManifestOf<K extends KindName>(m: Manifest, kind: K): m is ManifestOf<K> {
  return m.kind === kind;
}

/**
 * A synthesized object as a check reads it: client-node's model of its kind, as JSON, with every
 * field required. A check (or test) names the fields it expects: a misspelt one fails to compile, an absent one
 * fails it when read, as a wrong expectation does.
 */
export type Expected<T> = T extends Date
  ? string
  : T extends readonly (infer E)[]
    ? Expected<E>[]
    : T extends object
      ? { [K in keyof T as JsonName<K>]-?: Expected<T[K]> }
      : T;

/** The object of `kind` named `name`, as a check reads it (see Expected), if there is one. */
export function findIn<K extends KindName>(
  objects: readonly Manifest[],
  kind: K,
  name: string,
): Expected<KindModels[K]> | undefined {
  const found = objects.find((o) => isManifestOf(o, kind) && o.metadata.name === name);
  return found as Expected<KindModels[K]> | undefined;
}

/** The object of `kind` named `name`, as a check reads it (see Expected). */
export function find<K extends KindName>(objects: readonly Manifest[], kind: K, name: string): Expected<KindModels[K]> {
  const found = findIn(objects, kind, name);
  if (!found)
    throw new Error(`no ${kind} ${name} among: ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
}

/** The objects of `kind`, as a check reads them (see Expected). */
export function ofKind<K extends KindName>(objects: readonly Manifest[], kind: K): Expected<KindModels[K]>[] {
  return objects.filter((o) => isManifestOf(o, kind)) as unknown as Expected<KindModels[K]>[];
}
