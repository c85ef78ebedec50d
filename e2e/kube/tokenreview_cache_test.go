package kube

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authnclient "k8s.io/client-go/kubernetes/typed/authentication/v1"

	"github.com/wardenmesh/warden/e2e/kubeenv"
	"github.com/wardenmesh/warden/xds"
)

// countedReviews passes TokenReviews to the real API server, counting them and,
// when meet is set, holding each one until meet of them are in flight at once.
type countedReviews struct {
	next    authnclient.TokenReviewInterface
	calls   atomic.Int64
	meet    int
	arrived chan struct{}
	all     chan struct{}
	once    sync.Once
	alone   atomic.Int64 // calls that gave up waiting for the others
}

func (c *countedReviews) Create(ctx context.Context, tr *authnv1.TokenReview, opts metav1.CreateOptions) (*authnv1.TokenReview, error) {
	n := c.calls.Add(1)
	if c.meet > 0 {
		if n == int64(c.meet) {
			c.once.Do(func() { close(c.all) })
		}
		select {
		case <-c.all:
		case <-time.After(20 * time.Second):
			c.alone.Add(1)
		}
	}
	return c.next.Create(ctx, tr, opts)
}

// serverTokenReviews is the API server's own count of TokenReviews it answered
// (apiserver_request_total for POST tokenreviews).
func serverTokenReviews(t *testing.T, ctx context.Context, env *kubeenv.Env) int {
	t.Helper()
	body, err := env.Client.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		t.Fatalf("kube-apiserver /metrics: %v", err)
	}
	total := 0.0
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") || !strings.Contains(line, `resource="tokenreviews"`) ||
			!strings.Contains(line, `verb="POST"`) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("parse %q: %v", line, err)
		}
		total += v
	}
	return int(total)
}

// waitServerTokenReviews waits until the API server has counted want TokenReviews
// (its counter is bumped as the response goes out) and fails if it counts more.
func waitServerTokenReviews(t *testing.T, ctx context.Context, env *kubeenv.Env, want int) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		got := serverTokenReviews(t, ctx, env)
		if got > want {
			t.Fatalf("the API server answered %d TokenReviews, want %d", got, want)
		}
		if got == want {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("the API server answered %d TokenReviews, want %d", got, want)
		}
	}
}

func TestTokenReviewCacheAgainstAPIServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	p := begin(t, "start etcd and kube-apiserver")
	env, err := kubeenv.Start(ctx, kubeenv.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop control plane: %v", err)
		}
	})
	p.end()

	const pods = 8
	p = begin(t, "pods and pod-bound tokens from the TokenRequest API")
	tokens := make([]string, pods)
	for i := range pods {
		pod, err := env.WritePod(ctx, kubeenv.Pod{Namespace: "cache", Name: fmt.Sprintf("web-%d", i), ServiceAccount: "web",
			IP: fmt.Sprintf("10.250.1.%d", i+1)})
		if err != nil {
			t.Fatal(err)
		}
		if tokens[i], err = env.Token(ctx, "cache", "web", []string{"warden"}, pod, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	p.end()

	p = begin(t, "50 parallel authentications of one token")
	const parallel = 50
	counted := &countedReviews{next: env.Client.AuthenticationV1().TokenReviews()}
	cache, err := xds.NewTokenReviewCache(counted)
	if err != nil {
		t.Fatal(err)
	}
	auth := &xds.TokenReviewAuth{Reviews: cache, Audience: "warden"}
	before := serverTokenReviews(t, ctx, env)
	var wg sync.WaitGroup
	errs := make(chan error, parallel)
	for range parallel {
		wg.Go(func() {
			id, err := auth.Authenticate(ctx, tokens[0])
			if err == nil && (id.Namespace != "cache" || id.ServiceAccount != "web" || id.Pod != "web-0") {
				err = fmt.Errorf("identity %+v, want cache/web pod web-0", id)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := counted.calls.Load(); n != 1 {
		t.Fatalf("%d parallel authentications of one token made %d TokenReviews, want 1", parallel, n)
	}
	waitServerTokenReviews(t, ctx, env, before+1)
	p.end()

	p = begin(t, "different tokens are reviewed concurrently")
	// Each of the other tokens' reviews is held until all of them are in flight: a
	// cache that serialised them would leave each waiting alone.
	others := pods - 1
	concurrent := &countedReviews{next: env.Client.AuthenticationV1().TokenReviews(), meet: others,
		all: make(chan struct{})}
	cache2, err := xds.NewTokenReviewCache(concurrent)
	if err != nil {
		t.Fatal(err)
	}
	auth2 := &xds.TokenReviewAuth{Reviews: cache2, Audience: "warden"}
	before = serverTokenReviews(t, ctx, env)
	errs = make(chan error, others)
	for i := 1; i < pods; i++ {
		wg.Go(func() {
			id, err := auth2.Authenticate(ctx, tokens[i])
			if err == nil && id.Pod != fmt.Sprintf("web-%d", i) {
				err = fmt.Errorf("token %d: identity %+v", i, id)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := concurrent.alone.Load(); n != 0 {
		t.Fatalf("%d of %d TokenReviews for different tokens waited in vain for the others: they were serialised", n, others)
	}
	if n := concurrent.calls.Load(); n != int64(others) {
		t.Fatalf("%d TokenReviews for %d tokens, want %d", n, others, others)
	}
	waitServerTokenReviews(t, ctx, env, before+others)
	// Now cached: again costs nothing.
	for i := 1; i < pods; i++ {
		if _, err := auth2.Authenticate(ctx, tokens[i]); err != nil {
			t.Fatal(err)
		}
	}
	if n := concurrent.calls.Load(); n != int64(others) {
		t.Fatalf("cached tokens reviewed again: %d TokenReviews, want %d", n, others)
	}
	// A token for another audience is refused by the real API server, and the refusal
	// is remembered.
	wrong, err := env.Token(ctx, "cache", "web", []string{"not-warden"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := auth.Authenticate(ctx, wrong); err == nil {
			t.Fatal("token for another audience accepted")
		}
	}
	if n := counted.calls.Load(); n != 2 {
		t.Fatalf("3 authentications of a refused token: %d TokenReviews in all, want 2", n)
	}
	p.end()
}
