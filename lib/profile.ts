// zod/mini: zod 4's core without the chainable methods, so the bundle takes only what is used
// (the runner loads this module at every start).
import { en } from 'zod/locales';
import * as z from 'zod/mini';
// The constructs' props files only: their construct modules would load cdk8s, which the runner
// loads only when it renders.
import { RECLAIM_POLICIES, TAINT_EFFECTS } from './constructs/local-ssd-storage/local-ssd-storage-props.js';
import { IMAGE_PULL_POLICIES } from './constructs/sandstore-cluster/sandstore-cluster-props.js';
import { describeValue, rules, type Rule } from './validation.js';
import { RefusedError } from './errors.js';

/**
 * The Profile: everything that differs between benchmark set-ups, as data. One file per profile in
 * profiles/, `export default defineProfile({...})`. The schema below reports every problem at once,
 * by field, with the bad value and the accepted form; nothing is synthesized from an invalid profile.
 * Its rules are lib/validation.ts's, the constructs' too. A field a construct defaults is optional
 * here and left out of the parsed profile, so the construct's default is the only one; the fields
 * no construct takes (image.repository, build.platform) get their defaults here.
 */

/** A schema of `base` that also checks `rule`, reporting the bad value and the accepted form. */
function ruled<T extends string | number>(base: z.ZodMiniType<T>, rule: Rule<T>) {
  return base.check(
    z.superRefine((value, ctx) => {
      const accepted = rule(value);
      if (accepted !== undefined) ctx.addIssue({ code: 'custom', message: `expected ${accepted}`, input: value });
    }),
  );
}
const ruledString = (rule: Rule<string>) => ruled(z.string(), rule);
const ruledNumber = (rule: Rule<number>) => ruled(z.number(), rule);

const bytes = ruledString(rules.bytes);
const dnsLabel = ruledString(rules.dnsLabel);
const singleLine = ruledString(rules.singleLine);
const raftLogEntries = ruledNumber(rules.raftLogEntries);

/**
 * A check across fields that runs, despite problems elsewhere, once `fields` themselves are fine
 * (zod skips it otherwise), so that a profile's every problem is reported at once.
 */
function whenFieldsValid(...fields: readonly PropertyKey[][]) {
  const overlaps = (a: readonly PropertyKey[], b: readonly PropertyKey[]) =>
    a.every((key, i) => i >= b.length || key === b[i]);
  return (payload: z.core.ParsePayload) =>
    payload.issues.every(
      (issue) => issue.code === 'unrecognized_keys' || !fields.some((field) => overlaps(issue.path ?? [], field)),
    );
}

/**
 * Labels by key. An own "__proto__" key is refused as the bad label key it is: zod's record leaves
 * it out of what it parses (so that it cannot replace the result's prototype), in silence.
 */
const labelRecord = z.record(ruledString(rules.labelKey), ruledString(rules.labelValue));
const labels = z.pipe(
  z.custom<z.input<typeof labelRecord>>().check(
    z.superRefine((value, ctx) => {
      if (typeof value === 'object' && value !== null && Object.hasOwn(value, '__proto__')) {
        ctx.addIssue({
          code: 'custom',
          path: ['__proto__'],
          input: '__proto__',
          message: `expected ${rules.labelKey('__proto__')}`,
        });
        // The pipe stops at this stage, so the other keys are checked here: every problem is named.
        const others = labelRecord.safeParse(
          Object.fromEntries(Object.entries(value).filter(([key]) => key !== '__proto__')),
          { reportInput: true },
        );
        for (const issue of others.error?.issues ?? []) ctx.addIssue({ ...issue, path: [...issue.path] });
      }
    }),
  ),
  labelRecord,
);

const cpuMemory = z.strictObject({ cpu: ruledString(rules.cpu), memory: ruledString(rules.memory) });
const requestsAndLimits = z.strictObject({ requests: cpuMemory, limits: cpuMemory });
const resources = requestsAndLimits.check(
  ...(['cpu', 'memory'] as const).map((kind) =>
    z.superRefine<z.output<typeof requestsAndLimits>>(
      (r, ctx) => {
        const accepted = rules.notBelowRequest(r.requests[kind], `requests.${kind}`)(r.limits[kind]);
        if (accepted !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: ['limits', kind],
            input: r.limits[kind],
            message: `expected ${accepted}`,
          });
      },
      { when: whenFieldsValid(['requests', kind], ['limits', kind]) },
    ),
  ),
);

const ProfileSchema = z
  .strictObject({
    /** Equal to the file name (profiles/<name>.ts); used in labels, so a DNS label. */
    name: dnsLabel,
    /** One line for the profile list. */
    description: singleLine,
    kube: z.strictObject({
      /** The only kube context this profile acts on (never the kubeconfig's current-context). */
      context: singleLine,
      /** When set, the runner also refuses a context whose API server URL differs. */
      apiServer: z.optional(ruledString(rules.apiServerUrl)),
    }),
    /** Created and owned by the profile, so none of Kubernetes' own. */
    namespace: ruledString(rules.namespace),
    image: z.strictObject({
      registry: ruledString(rules.registry),
      /** @default 'sandstore-node' */
      repository: z._default(ruledString(rules.repository), 'sandstore-node'),
      tag: ruledString(rules.imageTag),
      /** SandstoreCluster's imagePullPolicy, whose default applies. */
      pullPolicy: z.optional(z.enum(IMAGE_PULL_POLICIES)),
      /**
       * A Secret of type kubernetes.io/dockerconfigjson in the profile's namespace that the kubelet
       * pulls the Sand Store image with (a private registry); the operator makes it, the runner
       * never does (docs/image.md#a-private-registry). SandstoreCluster's imagePullSecret, whose
       * default (none: anonymous pulls) applies.
       */
      pullSecret: z.optional(ruledString(rules.dnsSubdomain)),
    }),
    build: z.strictObject({
      /** Go build tags, passed to the Dockerfile as TAGS and GO_FLAGS="-tags ...". */
      goTags: z
        .array(ruledString(rules.goTag))
        .check(z.minLength(1, { error: 'expected at least one Go build tag, e.g. ["grpc", "etcd"]' })),
      /** @default 'linux/amd64' */
      platform: z._default(z.enum(['linux/amd64', 'linux/arm64']), 'linux/amd64'),
    }),
    /** The data plane: SandstoreCluster's props (RaftTunables), whose defaults apply. */
    raft: z.strictObject({
      replicas: ruledNumber(rules.raftReplicas),
      maxBatchSize: z.optional(raftLogEntries),
      maxBatchWaitMs: z.optional(ruledNumber(rules.batchWaitMs)),
      snapshotThresholdLogs: z.optional(raftLogEntries),
    }),
    /** The control plane: EtcdControlPlane's props, whose defaults apply. */
    etcd: z.strictObject({
      replicas: ruledNumber(rules.etcdReplicas),
      image: z.optional(ruledString(rules.imageReference)),
      storageSize: z.optional(bytes),
    }),
    /** The StorageClass: LocalSsdStorage's props, whose defaults apply. */
    storage: z.strictObject({
      className: z.optional(ruledString(rules.dnsSubdomain)),
      provisioner: z.optional(ruledString(rules.provisioner)),
      sizePerPod: bytes,
      /** Only "Delete" (see rules.cleanSlateReclaimPolicy for why). */
      reclaimPolicy: z.optional(ruled(z.enum(RECLAIM_POLICIES), rules.cleanSlateReclaimPolicy)),
      /**
       * The directory on the node that holds the volumes (LocalSsdStorage's nodePath). @default the
       * provisioner's choice
       */
      nodePath: z.optional(ruledString(rules.nodePath)),
    }),
    nodeSelection: z.strictObject({
      /** Labels of the SSD nodes; `{}` places pods anywhere. */
      nodeSelector: labels,
      /** A taint on the SSD nodes that Sand Store and etcd pods tolerate (LocalSsdStorage's SsdTaint). @default none */
      ssdTaint: z.optional(
        z.strictObject({
          key: ruledString(rules.labelKey),
          value: z.optional(ruledString(rules.labelValue)),
          effect: z.optional(z.enum(TAINT_EFFECTS)),
        }),
      ),
    }),
    clientAccess: z.strictObject({
      /** Node port of pod 0; pod i gets nodePortBase + i. */
      nodePortBase: ruledNumber(rules.nodePort),
      /** @default - each pod's node IP (HOST_IP) */
      advertiseHost: z.optional(ruledString(rules.host)),
      /**
       * A role label on each pod, a leader Service in the cluster and a node port to the leader: one
       * address that a leader answers, inside and outside the cluster (docs/leader-access.md).
       * @default - none
       */
      leader: z.optional(
        z.strictObject({
          /** The leader's node port, besides the pods' own. */
          nodePort: ruledNumber(rules.nodePort),
          /** The role sidecar's image (scripts/local-cluster/rolelabel). */
          roleLabelImage: ruledString(rules.imageReference),
        }),
      ),
    }),
    resources: z.strictObject({ sandstore: resources, etcd: resources }),
    /** Whether to generate the smoke-test Job (SandstoreCluster's smokeTest, whose default applies). */
    smokeTest: z.optional(z.boolean()),
  })
  .check(
    z.superRefine(
      (p, ctx) => {
        const accepted = rules.nodePortBaseFor(p.raft.replicas)(p.clientAccess.nodePortBase);
        if (accepted !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['clientAccess', 'nodePortBase'],
            input: p.clientAccess.nodePortBase,
            message: `expected ${accepted}`,
          });
        }
      },
      { when: whenFieldsValid(['raft', 'replicas'], ['clientAccess', 'nodePortBase']) },
    ),
    z.superRefine(
      (p, ctx) => {
        const leader = p.clientAccess.leader;
        const base = p.clientAccess.nodePortBase;
        if (leader && leader.nodePort >= base && leader.nodePort < base + p.raft.replicas) {
          ctx.addIssue({
            code: 'custom',
            path: ['clientAccess', 'leader', 'nodePort'],
            input: leader.nodePort,
            message: `expected a node port outside the pods' own, ${base}-${base + p.raft.replicas - 1}`,
          });
        }
      },
      {
        when: whenFieldsValid(
          ['raft', 'replicas'],
          ['clientAccess', 'nodePortBase'],
          ['clientAccess', 'leader', 'nodePort'],
        ),
      },
    ),
    // Each part may be fine and the whole too long (SandstoreCluster checks the whole).
    z.superRefine(
      (p, ctx) => {
        const reference = imageRef(p);
        const accepted = rules.imageReference(reference);
        if (accepted !== undefined)
          ctx.addIssue({ code: 'custom', path: ['image'], input: reference, message: `expected ${accepted}` });
      },
      { when: whenFieldsValid(['image', 'registry'], ['image', 'repository'], ['image', 'tag']) },
    ),
  );

/** What a profile file writes (defaults may be left out). */
export type ProfileInput = z.input<typeof ProfileSchema>;
/** A validated profile, defaults filled in. */
export type Profile = z.output<typeof ProfileSchema>;

/** Identity, for the editor's sake: type-checks a profile file against the schema. */
export function defineProfile(profile: ProfileInput): ProfileInput {
  return profile;
}

export function imageRef(p: Profile): string {
  return `${p.image.registry}/${p.image.repository}:${p.image.tag}`;
}

/** A profile that fails validation (a refusal, exit code 2): the message names every problem. */
export class ProfileError extends RefusedError {
  public constructor(
    public readonly profileName: string,
    public readonly problems: readonly string[],
  ) {
    super(
      `profile "${profileName}" is invalid (${problems.length} ` +
        `problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
  }
}

const english = en();

/** Validates `input` (the default export of profiles/<fileName>.ts); throws ProfileError naming every problem. */
export function parseProfile(fileName: string, input: unknown): Profile {
  // English messages for the issues the schema leaves to zod (an enum's "Invalid option: expected
  // one of ..."), which zod/mini, unlike zod, does not load by default.
  const result = ProfileSchema.safeParse(input, { reportInput: true, error: english.localeError });
  const problems = result.success ? [] : result.error.issues.flatMap(describeIssue);
  if (result.success && result.data.name !== fileName) {
    problems.push(
      `name: got ${JSON.stringify(result.data.name)}; expected "${fileName}", the file's name ` +
        `(profiles/${fileName}.ts)`,
    );
  }
  if (problems.length > 0 || !result.success) throw new ProfileError(fileName, problems);
  return result.data;
}

function describeIssue(issue: z.core.$ZodIssue): string[] {
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeys(issue.path);
    return issue.keys.map(
      (key) => `${fieldName([...issue.path, key])}: unknown field; accepted fields here: ${known.join(', ')}`,
    );
  }
  const message =
    issue.code === 'invalid_type'
      ? `expected ${issue.expected === 'number' && typeof issue.input === 'number' ? 'a finite number' : issue.expected}`
      : // A bad record key: the useful message is the key rule's own, one level down.
        issue.code === 'invalid_key'
        ? issue.issues.map((i) => i.message).join('; ')
        : issue.message;
  return [`${fieldName(issue.path)}: got ${describeValue(issue.input)}; ${message}`];
}

/**
 * A field's path as problems name it, e.g. `resources.etcd.limits.cpu`; `(profile)` for the whole.
 * A key that would not read as one (empty, with surrounding whitespace, or with a line break that
 * would split the problem's line) is quoted.
 */
export function fieldName(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(profile)';
  return path
    .map((key) => {
      const text = String(key);
      return text === '' || /^\s|\s$|[\p{Cc}\p{Zl}\p{Zp}]/u.test(text) ? JSON.stringify(text) : text;
    })
    .join('.');
}

/** The field names the schema accepts at `path`, for "unknown field" messages. */
function knownKeys(path: readonly PropertyKey[]): string[] {
  let schema: z.core.$ZodType = ProfileSchema;
  const unwrap = (s: z.core.$ZodType): z.core.$ZodType => {
    const def = s._zod.def as { innerType?: z.core.$ZodType; in?: z.core.$ZodType };
    return def.innerType ? unwrap(def.innerType) : def.in ? unwrap(def.in) : s;
  };
  for (const key of path) {
    const shape = (unwrap(schema)._zod.def as { shape?: Record<string, z.core.$ZodType> }).shape;
    if (!shape || !(String(key) in shape)) return [];
    schema = shape[String(key)];
  }
  const shape = (unwrap(schema)._zod.def as { shape?: Record<string, z.core.$ZodType> }).shape;
  return shape ? Object.keys(shape) : [];
}
