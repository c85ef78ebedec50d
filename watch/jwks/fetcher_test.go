package jwks

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenmesh/warden/watch"
)

const goodJWKS = `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`

// keyServer serves body with status; both can change during a test.
type keyServer struct {
	mu     sync.Mutex
	status int
	body   string
}

func (k *keyServer) set(status int, body string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.status, k.body = status, body
}

func (k *keyServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	k.mu.Lock()
	defer k.mu.Unlock()
	w.WriteHeader(k.status)
	_, _ = w.Write([]byte(k.body))
}

func inputWith(t *testing.T, uris ...string) *watch.Input {
	t.Helper()
	var b strings.Builder
	b.WriteString("apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: ra, namespace: foo}\nspec:\n  jwtRules:\n")
	for i, u := range uris {
		b.WriteString("  - issuer: iss" + string(rune('a'+i)) + "\n    jwksUri: " + u + "\n    timeout: 2s\n")
	}
	objs, diags := watch.DecodeFile("ra.yaml", []byte(b.String()))
	for _, d := range diags {
		if d.IsError() {
			t.Fatal(d)
		}
	}
	return watch.Build(objs, diags)
}

// next waits for the Fetcher's next Input; the deadline only guards against a hang.
func next(t *testing.T, out <-chan *watch.Input) *watch.Input {
	t.Helper()
	select {
	case in := <-out:
		return in
	case <-time.After(10 * time.Second):
		t.Fatal("no Input from the fetcher")
		return nil
	}
}

func startFetcher(t *testing.T, o Options) (chan<- *watch.Input, <-chan *watch.Input) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	in, out := make(chan *watch.Input), make(chan *watch.Input)
	done := make(chan error, 1)
	go func() { done <- New(o).Run(ctx, in, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return in, out
}

func TestFetcherFetchesAndReportsFailures(t *testing.T) {
	good := &keyServer{status: 200, body: goodJWKS}
	bad := &keyServer{status: 200, body: "<html>not keys</html>"}
	down := &keyServer{status: 503}
	sg, sb, sd := httptest.NewServer(good), httptest.NewServer(bad), httptest.NewServer(down)
	defer sg.Close()
	defer sb.Close()
	defer sd.Close()
	in, out := startFetcher(t, Options{})
	in <- inputWith(t, sg.URL, sb.URL, sd.URL)
	got := next(t, out).JWKS
	if r := got[sg.URL]; r.JWKS != goodJWKS || r.Error != "" || r.Fetched.IsZero() {
		t.Errorf("good: %+v", r)
	}
	if r := got[sb.URL]; r.JWKS != "" || !strings.Contains(r.Error, "parse JWKS") {
		t.Errorf("invalid body: %+v", r)
	}
	if r := got[sd.URL]; r.JWKS != "" || !strings.Contains(r.Error, "status 503") {
		t.Errorf("server error: %+v", r)
	}
}

func TestFetcherRefreshKeepsLastGoodAndRecovers(t *testing.T) {
	ks := &keyServer{status: 200, body: goodJWKS}
	srv := httptest.NewServer(ks)
	defer srv.Close()
	in, out := startFetcher(t, Options{Refresh: time.Millisecond, Retry: time.Millisecond})
	in <- inputWith(t, srv.URL)
	if r := next(t, out).JWKS[srv.URL]; r.JWKS != goodJWKS {
		t.Fatalf("first fetch: %+v", r)
	}
	ks.set(500, "")
	r := next(t, out).JWKS[srv.URL]
	if r.JWKS != goodJWKS || !strings.Contains(r.Error, "status 500") {
		t.Fatalf("failed refresh: %+v, want last good keys and the error", r)
	}
	const rotated = `{"keys":[{"kty":"oct","k":"b3RoZXI"}]}`
	ks.set(200, rotated)
	if r := next(t, out).JWKS[srv.URL]; r.JWKS != rotated || r.Error != "" {
		t.Fatalf("recovered: %+v", r)
	}
}

func TestFetcherResolvesMeshServices(t *testing.T) {
	manifests := `apiVersion: v1
kind: Service
metadata: {name: keys, namespace: foo}
spec:
  selector: {app: keys}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: keys-1, namespace: foo, labels: {app: keys}, annotations: {warden.io/pod-ip: 10.1.2.3}}
spec:
  containers: [{name: keys, image: x, ports: [{containerPort: 8080}]}]
`
	objs, diags := watch.DecodeFile("svc.yaml", []byte(manifests))
	in := watch.Build(objs, diags)
	for _, host := range []string{"keys.foo:80", "keys.foo.svc:80", "keys.foo.svc.cluster.local:80"} {
		if got, ok := serviceEndpoint(in, host); !ok || got != "10.1.2.3:8080" {
			t.Errorf("%s -> %q %v, want 10.1.2.3:8080", host, got, ok)
		}
	}
	if _, ok := serviceEndpoint(in, "keys.foo:81"); ok {
		t.Error("a port the Service does not have resolved")
	}
	if _, ok := serviceEndpoint(in, "example.com:80"); ok {
		t.Error("a non-mesh host resolved")
	}
}
