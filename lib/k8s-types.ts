import type {
  V1ConfigMap, V1Job, V1Lease, V1Namespace, V1NetworkPolicy, V1Node, V1PersistentVolume, V1PersistentVolumeClaim,
  V1Pod, V1PodDisruptionBudget, V1Service, V1StatefulSet, V1StorageClass,
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
  StorageClass: V1StorageClass;
  Lease: V1Lease;
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
