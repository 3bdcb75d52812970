import type { Pod } from '../../lib/runner/kube.js';

/** A data-plane pod as the API server reports it, in the states the runner's decisions read. */
export interface PodState {
  uid?: string;
  ready?: boolean;
  restarts?: number;
  waiting?: string;
  created?: number;
  terminated?: { exitCode: number; message?: string };
  unschedulable?: string;
}
export const pod = (name: string, rev: string, o: PodState = {}): Pod => ({
  kind: 'Pod',
  metadata: {
    name,
    ...(o.uid !== undefined && { uid: o.uid }),
    labels: { 'controller-revision-hash': rev },
    creationTimestamp: new Date(o.created ?? 0).toISOString(),
  },
  status: {
    phase: 'Running',
    conditions: [
      { type: 'Ready', status: o.ready === false ? 'False' : 'True' },
      ...(o.unschedulable
        ? [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: o.unschedulable }]
        : []),
    ],
    containerStatuses: [
      {
        name: 'sandstore',
        image: 'i',
        imageID: '',
        ready: o.ready !== false,
        restartCount: o.restarts ?? 0,
        state: o.waiting ? { waiting: { reason: o.waiting } } : { running: {} },
        lastState: o.terminated ? { terminated: o.terminated } : {},
      },
    ],
  },
});
