package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/wardenmesh/warden/certs"
)

func TestReplicasShareOneCASecret(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := fake.NewClientset()
	type result struct {
		ca     *certs.CA
		signer *certs.TokenSigner
		err    error
	}
	results := make(chan result, 2)
	for _, id := range []string{"wardend-a", "wardend-b"} {
		s := &caSecrets{client: client, namespace: "warden-system", identity: id, log: slog.New(slog.DiscardHandler), poll: 20 * time.Millisecond}
		go func() {
			ca, signer, err := s.load(ctx, "cluster.local")
			results <- result{ca, signer, err}
		}()
	}
	a, b := <-results, <-results
	if a.err != nil || b.err != nil {
		t.Fatalf("load: %v / %v", a.err, b.err)
	}
	if !bytes.Equal(a.ca.RootPEM(), b.ca.RootPEM()) {
		t.Fatal("the replicas loaded different roots")
	}
	if a.signer.KeyID() != b.signer.KeyID() {
		t.Fatalf("token keys differ: %s vs %s", a.signer.KeyID(), b.signer.KeyID())
	}
	sec, err := client.CoreV1().Secrets("warden-system").Get(ctx, caSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sec.Data[rootCertKey], a.ca.RootPEM()) {
		t.Fatal("the Secret's root is not the one served")
	}

	// A restart reads the same Secret and never replaces it.
	again := &caSecrets{client: client, namespace: "warden-system", identity: "wardend-c", log: slog.New(slog.DiscardHandler)}
	ca, signer, err := again.load(ctx, "cluster.local")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ca.RootPEM(), a.ca.RootPEM()) || signer.KeyID() != a.signer.KeyID() {
		t.Fatal("a restarted replica got different key material")
	}
	tok, err := a.signer.Sign(certs.TokenClaims{Namespace: "demo", ServiceAccount: "web", Pod: "web-0"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signer.Verify(tok, time.Now()); err != nil {
		t.Fatalf("a token from one replica is refused by another: %v", err)
	}
}

// TestCASecretCompletedAfterAConflict: a replica that finds warden-ca incomplete (a
// token key, no root) and loses the first write to a conflict tries again, keeping the
// key that is already in use.
func TestCASecretCompletedAfterAConflict(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data := map[string][]byte{}
	if err := generateMissing(data, false); err != nil {
		t.Fatal(err)
	}
	client := fake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "warden-system", Name: caSecret},
		Data: map[string][]byte{tokenKeyKey: data[tokenKeyKey]}})
	var conflicts atomic.Int32
	client.PrependReactor("update", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if conflicts.Add(1) == 1 {
			return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "secrets"}, caSecret, errors.New("changed meanwhile"))
		}
		return false, nil, nil
	})
	s := &caSecrets{client: client, namespace: "warden-system", identity: "wardend-a", log: slog.New(slog.DiscardHandler), poll: 20 * time.Millisecond}
	ca, signer, err := s.load(ctx, "cluster.local")
	if err != nil {
		t.Fatalf("load after a conflicting write: %v", err)
	}
	if conflicts.Load() < 2 {
		t.Fatalf("%d Secret updates, want a retry after the conflict", conflicts.Load())
	}
	sec, err := client.CoreV1().Secrets("warden-system").Get(ctx, caSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sec.Data[rootCertKey], ca.RootPEM()) || !bytes.Equal(sec.Data[tokenKeyKey], data[tokenKeyKey]) {
		t.Fatal("the Secret does not hold the served root and the original token key")
	}
	dir := t.TempDir()
	if err := writeFiles(dir, map[string][]byte{certs.TokenKeyFile: data[tokenKeyKey]}); err != nil {
		t.Fatal(err)
	}
	orig, err := certs.LoadOrCreateTokenKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if orig.KeyID() != signer.KeyID() {
		t.Fatalf("token key %s served, want the one already in the Secret, %s", signer.KeyID(), orig.KeyID())
	}
}
