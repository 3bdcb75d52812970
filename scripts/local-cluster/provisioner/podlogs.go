package main

// Simulated container logs: per-pod kwok `Logs` objects for pods that crash.
//
// kwok's kubelet-like server answers GET /containerLogs (what kube-apiserver
// calls for `kubectl logs`) from log FILES chosen by its ClusterLogs / Logs
// rules. A ClusterLogs rule (kwok.yaml) gives every container the fixture
// <dir>/current.log and no previous log. ClusterLogs can only select pods by
// name / namespace, but which pods crash is decided by their image tags (see
// the stages in kwok.yaml), so this controller maintains a namespaced
// kwok.x-k8s.io/v1alpha1 Logs object -- same namespace and name as the pod,
// which kwok prefers over ClusterLogs -- for every pod the stages make crash or
// fail, with the same rules as kwok.yaml's stages:
//
//   - mode "never-ready" (any container tag never-ready) wins: no crash, no object.
//   - containers tagged :crashloop / :fail of a pod with restartPolicy Always
//     ("crashloop"): current AND previous log = crash.log (tag crashloop:
//     "panic: simulated crash") or fail.log (tag fail: "simulated failure");
//     with restartPolicy Never / OnFailure ("fail"): current log = crash.log /
//     fail.log, no previous log (the container never restarts).
//   - every other container of such a pod: current.log, no previous log.
//
// "No previous log" is a previousLogsFile path that does not exist, so kwok
// answers `?previous=true` with HTTP 400 and an error naming it.
//
// The objects carry an ownerReference to their pod (the garbage collector
// removes them with the pod even if this process is not running) and the
// label app.kubernetes.io/managed-by=sandstore-local-provisioner; objects
// without that label are never touched.

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

var logsGVR = schema.GroupVersionResource{Group: "kwok.x-k8s.io", Version: "v1alpha1", Resource: "logs"}

const (
	labelManagedBy = "app.kubernetes.io/managed-by"
	fieldManager   = "sandstore-local-provisioner"
	// NoPreviousLogFile is the (never created) previousLogsFile of containers
	// without a previous instance; kwok's error message contains the path.
	NoPreviousLogFile = "previous terminated container not found"
)

// Same tag rule as the stages in kwok.yaml: the part after the last ':' when
// it contains no '/'.
var imageTag = regexp.MustCompile(`:([A-Za-z0-9_.-]+)$`)

func tagOf(image string) string {
	if m := imageTag.FindStringSubmatch(image); m != nil {
		return m[1]
	}
	return ""
}

type podLogs struct {
	dir    string
	dyn    dynamic.Interface
	pods   corelisters.PodLister
	logs   cache.GenericLister
	synced []cache.InformerSynced
	q      workqueue.RateLimitingInterface
}

// newPodLogs registers its handlers on the pod informer and creates an
// informer for the Logs objects it manages; start it with run.
func newPodLogs(ctx context.Context, dir string, dyn dynamic.Interface, podInformer cache.SharedIndexInformer, resync time.Duration) *podLogs {
	lf := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, resync, metav1.NamespaceAll, func(o *metav1.ListOptions) {
		o.LabelSelector = labelManagedBy + "=" + fieldManager
	})
	logsInformer := lf.ForResource(logsGVR)
	c := &podLogs{
		dir:    dir,
		dyn:    dyn,
		pods:   corelisters.NewPodLister(podInformer.GetIndexer()),
		logs:   logsInformer.Lister(),
		synced: []cache.InformerSynced{podInformer.HasSynced, logsInformer.Informer().HasSynced},
		q:      workqueue.NewNamedRateLimitingQueue(workqueue.DefaultControllerRateLimiter(), "podlogs"),
	}
	add := func(obj interface{}) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.q.Add(key)
		}
	}
	podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: add,
		UpdateFunc: func(oldObj, newObj interface{}) {
			// Status updates (every few seconds for crash-looping pods) do not matter.
			o, ok1 := oldObj.(*corev1.Pod)
			n, ok2 := newObj.(*corev1.Pod)
			if !ok1 || !ok2 || podSignature(o) != podSignature(n) {
				add(newObj)
			}
		},
		DeleteFunc: add,
	})
	logsInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    add,
		UpdateFunc: func(_, obj interface{}) { add(obj) },
		DeleteFunc: add,
	})
	lf.Start(ctx.Done())
	return c
}

// hasSynced: both caches are filled (the Logs one needs the CRD).
func (c *podLogs) hasSynced() bool {
	for _, s := range c.synced {
		if !s() {
			return false
		}
	}
	return true
}

func (c *podLogs) run(ctx context.Context, workers int) {
	go func() {
		if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
			return
		}
		klog.Infof("pod logs: maintaining kwok Logs objects for crashing pods (fixtures in %s)", c.dir)
		for i := 0; i < workers; i++ {
			go func() {
				for {
					item, quit := c.q.Get()
					if quit {
						return
					}
					key := item.(string)
					if err := c.sync(ctx, key); err != nil {
						klog.Errorf("pod logs: syncing %q: %v", key, err)
						c.q.AddRateLimited(key)
					} else {
						c.q.Forget(key)
					}
					c.q.Done(key)
				}
			}()
		}
	}()
	go func() { <-ctx.Done(); c.q.ShutDown() }()
}

func podSignature(p *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|", p.UID, p.Spec.RestartPolicy)
	for _, ctr := range p.Spec.Containers {
		fmt.Fprintf(&b, "%s=%s,", ctr.Name, ctr.Image)
	}
	return b.String()
}

// desiredSpec returns the Logs spec for a pod, or nil if the ClusterLogs rule
// (current.log, no previous log) fits all its containers.
func (c *podLogs) desiredSpec(pod *corev1.Pod) map[string]interface{} {
	crashing := false
	for _, ctr := range pod.Spec.Containers {
		switch tagOf(ctr.Image) {
		case "never-ready":
			return nil // never-ready wins over crashloop/fail (kwok.yaml)
		case "crashloop", "fail":
			crashing = true
		}
	}
	if !crashing {
		return nil
	}
	restarts := pod.Spec.RestartPolicy == "" || pod.Spec.RestartPolicy == corev1.RestartPolicyAlways
	noPrevious := filepath.Join(c.dir, NoPreviousLogFile)
	var entries []interface{}
	for _, ctr := range pod.Spec.Containers {
		var file string
		switch tagOf(ctr.Image) {
		case "crashloop":
			file = filepath.Join(c.dir, "crash.log")
		case "fail":
			file = filepath.Join(c.dir, "fail.log")
		default:
			continue
		}
		previous := noPrevious
		if restarts {
			previous = file
		}
		entries = append(entries, map[string]interface{}{
			"containers":       []interface{}{ctr.Name},
			"logsFile":         file,
			"previousLogsFile": previous,
		})
	}
	// Default (no "containers"): every other container, init containers included.
	entries = append(entries, map[string]interface{}{
		"logsFile":         filepath.Join(c.dir, "current.log"),
		"previousLogsFile": noPrevious,
	})
	return map[string]interface{}{"logs": entries}
}

func (c *podLogs) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	var existing *unstructured.Unstructured
	if obj, err := c.logs.ByNamespace(ns).Get(name); err == nil {
		existing, _ = obj.(*unstructured.Unstructured)
	} else if !apierrors.IsNotFound(err) {
		return err
	}
	if existing != nil && existing.GetLabels()[labelManagedBy] != fieldManager {
		return nil // somebody else's Logs object
	}

	pod, err := c.pods.Pods(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	var spec map[string]interface{}
	if pod != nil {
		spec = c.desiredSpec(pod)
	}

	if spec == nil {
		if existing == nil {
			return nil
		}
		uid := existing.GetUID()
		err := c.dyn.Resource(logsGVR).Namespace(ns).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return err
		}
		klog.Infof("pod logs: deleted Logs %s/%s", ns, name)
		return nil
	}

	if existing != nil && equality.Semantic.DeepEqual(existing.Object["spec"], spec) && ownedBy(existing, pod.UID) {
		return nil
	}
	obj := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": logsGVR.GroupVersion().String(),
		"kind":       "Logs",
		"metadata": map[string]interface{}{
			"name":      name,
			"namespace": ns,
			"labels":    map[string]interface{}{labelManagedBy: fieldManager},
			"ownerReferences": []interface{}{map[string]interface{}{
				"apiVersion": "v1",
				"kind":       "Pod",
				"name":       pod.Name,
				"uid":        string(pod.UID),
			}},
		},
		"spec": spec,
	}}
	if _, err := c.dyn.Resource(logsGVR).Namespace(ns).Apply(ctx, name, obj, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
		if apierrors.IsNotFound(err) || apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			return nil // namespace gone / being deleted: so is the pod
		}
		return err
	}
	klog.Infof("pod logs: applied Logs %s/%s (pod uid %s)", ns, name, pod.UID)
	return nil
}

func ownedBy(obj *unstructured.Unstructured, uid types.UID) bool {
	refs := obj.GetOwnerReferences()
	return len(refs) == 1 && refs[0].UID == uid
}
