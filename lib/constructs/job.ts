import type { Construct } from 'constructs';
import { KubeJob, type PodSpec } from '../../imports/k8s.js';
import { phaseAnnotation, type DeployPhase } from '../labels.js';
import { podPlacement, type StoragePlacement } from './local-ssd-storage/local-ssd-storage.js';
import { restrictedPodSecurityContext } from './security.js';

export interface RunToCompletionJobOptions {
  /** The Job's name. */
  readonly name: string;
  /** Labels of the Job and of its pod. */
  readonly labels: Readonly<Record<string, string>>;
  /** When the runner applies the Job. */
  readonly phase: DeployPhase;
  /** How many failed pods the Job replaces before it fails. */
  readonly backoffLimit: number;
  /**
   * Where the pod runs.
   * @default - anywhere
   */
  readonly placement?: StoragePlacement;
  /**
   * Annotations of the pod (read back by its containers through the downward API).
   * @default - none
   */
  readonly podAnnotations?: Readonly<Record<string, string>>;
  /** The pod's containers, volumes and pull Secrets. */
  readonly pod: Pick<PodSpec, 'containers' | 'initContainers' | 'volumes' | 'imagePullSecrets'>;
}

/** A Job that runs once to completion, whose pods never restart in place and pass "restricted". */
export function runToCompletionJob(scope: Construct, id: string, options: RunToCompletionJobOptions): KubeJob {
  const labels = { ...options.labels };
  return new KubeJob(scope, id, {
    metadata: { name: options.name, labels, annotations: phaseAnnotation(options.phase) },
    spec: {
      backoffLimit: options.backoffLimit,
      activeDeadlineSeconds: 300,
      template: {
        metadata: { labels, ...(options.podAnnotations && { annotations: { ...options.podAnnotations } }) },
        spec: {
          restartPolicy: 'Never',
          securityContext: restrictedPodSecurityContext(),
          automountServiceAccountToken: false,
          // On the profile's nodes like the data plane: on a cluster whose other nodes cannot run
          // Sand Store's images (kwok nodes beside a real one), a Job elsewhere would never write the
          // membership or reach the data plane the way its pods do.
          ...podPlacement(options.placement),
          ...options.pod,
        },
      },
    },
  });
}
