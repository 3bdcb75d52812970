import { App } from 'cdk8s';
import { parseProfile } from '../lib/profile.js';
import { SandstoreChart } from '../lib/sandstore-chart.js';
import ssdRaft from '../profiles/ssd-raft.js';

describe('SandstoreChart', () => {
  test.each(['default', 'kube-system', 'kube-public', 'kube-node-lease', 'kube-flannel'])(
    'refuses the namespace "%s", which belongs to Kubernetes, before making anything',
    (namespace) => {
      // Past the schema, as a caller of the chart that builds its Profile by hand would be.
      const profile = { ...parseProfile('ssd-raft', ssdRaft), namespace };
      const app = new App();
      expect(() => new SandstoreChart(app, profile)).toThrow(
        new RegExp(
          `^SandstoreChart ssd-raft: invalid namespace "${namespace}"; expected a DNS label.*, and none of Kubernetes' own namespaces`,
        ),
      );
    },
  );
});
