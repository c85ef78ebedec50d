package xds

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/wardenmesh/warden/certs"
)

// reviewer answers TokenReviews from a table of known tokens.
func reviewer(t *testing.T, users map[string]authnv1.UserInfo, audiences *[]string) *fake.Clientset {
	t.Helper()
	c := fake.NewClientset()
	c.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		tr := a.(k8stesting.CreateAction).GetObject().(*authnv1.TokenReview).DeepCopy()
		*audiences = append(*audiences, tr.Spec.Audiences...)
		if u, ok := users[tr.Spec.Token]; ok {
			tr.Status = authnv1.TokenReviewStatus{Authenticated: true, User: u, Audiences: tr.Spec.Audiences}
		} else {
			tr.Status = authnv1.TokenReviewStatus{Error: "invalid bearer token"}
		}
		return true, tr, nil
	})
	return c
}

func TestTokenReviewAuth(t *testing.T) {
	var auds []string
	c := reviewer(t, map[string]authnv1.UserInfo{
		"bound":   {Username: "system:serviceaccount:demo:web", Extra: map[string]authnv1.ExtraValue{PodNameExtra: {"web-0"}}},
		"unbound": {Username: "system:serviceaccount:demo:web"},
		"human":   {Username: "alice", Extra: map[string]authnv1.ExtraValue{PodNameExtra: {"web-0"}}},
	}, &auds)
	a := &TokenReviewAuth{Reviews: c.AuthenticationV1().TokenReviews(), Audience: "warden"}
	ctx := context.Background()

	id, err := a.Authenticate(ctx, "bound")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Identity{Namespace: "demo", ServiceAccount: "web", Pod: "web-0"}); !reflect.DeepEqual(id, want) {
		t.Fatalf("identity = %+v, want %+v", id, want)
	}
	if len(auds) != 1 || auds[0] != "warden" {
		t.Fatalf("reviewed audiences = %v, want [warden]", auds)
	}
	for tok, want := range map[string]string{
		"unbound": "not bound to a pod",
		"human":   "not a service account",
		"forged":  "invalid bearer token",
	} {
		if _, err := a.Authenticate(ctx, tok); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Authenticate(%s) = %v, want error containing %q", tok, err, want)
		}
	}
}

type recordingAuth struct{ tokens []string }

func (r *recordingAuth) Authenticate(_ context.Context, tok string) (Identity, error) {
	r.tokens = append(r.tokens, tok)
	return Identity{}, errors.New("no")
}

func TestChainAuthKeepsBootstrapTokensLocal(t *testing.T) {
	signer, err := certs.LoadOrCreateTokenKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	other, err := certs.LoadOrCreateTokenKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := certs.TokenClaims{Namespace: "demo", ServiceAccount: "web", Pod: "web-0"}
	ours, err := signer.Sign(claims, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := other.Sign(claims, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	kube := &recordingAuth{}
	c := &ChainAuth{Bootstrap: &BootstrapTokenAuth{Signer: signer}, Kube: kube}
	id, err := c.Authenticate(context.Background(), ours)
	if err != nil || id.Pod != "web-0" {
		t.Fatalf("bootstrap token: %+v, %v", id, err)
	}
	if len(kube.tokens) != 0 {
		t.Fatal("a wardend bootstrap token was sent to the API server")
	}
	// A token signed by another key is not ours: Kubernetes decides (and refuses).
	if _, err := c.Authenticate(context.Background(), theirs); err == nil {
		t.Fatal("token from another key accepted")
	}
	if _, err := c.Authenticate(context.Background(), "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"); err == nil {
		t.Fatal("RS256 token accepted by a refusing reviewer")
	}
	if len(kube.tokens) != 2 {
		t.Fatalf("kube authenticator saw %d tokens, want 2", len(kube.tokens))
	}
}
