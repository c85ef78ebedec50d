package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/pflag"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/util/workqueue"

	"github.com/wardenmesh/warden/inject"
)

// The sidecar injector of Kubernetes mode: the admission webhook, the caBundle of its
// MutatingWebhookConfiguration and the mesh root ConfigMap in every namespace.
type injectOptions struct {
	addr       string // --inject-addr; empty: no webhook
	proxyImage string
	initImage  string
	xdsAddress string // empty: wardend.<namespace>.svc:15012
	webhook    string // the MutatingWebhookConfiguration whose caBundle wardend keeps
	// recheck is how often the caBundle is re-read even without a watch event.
	recheck time.Duration
}

// injectorWebhook is the MutatingWebhookConfiguration of deploy/40-injector.yaml.
const injectorWebhook = "warden-sidecar-injector"

// nsLookupTimeout bounds the API call made for a namespace the informer has not seen
// yet (one created a moment before its first pod).
const nsLookupTimeout = 3 * time.Second

func addInjectFlags(f *pflag.FlagSet, o *injectOptions) {
	def := inject.DefaultConfig()
	f.StringVar(&o.addr, "inject-addr", ":15017", "HTTPS listen address of the sidecar injection webhook, path /inject (Kubernetes mode; empty: off)")
	f.StringVar(&o.proxyImage, "inject-proxy-image", def.ProxyImage, "stock Envoy image of injected sidecars")
	f.StringVar(&o.initImage, "inject-init-image", def.InitImage, "image of the injected capture and bootstrap init containers (the wardend image, carrying wardenctl)")
	f.StringVar(&o.xdsAddress, "inject-xds-address", "", "wardend's xDS address as injected pods reach it (default wardend.<namespace>.svc:15012)")
	f.StringVar(&o.webhook, "inject-webhook-config", injectorWebhook, "MutatingWebhookConfiguration whose caBundle wardend keeps equal to the mesh root (empty: leave it alone)")
	o.recheck = 30 * time.Second
}

// injectConfig is what every pod wardend injects shares.
func injectConfig(o options) inject.Config {
	cfg := inject.DefaultConfig()
	cfg.ProxyImage, cfg.InitImage = o.inject.proxyImage, o.inject.initImage
	cfg.WardendNamespace = o.namespace
	cfg.XDSAddress = o.inject.xdsAddress
	if cfg.XDSAddress == "" {
		cfg.XDSAddress = "wardend." + o.namespace + ".svc:15012"
	}
	cfg.TokenAudience = o.kube.audience // what TokenReview checks the proxies' tokens for
	return cfg
}

// injector runs the three parts; it needs the Kubernetes client and the mesh root.
type injector struct {
	client kubernetes.Interface
	opts   injectOptions
	cfg    inject.Config
	root   []byte // PEM
	log    *slog.Logger

	nsLister corelisters.NamespaceLister
	cmLister corelisters.ConfigMapLister
	synced   func() bool // both informers have listed once
	queue    workqueue.TypedRateLimitingInterface[string]

	// published is closed once the writers have stopped and the Lease is released.
	published chan struct{}
}

// waitForSync waits until both informers have listed once, warning every 30 s while
// they have not (access denied: deploy/20-rbac.yaml not applied?). False when ctx ends.
func (in *injector) waitForSync(ctx context.Context) bool {
	start := time.Now()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	next := 30 * time.Second
	for !in.synced() {
		select {
		case <-ctx.Done():
			return false
		case <-poll.C:
		}
		if waited := time.Since(start); waited >= next {
			in.log.Warn("namespaces and ConfigMaps "+in.cfg.RootConfigMap+" not listed yet: the mesh root is not published "+
				"(can wardend list them? see deploy/20-rbac.yaml)", "waited", waited.Round(time.Second))
			next += 30 * time.Second
		}
	}
	return true
}

// startInjector starts the namespace and root-ConfigMap informers and runs the root
// publisher (once they have synced), the caBundle keeper and (with --inject-addr) the
// webhook in the background until ctx ends. serverCert is wardend's serving certificate.
// released is closed once, after ctx ended, the writers stopped and the Lease was released.
func startInjector(ctx context.Context, o options, client kubernetes.Interface, root []byte,
	serverCert func() (*tls.Certificate, error), log *slog.Logger, errc chan<- error) (hs *http.Server, released <-chan struct{}, err error) {
	in := &injector{client: client, opts: o.inject, cfg: injectConfig(o), root: root, log: log.With("component", "injector"),
		queue: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())}
	nsf := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTransform(cache.TransformFunc(stripForInjector)))
	cmf := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.FieldSelector = fields.OneTermEqualSelector("metadata.name", in.cfg.RootConfigMap).String()
		}),
		informers.WithTransform(cache.TransformFunc(stripForInjector)))
	nsInf, cmInf := nsf.Core().V1().Namespaces(), cmf.Core().V1().ConfigMaps()
	in.nsLister, in.cmLister = nsInf.Lister(), cmInf.Lister()
	enqueueNS := func(obj any) {
		if ns, ok := obj.(*corev1.Namespace); ok {
			in.queue.Add(ns.Name)
		}
	}
	enqueueCM := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if cm, ok := obj.(*corev1.ConfigMap); ok {
			in.queue.Add(cm.Namespace)
		}
	}
	if _, err := nsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueueNS, UpdateFunc: func(_, n any) { enqueueNS(n) }}); err != nil {
		return nil, nil, err
	}
	if _, err := cmInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueueCM, UpdateFunc: func(_, n any) { enqueueCM(n) }, DeleteFunc: enqueueCM}); err != nil {
		return nil, nil, err
	}
	nsf.Start(ctx.Done())
	cmf.Start(ctx.Done())
	in.synced = func() bool { return nsInf.Informer().HasSynced() && cmInf.Informer().HasSynced() }
	go func() { <-ctx.Done(); in.queue.ShutDown() }()
	// Nothing here holds up xDS: the writers run on the one replica holding the Lease
	// publisherLease, once its caches are complete, and the webhook reads a namespace it
	// cannot find in them from the API server.
	in.published = make(chan struct{})
	go func() {
		defer close(in.published)
		in.lead(ctx, o.namespace, o.replica, in.publish)
	}()
	if in.opts.addr == "" {
		return nil, in.published, nil
	}
	lis, err := net.Listen("tcp", in.opts.addr)
	if err != nil {
		return nil, nil, fmt.Errorf("inject listen %s: %w", in.opts.addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/inject", &inject.Handler{Config: in.cfg, Namespaces: in.namespaceLabels, Log: in.log})
	tlis := tls.NewListener(lis, &tls.Config{MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return serverCert() }})
	in.log.Info("sidecar injection webhook serving", "addr", lis.Addr().String(), "path", "/inject",
		"proxyImage", in.cfg.ProxyImage, "initImage", in.cfg.InitImage, "xds", in.cfg.XDSAddress)
	return serveHTTP(tlis, mux, errc), in.published, nil
}

// publisherLease elects the one replica that writes the root ConfigMaps and the
// webhook's caBundle. Every replica serves the same root from the shared CA Secret, so
// any one of them may write; only one does, so that two replicas holding different
// roots (a rollout after cacerts was plugged in) take turns by Lease instead of
// overwriting each other at API speed.
const publisherLease = "wardend-publisher"

// lead campaigns for publisherLease as identity until ctx ends, running work with a
// context that ends when the Lease is lost; the Lease is released when ctx ends.
func (in *injector) lead(ctx context.Context, namespace, identity string, work func(context.Context)) {
	for ctx.Err() == nil {
		elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: &resourcelock.LeaseLock{
				LeaseMeta:  metav1.ObjectMeta{Namespace: namespace, Name: publisherLease},
				Client:     in.client.CoordinationV1(),
				LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
			},
			LeaseDuration:   15 * time.Second,
			RenewDeadline:   10 * time.Second,
			RetryPeriod:     2 * time.Second,
			ReleaseOnCancel: true,
			Name:            publisherLease,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) {
					in.log.Info("publishing the mesh root (holding the Lease)", "lease", namespace+"/"+publisherLease)
					work(lctx)
				},
				OnStoppedLeading: func() {},
			},
		})
		if err != nil { // a configuration error: never at run time
			in.log.Error("publisher lease", "err", err)
			return
		}
		elector.Run(ctx) // returns when the Lease is lost or ctx ends
	}
}

// publish is the Lease holder's work: the caBundle keeper and the root publisher,
// until lctx ends.
func (in *injector) publish(lctx context.Context) {
	if in.opts.webhook != "" {
		go in.keepCABundle(lctx)
	}
	if !in.waitForSync(lctx) {
		return
	}
	// What changed while another replica held the Lease is in no queue: look at all.
	nss, err := in.nsLister.List(labels.Everything())
	if err == nil {
		for _, ns := range nss {
			in.queue.Add(ns.Name)
		}
	}
	stop := context.AfterFunc(lctx, func() { in.queue.Add("") }) // wakes publishRoots
	defer stop()
	in.publishRoots(lctx)
}

// stripForInjector drops what the injector never reads (managed fields) from cached objects.
func stripForInjector(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// namespaceLabels answers from the informer; a namespace it has not seen yet (created
// a moment ago) is read from the API server, within nsLookupTimeout.
func (in *injector) namespaceLabels(ctx context.Context, name string) (map[string]string, error) {
	if in.synced() {
		ns, err := in.nsLister.Get(name)
		if err == nil {
			return ns.Labels, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, nsLookupTimeout)
	defer cancel()
	got, err := in.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read namespace: %w", err)
	}
	return got.Labels, nil
}

// publishRoots keeps ConfigMap RootConfigMap (key root-cert.pem) equal to the mesh root
// in every namespace that is not being deleted: each namespace event and each change
// to one of those ConfigMaps queues its namespace once, so the work follows changes.
func (in *injector) publishRoots(ctx context.Context) {
	for {
		ns, shutdown := in.queue.Get()
		if shutdown {
			return
		}
		if ctx.Err() != nil { // the Lease was lost: the next holder looks at every namespace
			in.queue.Forget(ns)
			in.queue.Done(ns)
			return
		}
		if ns == "" {
			in.queue.Done(ns)
			continue
		}
		err := in.publishRoot(ctx, ns)
		switch {
		case err == nil:
			in.queue.Forget(ns)
		case ctx.Err() != nil:
		default:
			in.log.Warn("publish mesh root", "configmap", ns+"/"+in.cfg.RootConfigMap, "err", err,
				"retries", in.queue.NumRequeues(ns))
			in.queue.AddRateLimited(ns)
		}
		in.queue.Done(ns)
	}
}

// rootLabels mark the ConfigMaps wardend owns.
var rootLabels = map[string]string{"app.kubernetes.io/managed-by": "wardend"}

func (in *injector) publishRoot(ctx context.Context, name string) error {
	ns, err := in.nsLister.Get(name)
	if apierrors.IsNotFound(err) || (err == nil && (ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating)) {
		return nil // gone or going: nothing can be created there
	}
	if err != nil {
		return err
	}
	want := string(in.root)
	cms := in.client.CoreV1().ConfigMaps(name)
	cm, err := in.cmLister.ConfigMaps(name).Get(in.cfg.RootConfigMap)
	if apierrors.IsNotFound(err) {
		_, err = cms.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: in.cfg.RootConfigMap, Labels: rootLabels},
			Data:       map[string]string{inject.RootCertKey: want},
		}, metav1.CreateOptions{FieldManager: "wardend"})
		if apierrors.IsAlreadyExists(err) {
			return nil // another replica, or the informer lags: its event queues us again
		}
		if err == nil {
			in.log.Info("mesh root published", "configmap", name+"/"+in.cfg.RootConfigMap)
		}
		return err
	}
	if err != nil {
		return err
	}
	if len(cm.Data) == 1 && cm.Data[inject.RootCertKey] == want && len(cm.BinaryData) == 0 {
		return nil
	}
	cm = cm.DeepCopy()
	cm.Data, cm.BinaryData = map[string]string{inject.RootCertKey: want}, nil
	if cm.Labels == nil {
		cm.Labels = map[string]string{}
	}
	for k, v := range rootLabels {
		cm.Labels[k] = v
	}
	_, err = cms.Update(ctx, cm, metav1.UpdateOptions{FieldManager: "wardend"})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // changed or deleted meanwhile: that event queues us again
	}
	if err == nil {
		in.log.Info("mesh root restored", "configmap", name+"/"+in.cfg.RootConfigMap)
	}
	return err
}

// keepCABundle keeps every webhook's clientConfig.caBundle in the MutatingWebhookConfiguration
// equal to the mesh root: at start, on each change of that object (a watch on it alone)
// and every recheck, so that an overwritten bundle is restored. A missing object is
// waited for.
func (in *injector) keepCABundle(ctx context.Context) {
	for ctx.Err() == nil {
		rv, err := in.patchCABundle(ctx)
		if err != nil && ctx.Err() == nil {
			in.log.Warn("sidecar injector caBundle", "mutatingwebhookconfiguration", in.opts.webhook, "err", err)
		}
		in.waitWebhookChange(ctx, rv)
	}
}

// patchCABundle sets every webhook's caBundle to the root, and returns the object's
// resourceVersion ("" when it is missing).
func (in *injector) patchCABundle(ctx context.Context) (string, error) {
	mwcs := in.client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	mwc, err := mwcs.Get(ctx, in.opts.webhook, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	ops := caBundlePatch(mwc, in.root)
	if len(ops) == 0 {
		return mwc.ResourceVersion, nil
	}
	body, err := json.Marshal(ops)
	if err != nil {
		return "", err
	}
	got, err := mwcs.Patch(ctx, in.opts.webhook, types.JSONPatchType, body, metav1.PatchOptions{FieldManager: "wardend"})
	if err != nil {
		return "", fmt.Errorf("patch caBundle: %w", err)
	}
	in.log.Info("sidecar injector caBundle set to the mesh root", "mutatingwebhookconfiguration", in.opts.webhook,
		"webhooks", len(ops)/2)
	return got.ResourceVersion, nil
}

// caBundlePatch is a JSON patch setting each webhook's caBundle that differs from root;
// each is guarded by a test of the webhook's name, so that a concurrent reorder fails
// the patch rather than setting the wrong entry.
func caBundlePatch(mwc *admissionregistrationv1.MutatingWebhookConfiguration, root []byte) []inject.PatchOp {
	var ops []inject.PatchOp
	for i, wh := range mwc.Webhooks {
		if bytes.Equal(wh.ClientConfig.CABundle, root) {
			continue
		}
		p := fmt.Sprintf("/webhooks/%d", i)
		ops = append(ops,
			inject.PatchOp{Op: "test", Path: p + "/name", Value: wh.Name},
			inject.PatchOp{Op: "add", Path: p + "/clientConfig/caBundle", Value: root}) // []byte: base64 in JSON
	}
	return ops
}

// waitWebhookChange returns when the MutatingWebhookConfiguration changes after
// resourceVersion rv, or after recheck.
func (in *injector) waitWebhookChange(ctx context.Context, rv string) {
	ctx, cancel := context.WithTimeout(ctx, in.opts.recheck)
	defer cancel()
	if rv != "" {
		w, err := in.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Watch(ctx, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", in.opts.webhook).String(),
			ResourceVersion: rv,
		})
		if err == nil {
			defer w.Stop()
			select {
			case <-ctx.Done():
				return
			case _, ok := <-w.ResultChan():
				if ok {
					return
				}
			}
			// The watch ended without an event (an expired resourceVersion): read again
			// after a short pause rather than spin.
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			return
		}
		in.log.Debug("watch sidecar injector configuration", "err", err)
	}
	<-ctx.Done()
}
