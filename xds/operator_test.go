package xds

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	statusv3 "github.com/envoyproxy/go-control-plane/envoy/service/status/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// fakeRBAC is an API server for OperatorAuth: tokens map to users (for the API
// server's audience, or for "warden" when the token starts with "proxy-"), and
// grants lists user -> the debug endpoints RBAC lets them get in warden-system.
type fakeRBAC struct {
	users  map[string]string
	grants map[string][]string
	sars   []authzv1.SubjectAccessReviewSpec
}

func (f *fakeRBAC) auth(t *testing.T, log *slog.Logger) *OperatorAuth {
	t.Helper()
	c := fake.NewClientset()
	c.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		tr := a.(k8stesting.CreateAction).GetObject().(*authnv1.TokenReview).DeepCopy()
		forWarden := len(tr.Spec.Audiences) == 1 && tr.Spec.Audiences[0] == "warden"
		u, ok := f.users[tr.Spec.Token]
		if ok && strings.HasPrefix(tr.Spec.Token, "proxy-") == forWarden {
			tr.Status = authnv1.TokenReviewStatus{Authenticated: true, User: authnv1.UserInfo{Username: u,
				Groups: []string{"system:serviceaccounts"}}}
		} else {
			tr.Status = authnv1.TokenReviewStatus{Error: "invalid bearer token"}
		}
		return true, tr, nil
	})
	c.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sar := a.(k8stesting.CreateAction).GetObject().(*authzv1.SubjectAccessReview).DeepCopy()
		f.sars = append(f.sars, sar.Spec)
		ra := sar.Spec.ResourceAttributes
		if ra != nil && ra.Namespace == "warden-system" && ra.Group == "warden.io" && ra.Resource == "debug" && ra.Verb == "get" {
			for _, e := range f.grants[sar.Spec.User] {
				sar.Status.Allowed = sar.Status.Allowed || e == ra.Name
			}
		}
		return true, sar, nil
	})
	return &OperatorAuth{Reviews: c.AuthenticationV1().TokenReviews(), Access: c.AuthorizationV1().SubjectAccessReviews(),
		Namespace: "warden-system", Audiences: []string{"warden"}, Log: log}
}

func newFakeRBAC() *fakeRBAC {
	return &fakeRBAC{
		users: map[string]string{
			"ops-token":   "system:serviceaccount:ops:reader",
			"nobody":      "system:serviceaccount:ops:nobody",
			"proxy-web-0": "system:serviceaccount:shop:web",
		},
		grants: map[string][]string{"system:serviceaccount:ops:reader": {"syncz", "config_dump", "csds"}},
	}
}

func TestOperatorAuthReviewsTokenThenAsksRBAC(t *testing.T) {
	f := newFakeRBAC()
	a := f.auth(t, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	for _, tc := range []struct {
		token, endpoint string
		want            error
	}{
		{"", "syncz", ErrNotAuthenticated},
		{"garbage", "syncz", ErrNotAuthenticated},
		{"nobody", "syncz", ErrForbidden},
		{"ops-token", "pprof", ErrForbidden},
		{"proxy-web-0", "config_dump", ErrForbidden}, // reviewed for audience warden, refused by RBAC
		{"ops-token", "config_dump", nil},
	} {
		user, err := a.Authorize(ctx, tc.token, tc.endpoint)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("Authorize(%q, %s) = %q, %v; want %v", tc.token, tc.endpoint, user, err, tc.want)
		}
	}
	last := f.sars[len(f.sars)-1]
	if last.User != "system:serviceaccount:ops:reader" || len(last.Groups) != 1 || last.ResourceAttributes.Name != "config_dump" {
		t.Fatalf("last SubjectAccessReview = %+v, want the reviewed user, groups and endpoint", last)
	}
}

func TestDebugEndpointNames(t *testing.T) {
	for path, want := range map[string]string{
		"/debug/config_dump": "config_dump", "/debug/pprof/heap": "pprof", "/debug/pprof/": "pprof",
		"/metrics": "metrics", "/debug/syncz": "syncz", "/": "index", "/debug/": "index",
		"/debug/" + strings.Repeat("a", 64): "invalid", "/debug/Syncz%0a": "invalid", "/debug/x\ny": "invalid",
	} {
		if got := DebugEndpoint(path); got != want {
			t.Errorf("DebugEndpoint(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestProtectedDebugAPI(t *testing.T) {
	ts := startServer(t)
	var logs bytes.Buffer
	a := newFakeRBAC().auth(t, slog.New(slog.NewTextHandler(&logs, nil)))
	now := time.Unix(1_800_000_000, 0)
	a.limit = NewRateLog(RateLogOptions{Every: opLogWindow / opLogBurst, Burst: opLogBurst, Now: func() time.Time { return now }})
	h := a.Protect(ts.srv.DebugHandler())
	get := func(path, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.RemoteAddr = "192.0.2.7:4000"
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for _, tc := range []struct {
		path, token string
		code        int
	}{
		{"/readyz", "", http.StatusOK}, // probes need no credential
		{"/debug/syncz", "", http.StatusUnauthorized},
		{"/debug/syncz", "garbage", http.StatusUnauthorized},
		{"/debug/syncz", "nobody", http.StatusForbidden},
		{"/debug/config_dump?proxy=db-0.shop", "proxy-web-0", http.StatusForbidden},
		{"/debug/pprof/heap", "ops-token", http.StatusForbidden},
		{"/debug/syncz", "ops-token", http.StatusOK},
	} {
		rec := get(tc.path, tc.token)
		if rec.Code != tc.code {
			t.Errorf("GET %s with %q: %d %s, want %d", tc.path, tc.token, rec.Code, rec.Body, tc.code)
		}
		if tc.code != http.StatusOK && strings.Contains(rec.Body.String(), "proxies") {
			t.Errorf("GET %s with %q: refused, yet the body shows status: %s", tc.path, tc.token, rec.Body)
		}
	}
	if !strings.Contains(logs.String(), "status=401") || !strings.Contains(logs.String(), "status=403") {
		t.Fatalf("refusals are not logged:\n%s", logs.String())
	}
	// A flood of bad tokens from one source logs a few lines a second, not one per request.
	logs.Reset()
	now = now.Add(time.Second)
	for i := 0; i < 50; i++ {
		get("/debug/syncz", "garbage")
	}
	if n := strings.Count(logs.String(), "\n"); n != opLogBurst {
		t.Fatalf("50 refusals within a second logged %d lines, want %d", n, opLogBurst)
	}
}

// csdsClient is a real gRPC CSDS client over TLS, authenticated with token.
func (ts *testServer) csds(t *testing.T, token string) (*statusv3.ClientStatusResponse, error) {
	t.Helper()
	conn, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: ts.ca.Roots(), ServerName: "wardend"})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	return statusv3.NewClientStatusDiscoveryServiceClient(conn).FetchClientStatus(ctx, &statusv3.ClientStatusRequest{})
}

func nodeIDs(r *statusv3.ClientStatusResponse) []string {
	var ids []string
	for _, c := range r.GetConfig() {
		ids = append(ids, c.GetNode().GetId())
	}
	sort.Strings(ids)
	return ids
}

// connect opens streams for web-0 and db-0 and waits for their first responses.
func connectTwo(t *testing.T, ts *testServer) (web, db Identity) {
	t.Helper()
	web = Identity{Namespace: "shop", ServiceAccount: "web", Pod: "web-0"}
	db = Identity{Namespace: "shop", ServiceAccount: "db", Pod: "db-0"}
	for _, id := range []Identity{web, db} {
		if _, err := ts.stream(t, ts.token(t, id), id).Recv(); err != nil {
			t.Fatal(err)
		}
	}
	return web, db
}

func TestCSDSProxySeesOnlyItself(t *testing.T) {
	ts := startServer(t)
	web, _ := connectTwo(t, ts)
	resp, err := ts.csds(t, ts.token(t, web))
	if err != nil {
		t.Fatal(err)
	}
	if got := nodeIDs(resp); len(got) != 1 || got[0] != "web-0.shop" {
		t.Fatalf("web-0's token sees nodes %v, want exactly [web-0.shop]", got)
	}
	if len(resp.GetConfig()[0].GetGenericXdsConfigs()) != len(ShortTypes) {
		t.Fatalf("web-0's own status lacks types: %v", resp.GetConfig()[0])
	}
	// Directory mode has no operator credential: the error says where the fleet is.
	_, err = ts.csds(t, "an-operator-token")
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "loopback debug API") {
		t.Fatalf("non-proxy token in directory mode: %v, want Unauthenticated pointing at the loopback debug API", err)
	}
	if _, err := ts.csds(t, ""); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v, want Unauthenticated", err)
	}
}

func TestCSDSFleetNeedsOperatorCredential(t *testing.T) {
	ts := startServer(t)
	web, _ := connectTwo(t, ts)
	ts.srv.SetOperatorAuth(newFakeRBAC().auth(t, slog.New(slog.DiscardHandler)))
	t.Cleanup(func() { ts.srv.SetOperatorAuth(nil) })

	resp, err := ts.csds(t, "ops-token")
	if err != nil {
		t.Fatal(err)
	}
	if got := nodeIDs(resp); len(got) != 2 || got[0] != "db-0.shop" || got[1] != "web-0.shop" {
		t.Fatalf("operator sees %v, want the fleet [db-0.shop web-0.shop]", got)
	}
	if _, err := ts.csds(t, "nobody"); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("operator token without RBAC: %v, want PermissionDenied", err)
	}
	if _, err := ts.csds(t, "garbage"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("garbage token: %v, want Unauthenticated", err)
	}
	// A proxy credential still sees only its own node.
	resp, err = ts.csds(t, ts.token(t, web))
	if err != nil {
		t.Fatal(err)
	}
	if got := nodeIDs(resp); len(got) != 1 || got[0] != "web-0.shop" {
		t.Fatalf("web-0's token with operator auth on sees %v, want [web-0.shop]", got)
	}
}
