package xds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authnclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authzclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
)

// The RBAC resource an operator needs, as kube-rbac-proxy checks it: verb get on
// warden.io/debug in wardend's namespace, the endpoint as the resource name
// ("config_dump", "syncz", "authz", "describe", "mtlsz", "inputz", "denials", "observedz", "pprof", "metrics",
// "csds"). deploy/20-rbac.yaml's ClusterRole warden-debug-reader grants it.
const (
	OperatorAPIGroup = "warden.io"
	OperatorResource = "debug"
	OperatorVerb     = "get"
)

// ErrNotAuthenticated and ErrForbidden classify what OperatorAuth.Authorize refused:
// no or a bad credential (HTTP 401, gRPC Unauthenticated), or an authenticated user
// that RBAC does not allow (403, PermissionDenied). Any other error means the API
// server could not answer.
var (
	ErrNotAuthenticated = errors.New("not authenticated")
	ErrForbidden        = errors.New("forbidden")
)

// OperatorAuth authenticates and authorizes operators of wardend's debug API and of
// the CSDS fleet view with Kubernetes: a TokenReview says who the bearer token belongs
// to, a SubjectAccessReview whether that user may get warden.io/debug/<endpoint> in
// Namespace.
type OperatorAuth struct {
	// Reviews checks tokens (clientset.AuthenticationV1().TokenReviews(), or a cache
	// in front of it).
	Reviews authnclient.TokenReviewInterface
	// Access asks RBAC (clientset.AuthorizationV1().SubjectAccessReviews()).
	Access authzclient.SubjectAccessReviewInterface
	// Namespace is wardend's namespace, where the RBAC rule applies.
	Namespace string
	// Audiences, besides the API server's own (a kubeconfig's token), that a token may
	// be for: wardend's --token-audience, so a proxy's token is reviewed, and then
	// refused by RBAC unless its service account was granted access.
	Audiences []string
	Log       *slog.Logger

	limitOnce sync.Once
	limit     *RateLog // refusals logged per source; set lazily, or by tests
}

// limiter bounds the refusal lines one source can cause (opLogBurst a second).
func (a *OperatorAuth) limiter() *RateLog {
	a.limitOnce.Do(func() {
		if a.limit == nil {
			a.limit = NewRateLog(RateLogOptions{Every: opLogWindow / opLogBurst, Burst: opLogBurst, MaxKeys: opLogMaxSources})
		}
	})
	return a.limit
}

// Authorize returns the reviewed user name when token's user may read endpoint.
func (a *OperatorAuth) Authorize(ctx context.Context, token, endpoint string) (string, error) {
	if strings.TrimSpace(token) == "" {
		return "", fmt.Errorf("%w: no bearer token", ErrNotAuthenticated)
	}
	user, err := a.review(ctx, token)
	if err != nil {
		return "", err
	}
	extra := map[string]authzv1.ExtraValue{}
	for k, v := range user.Extra {
		extra[k] = authzv1.ExtraValue(v)
	}
	sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra,
		ResourceAttributes: &authzv1.ResourceAttributes{Namespace: a.Namespace, Verb: OperatorVerb,
			Group: OperatorAPIGroup, Resource: OperatorResource, Name: endpoint},
	}}
	res, err := a.Access.Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return user.Username, fmt.Errorf("SubjectAccessReview for %s: %w", user.Username, err)
	}
	if !res.Status.Allowed || res.Status.Denied {
		why := res.Status.Reason
		if why == "" {
			why = "no RBAC rule allows it"
		}
		return user.Username, fmt.Errorf("%w: %s may not %s %s.%s %q in namespace %s (%s); bind the ClusterRole warden-debug-reader",
			ErrForbidden, user.Username, OperatorVerb, OperatorResource, OperatorAPIGroup, endpoint, a.Namespace, why)
	}
	return user.Username, nil
}

// review asks who token belongs to: for the API server's audience first, then for
// Audiences.
func (a *OperatorAuth) review(ctx context.Context, token string) (authnv1.UserInfo, error) {
	tries := [][]string{nil}
	if len(a.Audiences) > 0 {
		tries = append(tries, a.Audiences)
	}
	var why string
	for _, aud := range tries {
		tr := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token, Audiences: aud}}
		res, err := a.Reviews.Create(ctx, tr, metav1.CreateOptions{})
		if err != nil {
			return authnv1.UserInfo{}, fmt.Errorf("TokenReview: %w", err)
		}
		if res.Status.Authenticated {
			return res.Status.User, nil
		}
		why = res.Status.Error
	}
	if why == "" {
		why = "token rejected"
	}
	return authnv1.UserInfo{}, fmt.Errorf("%w: %s", ErrNotAuthenticated, why)
}

// Protect requires, on every request but /healthz and /readyz (probes), a bearer
// token whose user may get the endpoint the path names (see DebugEndpoint).
func (a *OperatorAuth) Protect(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		endpoint := DebugEndpoint(r.URL.Path)
		token, ok := httpBearer(r)
		if !ok {
			a.deny(w, r, endpoint, "", fmt.Errorf("%w: no Authorization: Bearer header", ErrNotAuthenticated))
			return
		}
		user, err := a.Authorize(r.Context(), token, endpoint)
		if err != nil {
			a.deny(w, r, endpoint, user, err)
			return
		}
		a.log().Debug("debug API request", "user", user, "endpoint", endpoint, "source", r.RemoteAddr)
		next.ServeHTTP(w, r)
	})
}

// deny answers 401, 403 or 503 and logs it, at most a few lines per second per source.
func (a *OperatorAuth) deny(w http.ResponseWriter, r *http.Request, endpoint, user string, err error) {
	code := http.StatusServiceUnavailable
	switch {
	case errors.Is(err, ErrNotAuthenticated):
		code = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Bearer realm="wardend"`)
	case errors.Is(err, ErrForbidden):
		code = http.StatusForbidden
	}
	a.LogDenied(sourceHost(r.RemoteAddr), "debug API request refused", "status", code, "endpoint", endpoint,
		"user", user, "source", r.RemoteAddr, "error", err.Error())
	msg := http.StatusText(code) + ": " + err.Error()
	if code == http.StatusServiceUnavailable {
		msg = "cannot check the credential with the Kubernetes API server now; retry"
	}
	http.Error(w, msg, code)
}

// LogDenied logs a refused request at warn level unless source already had its share
// of lines this second.
func (a *OperatorAuth) LogDenied(source, msg string, args ...any) {
	if ok, dropped := a.limiter().Allow(source); ok {
		if dropped > 0 {
			args = append(args, "suppressedSinceLast", dropped)
		}
		a.log().Warn(msg, args...)
	}
}

func (a *OperatorAuth) log() *slog.Logger {
	if a.Log == nil {
		return slog.Default()
	}
	return a.Log
}

// DebugEndpoint names the endpoint a debug path serves, the resource name RBAC sees:
// /debug/config_dump -> config_dump, /debug/pprof/heap -> pprof, /metrics -> metrics.
// A name no endpoint could have (long, or not [a-z0-9_-]) is "invalid", so what an
// unknown client puts in a path never reaches the API server or the log unbounded.
func DebugEndpoint(path string) string {
	p := strings.Trim(path, "/")
	p = strings.TrimPrefix(p, "debug/")
	name, _, _ := strings.Cut(p, "/")
	if name == "" || name == "debug" {
		return "index"
	}
	if len(name) > 63 || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
		return "invalid"
	}
	return name
}

func httpBearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

func sourceHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
