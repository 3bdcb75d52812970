#!/usr/bin/env bash
# End-to-end check of a running local cluster (started by up.sh):
#   3 nodes Ready; PodSecurity 'restricted' enforced; a 3-replica StatefulSet
#   with volumeClaimTemplates on the tainted SSD nodes becomes Ready with its
#   claims Bound; deleting the claims deletes the PVs; a Job completes; a Job
#   with image sandstore.test/job:fail fails; the crashloop / never-ready /
#   slow-ready images behave as documented; pod logs work through the API
#   server (kwok's kubelet API): current log, --previous of a crash-looping
#   container ("panic: simulated crash"), --previous refused for a container
#   that never restarted, a failed Job pod's log, --follow (stays open and
#   streams lines appended later).
# Uses its own namespace + StorageClass and deletes them at the end.
#
# Usage: selftest.sh [--name NAME]
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
parse_name_arg "$@"
[[ ${#REST_ARGS[@]} -eq 0 ]] || die "unknown arguments: ${REST_ARGS[*]}"
[[ -f $CLUSTER_DIR/cluster.env ]] || die "no cluster '$NAME' (run up.sh --name $NAME first)"

KUBECTL=$KUBE_BIN_DIR/kubectl
KCFG=$CLUSTER_DIR/kubeconfig
k() { "$KUBECTL" --kubeconfig "$KCFG" "$@"; }
NS=lc-selftest-$RANDOM
SC=lc-selftest-$RANDOM
FAILURES=0
T0=$(now_ms)

pass() { log "PASS: $*"; }
bad() { printf '%s[local-cluster] FAIL:%s %s\n' "$_c_r" "$_c_0" "$*" >&2; FAILURES=$((FAILURES + 1)); }

# until_true TIMEOUT_S CMD...: poll every 0.25 s
until_true() {
  local deadline=$(($(now_ms) + $1 * 1000))
  shift
  until "$@" >/dev/null 2>&1; do
    (($(now_ms) < deadline)) || return 1
    sleep 0.25
  done
}
jp() { k get "$@" 2>/dev/null; } # jp RESOURCE... -o jsonpath=...

cleanup() {
  k delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
  k delete storageclass "$SC" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# Restricted-compliant pod bits.
SECCTX_POD='{"runAsNonRoot":true,"runAsUser":65532,"runAsGroup":65532,"fsGroup":65532,"seccompProfile":{"type":"RuntimeDefault"}}'
SECCTX_CTR='{"allowPrivilegeEscalation":false,"readOnlyRootFilesystem":true,"capabilities":{"drop":["ALL"]}}'

# --- nodes -------------------------------------------------------------------
ready=$(jp nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}')
if [[ $ready == *"kwok-ssd-0=True"* && $ready == *"kwok-ssd-1=True"* && $ready == *"kwok-general-0=True"* ]]; then
  pass "3 nodes Ready ($ready)"
else
  bad "nodes not Ready: $ready"
fi

# --- namespace + default ServiceAccount timing ---------------------------------
t=$(now_ms)
k create namespace "$NS" >/dev/null
k label namespace "$NS" pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/enforce-version=latest >/dev/null
if until_true 30 k get serviceaccount default -n "$NS"; then
  pass "ServiceAccount $NS/default exists $(elapsed "$t") after namespace creation"
else
  bad "ServiceAccount default not created in $NS within 30s"
fi

# --- PodSecurity admission ----------------------------------------------------------
if out=$(k apply -n "$NS" -f - 2>&1 <<EOF
apiVersion: v1
kind: Pod
metadata: {name: privileged}
spec:
  containers:
  - name: c
    image: registry.example/busybox:1.36
    securityContext: {privileged: true}
EOF
); then
  bad "a privileged pod was admitted into a restricted namespace"
else
  [[ $out == *"violates PodSecurity"* ]] && pass "PodSecurity 'restricted' rejects a privileged pod" || bad "unexpected error: $out"
fi

# --- StorageClass + StatefulSet with volumeClaimTemplates on SSD nodes ----------
t=$(now_ms)
k apply -f - >/dev/null <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: $SC}
provisioner: rancher.io/local-path
reclaimPolicy: Delete
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: v1
kind: Service
metadata: {name: sts, namespace: $NS}
spec:
  clusterIP: None
  selector: {app: sts}
  ports: [{name: p, port: 8080}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: sts, namespace: $NS}
spec:
  serviceName: sts
  replicas: 3
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: sts}}
  template:
    metadata: {labels: {app: sts}}
    spec:
      automountServiceAccountToken: false
      securityContext: $SECCTX_POD
      nodeSelector: {node.sandstore.io/disk: ssd}
      tolerations:
      - {key: node.sandstore.io/disk, operator: Equal, value: ssd, effect: NoSchedule}
      containers:
      - name: node
        image: registry.example/sandstore-node:selftest
        securityContext: $SECCTX_CTR
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      storageClassName: $SC
      resources: {requests: {storage: 5Gi}}
EOF
sts_ready() { [[ $(jp statefulset sts -n "$NS" -o jsonpath='{.status.readyReplicas}') == 3 ]]; }
pvcs_bound() { [[ $(jp pvc -n "$NS" -o jsonpath='{range .items[*]}{.status.phase}{" "}{end}') == "Bound Bound Bound " ]]; }
if until_true 90 sts_ready && until_true 30 pvcs_bound; then
  pass "StatefulSet 3/3 Ready with 3 claims Bound in $(elapsed "$t")"
else
  bad "StatefulSet not ready / claims not bound: $(k get sts,pod,pvc -n "$NS" -o wide 2>&1)"
fi
nodes=$(jp pod -n "$NS" -l app=sts -o jsonpath='{range .items[*]}{.spec.nodeName}{" "}{end}')
[[ $nodes != *general* && -n $nodes ]] && pass "pods only on SSD nodes: $nodes" || bad "pods on unexpected nodes: $nodes"
pv_ok=$(jp pv -o jsonpath="{range .items[?(@.spec.storageClassName==\"$SC\")]}{.spec.capacity.storage}/{.spec.persistentVolumeReclaimPolicy}/{.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values[0]}/{.metadata.annotations.pv\.kubernetes\.io/provisioned-by} {end}")
[[ $pv_ok == *"5Gi/Delete/kwok-ssd-"*"/rancher.io/local-path"* ]] && pass "PVs: $pv_ok" || bad "unexpected PVs: $pv_ok"

# --- delete StatefulSet, then claims -> PVs go away ---------------------------------
t=$(now_ms)
k delete statefulset sts -n "$NS" --wait=true >/dev/null
no_pods() { [[ -z $(jp pod -n "$NS" -l app=sts -o name) ]]; }
until_true 60 no_pods || bad "StatefulSet pods not deleted"
k delete pvc --all -n "$NS" --wait=true --timeout=60s >/dev/null || bad "PVC deletion did not finish"
no_pvs() { [[ -z $(jp pv -o jsonpath="{range .items[?(@.spec.storageClassName==\"$SC\")]}{.metadata.name} {end}") ]]; }
if until_true 60 no_pvs; then pass "StatefulSet + PVCs deleted -> PVs deleted ($(elapsed "$t"))"; else bad "PVs remain: $(k get pv 2>&1)"; fi

# --- Jobs -----------------------------------------------------------------------------
job() { # job NAME IMAGE
  k apply -f - >/dev/null <<EOF
apiVersion: batch/v1
kind: Job
metadata: {name: $1, namespace: $NS}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      automountServiceAccountToken: false
      securityContext: $SECCTX_POD
      containers:
      - {name: main, image: "$2", securityContext: $SECCTX_CTR}
EOF
}
t=$(now_ms)
job ok registry.example/busybox:1.36
job bad sandstore.test/job:fail
job_cond() { [[ $(jp job "$1" -n "$NS" -o jsonpath="{.status.conditions[?(@.type==\"$2\")].status}") == True ]]; }
if until_true 60 job_cond ok Complete; then pass "Job 'ok' Complete ($(elapsed "$t"))"; else bad "Job ok not Complete: $(k get job,pod -n "$NS" 2>&1)"; fi
if until_true 60 job_cond bad Failed; then
  st=$(jp pod -n "$NS" -l job-name=bad -o jsonpath='{.items[0].status.phase}/{.items[0].status.containerStatuses[0].state.terminated.exitCode}/{.items[0].status.containerStatuses[0].state.terminated.reason}')
  pass "Job 'bad' (sandstore.test/job:fail) Failed; pod $st"
else
  bad "Job bad not Failed: $(k get job,pod -n "$NS" 2>&1)"
fi

# --- special images -----------------------------------------------------------------------
pod() { # pod NAME IMAGE
  k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $1, namespace: $NS}
spec:
  automountServiceAccountToken: false
  securityContext: $SECCTX_POD
  containers:
  - {name: main, image: "$2", securityContext: $SECCTX_CTR}
EOF
}
t=$(now_ms)
pod crash sandstore.test/sandstore-node:crashloop
pod never sandstore.test/sandstore-node:never-ready
pod slow sandstore.test/sandstore-node:slow-ready
pod plain registry.example/sandstore-node:selftest
crashing() { [[ $(jp pod crash -n "$NS" -o jsonpath='{.status.containerStatuses[0].state.waiting.reason}') == CrashLoopBackOff ]]; }
if until_true 30 crashing; then
  st=$(jp pod crash -n "$NS" -o jsonpath='phase={.status.phase} ready={.status.containerStatuses[0].ready} restarts={.status.containerStatuses[0].restartCount} lastExit={.status.containerStatuses[0].lastState.terminated.exitCode} msg={.status.containerStatuses[0].lastState.terminated.message}')
  pass "crashloop pod: CrashLoopBackOff ($st)"
else
  bad "crashloop pod not in CrashLoopBackOff: $(k get pod crash -n "$NS" -o yaml 2>&1 | tail -30)"
fi
slow_ready() { [[ $(jp pod slow -n "$NS" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]]; }
slow_running() { [[ $(jp pod slow -n "$NS" -o jsonpath='{.status.phase}') == Running ]]; }
until_true 30 slow_running || bad "slow-ready pod not Running"
if slow_ready; then bad "slow-ready pod Ready too early"; fi
if until_true 30 slow_ready; then pass "slow-ready pod Ready $(elapsed "$t") after creation"; else bad "slow-ready pod never Ready"; fi
never=$(jp pod never -n "$NS" -o jsonpath='{.status.phase}/{.status.conditions[?(@.type=="Ready")].status}/{.status.containerStatuses[0].state.running.startedAt}')
[[ $never == Running/False/?* ]] && pass "never-ready pod: Running, Ready=False ($never)" || bad "never-ready pod: $never"
restarted() { [[ $(jp pod crash -n "$NS" -o jsonpath='{.status.containerStatuses[0].restartCount}') -ge 2 ]]; }
if until_true 25 restarted; then
  pass "crashloop restartCount increases (2 after $(elapsed "$t"))"
else
  bad "crashloop restartCount not increasing: $(jp pod crash -n "$NS" -o jsonpath='{.status.containerStatuses[0].restartCount}')"
fi

# --- pod logs (kube-apiserver -> kwok's kubelet API -> fixture files) ------------------------
t=$(now_ms)
plain_running() { [[ $(jp pod plain -n "$NS" -o jsonpath='{.status.phase}') == Running ]]; }
until_true 30 plain_running || bad "pod plain not Running"
out=$(k logs plain -n "$NS" 2>&1) || true
if [[ $out == *"Became Leader"* ]]; then
  pass "kubectl logs: $(wc -l <<<"$out") lines, e.g. '$(grep -m1 Leader <<<"$out")'"
else
  bad "kubectl logs plain: $out"
fi
# the request @kubernetes/client-node's Log class makes
out=$(k get --raw "/api/v1/namespaces/$NS/pods/plain/log?container=main&timestamps=true" 2>&1) || true
if [[ $out =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z\ sandstore\ node\ starting ]]; then
  pass "GET .../pods/plain/log?container=main&timestamps=true: '${out%%$'\n'*}'"
else
  bad "GET pods/plain/log: $out"
fi
if out=$(k logs plain -n "$NS" --previous 2>&1); then
  bad "kubectl logs --previous of a container that never restarted succeeded: $out"
elif [[ $out == *"previous terminated container not found"* ]]; then
  pass "kubectl logs --previous refused for a container without restarts"
else
  bad "unexpected kubectl logs --previous error: $out"
fi
out=$(k logs crash -n "$NS" --previous 2>&1) || true
if [[ $out == *"panic: simulated crash"* && $out == *"goroutine 1 [running]"* ]]; then
  pass "kubectl logs --previous of the crashloop container: '$(grep -m1 panic <<<"$out")'"
else
  bad "kubectl logs crash --previous: $out"
fi
out=$(k logs -n "$NS" -l job-name=bad 2>&1) || true
if [[ $out == *"error: simulated failure"* ]]; then
  pass "failed Job pod (image tag fail): kubectl logs ends with '$(tail -n1 <<<"$out")'"
else
  bad "logs of the failed Job pod: $out"
fi
rc=0
out=$(timeout 2 "$KUBECTL" --kubeconfig "$KCFG" logs plain -n "$NS" --follow 2>&1) || rc=$?
if ((rc == 124)) && [[ $out == *"Became Leader"* ]]; then
  pass "kubectl logs --follow streams the log and stays open (ended by a 2 s timeout)"
else
  bad "kubectl logs --follow: exit $rc, output: $out"
fi
# A pod's own log file (a kwok Logs object named like the pod): lines appended
# to it reach a running follow.
flog=$(mktemp "${TMPDIR:-/tmp}/lc-selftest-log.XXXXXX")
fout=$(mktemp "${TMPDIR:-/tmp}/lc-selftest-follow.XXXXXX")
printf '%s stdout F first line\n' "$(date -u +%Y-%m-%dT%H:%M:%S.000000000Z)" >"$flog"
k apply -f - >/dev/null <<EOF
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Logs
metadata: {name: plain, namespace: $NS}
spec:
  logs:
  - logsFile: $flog
EOF
own_log() { [[ $(k logs plain -n "$NS" 2>/dev/null) == "first line" ]]; }
until_true 10 own_log || bad "kwok did not pick up the Logs object for pod plain"
timeout 20 "$KUBECTL" --kubeconfig "$KCFG" logs plain -n "$NS" --follow >"$fout" 2>&1 &
fpid=$!
sleep 0.5
printf '%s stdout F appended while following\n' "$(date -u +%Y-%m-%dT%H:%M:%S.000000000Z)" >>"$flog"
appended() { grep -q "appended while following" "$fout"; }
if until_true 10 appended; then
  pass "kubectl logs --follow streams a line appended to the pod's log file"
else
  bad "kubectl logs --follow did not stream the appended line: $(cat "$fout")"
fi
kill "$fpid" 2>/dev/null || true
wait "$fpid" 2>/dev/null || true
rm -f "$flog" "$fout"
log "  pod log checks took $(elapsed "$t")"

if ((FAILURES)); then
  die "$FAILURES check(s) failed ($(elapsed "$T0"))"
fi
log "all checks passed on cluster '$NAME' in $(elapsed "$T0")"
