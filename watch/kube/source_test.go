package kube

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/wardenmesh/warden/watch"
)

func istioObj(kind, ns, name string, spec map[string]any) *unstructured.Unstructured {
	for _, r := range IstioResources {
		if r.Kind != kind {
			continue
		}
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": r.GVR.GroupVersion().String(), "kind": kind,
			"metadata": map[string]any{"namespace": ns, "name": name, "uid": ns + "-" + name, "resourceVersion": "1"},
			"spec":     spec,
		}}
		return u
	}
	panic("unknown kind " + kind)
}

func newDynamic(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	lists := map[schema.GroupVersionResource]string{}
	for _, r := range IstioResources {
		lists[r.GVR] = r.Kind + "List"
	}
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), lists, objs...)
}

func gvrOf(kind string) schema.GroupVersionResource {
	for _, r := range IstioResources {
		if r.Kind == kind {
			return r.GVR
		}
	}
	panic("unknown kind " + kind)
}

func receive(t *testing.T, ctx context.Context, out <-chan *watch.Input, errc <-chan error) *watch.Input {
	t.Helper()
	select {
	case in := <-out:
		return in
	case err := <-errc:
		t.Fatalf("Run returned early: %v", err)
	case <-ctx.Done():
		t.Fatal("no Input before the deadline")
	}
	return nil
}

func TestSourceBuildsInputAndRecordsEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo", UID: "ns-demo"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "web-0", UID: "pod-web", Labels: map[string]string{"app": "web"}},
			Status: corev1.PodStatus{PodIP: "10.0.0.5"}},
	)
	dyn := newDynamic(
		istioObj("PeerAuthentication", "demo", "strict", map[string]any{"mtls": map[string]any{"mode": "STRICT"}}),
		// "action" DENY is fine, "rulez" is not a field: rejected like a YAML file would be.
		istioObj("AuthorizationPolicy", "demo", "bad", map[string]any{"action": "DENY", "rulez": []any{}}),
	)
	// Every Event written (a repeat of an identical Event is a patch that raises its count).
	created := make(chan *corev1.Event, 20)
	client.PrependReactor("create", "events", func(a k8stesting.Action) (bool, runtime.Object, error) {
		created <- a.(k8stesting.CreateAction).GetObject().(*corev1.Event).DeepCopy()
		return false, nil, nil
	})
	client.PrependReactor("patch", "events", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.PatchAction)
		created <- &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: p.GetName()}, Reason: "patch", Message: string(p.GetPatch())}
		return false, nil, nil
	})
	src := New(client, dyn, nil, WithDebounce(10*time.Millisecond, time.Second))
	out := make(chan *watch.Input)
	errc := make(chan error, 1)
	go func() { errc <- src.Run(ctx, out) }()

	first := receive(t, ctx, out, errc)
	if len(first.PeerAuthentications) != 1 || first.PeerAuthentications[0].Name != "strict" {
		t.Fatalf("PeerAuthentications = %v, want demo/strict", first.PeerAuthentications)
	}
	if len(first.Workloads) != 1 || first.Workloads[0].IP != "10.0.0.5" {
		t.Fatalf("Workloads = %+v, want web-0 at 10.0.0.5", first.Workloads)
	}
	if len(first.Rejected) != 1 || first.Rejected[0].Name != "bad" {
		t.Fatalf("Rejected = %+v, want AuthorizationPolicy demo/bad", first.Rejected)
	}
	if first.Diagnostics[0].Source.String() != "api-server" {
		t.Fatalf("diagnostic source = %q, want api-server", first.Diagnostics[0].Source)
	}

	// An update arrives as a new Input.
	pa := istioObj("PeerAuthentication", "demo", "permissive", map[string]any{"mtls": map[string]any{"mode": "PERMISSIVE"}})
	gvr := IstioResources[0].GVR
	if _, err := dyn.Resource(gvr).Namespace("demo").Create(ctx, pa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	second := receive(t, ctx, out, errc)
	if len(second.PeerAuthentications) != 2 || second.Version == first.Version {
		t.Fatalf("after create: %d PeerAuthentications, version %s (was %s)", len(second.PeerAuthentications), second.Version, first.Version)
	}

	// A third change with a new bad object: its Event is recorded after every Event of
	// the rebuilds before it (the recorder writes in order), so once it is seen, a repeat
	// for demo/bad would have been seen too.
	bad2 := istioObj("AuthorizationPolicy", "demo", "bad2", map[string]any{"action": "DENY", "rulez": []any{}})
	if _, err := dyn.Resource(gvrOf("AuthorizationPolicy")).Namespace("demo").Create(ctx, bad2, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	receive(t, ctx, out, errc)
	var events []corev1.Event
	for sawBad2 := false; !sawBad2; {
		select {
		case e := <-created:
			events = append(events, *e)
			sawBad2 = e.InvolvedObject.Name == "bad2"
		case <-ctx.Done():
			t.Fatalf("no Event for demo/bad2; events so far: %+v", events)
		}
	}
	count := map[string]int{}
	for _, e := range events {
		if e.Reason == "patch" {
			t.Fatalf("an Event was repeated (patched): %s %s", e.Name, e.Message)
		}
		if e.Type != corev1.EventTypeWarning {
			t.Fatalf("event type %q, want Warning: %+v", e.Type, e)
		}
		count[e.InvolvedObject.Kind+" "+e.InvolvedObject.Name+" "+e.Reason]++
	}
	want := map[string]int{
		"AuthorizationPolicy bad " + ReasonInvalidConfig:   1, // once, though three rebuilds saw it
		"PeerAuthentication strict " + ReasonConfigWarning: 1, // shadowed by demo/permissive since the second change
		"AuthorizationPolicy bad2 " + ReasonInvalidConfig:  1,
	}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("%d Events %q, want %d (all: %v)", count[k], k, n, count)
		}
	}
	for k := range count {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected Event %q (all: %v)", k, count)
		}
	}
	for _, e := range events {
		if e.InvolvedObject.Name == "bad" && e.InvolvedObject.UID != types.UID("demo-bad") {
			t.Fatalf("event for demo/bad names UID %q", e.InvolvedObject.UID)
		}
	}
	if got := src.Diagnostics(); len(got) == 0 {
		t.Fatal("Diagnostics() is empty")
	}
}

func TestSourceSendsNothingBeforeSync(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := fake.NewClientset()
	dyn := newDynamic(istioObj("PeerAuthentication", "demo", "strict", map[string]any{"mtls": map[string]any{"mode": "STRICT"}}))
	release := make(chan struct{})
	var blocked atomic.Int32
	entered := make(chan struct{}, 1)
	dyn.PrependReactor("list", "peerauthentications", func(k8stesting.Action) (bool, runtime.Object, error) {
		if blocked.Add(1) == 1 {
			entered <- struct{}{}
		}
		<-release
		return false, nil, nil // fall through to the tracker
	})
	src := New(client, dyn, nil)
	out := make(chan *watch.Input, 1)
	errc := make(chan error, 1)
	go func() { errc <- src.Run(ctx, out) }()

	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("the PeerAuthentication informer never listed")
	}
	// The PeerAuthentication list is stuck: that informer cannot have synced.
	if in := src.Current(); in != nil {
		t.Fatalf("Current() = version %s before every cache synced", in.Version)
	}
	select {
	case in := <-out:
		t.Fatalf("sent Input %s with %d PeerAuthentications before every cache synced", in.Version, len(in.PeerAuthentications))
	default:
	}
	close(release)
	first := receive(t, ctx, out, errc)
	if len(first.PeerAuthentications) != 1 {
		t.Fatalf("first Input has %d PeerAuthentications, want 1", len(first.PeerAuthentications))
	}
}
