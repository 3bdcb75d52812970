import { find, synthesize } from '../../../test/helpers.js';
import { LocalSsdStorage } from './local-ssd-storage.js';

describe('LocalSsdStorage', () => {
  test(
    'defaults: sandstore-local-ssd from local-path, bound on first consumer, deleted with ' + 'its claim, expandable',
    () => {
      let storage!: LocalSsdStorage;
      const objects = synthesize((chart) => {
        storage = new LocalSsdStorage(chart, 'storage');
      });
      const sc = find(objects, 'StorageClass', 'sandstore-local-ssd');
      expect(sc).toMatchObject({
        apiVersion: 'storage.k8s.io/v1',
        provisioner: 'rancher.io/local-path',
        volumeBindingMode: 'WaitForFirstConsumer',
        reclaimPolicy: 'Delete',
        allowVolumeExpansion: true,
      });
      expect(storage.placement).toEqual({ nodeSelector: { 'node.sandstore.io/disk': 'ssd' }, tolerations: [] });
    },
  );

  test("nodePath: the directory on the node, as local-path's per-class parameter; none by default", () => {
    const objects = synthesize((chart) => {
      new LocalSsdStorage(chart, 'ext4', { storageClassName: 'ext4', nodePath: '/var/lib/sandstore-node/ext4' });
      new LocalSsdStorage(chart, 'any', { storageClassName: 'any' });
    });
    expect(find(objects, 'StorageClass', 'ext4').parameters).toEqual({ nodePath: '/var/lib/sandstore-node/ext4' });
    expect(find(objects, 'StorageClass', 'any')).not.toHaveProperty('parameters');
  });

  test('a StorageClass is cluster-scoped: no namespace even in a namespaced chart', () => {
    const objects = synthesize((chart) => new LocalSsdStorage(chart, 'storage'), { namespace: 'ns' });
    expect(find(objects, 'StorageClass', 'sandstore-local-ssd').metadata.namespace).toBeUndefined();
  });

  test('a taint becomes the toleration storage pods carry', () => {
    let withValue!: LocalSsdStorage;
    let keyOnly!: LocalSsdStorage;
    synthesize((chart) => {
      withValue = new LocalSsdStorage(chart, 'a', {
        storageClassName: 'a',
        taint: { key: 'node.sandstore.io/disk', value: 'ssd' },
      });
      keyOnly = new LocalSsdStorage(chart, 'b', {
        storageClassName: 'b',
        taint: { key: 'dedicated', effect: 'NoExecute' },
      });
    });
    expect(withValue.placement.tolerations).toEqual([
      { key: 'node.sandstore.io/disk', operator: 'Equal', value: 'ssd', effect: 'NoSchedule' },
    ]);
    expect(keyOnly.placement.tolerations).toEqual([{ key: 'dedicated', operator: 'Exists', effect: 'NoExecute' }]);
  });

  test.each([
    [{ storageClassName: 'Local_SSD' }, /storageClassName "Local_SSD"; expected a DNS subdomain/],
    [{ nodeSelector: { 'bad key!': 'ssd' } }, /nodeSelector key "bad key!"; expected a label key/],
    [{ nodeSelector: { disk: 'solid state' } }, /nodeSelector\["disk"\] "solid state"; expected a label value/],
    [{ provisioner: ' ' }, /provisioner " "; expected a provisioner name such as "rancher.io\/local-path"/],
    [{ provisioner: 'rancher.io/local-path ' }, /provisioner "rancher.io\/local-path "; expected a provisioner name/],
    [{ nodePath: 'ext4' }, /nodePath "ext4"; expected an absolute directory path such as/],
    [{ nodePath: '/mnt//ext4' }, /nodePath "\/mnt\/\/ext4"; expected an absolute directory path .*no "\/\/"/],
    [
      { reclaimPolicy: 'Retain' as const },
      /reclaimPolicy "Retain"; expected "Delete": every run starts on empty volumes and destroy removes them/,
    ],
  ])('rejects %j naming the field, the value and the accepted form', (props, message) => {
    expect(() => synthesize((chart) => new LocalSsdStorage(chart, 'storage', props))).toThrow(message);
  });
});
