import type { StoragePlacement } from '../local-ssd-storage/local-ssd-storage.js';
import type { ImagePullPolicy } from '../sandstore-cluster/sandstore-cluster-props.js';

export interface SmokeTestProps {
  /** The data plane's name: the Job is `<dataPlaneName>-smoke-test`. */
  readonly dataPlaneName: string;
  /** The node image, which carries the smoke client, `/usr/local/bin/smoke`. */
  readonly image: string;
  readonly imagePullPolicy: ImagePullPolicy;
  /** The in-cluster `host:port` of every node, which the client starts from (SANDSTORE_SEEDS). */
  readonly seeds: readonly string[];
  /**
   * Where the Job's pod runs.
   * @default - anywhere
   */
  readonly placement?: StoragePlacement;
}
