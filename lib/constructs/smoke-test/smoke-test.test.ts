import { find, synthesize } from '../../../test/helpers.js';
import { SmokeTest } from './smoke-test.js';

describe('SmokeTest', () => {
  test(
    "runs the image's smoke client once against the seeds, only on request, anywhere when " + 'no placement is given',
    () => {
      const seeds = ['store-0.bench.svc:8080', 'store-1.bench.svc:8080', 'store-2.bench.svc:8080'];
      const objects = synthesize((chart) => {
        new SmokeTest(chart, 'smoke', {
          dataPlaneName: 'store',
          image: 'r/sandstore-node:t',
          imagePullPolicy: 'IfNotPresent',
          seeds,
        });
      });
      const job = find(objects, 'Job', 'store-smoke-test');
      expect(job.metadata.annotations['sandstore.io/deploy-phase']).toBe('on-demand');
      expect(job.spec.backoffLimit).toBe(0);
      const pod = job.spec.template.spec;
      expect(pod.nodeSelector).toBeUndefined();
      expect(pod.containers[0]).toMatchObject({
        image: 'r/sandstore-node:t',
        imagePullPolicy: 'IfNotPresent',
        command: ['/usr/local/bin/smoke'],
        env: [{ name: 'SANDSTORE_SEEDS', value: seeds.join(',') }],
        resources: {
          requests: { cpu: '50m', memory: '64Mi', 'ephemeral-storage': '64Mi' },
          limits: { cpu: '500m', memory: '256Mi', 'ephemeral-storage': '1Gi' },
        },
      });
    },
  );

  test.each([
    [{ dataPlaneName: 'Store' }, /dataPlaneName "Store"; expected a DNS label/],
    [{ image: 'sandstore-node' }, /image "sandstore-node"; expected an image reference with a tag/],
    [
      { resources: { requests: { cpu: '1', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } } },
      /resources.limits.cpu "500m"; expected at least resources.requests.cpu, "1"/,
    ],
  ])('rejects %j naming the field, the value and the accepted form', (props, message) => {
    const valid = {
      dataPlaneName: 'store',
      image: 'r/sandstore-node:t',
      imagePullPolicy: 'Always',
      seeds: [],
    } as const;
    expect(() => synthesize((chart) => new SmokeTest(chart, 'smoke', { ...valid, ...props }))).toThrow(message);
  });
});
