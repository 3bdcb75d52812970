import { Construct } from 'constructs';
import { KubeStorageClass, type PodSpec, type Toleration } from '../../../imports/k8s.js';
import { Component, DeployPhase, phaseAnnotation } from '../../labels.js';
import { check, rules } from '../../validation.js';
import { componentLabels, markClusterScoped } from '../scope.js';
import {
  LOCAL_SSD_STORAGE_DEFAULTS as DEFAULTS,
  type LocalSsdStorageProps,
  type ReclaimPolicy,
  type TaintEffect,
} from './local-ssd-storage-props.js';

/** Where storage-heavy pods must run: the part of a pod spec that LocalSsdStorage owns. */
export interface StoragePlacement {
  readonly nodeSelector: Readonly<Record<string, string>>;
  readonly tolerations: readonly Toleration[];
}

/**
 * A StorageClass for node-local SSD volumes (WaitForFirstConsumer, so a volume is made on the node
 * the pod was scheduled to) and the node placement that puts storage-heavy pods on SSD nodes. Other
 * constructs take `placement` and `storageClassName` from here rather than repeating them.
 */
export class LocalSsdStorage extends Construct {
  public readonly storageClassName: string;
  public readonly provisioner: string;
  public readonly reclaimPolicy: ReclaimPolicy;
  public readonly allowVolumeExpansion: boolean;
  /** Undefined when the provisioner chooses the directory. */
  public readonly nodePath?: string;
  public readonly nodeSelector: Readonly<Record<string, string>>;
  /** Undefined when SSD nodes are not tainted. */
  public readonly taint?: { readonly key: string; readonly value?: string; readonly effect: TaintEffect };
  public readonly placement: StoragePlacement;

  public constructor(scope: Construct, id: string, props: LocalSsdStorageProps = {}) {
    super(scope, id);
    const who = `LocalSsdStorage ${this.node.path}`;
    this.storageClassName = props.storageClassName ?? DEFAULTS.storageClassName;
    this.provisioner = props.provisioner ?? DEFAULTS.provisioner;
    this.reclaimPolicy = props.reclaimPolicy ?? DEFAULTS.reclaimPolicy;
    this.allowVolumeExpansion = props.allowVolumeExpansion ?? DEFAULTS.allowVolumeExpansion;
    this.nodePath = props.nodePath;
    this.nodeSelector = { ...(props.nodeSelector ?? DEFAULTS.nodeSelector) };
    this.taint = props.taint && {
      key: props.taint.key,
      value: props.taint.value,
      effect: props.taint.effect ?? DEFAULTS.taintEffect,
    };
    check(who, 'storageClassName', this.storageClassName, rules.dnsSubdomain);
    check(who, 'provisioner', this.provisioner, rules.provisioner);
    check(who, 'reclaimPolicy', this.reclaimPolicy, rules.cleanSlateReclaimPolicy);
    if (this.nodePath !== undefined) check(who, 'nodePath', this.nodePath, rules.nodePath);
    for (const [key, value] of Object.entries(this.nodeSelector)) {
      check(who, 'nodeSelector key', key, rules.labelKey);
      check(who, `nodeSelector["${key}"]`, value, rules.labelValue);
    }
    if (this.taint) {
      check(who, 'taint.key', this.taint.key, rules.labelKey);
      if (this.taint.value !== undefined) check(who, 'taint.value', this.taint.value, rules.labelValue);
    }

    this.placement = { nodeSelector: this.nodeSelector, tolerations: this.taint ? [toleration(this.taint)] : [] };

    const storageClass = new KubeStorageClass(this, 'Resource', {
      metadata: {
        name: this.storageClassName,
        labels: componentLabels(this, 'sandstore', Component.storage),
        annotations: phaseAnnotation(DeployPhase.base),
      },
      provisioner: this.provisioner,
      parameters: this.nodePath === undefined ? undefined : { nodePath: this.nodePath },
      volumeBindingMode: 'WaitForFirstConsumer',
      reclaimPolicy: this.reclaimPolicy,
      allowVolumeExpansion: this.allowVolumeExpansion,
    });
    markClusterScoped(storageClass);
  }
}

/** The pod spec's part of `placement`: both fields left out when there is none (pods run anywhere). */
export function podPlacement(placement: StoragePlacement | undefined): Pick<PodSpec, 'nodeSelector' | 'tolerations'> {
  return {
    nodeSelector: placement ? { ...placement.nodeSelector } : undefined,
    tolerations: placement ? [...placement.tolerations] : undefined,
  };
}

/** The toleration of `taint`: of its value when it has one, else of any value of its key. */
function toleration(taint: NonNullable<LocalSsdStorage['taint']>): Toleration {
  return {
    key: taint.key,
    ...(taint.value === undefined ? { operator: 'Exists' } : { operator: 'Equal', value: taint.value }),
    effect: taint.effect,
  };
}
