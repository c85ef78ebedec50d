package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/wardenmesh/warden/inject"
	"github.com/wardenmesh/warden/internal/poll"
)

// startPublisher runs one replica's root publisher and caBundle keeper (no webhook
// listener) against client; cancel it to stop the replica.
func startPublisher(t *testing.T, ctx context.Context, client kubernetes.Interface, replica string, root []byte) <-chan struct{} {
	t.Helper()
	o := options{namespace: "warden-system", replica: replica}
	o.inject.webhook = injectorWebhook
	o.inject.recheck = 200 * time.Millisecond
	errc := make(chan error, 1)
	_, released, err := startInjector(ctx, o, client, root, nil, slog.New(slog.DiscardHandler), errc)
	if err != nil {
		t.Fatal(err)
	}
	return released
}

// TestReplicasPublishTheRootUnderOneLease: two replicas holding different roots (a
// rollout after cacerts was plugged in) never both write: only the Lease holder keeps
// the warden-ca-root ConfigMaps and the webhook's caBundle, and the other takes over
// when the holder stops.
func TestReplicasPublishTheRootUnderOneLease(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rootA, rootB := []byte("root of replica a\n"), []byte("root of replica b\n")
	client := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "warden-system"}},
		&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: injectorWebhook},
			Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "sidecar.warden.io"}}})
	state := func() (cm, bundle string) {
		if c, err := client.CoreV1().ConfigMaps("shop").Get(ctx, inject.DefaultConfig().RootConfigMap, metav1.GetOptions{}); err == nil {
			cm = c.Data[inject.RootCertKey]
		}
		if m, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, injectorWebhook, metav1.GetOptions{}); err == nil {
			bundle = string(m.Webhooks[0].ClientConfig.CABundle)
		}
		return cm, bundle
	}
	waitState := func(want []byte) {
		t.Helper()
		var cm, bundle string
		if err := poll.Until(context.Background(), 30*time.Second, func() (bool, error) {
			cm, bundle = state()
			return cm == string(want) && bundle == string(want), nil
		}); err != nil {
			t.Fatalf("ConfigMap root %q, caBundle %q; want both %q", cm, bundle, want)
		}
	}

	actx, stopA := context.WithCancel(ctx)
	defer stopA()
	releasedA := startPublisher(t, actx, client, "wardend-a", rootA)
	waitState(rootA)

	// Every write from now on is seen here; replica b's root must never appear while a
	// holds the Lease.
	var mu sync.Mutex
	var seenB []string
	for _, w := range []func() (watch.Interface, error){
		func() (watch.Interface, error) {
			return client.CoreV1().ConfigMaps("").Watch(ctx, metav1.ListOptions{})
		},
		func() (watch.Interface, error) {
			return client.AdmissionregistrationV1().MutatingWebhookConfigurations().Watch(ctx, metav1.ListOptions{})
		},
	} {
		wi, err := w()
		if err != nil {
			t.Fatal(err)
		}
		defer wi.Stop()
		go func() {
			for ev := range wi.ResultChan() {
				var got string
				switch o := ev.Object.(type) {
				case *corev1.ConfigMap:
					got = fmt.Sprintf("ConfigMap %s/%s: %s", o.Namespace, o.Name, o.Data[inject.RootCertKey])
					if o.Data[inject.RootCertKey] != string(rootB) {
						continue
					}
				case *admissionregistrationv1.MutatingWebhookConfiguration:
					got = fmt.Sprintf("caBundle %s", o.Webhooks[0].ClientConfig.CABundle)
					if !bytes.Equal(o.Webhooks[0].ClientConfig.CABundle, rootB) {
						continue
					}
				default:
					continue
				}
				mu.Lock()
				seenB = append(seenB, got)
				mu.Unlock()
			}
		}()
	}

	bctx, stopB := context.WithCancel(ctx)
	defer stopB()
	releasedB := startPublisher(t, bctx, client, "wardend-b", rootB)
	// An edit and a delete that both replicas see: only the Lease holder restores them.
	cm, err := client.CoreV1().ConfigMaps("shop").Get(ctx, inject.DefaultConfig().RootConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data[inject.RootCertKey] = "edited"
	if _, err := client.CoreV1().ConfigMaps("shop").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(rootA)
	if err := client.CoreV1().ConfigMaps("shop").Delete(ctx, cm.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(rootA)
	mu.Lock()
	if len(seenB) > 0 {
		t.Fatalf("replica b wrote its root while a held the Lease: %v", seenB)
	}
	mu.Unlock()

	// a stops and releases the Lease: b takes over and writes its root.
	stopA()
	select {
	case <-releasedA:
	case <-ctx.Done():
		t.Fatal("replica a did not release the Lease")
	}
	waitState(rootB)
	stopB()
	<-releasedB
}
