/*
 * LocalSsdStorage's props and defaults. No cdk8s here (types only): the profile schema imports the
 * accepted values from this file, and the runner loads the schema without cdk8s.
 */

/** What happens to a volume when its claim is deleted. */
export const RECLAIM_POLICIES = ['Delete', 'Retain'] as const;
export type ReclaimPolicy = (typeof RECLAIM_POLICIES)[number];

/** What a taint keeps away: new pods, preferably new pods, or running pods too. */
export const TAINT_EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] as const;
export type TaintEffect = (typeof TAINT_EFFECTS)[number];

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
  readonly effect?: TaintEffect;
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
   * What happens to a volume when its claim is deleted. `Delete` is what makes a destroy wipe the
   * SSD, and the only one accepted (rules.cleanSlateReclaimPolicy says why): `Retain` is named
   * so that a profile that asks for it is told why not.
   * @default 'Delete'
   */
  readonly reclaimPolicy?: ReclaimPolicy;
  /**
   * The directory on the node where the class's volumes live, and so the file system they are on:
   * the StorageClass's `parameters.nodePath`, which rancher local-path (v0.0.30) honours when the
   * path is one its config lists for the volume's node, and refuses otherwise.
   * @default - none: the provisioner chooses (local-path: one of the paths its config lists for the
   * node, at random when it lists several)
   */
  readonly nodePath?: string;
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

/** The value of each optional prop that is left out (the taint's effect included). */
export const LOCAL_SSD_STORAGE_DEFAULTS = {
  storageClassName: 'sandstore-local-ssd',
  provisioner: 'rancher.io/local-path',
  reclaimPolicy: 'Delete',
  allowVolumeExpansion: true,
  nodeSelector: { 'node.sandstore.io/disk': 'ssd' },
  taintEffect: 'NoSchedule',
} as const satisfies Omit<Required<LocalSsdStorageProps>, 'taint' | 'nodePath'> & { taintEffect: TaintEffect };
