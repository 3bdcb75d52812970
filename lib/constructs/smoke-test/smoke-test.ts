import { Construct } from 'constructs';
import { Component, DeployPhase } from '../../labels.js';
import { check, rules } from '../../validation.js';
import { runToCompletionJob } from '../job.js';
import { componentLabels } from '../scope.js';
import { restrictedContainerSecurityContext } from '../security.js';
import type { SmokeTestProps } from './smoke-test-props.js';

/**
 * The Job that runs Sand Store's smoke client against the data plane, from inside the cluster. The
 * runner applies it only on request (`npm run smoke`); a failed run is not retried.
 */
export class SmokeTest extends Construct {
  public constructor(scope: Construct, id: string, props: SmokeTestProps) {
    super(scope, id);
    const who = `SmokeTest ${this.node.path}`;
    check(who, 'dataPlaneName', props.dataPlaneName, rules.dnsLabel);
    check(who, 'image', props.image, rules.imageReference);

    runToCompletionJob(this, 'Job', {
      name: `${props.dataPlaneName}-smoke-test`,
      labels: componentLabels(this, props.dataPlaneName, Component.smokeTest),
      phase: DeployPhase.onDemand,
      backoffLimit: 0,
      placement: props.placement,
      pod: {
        containers: [{
          name: 'smoke',
          image: props.image,
          imagePullPolicy: props.imagePullPolicy,
          command: ['/usr/local/bin/smoke'],
          // The client writes its own log under ./run/smoke/logs: the writable emptyDir, not the
          // read-only root (found on the real node: "mkdir run: read-only file system").
          workingDir: '/tmp',
          env: [{ name: 'SANDSTORE_SEEDS', value: props.seeds.join(',') }],
          securityContext: restrictedContainerSecurityContext(),
          volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
        }],
        volumes: [{ name: 'tmp', emptyDir: {} }],
      },
    });
  }
}
