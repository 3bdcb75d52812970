// Command sandstore-local-provisioner is a TEST-ONLY dynamic volume
// provisioner for the sandstore-deploy local cluster.
//
// There is no kubelet and no disk behind a kwok node, so a real provisioner
// (rancher local-path, a CSI driver, ...) cannot serve it: local-path makes
// and removes a volume's directory with a helper pod on the volume's node, and
// no pod runs on a kwok node. For kwok nodes this one does only the API-object
// half of what such a provisioner does. Claims on any other node (the local
// cluster's real node) are left to rancher's local-path-provisioner, which
// up.sh runs under the same provisioner name and which, for its part, leaves
// the kwok nodes' claims and this provisioner's volumes alone
// (../local-path/qualifier.go).
//
//   - For every PersistentVolumeClaim that is Pending, unbound, selected for a
//     kwok node (annotated kwok.x-k8s.io/node=fake), carries the
//     scheduler's "volume.kubernetes.io/selected-node" annotation (i.e. its
//     StorageClass uses volumeBindingMode WaitForFirstConsumer and a pod using
//     it was just scheduled) and whose StorageClass names our provisioner
//     (default "rancher.io/local-path"), it creates a hostPath
//     PersistentVolume under a fake path, pinned to the selected node, pre-bound
//     to the claim (claimRef). kube-controller-manager's PV controller then
//     completes the binding, exactly as with an external provisioner.
//   - For every PersistentVolume it provisioned (labelled
//     sandstore.io/local-provisioner=true) that becomes Released with
//     reclaim policy Delete (its claim was deleted), it deletes the PV object.
//     The pv-protection / pvc-protection finalizers of kube-controller-manager
//     stay in play.
//
// Nothing is created on disk.
//
// With --pod-logs-dir it also maintains kwok Logs objects for pods whose image
// tags make them crash or fail, so that `kubectl logs [--previous]` of those
// containers returns the crash fixtures (see podlogs.go).
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

const (
	annSelectedNode       = "volume.kubernetes.io/selected-node"
	annStorageProvisioner = "volume.kubernetes.io/storage-provisioner"
	annBetaStorageProv    = "volume.beta.kubernetes.io/storage-provisioner"
	annProvisionedBy      = "pv.kubernetes.io/provisioned-by"
	annBetaStorageClass   = "volume.beta.kubernetes.io/storage-class"
	labelHostname         = "kubernetes.io/hostname"
	labelOurs             = "sandstore.io/local-provisioner"
	annKwokNode           = "kwok.x-k8s.io/node"
)

type provisioner struct {
	name     string
	basePath string
	client   kubernetes.Interface
	nodes    corelisters.NodeLister
	pvcs     corelisters.PersistentVolumeClaimLister
	pvs      corelisters.PersistentVolumeLister
	classes  storagelisters.StorageClassLister
	recorder record.EventRecorder
	claimQ   workqueue.RateLimitingInterface
	volumeQ  workqueue.RateLimitingInterface
}

func main() {
	var (
		kubeconfig  = flag.String("kubeconfig", "", "path to a kubeconfig (empty: in-cluster config)")
		name        = flag.String("provisioner-name", "rancher.io/local-path", "StorageClass .provisioner value to serve")
		basePath    = flag.String("base-path", "/opt/local-path-provisioner", "fake directory under which hostPath volumes are 'created' (nothing is written)")
		healthAddr  = flag.String("health-addr", "", "if set, serve /healthz on this address (e.g. 127.0.0.1:20006)")
		resync      = flag.Duration("resync", 30*time.Second, "informer resync period")
		concurrency = flag.Int("workers", 2, "workers per queue")
		electIn     = flag.String("leader-elect-namespace", "kube-system", "namespace of the leader-election Lease, named after the provisioner as sig-storage-lib-external-provisioner names it (\"/\" becomes \"-\")")
		podLogsDir  = flag.String("pod-logs-dir", "", "if set, maintain kwok Logs objects (kwok.x-k8s.io/v1alpha1) pointing crashing pods' containers at the crash.log / fail.log fixtures in this directory (needs the Logs CRD)")
	)
	klog.InitFlags(nil)
	flag.Parse()

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		klog.Fatalf("loading kubeconfig: %v", err)
	}
	cfg.UserAgent = "sandstore-local-provisioner"
	// client-go's default (5 requests/s, bursts of 10) made a 51-replica deploy wait ~30 s for its
	// volumes here (a volume, a claim update and two events each); a provisioner of one local
	// cluster can afford what the control plane's own controllers take.
	cfg.QPS, cfg.Burst = 50, 100
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		klog.Fatalf("creating client: %v", err)
	}

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()

	factory := informers.NewSharedInformerFactory(client, *resync)
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()

	p := &provisioner{
		name:     *name,
		basePath: *basePath,
		client:   client,
		nodes:    factory.Core().V1().Nodes().Lister(),
		pvcs:     factory.Core().V1().PersistentVolumeClaims().Lister(),
		pvs:      factory.Core().V1().PersistentVolumes().Lister(),
		classes:  factory.Storage().V1().StorageClasses().Lister(),
		recorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: *name}),
		claimQ:   workqueue.NewNamedRateLimitingQueue(workqueue.DefaultControllerRateLimiter(), "claims"),
		volumeQ:  workqueue.NewNamedRateLimitingQueue(workqueue.DefaultControllerRateLimiter(), "volumes"),
	}

	enqueue := func(q workqueue.RateLimitingInterface) cache.ResourceEventHandlerFuncs {
		add := func(obj interface{}) {
			if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
				q.Add(key)
			}
		}
		return cache.ResourceEventHandlerFuncs{
			AddFunc:    add,
			UpdateFunc: func(_, obj interface{}) { add(obj) },
		}
	}
	factory.Core().V1().PersistentVolumeClaims().Informer().AddEventHandler(enqueue(p.claimQ))
	factory.Core().V1().PersistentVolumes().Informer().AddEventHandler(enqueue(p.volumeQ))
	// A StorageClass created after its claims: re-examine pending claims.
	factory.Storage().V1().StorageClasses().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(interface{}) {
			claims, _ := p.pvcs.List(everything())
			for _, c := range claims {
				if key, err := cache.MetaNamespaceKeyFunc(c); err == nil {
					p.claimQ.Add(key)
				}
			}
		},
	})

	var pl *podLogs
	if *podLogsDir != "" {
		dyn, err := dynamic.NewForConfig(cfg)
		if err != nil {
			klog.Fatalf("creating dynamic client: %v", err)
		}
		pl = newPodLogs(ctx, *podLogsDir, dyn, factory.Core().V1().Pods().Informer(), *resync)
	}

	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			klog.Fatalf("cache for %v did not sync", typ)
		}
	}

	if *healthAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			if pl != nil && !pl.hasSynced() {
				http.Error(w, "pod logs: Logs (kwok.x-k8s.io) cache not synced yet", http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("ok"))
		})
		srv := &http.Server{Addr: *healthAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
				klog.Fatalf("health server: %v", err)
			}
		}()
		go func() { <-ctx.Done(); _ = srv.Close() }()
	}

	klog.Infof("sandstore-local-provisioner serving provisioner %q (fake base path %s)", p.name, p.basePath)
	if pl != nil {
		pl.run(ctx, *concurrency)
	}
	// Elect a leader as sig-storage-lib-external-provisioner does by default, under the same Lease
	// name: the Lease, renewed every few seconds, is what tells `npm run check` (and anyone) that
	// something serves this provisioner name. One candidate with a fixed identity: a restarted
	// process takes its own Lease over at once instead of waiting for it to expire.
	host, _ := os.Hostname()
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: *electIn, Name: strings.ReplaceAll(p.name, "/", "-")},
			Client:     client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: "sandstore-local-provisioner_" + host},
		},
		LeaseDuration:   15 * time.Second,
		RenewDeadline:   10 * time.Second,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				for i := 0; i < *concurrency; i++ {
					go wait.UntilWithContext(ctx, func(ctx context.Context) { p.run(ctx, p.claimQ, p.syncClaim) }, time.Second)
					go wait.UntilWithContext(ctx, func(ctx context.Context) { p.run(ctx, p.volumeQ, p.syncVolume) }, time.Second)
				}
			},
			OnStoppedLeading: func() {
				if ctx.Err() == nil {
					klog.Fatal("lost the provisioner's leader-election Lease")
				}
			},
		},
	})
	if err != nil {
		klog.Fatalf("leader election: %v", err)
	}
	elector.Run(ctx)
	p.claimQ.ShutDown()
	p.volumeQ.ShutDown()
	klog.Info("shutting down")
}

func (p *provisioner) run(ctx context.Context, q workqueue.RateLimitingInterface, sync func(context.Context, string) error) {
	for {
		item, quit := q.Get()
		if quit {
			return
		}
		key := item.(string)
		if err := sync(ctx, key); err != nil {
			utilruntime.HandleError(fmt.Errorf("syncing %q: %w", key, err))
			q.AddRateLimited(key)
		} else {
			q.Forget(key)
		}
		q.Done(key)
	}
}

// classOf returns the StorageClass name requested by a claim.
func classOf(pvc *corev1.PersistentVolumeClaim) string {
	if v, ok := pvc.Annotations[annBetaStorageClass]; ok {
		return v
	}
	if pvc.Spec.StorageClassName != nil {
		return *pvc.Spec.StorageClassName
	}
	return ""
}

func (p *provisioner) syncClaim(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pvc, err := p.pvcs.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	if pvc.DeletionTimestamp != nil || pvc.Spec.VolumeName != "" || pvc.Status.Phase != corev1.ClaimPending {
		return nil
	}
	node := pvc.Annotations[annSelectedNode]
	if node == "" {
		return nil // not scheduled yet (or Immediate binding: unsupported, like local-path)
	}
	if kwok, err := p.isKwokNode(node); err != nil || !kwok {
		return err // a real node's claim is local-path-provisioner's
	}
	className := classOf(pvc)
	if className == "" {
		return nil
	}
	class, err := p.classes.Get(className)
	if apierrors.IsNotFound(err) {
		return nil // re-queued when the class appears
	} else if err != nil {
		return err
	}
	if class.Provisioner != p.name {
		return nil
	}
	// The PV controller tags claims it hands to an external provisioner; if it
	// named somebody else, stay out of the way.
	if v, ok := pvc.Annotations[annStorageProvisioner]; ok && v != p.name {
		return nil
	}
	if v, ok := pvc.Annotations[annBetaStorageProv]; ok && v != p.name {
		return nil
	}

	request, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok {
		p.recorder.Event(pvc, corev1.EventTypeWarning, "ProvisioningFailed", "claim has no storage request")
		return nil
	}
	pvName := "pvc-" + string(pvc.UID)
	if _, err := p.pvs.Get(pvName); err == nil {
		return nil // already provisioned; the PV controller binds it
	}

	reclaim := corev1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		reclaim = *class.ReclaimPolicy
	}
	hostPathType := corev1.HostPathDirectoryOrCreate
	dir := path.Join(p.basePath, fmt.Sprintf("%s_%s_%s", pvName, pvc.Namespace, pvc.Name))
	volumeMode := corev1.PersistentVolumeFilesystem
	if pvc.Spec.VolumeMode != nil {
		volumeMode = *pvc.Spec.VolumeMode
	}
	accessModes := pvc.Spec.AccessModes
	if len(accessModes) == 0 {
		accessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        pvName,
			Annotations: map[string]string{annProvisionedBy: p.name},
			Labels:      map[string]string{labelOurs: "true"},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: request},
			AccessModes:                   accessModes,
			VolumeMode:                    &volumeMode,
			StorageClassName:              class.Name,
			PersistentVolumeReclaimPolicy: reclaim,
			MountOptions:                  class.MountOptions,
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{
					Path: dir,
					Type: &hostPathType,
				},
			},
			NodeAffinity: &corev1.VolumeNodeAffinity{
				Required: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{{
						MatchExpressions: []corev1.NodeSelectorRequirement{{
							Key:      labelHostname,
							Operator: corev1.NodeSelectorOpIn,
							Values:   []string{node},
						}},
					}},
				},
			},
			ClaimRef: &corev1.ObjectReference{
				Kind:            "PersistentVolumeClaim",
				APIVersion:      "v1",
				Namespace:       pvc.Namespace,
				Name:            pvc.Name,
				UID:             pvc.UID,
				ResourceVersion: pvc.ResourceVersion,
			},
		},
	}
	_, err = p.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	} else if err != nil {
		p.recorder.Eventf(pvc, corev1.EventTypeWarning, "ProvisioningFailed", "creating volume %s: %v", pvName, err)
		return err
	}
	klog.Infof("provisioned %s for claim %s/%s on node %s (%s)", pvName, pvc.Namespace, pvc.Name, node, request.String())
	p.recorder.Eventf(pvc, corev1.EventTypeNormal, "ProvisioningSucceeded", "Successfully provisioned volume %s", pvName)
	return nil
}

func (p *provisioner) syncVolume(ctx context.Context, key string) error {
	pv, err := p.pvs.Get(key)
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	// local-path-provisioner's volumes carry the same provisioned-by name: only the label tells ours.
	if pv.Labels[labelOurs] != "true" || pv.Annotations[annProvisionedBy] != p.name || pv.DeletionTimestamp != nil {
		return nil
	}
	if pv.Status.Phase != corev1.VolumeReleased || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		return nil
	}
	// Only delete when the claim it was bound to is really gone (or replaced).
	if ref := pv.Spec.ClaimRef; ref != nil {
		claim, err := p.client.CoreV1().PersistentVolumeClaims(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err == nil && claim.UID == ref.UID && claim.DeletionTimestamp == nil {
			return nil
		} else if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	uid := pv.UID
	err = p.client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	} else if err != nil {
		return err
	}
	klog.Infof("deleted released volume %s (claim %s/%s)", pv.Name, refNS(pv), refName(pv))
	return nil
}

// isKwokNode: the node is one kwok simulates (no kubelet, no disk). A node not
// in the cache yet is retried.
func (p *provisioner) isKwokNode(name string) (bool, error) {
	node, err := p.nodes.Get(name)
	if err != nil {
		return false, fmt.Errorf("node %s of a claim: %w", name, err)
	}
	return node.Annotations[annKwokNode] == "fake", nil
}

func refNS(pv *corev1.PersistentVolume) string {
	if pv.Spec.ClaimRef == nil {
		return ""
	}
	return pv.Spec.ClaimRef.Namespace
}

func refName(pv *corev1.PersistentVolume) string {
	if pv.Spec.ClaimRef == nil {
		return ""
	}
	return pv.Spec.ClaimRef.Name
}

func everything() labels.Selector { return labels.Everything() }
