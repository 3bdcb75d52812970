import { Construct } from 'constructs';
import { Component, DeployPhase, SMOKE_TEST_CONTAINER } from '../../labels.js';
import { check, rules } from '../../validation.js';
import { Declared, declareFindings } from '../checker-declarations.js';
import { runToCompletionJob } from '../job.js';
import { checkResources, EPHEMERAL_STORAGE, toResourceRequirements } from '../resources.js';
import { componentLabels } from '../scope.js';
import { restrictedContainerSecurityContext } from '../security.js';
import { SMOKE_TEST_DEFAULTS as DEFAULTS, type SmokeTestProps } from './smoke-test-props.js';

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
    if (props.imagePullSecret !== undefined) check(who, 'imagePullSecret', props.imagePullSecret, rules.dnsSubdomain);
    const resources = props.resources ?? DEFAULTS.resources;
    checkResources(who, 'resources', resources);

    const job = runToCompletionJob(this, 'Job', {
      name: `${props.dataPlaneName}-smoke-test`,
      labels: componentLabels(this, props.dataPlaneName, Component.smokeTest),
      phase: DeployPhase.onDemand,
      backoffLimit: 0,
      placement: props.placement,
      pod: {
        ...(props.imagePullSecret !== undefined && { imagePullSecrets: [{ name: props.imagePullSecret }] }),
        containers: [
          {
            name: SMOKE_TEST_CONTAINER,
            image: props.image,
            imagePullPolicy: props.imagePullPolicy,
            command: ['/usr/local/bin/smoke'],
            // The client writes its own log under ./run/smoke/logs: the writable emptyDir, not the
            // read-only root (found on the real node: "mkdir run: read-only file system").
            workingDir: '/tmp',
            env: [{ name: 'SANDSTORE_SEEDS', value: props.seeds.join(',') }],
            resources: toResourceRequirements(resources, EPHEMERAL_STORAGE.logging),
            securityContext: restrictedContainerSecurityContext(),
            volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
          },
        ],
        volumes: [{ name: 'tmp', emptyDir: {} }],
      },
    });
    declareFindings(job, Declared.imageByTag);
  }
}
