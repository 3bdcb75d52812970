import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfigMap } from '../../imports/k8s.js';
import { synthesize } from '../../test/helpers.js';
import { Declared, declareFindings, type Declaration } from './checker-declarations.js';

describe('declareFindings', () => {
  test(
    "writes the checkers' own annotations after those the object has: kube-score's ids in " +
      "one, checkov's numbered with the reason",
    () => {
      const [object] = synthesize((chart) => {
        const map = new KubeConfigMap(chart, 'map', {
          metadata: { name: 'm', annotations: { 'kube-score/ignore': 'a', 'checkov.io/skip1': 'CKV_X=x' } },
        });
        declareFindings(
          map,
          { kubeScore: ['b'], checkov: ['CKV_Y', 'CKV_Z'], reason: 'why' },
          { kubeScore: ['c'], reason: 'because' },
        );
      });
      expect(object.metadata.annotations).toEqual({
        'kube-score/ignore': 'a,b,c',
        'checkov.io/skip1': 'CKV_X=x',
        'checkov.io/skip2': 'CKV_Y=why',
        'checkov.io/skip3': 'CKV_Z=why',
      });
    },
  );

  test('docs/profiles.md\'s "Manifest checkers" lists every declared check', () => {
    const readme = readFileSync(join(process.cwd(), 'docs', 'profiles.md'), 'utf8');
    const section = readme.slice(
      readme.indexOf('## Manifest checkers'),
      readme.indexOf('\n## ', readme.indexOf('## Manifest checkers') + 1),
    );
    const declarations: readonly Declaration[] = Object.values(Declared);
    for (const id of declarations.flatMap((d) => [...(d.kubeScore ?? []), ...(d.checkov ?? [])]))
      expect(section).toContain(`\`${id}\``);
  });
});
