package xds

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authnclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
)

// PodNameExtra is the user extra that bound service-account tokens carry: the name of
// the pod the token was issued for.
const PodNameExtra = "authentication.kubernetes.io/pod-name"

// TokenReviewAuth authenticates proxies with Kubernetes service-account tokens
// (Kubernetes mode): the API server checks each token with a TokenReview for Audience.
// Only tokens bound to a pod are accepted, so the identity names the pod, and the
// server then holds the proxy's node id to that pod. wardend puts a TokenReviewCache
// in Reviews, so a fleet reconnecting at once costs one review per token.
type TokenReviewAuth struct {
	Reviews  authnclient.TokenReviewInterface // a TokenReviewCache, or clientset.AuthenticationV1().TokenReviews()
	Audience string                           // the audience the tokens are requested for, e.g. "warden"
}

// Authenticate asks the API server who token belongs to.
func (a *TokenReviewAuth) Authenticate(ctx context.Context, token string) (Identity, error) {
	tr := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token, Audiences: []string{a.Audience}}}
	res, err := a.Reviews.Create(ctx, tr, metav1.CreateOptions{})
	if err != nil {
		return Identity{}, fmt.Errorf("service-account token: TokenReview: %w", err)
	}
	st := res.Status
	if !st.Authenticated {
		msg := st.Error
		if msg == "" {
			msg = "not authenticated"
		}
		return Identity{}, fmt.Errorf("service-account token rejected for audience %q: %s", a.Audience, msg)
	}
	return identityOf(st.User)
}

// identityOf derives the identity from a reviewed service-account user.
func identityOf(u authnv1.UserInfo) (Identity, error) {
	rest, ok := strings.CutPrefix(u.Username, "system:serviceaccount:")
	ns, sa, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || ns == "" || sa == "" || strings.Contains(sa, ":") {
		return Identity{}, fmt.Errorf("token user %q is not a service account", u.Username)
	}
	pods := u.Extra[PodNameExtra]
	if len(pods) != 1 || pods[0] == "" {
		return Identity{}, fmt.Errorf("token of service account %s/%s is not bound to a pod: use a projected "+
			"service-account token (or TokenRequest with a Pod boundObjectRef)", ns, sa)
	}
	return Identity{Namespace: ns, ServiceAccount: sa, Pod: pods[0]}, nil
}

// ChainAuth accepts wardend's own bootstrap tokens (made by `wardenctl bootstrap`) and,
// for every other token, asks Kubernetes. A token is wardend's when its header names
// ES256 and wardend's key id; those are never sent to the API server.
type ChainAuth struct {
	Bootstrap *BootstrapTokenAuth
	Kube      Authenticator
}

// Authenticate dispatches token to the authenticator that owns it.
func (c *ChainAuth) Authenticate(ctx context.Context, token string) (Identity, error) {
	if c.Bootstrap != nil && c.isBootstrap(token) {
		return c.Bootstrap.Authenticate(ctx, token)
	}
	if c.Kube == nil {
		return Identity{}, errors.New("token is not a wardend bootstrap token")
	}
	return c.Kube.Authenticate(ctx, token)
}

func (c *ChainAuth) isBootstrap(token string) bool {
	head, _, ok := strings.Cut(strings.TrimSpace(token), ".")
	if !ok {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return false
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if json.Unmarshal(raw, &h) != nil {
		return false
	}
	return h.Alg == "ES256" && (h.Kid == "" || h.Kid == c.Bootstrap.Signer.KeyID())
}
