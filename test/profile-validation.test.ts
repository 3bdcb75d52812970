import fc from 'fast-check';
import ssdRaft from '../profiles/ssd-raft.js';
import { parseProfile, ProfileError, type ProfileInput } from '../lib/profile.js';

/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access,
   @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-return --
   Each case breaks a profile's input on purpose (a string where a number goes, a misspelt or
   missing key): what parseProfile must refuse, and what no type but any lets the mutations write. */
type Mutation = (p: any) => void;
const variant = (mutate: Mutation): ProfileInput => {
  const p = structuredClone(ssdRaft) as any;
  mutate(p);
  return p;
};
const problemsOf = (input: unknown, file = 'ssd-raft'): string[] => {
  try {
    parseProfile(file, input);
  } catch (err) {
    if (err instanceof ProfileError) return [...err.problems];
    throw err;
  }
  return [];
};

describe('profile validation', () => {
  test('the shipped profile is valid; the schema fills in only the defaults no construct owns', () => {
    const p = parseProfile('ssd-raft', ssdRaft);
    expect(p.image.repository).toBe('sandstore-node');
    expect(p.build.platform).toBe('linux/amd64');
    expect(p.image.pullPolicy).toBeUndefined();
    expect(p.storage.className).toBeUndefined();
  });

  test.each<[string, Mutation, RegExp]>([
    [
      'even Raft replicas',
      (p) => {
        p.raft.replicas = 4;
      },
      /^raft\.replicas: got 4; expected an odd whole number from 3 to 501$/,
    ],
    [
      'a single Raft node',
      (p) => {
        p.raft.replicas = 1;
      },
      /^raft\.replicas: got 1; expected an odd whole number from 3 to 501$/,
    ],
    [
      'even etcd replicas',
      (p) => {
        p.etcd.replicas = 2;
      },
      /^etcd\.replicas: got 2; expected an odd whole number from 1 to 7$/,
    ],
    [
      'more Raft replicas than one bootstrap Job holds',
      (p) => {
        p.raft.replicas = 503;
      },
      /^raft\.replicas: got 503; expected an odd whole number from 3 to 501$/,
    ],
    [
      'more etcd members than etcd advises',
      (p) => {
        p.etcd.replicas = 9;
      },
      /^etcd\.replicas: got 9; expected an odd whole number from 1 to 7$/,
    ],
    [
      'a tunable Sand Store reads as "1e+21"',
      (p) => {
        p.raft.maxBatchSize = 1e21;
      },
      /^raft\.maxBatchSize: got 1e\+21; expected a whole number from 1 to 10000$/,
    ],
    [
      'a snapshot threshold whose log no longer fits one message',
      (p) => {
        p.raft.snapshotThresholdLogs = 10_001;
      },
      /^raft\.snapshotThresholdLogs: got 10001; expected a whole number from 1 to 10000$/,
    ],
    [
      "a batch wait that fits a Go duration but never fires (the audit's)",
      (p) => {
        p.raft.maxBatchWaitMs = 9_223_372_036_854;
      },
      /^raft\.maxBatchWaitMs: got 9223372036854; expected a whole number from 1 to 10000$/,
    ],
    [
      "a batch wait past the client's deadline",
      (p) => {
        p.raft.maxBatchWaitMs = 30_000;
      },
      /^raft\.maxBatchWaitMs: got 30000; expected a whole number from 1 to 10000$/,
    ],
    [
      'a batch larger than the log kept between snapshots can be',
      (p) => {
        p.raft.maxBatchSize = 2 ** 53;
      },
      /^raft\.maxBatchSize: got 9007199254740992; expected a whole number from 1 to 10000$/,
    ],
    [
      "one byte of memory (the audit's)",
      (p) => {
        p.resources.sandstore.requests.memory = '1';
      },
      /^resources\.sandstore\.requests\.memory: got "1"; expected a Kubernetes quantity in whole bytes such as "512Mi" or "2Gi", at least "12Mi" \(the least a container starts with\) and at most 9223372036854775807 \(2\^63 - 1, the largest the API server stores\)$/,
    ],
    [
      'a memory request no container starts with',
      (p) => {
        p.resources.etcd.requests.memory = '4Mi';
      },
      /^resources\.etcd\.requests\.memory: got "4Mi"; expected .*at least "12Mi"/,
    ],
    [
      'replicas as a string',
      (p) => {
        p.raft.replicas = '3';
      },
      /^raft\.replicas: got "3"; expected number$/,
    ],
    [
      'a node port out of range',
      (p) => {
        p.clientAccess.nodePortBase = 8080;
      },
      /^clientAccess\.nodePortBase: got 8080; expected a whole number from 30000 to 32767/,
    ],
    [
      'node ports running past the range',
      (p) => {
        p.clientAccess.nodePortBase = 32766;
      },
      /^clientAccess\.nodePortBase: got 32766; expected at most 32765: with 3 Raft replicas the last node port would be 32768/,
    ],
    [
      'a quantity like 20GB',
      (p) => {
        p.storage.sizePerPod = '20GB';
      },
      /^storage\.sizePerPod: got "20GB"; expected a Kubernetes quantity such as "20Gi"/,
    ],
    [
      'a zero claim size',
      (p) => {
        p.storage.sizePerPod = '0Mi';
      },
      /^storage\.sizePerPod: got "0Mi"; expected a Kubernetes quantity such as "20Gi" or "512Mi", greater than 0, in whole bytes and at most 9223372036854775807 \(2\^63 - 1, the largest the API server stores\)$/,
    ],
    [
      'an empty etcd claim size',
      (p) => {
        p.etcd.storageSize = '';
      },
      /^etcd\.storageSize: got ""; expected a Kubernetes quantity such as "20Gi" or "512Mi", greater than 0/,
    ],
    [
      'a fraction of a byte ("500m" meant as "500Mi")',
      (p) => {
        p.resources.etcd.requests.memory = '500m';
      },
      /^resources\.etcd\.requests\.memory: got "500m"; expected .*in whole bytes such as/,
    ],
    [
      'no CPU at all',
      (p) => {
        p.resources.sandstore.requests.cpu = '0';
      },
      /^resources\.sandstore\.requests\.cpu: got "0"; expected a Kubernetes quantity such as "500m" or "2", greater than 0 and, in thousandths of a core, at most 9223372036854775807/,
    ],
    [
      'an empty memory request',
      (p) => {
        p.resources.etcd.requests.memory = '';
      },
      /^resources\.etcd\.requests\.memory: got ""; expected a Kubernetes quantity/,
    ],
    [
      'a CPU limit below its request',
      (p) => {
        p.resources.sandstore.limits.cpu = '400m';
      },
      /^resources\.sandstore\.limits\.cpu: got "400m"; expected at least requests\.cpu, "500m"$/,
    ],
    [
      'a memory limit below its request, in other units',
      (p) => {
        p.resources.etcd.limits.memory = '0.25Gi';
        p.resources.etcd.requests.memory = '262145Ki';
      },
      /^resources\.etcd\.limits\.memory: got "0\.25Gi"; expected at least requests\.memory, "262145Ki"$/,
    ],
    [
      'a CPU like "two"',
      (p) => {
        p.resources.sandstore.limits.cpu = 'two';
      },
      /^resources\.sandstore\.limits\.cpu: got "two"; expected a Kubernetes quantity/,
    ],
    [
      'an empty context',
      (p) => {
        p.kube.context = '';
      },
      /^kube\.context: got ""; expected a non-empty string on one line, without leading or trailing whitespace$/,
    ],
    [
      'a missing context',
      (p) => {
        delete p.kube.context;
      },
      /^kube\.context: got nothing \(the field is missing\); expected string$/,
    ],
    [
      'an image without a tag',
      (p) => {
        p.image.tag = '';
      },
      /^image\.tag: got ""; expected an image tag/,
    ],
    [
      'a registry with a scheme',
      (p) => {
        p.image.registry = 'https://docker.io/me';
      },
      /^image\.registry: got "https:\/\/docker\.io\/me"; expected a registry host/,
    ],
    [
      'an etcd image without a tag',
      (p) => {
        p.etcd.image = 'quay.io/coreos/etcd';
      },
      /^etcd\.image: got "quay\.io\/coreos\/etcd"; expected an image reference with a tag, "<registry>\/<repository>:<tag>"/,
    ],
    [
      'an etcd image with a space',
      (p) => {
        p.etcd.image = 'quay.io/coreos/etcd: v3.5.0';
      },
      /^etcd\.image: got "quay\.io\/coreos\/etcd: v3\.5\.0"; expected an image reference/,
    ],
    [
      'a registry whose host has an empty part',
      (p) => {
        p.image.registry = 'docker..io';
      },
      /^image\.registry: got "docker\.\.io"; expected a registry host/,
    ],
    [
      'a registry port out of range',
      (p) => {
        p.image.registry = 'localhost:65536';
      },
      /^image\.registry: got "localhost:65536"; expected a registry host/,
    ],
    [
      'an image name too long as a whole',
      (p) => {
        p.image.registry = `r.example/${'a'.repeat(150)}`;
        p.image.repository = 'b'.repeat(100);
      },
      /^image: got "r\.example\/a+\/b+:ssd-raft-latest"; expected an image reference with a tag, .*its name at most 255 characters/,
    ],
    [
      'a provisioner that is no qualified name',
      (p) => {
        p.storage.provisioner = 'rancher local-path';
      },
      /^storage\.provisioner: got "rancher local-path"; expected a provisioner name such as "rancher\.io\/local-path"/,
    ],
    [
      'a relative node path',
      (p) => {
        p.storage.nodePath = 'var/lib/ext4';
      },
      /^storage\.nodePath: got "var\/lib\/ext4"; expected an absolute directory path such as/,
    ],
    [
      'a node path with a trailing "/"',
      (p) => {
        p.storage.nodePath = '/mnt/ext4/';
      },
      /^storage\.nodePath: got "\/mnt\/ext4\/"; expected an absolute directory path .*no trailing "\/"/,
    ],
    [
      'a node path with ".."',
      (p) => {
        p.storage.nodePath = '/mnt/../ext4';
      },
      /^storage\.nodePath: got "\/mnt\/\.\.\/ext4"; expected an absolute directory path .*no "\." or "\.\." parts/,
    ],
    [
      'the root as node path',
      (p) => {
        p.storage.nodePath = '/';
      },
      /^storage\.nodePath: got "\/"; expected an absolute directory path .*not "\/" itself/,
    ],
    [
      'an advertised host with a port',
      (p) => {
        p.clientAccess.advertiseHost = '192.168.1.20:30080';
      },
      /^clientAccess\.advertiseHost: got "192\.168\.1\.20:30080"; expected a host name or IP address/,
    ],
    [
      'an IPv6 advertised host without brackets',
      (p) => {
        p.clientAccess.advertiseHost = 'fd00::20';
      },
      /^clientAccess\.advertiseHost: got "fd00::20"; expected a host name or IP address, e\.g\. "192\.168\.1\.20", "laptop\.lan" or "\[fd00::20\]"$/,
    ],
    [
      'a description over two lines',
      (p) => {
        p.description = 'one\ntwo';
      },
      /^description: got "one\\ntwo"; expected a non-empty string on one line/,
    ],
    [
      'an unknown key (typo)',
      (p) => {
        p.raft.replica = 3;
      },
      /^raft\.replica: unknown field; accepted fields here: replicas, maxBatchSize, maxBatchWaitMs, snapshotThresholdLogs$/,
    ],
    [
      'an unknown top-level key',
      (p) => {
        p.nodeSelector = {};
      },
      /^nodeSelector: unknown field; accepted fields here: name, description, kube, namespace, image/,
    ],
    [
      'a namespace with capitals',
      (p) => {
        p.namespace = 'SandStore';
      },
      /^namespace: got "SandStore"; expected a DNS label/,
    ],
    [
      "Kubernetes' own namespace",
      (p) => {
        p.namespace = 'kube-system';
      },
      /^namespace: got "kube-system"; expected a DNS label: .*, and none of Kubernetes' own namespaces \("default", "kube-system", "kube-public", "kube-node-lease" or any other "kube-" one\)$/,
    ],
    [
      'the default namespace',
      (p) => {
        p.namespace = 'default';
      },
      /^namespace: got "default"; expected .*none of Kubernetes' own namespaces/,
    ],
    [
      "a namespace under Kubernetes' prefix",
      (p) => {
        p.namespace = 'kube-sandstore';
      },
      /^namespace: got "kube-sandstore"; expected .*none of Kubernetes' own namespaces/,
    ],
    [
      'a bad node label key',
      (p) => {
        p.nodeSelection.nodeSelector = { 'disk type': 'ssd' };
      },
      /^nodeSelection\.nodeSelector\.disk type: got "disk type"; expected a label key/,
    ],
    [
      'no Go build tags',
      (p) => {
        p.build.goTags = [];
      },
      /^build\.goTags: got \[\]; expected at least one Go build tag/,
    ],
    [
      'a zero Raft tunable',
      (p) => {
        p.raft.maxBatchWaitMs = 0;
      },
      /^raft\.maxBatchWaitMs: got 0; expected a whole number from 1 to 10000$/,
    ],
    [
      'a bad taint effect',
      (p) => {
        p.nodeSelection.ssdTaint = { key: 'k', effect: 'NoScheduling' };
      },
      /^nodeSelection\.ssdTaint\.effect: got "NoScheduling"; /,
    ],
    [
      'an API server that is not a URL',
      (p) => {
        p.kube.apiServer = '192.168.1.20:8443';
      },
      /^kube\.apiServer: got "192\.168\.1\.20:8443"; expected an https URL with a host and an optional port and path, e\.g\. "https:\/\/192\.168\.49\.2:8443" \(this one has no scheme\)$/,
    ],
    [
      'an API server over plain http, which the runner refuses',
      (p) => {
        p.kube.apiServer = 'http://192.168.1.20:8080';
      },
      /^kube\.apiServer: got "http:\/\/192\.168\.1\.20:8080"; expected an https URL .*\(this one uses plain http/,
    ],
    [
      'an API server with credentials in it',
      (p) => {
        p.kube.apiServer = 'https://admin:pw@192.168.1.20:8443';
      },
      /^kube\.apiServer: got .*; expected an https URL .*\(this one carries a user name or password in the URL\)$/,
    ],
    [
      'an API server with a query',
      (p) => {
        p.kube.apiServer = 'https://192.168.1.20:8443/?x=1';
      },
      /^kube\.apiServer: got .*; expected an https URL .*\(this one carries a query or fragment\)$/,
    ],
  ])('%s is reported by field, value and accepted form', (_, mutate, message) => {
    const problems = problemsOf(variant(mutate));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(message);
  });

  test.each<[string, Mutation]>([
    [
      'kube.context',
      (p) => {
        p.kube.context = 'minikube-laptop ';
      },
    ],
    [
      'kube.apiServer',
      (p) => {
        p.kube.apiServer = ' https://192.168.1.20:8443';
      },
    ],
    [
      'description',
      (p) => {
        p.description = '\t3 Raft nodes';
      },
    ],
    [
      'namespace',
      (p) => {
        p.namespace = ' sandstore';
      },
    ],
    [
      'image.registry',
      (p) => {
        p.image.registry = 'docker.io/sandstore\n';
      },
    ],
    [
      'image.tag',
      (p) => {
        p.image.tag = ' ssd-raft-latest';
      },
    ],
    [
      'etcd.image',
      (p) => {
        p.etcd.image = 'quay.io/coreos/etcd:v3.5.0 ';
      },
    ],
    [
      'storage.className',
      (p) => {
        p.storage.className = 'sandstore-local-ssd\u00a0';
      },
    ],
    [
      'storage.provisioner',
      (p) => {
        p.storage.provisioner = ' rancher.io/local-path';
      },
    ],
    [
      'storage.nodePath',
      (p) => {
        p.storage.nodePath = '/mnt/ext4 ';
      },
    ],
    [
      'nodeSelection.nodeSelector." node.sandstore.io/disk"',
      (p) => {
        p.nodeSelection.nodeSelector = { ' node.sandstore.io/disk': 'ssd' };
      },
    ],
    [
      'nodeSelection.nodeSelector.node.sandstore.io/disk',
      (p) => {
        p.nodeSelection.nodeSelector = { 'node.sandstore.io/disk': 'ssd ' };
      },
    ],
    [
      'nodeSelection.ssdTaint.key',
      (p) => {
        p.nodeSelection.ssdTaint.key = 'node.sandstore.io/disk ';
      },
    ],
    [
      'clientAccess.advertiseHost',
      (p) => {
        p.clientAccess.advertiseHost = '192.168.1.20 ';
      },
    ],
  ])('surrounding whitespace in %s is refused, not trimmed', (field, mutate) => {
    const problems = problemsOf(variant(mutate));
    expect(problems).toHaveLength(1);
    expect(problems[0].startsWith(`${field}: got "`)).toBe(true);
  });

  test.each(['quay.io/coreos/etcd:v3.5.0', 'localhost:5000/etcd:v3.5.9'])(
    'the shipped etcd image %s is a well-formed reference',
    (image) => {
      expect(
        problemsOf(
          variant((p) => {
            p.etcd.image = image;
          }),
        ),
      ).toEqual([]);
    },
  );

  test('a problem across fields is reported along with the others', () => {
    const problems = problemsOf(
      variant((p) => {
        p.clientAccess.nodePortBase = 32766;
        p.kube.context = '';
        p.image.pullPolicy = 'Sometimes';
      }),
    );
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual([
      'clientAccess.nodePortBase',
      'image.pullPolicy',
      'kube.context',
    ]);
  });

  test("reclaim policy Retain is refused with the reason: the clean slate removes each run's volumes", () => {
    expect(
      problemsOf(
        variant((p) => {
          p.storage.reclaimPolicy = 'Retain';
        }),
      ),
    ).toEqual([
      'storage.reclaimPolicy: got "Retain"; expected "Delete": every run starts on empty volumes and destroy removes them; with "Retain" each run\'s volumes and data would stay on the SSD, never reused or removed',
    ]);
    expect(
      problemsOf(
        variant((p) => {
          p.storage.reclaimPolicy = 'Delete';
        }),
      ),
    ).toEqual([]);
  });

  test('a limit equal to its request in other units is accepted', () => {
    expect(
      problemsOf(
        variant((p) => {
          p.resources.sandstore.requests = { cpu: '1', memory: '1Gi' };
          p.resources.sandstore.limits = { cpu: '1000m', memory: '1024Mi' };
        }),
      ),
    ).toEqual([]);
  });

  test.each<[string, Mutation, string]>([
    [
      'NaN',
      (p) => {
        p.raft.replicas = NaN;
      },
      'raft.replicas: got NaN; expected a finite number',
    ],
    [
      'Infinity',
      (p) => {
        p.etcd.replicas = Infinity;
      },
      'etcd.replicas: got Infinity; expected a finite number',
    ],
    [
      'a bigint',
      (p) => {
        p.raft.replicas = 3n;
      },
      'raft.replicas: got 3n; expected number',
    ],
    [
      'a function',
      (p) => {
        p.kube.context = () => 'minikube-laptop';
      },
      'kube.context: got a function; expected string',
    ],
    [
      'an object that refers to itself',
      (p) => {
        p.kube = { context: 'c' };
        p.kube.self = p.kube;
      },
      'kube.self: unknown field; accepted fields here: context, apiServer',
    ],
    [
      'a key with a line break',
      (p) => {
        p.kube['api\nServer'] = 'x';
      },
      'kube."api\\nServer": unknown field; accepted fields here: context, apiServer',
    ],
    [
      'an empty key',
      (p) => {
        p.raft[''] = 1;
      },
      'raft."": unknown field; accepted fields here: replicas, maxBatchSize, maxBatchWaitMs, snapshotThresholdLogs',
    ],
    [
      'an own "__proto__" label key, which zod would drop',
      (p) => {
        p.nodeSelection.nodeSelector = JSON.parse('{"__proto__": "ssd"}');
      },
      'nodeSelection.nodeSelector.__proto__: got "__proto__"; expected a label key such as "node.sandstore.io/disk": optional DNS-subdomain prefix, "/", a name of at most 63 characters',
    ],
  ])("%s is shown as what it is, on the problem's one line", (_, mutate, problem) => {
    expect(problemsOf(variant(mutate))).toEqual([problem]);
  });

  test('an own "__proto__" label key does not hide the problems of the other keys (found by the property tests)', () => {
    const problems = problemsOf(
      variant((p) => {
        p.nodeSelection.nodeSelector = JSON.parse('{"__proto__": {}, "": 0, "ok/key": "v"}');
      }),
    );
    const expected = (key: string, shown: string) =>
      `nodeSelection.nodeSelector.${key}: got "${shown}"; expected a label key such as "node.sandstore.io/disk": optional DNS-subdomain prefix, "/", a name of at most 63 characters`;
    // The empty key as it is reported without "__proto__" beside it.
    expect(problems).toEqual([expected('__proto__', '__proto__'), expected('""', '')]);
  });

  test('memory takes whole bytes from 12Mi, what a container starts with (generated quantities against a model)', () => {
    const UNITS: Record<string, bigint> = {
      '': 1n,
      k: 1000n,
      M: 10n ** 6n,
      G: 10n ** 9n,
      Ki: 1024n,
      Mi: 1024n ** 2n,
      Gi: 1024n ** 3n,
    };
    const quantity = fc.record({
      unit: fc.constantFrom(...Object.keys(UNITS)),
      whole: fc.oneof(
        fc.bigInt({ min: 0n, max: 20_000_000n }),
        fc.constantFrom(0n, 1n, 4n, 6n, 11n, 12n, 13n, 12_287n, 12_288n, 12_582_911n, 12_582_912n, 12_582_913n),
      ),
      tenth: fc.option(fc.bigInt({ min: 0n, max: 9n }), { nil: undefined }),
    });
    let accepted = 0;
    fc.assert(
      fc.property(quantity, ({ unit, whole, tenth }) => {
        const text = `${whole}${tenth === undefined ? '' : `.${tenth}`}${unit}`;
        const tenths = (whole * 10n + (tenth ?? 0n)) * UNITS[unit];
        const ok = tenths % 10n === 0n && tenths / 10n >= 12n * 1024n * 1024n;
        const problems = problemsOf(
          variant((p) => {
            p.resources.sandstore.requests.memory = text;
            p.resources.sandstore.limits.memory = text;
          }),
        );
        if (ok) {
          accepted++;
          expect(problems).toEqual([]);
        } else {
          expect(problems).toEqual(
            ['requests', 'limits'].map(
              (part) =>
                `resources.sandstore.${part}.memory: got "${text}"; expected a Kubernetes quantity in whole bytes such as "512Mi" or "2Gi", at least "12Mi" (the least a container starts with) and at most 9223372036854775807 (2^63 - 1, the largest the API server stores)`,
            ),
          );
        }
      }),
      { numRuns: 400 },
    );
    expect(accepted).toBeGreaterThan(50);
  });

  test('a quantity beyond what the API server stores (64 bits) is refused, naming the field (generated around the bound)', () => {
    const INT64_MAX = 2n ** 63n - 1n;
    const UNITS: Record<string, bigint> = { '': 1n, k: 1000n, E: 10n ** 18n, Ki: 1024n, Ei: 1024n ** 6n };
    // Amounts in base units around 2^63 - 1, written in a unit that divides them when one does.
    const bytes = fc.record({
      unit: fc.constantFrom(...Object.keys(UNITS)),
      amount: fc.oneof(
        fc.bigInt({ min: INT64_MAX - 5_000n, max: INT64_MAX + 5_000n }),
        fc.bigInt({ min: 1n, max: 2n ** 80n }),
        fc.constantFrom(INT64_MAX, INT64_MAX + 1n, 2n ** 64n, 8n * 1024n ** 6n, 9n * 1024n ** 6n, 10n ** 19n),
      ),
    });
    let refused = 0;
    fc.assert(
      fc.property(bytes, ({ unit, amount }) => {
        const inUnit = amount / UNITS[unit];
        if (inUnit === 0n) return;
        const text = `${inUnit}${unit}`;
        const value = inUnit * UNITS[unit];
        const problems = problemsOf(
          variant((p) => {
            p.storage.sizePerPod = text;
            p.resources.sandstore.limits.cpu = text;
          }),
        );
        const tooMany = [
          ...(value > INT64_MAX ? [`storage.sizePerPod: got "${text}"`] : []),
          // CPU is kept in thousandths of a core.
          ...(value * 1000n > INT64_MAX ? [`resources.sandstore.limits.cpu: got "${text}"`] : []),
        ];
        if (tooMany.length > 0) refused++;
        expect(problems.map((p) => p.replace(/; expected .*$/, ''))).toEqual(tooMany);
        for (const problem of problems) expect(problem).toMatch(/at most 9223372036854775807 \(2\^63 - 1/);
      }),
      { numRuns: 300 },
    );
    expect(refused).toBeGreaterThan(50);
  });

  test('each Raft tunable takes a whole number from 1 to 10000 (generated numbers against a model)', () => {
    const field = fc.constantFrom('maxBatchSize', 'maxBatchWaitMs', 'snapshotThresholdLogs');
    const value = fc.oneof(
      fc.integer({ min: -5, max: 12_000 }),
      fc.double(),
      fc.constantFrom(0, 1, 9_999, 10_000, 10_001, 2 ** 31, 2 ** 53, 9_223_372_036_854, 1e21, 0.5, NaN, Infinity),
    );
    fc.assert(
      fc.property(field, value, (name, n) => {
        const problems = problemsOf(
          variant((p) => {
            p.raft[name] = n;
          }),
        );
        if (Number.isInteger(n) && n >= 1 && n <= 10_000) expect(problems).toEqual([]);
        else {
          expect(problems).toHaveLength(1);
          expect(problems[0].startsWith(`raft.${name}: got `)).toBe(true);
        }
      }),
      { numRuns: 600 },
    );
  });

  test('image.pullSecret: a Secret name (DNS subdomain) or left out (anonymous pulls)', () => {
    expect(parseProfile('ssd-raft', ssdRaft).image.pullSecret).toBeUndefined();
    const named = variant((p) => (p.image.pullSecret = 'registry-login'));
    expect(parseProfile('ssd-raft', named).image.pullSecret).toBe('registry-login');
    const [problem] = problemsOf(variant((p) => (p.image.pullSecret = 'Registry_Login')));
    expect(problem).toMatch(/^image\.pullSecret: got "Registry_Login"; expected a DNS subdomain/);
  });

  test('a name that is not the file name is refused', () => {
    expect(problemsOf(ssdRaft, 'other')).toEqual([
      'name: got "ssd-raft"; expected "other", the file\'s name (profiles/other.ts)',
    ]);
  });

  test('every problem is reported at once', () => {
    const problems = problemsOf(
      variant((p) => {
        p.raft.replicas = 2;
        p.clientAccess.nodePortBase = 1;
        p.storage.sizePerPod = '20GB';
        p.kube.context = '';
        p.image.tag = '';
        p.etcd.replica = 1;
        p.resources.etcd.limits.cpu = '1m';
      }),
    );
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual([
      'clientAccess.nodePortBase',
      'etcd.replica',
      'image.tag',
      'kube.context',
      'raft.replicas',
      'resources.etcd.limits.cpu',
      'storage.sizePerPod',
    ]);
  });

  test('the error message lists the problems under the profile name', () => {
    expect(() =>
      parseProfile(
        'ssd-raft',
        variant((p) => {
          p.raft.replicas = 4;
        }),
      ),
    ).toThrow(
      'profile "ssd-raft" is invalid (1 problem):\n  - raft.replicas: got 4; expected an odd whole number from 3 to 501',
    );
  });
});
