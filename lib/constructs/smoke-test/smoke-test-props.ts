import type { StoragePlacement } from '../local-ssd-storage/local-ssd-storage.js';
import type { ContainerResources } from '../resources.js';
import type { ImagePullPolicy } from '../sandstore-cluster/sandstore-cluster-props.js';

export interface SmokeTestProps {
  /** The data plane's name: the Job is `<dataPlaneName>-smoke-test`. */
  readonly dataPlaneName: string;
  /** The node image, which carries the smoke client, `/usr/local/bin/smoke`. */
  readonly image: string;
  readonly imagePullPolicy: ImagePullPolicy;
  /**
   * The Secret the kubelet pulls the image with (imagePullSecrets).
   * @default - none
   */
  readonly imagePullSecret?: string;
  /** The in-cluster `host:port` of every node, which the client starts from (SANDSTORE_SEEDS). */
  readonly seeds: readonly string[];
  /**
   * Where the Job's pod runs.
   * @default - anywhere
   */
  readonly placement?: StoragePlacement;
  /**
   * CPU and memory of the smoke client, a Go program that writes and reads back a few files of a
   * few MiB each.
   * @default { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } }
   */
  readonly resources?: ContainerResources;
}

/** The value of each optional prop that is left out (but `placement`, which has none). */
export const SMOKE_TEST_DEFAULTS = {
  resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
} as const satisfies Omit<
  Required<SmokeTestProps>,
  'dataPlaneName' | 'image' | 'imagePullPolicy' | 'imagePullSecret' | 'seeds' | 'placement'
>;
