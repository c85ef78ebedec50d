package main

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

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
