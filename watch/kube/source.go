package kube

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/wardenmesh/warden/watch"
)

// Source serves the mesh from the Kubernetes API server (Kubernetes mode).
type Source struct {
	client           kubernetes.Interface
	dyn              dynamic.Interface
	log              *slog.Logger
	holdOff, maxWait time.Duration
	component        string
	syncLogEvery     time.Duration
	secretNamespaces []string // watched: both lists, each once
	gatewaySecrets   []string // namespaces whose Secrets serve Gateway credentialName
	clientSecrets    []string // namespaces whose Secrets serve DestinationRule credentialName

	mu      sync.Mutex
	current *watch.Input
	events  *eventer // set by Run
}

// Option configures a Source.
type Option func(*Source)

// WithDebounce sets the hold-off after the last change and the longest a burst of
// changes may delay a rebuild (defaults DefaultHoldOff and DefaultMaxWait).
func WithDebounce(holdOff, maxWait time.Duration) Option {
	return func(s *Source) { s.holdOff, s.maxWait = holdOff, maxWait }
}

// WithSecretUses names the namespaces whose Secrets are watched: those of gateway
// serve Gateway credentialName, those of client DestinationRule credentialName
// (watch.Input.SetSecretUses; a namespace in both serves both). None by default:
// Secrets are read only where asked, namespace by namespace, so RBAC can grant
// exactly that (a Role per namespace).
func WithSecretUses(gateway, client []string) Option {
	return func(s *Source) {
		s.gatewaySecrets, s.clientSecrets = slices.Clone(gateway), slices.Clone(client)
		all := slices.DeleteFunc(append(slices.Clone(gateway), client...), func(ns string) bool { return ns == "" })
		slices.Sort(all)
		s.secretNamespaces = slices.Compact(all)
	}
}

// WithComponent sets the source component of the Events recorded (default "wardend").
func WithComponent(name string) Option {
	return func(s *Source) { s.component = name }
}

// New returns a Source reading through client (core kinds, Events) and dyn (Istio
// kinds). A nil log discards logs.
func New(client kubernetes.Interface, dyn dynamic.Interface, log *slog.Logger, opts ...Option) *Source {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Source{client: client, dyn: dyn, log: log, holdOff: DefaultHoldOff, maxWait: DefaultMaxWait,
		component: "wardend", syncLogEvery: 10 * time.Second}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Run starts the informers, waits until every one has synced, sends the first Input on
// out, then a new Input after each burst of changes that alters the Version or the
// Diagnostics. Sends block: the receiver sees every snapshot in order. Run returns nil
// when ctx ends; it never sends before the caches are complete, and it never sends
// because the API server failed (the informers keep their caches and retry). Call Run
// once per Source.
func (s *Source) Run(ctx context.Context, out chan<- *watch.Input) error {
	f, err := newFactories(s.client, s.dyn, 0, s.secretNamespaces...)
	if err != nil {
		return err
	}
	changed := make(chan struct{}, 1)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify() },
		UpdateFunc: func(any, any) { notify() },
		DeleteFunc: func(any) { notify() },
	}
	for _, inf := range f.informers {
		if _, err := inf.informer.AddEventHandler(handler); err != nil {
			return fmt.Errorf("watch %s: %w", inf.name, err)
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		f.shutdown()
	}()

	broadcaster := record.NewBroadcaster(record.WithContext(runCtx))
	defer broadcaster.Shutdown()
	broadcaster.StartStructuredLogging(4) // klog at V(4); wardend logs diagnostics itself
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: s.client.CoreV1().Events("")})
	ev := &eventer{recorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: s.component})}
	s.mu.Lock()
	s.events = ev
	s.mu.Unlock()

	f.start(runCtx.Done())
	if !s.waitForSync(runCtx, f) {
		return nil
	}
	dec := newDecoder()
	first := s.rebuild(dec, ev, f, nil)
	if !send(ctx, out, first) {
		return nil
	}

	err = watch.DebounceLoop(ctx, s.holdOff, s.maxWait, changed, func() bool {
		prev := s.Current()
		in := s.rebuild(dec, ev, f, prev)
		return watch.Unchanged(prev, in) || send(ctx, out, in)
	})
	return err
}

// waitForSync blocks until every informer has listed its kind once, logging the ones
// still waiting (say, because a CRD is missing or access is denied). It returns false
// when ctx ends first.
func (s *Source) waitForSync(ctx context.Context, f *factories) bool {
	start := time.Now()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	nextLog := start.Add(s.syncLogEvery)
	for {
		waiting := f.unsynced()
		if len(waiting) == 0 {
			s.log.Info("kubernetes caches synced", "informers", len(f.informers), "took", time.Since(start).Round(time.Millisecond))
			return true
		}
		if time.Now().After(nextLog) {
			s.log.Warn("waiting for kubernetes caches; serving nothing until every one has synced",
				"waiting", waiting, "for", time.Since(start).Round(time.Second))
			nextLog = time.Now().Add(s.syncLogEvery)
		}
		select {
		case <-ctx.Done():
			return false
		case <-poll.C:
		}
	}
}

// rebuild builds a new Input from the caches on top of prev, logs what is new, records
// Events, and makes it current.
func (s *Source) rebuild(dec *decoder, ev *eventer, f *factories, prev *watch.Input) *watch.Input {
	objs, diags, refs := dec.snapshot(f.informers)
	objs, diags = watch.RetainLastGood(prev, objs, diags)
	in := watch.Build(objs, diags)
	in.SetSecretUses(s.gatewaySecrets, s.clientSecrets)
	s.logChanges(prev, in)
	ev.setInput(in.Diagnostics, refs)
	s.mu.Lock()
	s.current = in
	s.mu.Unlock()
	return in
}

// logChanges logs the new version; the diagnostics are logged by whoever serves the
// Input (wardend's xDS server), once, with translation's.
func (s *Source) logChanges(prev, in *watch.Input) {
	if watch.Unchanged(prev, in) {
		return
	}
	s.log.Info("configuration built from the API server", "version", in.Version,
		"diagnostics", len(in.Diagnostics), "rejected", len(in.Rejected), "stale", len(in.Stale))
}

// Current returns the last Input built, or nil before the caches synced.
func (s *Source) Current() *watch.Input {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// Diagnostics returns the problems of the current configuration, for status.
func (s *Source) Diagnostics() []watch.Diagnostic {
	if in := s.Current(); in != nil {
		return slices.Clone(in.Diagnostics)
	}
	return nil
}

// ReportDiagnostics records every diagnostic in diags (those of translation included)
// as a Warning Event on the object it names, once per object version and message,
// alongside the Input's own. Before Run has started it does nothing.
func (s *Source) ReportDiagnostics(diags []watch.Diagnostic) {
	s.mu.Lock()
	ev := s.events
	s.mu.Unlock()
	if ev != nil {
		ev.setReported(diags)
	}
}

func send(ctx context.Context, out chan<- *watch.Input, in *watch.Input) bool {
	select {
	case out <- in:
		return true
	case <-ctx.Done():
		return false
	}
}
