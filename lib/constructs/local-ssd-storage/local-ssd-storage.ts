import { Construct } from 'constructs';
import { KubeStorageClass, type Toleration } from '../../../imports/k8s.js';
import { Component, DeployPhase, phaseAnnotation } from '../../labels.js';
import { check, rules } from '../../validation.js';
import { componentLabels, markClusterScoped } from '../scope.js';

/** A taint that SSD nodes carry so that only storage-heavy pods land there. */
export interface SsdTaint {
  /** Taint key, e.g. `node.sandstore.io/disk`. */
  readonly key: string;
  /**
   * Taint value.
   * @default - none: the toleration uses `operator: Exists`
   */
  readonly value?: string;
  /**
   * Taint effect.
   * @default 'NoSchedule'
   */
  readonly effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}

export interface LocalSsdStorageProps {
  /**
   * Name of the StorageClass.
   * @default 'sandstore-local-ssd'
   */
  readonly storageClassName?: string;
  /**
   * Provisioner that answers the class's claims.
   * @default 'rancher.io/local-path'
   */
  readonly provisioner?: string;
  /**
   * What happens to a volume when its claim is deleted. `Delete` is what makes a destroy wipe the SSD.
   * @default 'Delete'
   */
  readonly reclaimPolicy?: 'Delete' | 'Retain';
  /**
   * Whether claims of this class may be grown in place.
   * @default true
   */
  readonly allowVolumeExpansion?: boolean;
  /**
   * Node labels that identify SSD-backed nodes; storage-heavy pods are pinned to them.
   * @default { 'node.sandstore.io/disk': 'ssd' }
   */
  readonly nodeSelector?: Readonly<Record<string, string>>;
  /**
   * A taint the SSD nodes carry, which storage-heavy pods then tolerate.
   * @default - none: SSD nodes are not tainted
   */
  readonly taint?: SsdTaint;
}

/** Where storage-heavy pods must run: the part of a pod spec that LocalSsdStorage owns. */
export interface StoragePlacement {
  readonly nodeSelector: Readonly<Record<string, string>>;
  readonly tolerations: readonly Toleration[];
}

export const SSD_NODE_LABEL = 'node.sandstore.io/disk';

/**
 * A StorageClass for node-local SSD volumes (WaitForFirstConsumer, so a volume is made on the node
 * the pod was scheduled to) and the node placement that puts storage-heavy pods on SSD nodes. Other
 * constructs take `placement` and `storageClassName` from here rather than repeating them.
 */
export class LocalSsdStorage extends Construct {
  public static readonly DEFAULT_NAME = 'sandstore-local-ssd';
  public static readonly DEFAULT_PROVISIONER = 'rancher.io/local-path';

  public readonly storageClassName: string;
  public readonly placement: StoragePlacement;

  public constructor(scope: Construct, id: string, props: LocalSsdStorageProps = {}) {
    super(scope, id);
    const who = `LocalSsdStorage ${this.node.path}`;
    this.storageClassName = props.storageClassName ?? LocalSsdStorage.DEFAULT_NAME;
    const provisioner = props.provisioner ?? LocalSsdStorage.DEFAULT_PROVISIONER;
    const nodeSelector = props.nodeSelector ?? { [SSD_NODE_LABEL]: 'ssd' };
    check(who, 'storageClassName', this.storageClassName, rules.dnsSubdomain);
    check(who, 'provisioner', provisioner, rules.nonEmpty);
    for (const [key, value] of Object.entries(nodeSelector)) {
      check(who, 'nodeSelector key', key, rules.labelKey);
      check(who, `nodeSelector["${key}"]`, value, rules.labelValue);
    }
    const tolerations: Toleration[] = [];
    if (props.taint) {
      check(who, 'taint.key', props.taint.key, rules.labelKey);
      if (props.taint.value !== undefined) check(who, 'taint.value', props.taint.value, rules.labelValue);
      tolerations.push({
        key: props.taint.key,
        ...(props.taint.value === undefined
          ? { operator: 'Exists' }
          : { operator: 'Equal', value: props.taint.value }),
        effect: props.taint.effect ?? 'NoSchedule',
      });
    }
    this.placement = { nodeSelector: { ...nodeSelector }, tolerations };

    const storageClass = new KubeStorageClass(this, 'Resource', {
      metadata: {
        name: this.storageClassName,
        labels: componentLabels(this, 'sandstore', Component.storage),
        annotations: phaseAnnotation(DeployPhase.base),
      },
      provisioner,
      volumeBindingMode: 'WaitForFirstConsumer',
      reclaimPolicy: props.reclaimPolicy ?? 'Delete',
      allowVolumeExpansion: props.allowVolumeExpansion ?? true,
    });
    markClusterScoped(storageClass);
  }
}
