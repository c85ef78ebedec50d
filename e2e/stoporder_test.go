package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/inject"
)

// TestInjectedStopOrderDrain stops the injected server pod while a request to it is in
// flight (the app answers after 3 s), in both stop orders, with and without Envoy's
// termination drain (its preStop sleep):
//
//   - Envoy as an ordinary container (no native sidecars, or the fallback template):
//     the kubelet tells the app and Envoy to stop at the same time. With the drain,
//     Envoy keeps serving for 5 s while the app finishes the request: 200. Without it,
//     Envoy exits on SIGTERM at once and the request fails. So here the drain is what
//     saves in-flight requests.
//   - Envoy as a native sidecar without the drain: still 200, because the kubelet
//     stops Envoy only once the app has exited (the order is what saves them there).
//
// While the request is in flight and Envoy still runs, a new request opened after the
// app stopped listening is accepted by the server's Envoy, which answers 503 (its
// upstream, the app, refuses the connection): Envoy's listeners stay open during the
// preStop sleep; stock Envoy does not drain on its own.
func TestInjectedStopOrderDrain(t *testing.T) {
	legacy := harness.WithoutNativeSidecars
	cases := []struct {
		name     string
		layout   func(*corev1.Pod) *corev1.Pod
		native   bool
		drain    bool
		inFlight bool // the in-flight request gets its 200
	}{
		{"ordinary-container/drain", legacy, false, true, true},
		{"ordinary-container/no-drain", func(p *corev1.Pod) *corev1.Pod { return harness.WithoutPreStop(legacy(p)) }, false, false, false},
		{"native-sidecar/no-drain", harness.WithoutPreStop, true, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			im, pods := startInjected(ctx, t, tc.layout, "client")
			m, server := im.m, im.server
			envoy := server.Kube.Container(inject.ContainerProxy)
			if envoy == nil {
				im.fail("server pod has no %s container", inject.ContainerProxy)
			}
			// The layout is what the case says.
			spec := server.Kube.Spec.Spec
			if native := len(spec.Containers) == 1; native != tc.native {
				im.fail("server pod: %d ordinary containers, want native sidecar %v", len(spec.Containers), tc.native)
			}
			drain := false
			for _, c := range append(spec.InitContainers, spec.Containers...) {
				if c.Name == inject.ContainerProxy && c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
					drain = true
				}
			}
			if drain != tc.drain {
				im.fail("server pod: Envoy preStop drain %v, want %v", drain, tc.drain)
			}
			client := im.startClient(ctx, t, pods["client"])

			got := make(chan inFlight, 1)
			go func() {
				r, err := m.Request(ctx, client, "GET", "http://server.demo/slow", map[string]string{"x-delay": "3s"})
				got <- inFlight{r, err}
			}()
			gauge, err := waitGauge(ctx, server, "downstream_rq_active", "inbound")
			if err != nil {
				im.fail("%v", err)
			}
			stopped := make(chan struct{})
			go func() { server.Kube.Stop(ctx); close(stopped) }()

			if tc.inFlight {
				// The app got SIGTERM: it closed its listener and finishes the request.
				if err := waitUntil(ctx, 10*time.Second, func() error {
					out, err := server.Exec(ctx, "ss", "-Htln", "sport = :8080")
					if err != nil {
						return err
					}
					if strings.TrimSpace(string(out)) != "" {
						return fmt.Errorf("the app still listens: %s", out)
					}
					return nil
				}); err != nil {
					im.fail("%v", err)
				}
				before := cxTotal(ctx, server)
				r, err := m.Request(ctx, client, "GET", "http://server.demo/new", nil)
				select {
				case <-envoy.Exited():
					im.fail("Envoy exited before the new request was checked: the check saw nothing of the drain")
				default:
				}
				after := cxTotal(ctx, server)
				if after <= before {
					im.fail("the new request opened no new connection to the server's Envoy (virtualInbound accepted %d, then %d)", before, after)
				}
				if err != nil || r.Status != 503 {
					im.fail("new request after the app stopped listening, Envoy still up: want the server Envoy's 503, got %s %q %v", r, r.Body, err)
				}
				t.Logf("new request during the stop: %s %q (server Envoy inbound connections %d -> %d)", r, r.Body, before, after)
			}

			a := <-got
			<-stopped
			ev := strings.Join(server.Kube.Events, "; ")
			if tc.inFlight {
				if a.err != nil || a.r.Status != 200 {
					im.fail("request in flight while the server pod stopped: want 200, got %s %q %v\nkubelet: %s", a.r, a.r.Body, a.err, ev)
				}
			} else if a.err == nil && a.r.Status == 200 {
				im.fail("request in flight got 200 with Envoy stopped beside the app and no drain: the test cannot tell the drain matters\nkubelet: %s", ev)
			}
			t.Logf("in flight (%s) when the pod was told to stop: got %s %q %v; kubelet: %s", gauge, a.r, a.r.Body, a.err, ev)
			wantStop := "containers stopped; sidecar " + inject.ContainerProxy + " stopped"
			if !tc.native {
				wantStop = "stopping containers " + inject.ContainerProxy + ", app at once; containers stopped"
			}
			if !strings.HasSuffix(ev, wantStop) {
				t.Errorf("stop order: %s, want it to end with %q", ev, wantStop)
			}
		})
	}
}

type inFlight struct {
	r   harness.Result
	err error
}

// startClient runs the injected client pod (an echo app on 8080) and waits until it
// and the server are SYNCED.
func (im *injectedMesh) startClient(ctx context.Context, t *testing.T, client *harness.Pod) *harness.Pod {
	t.Helper()
	m := im.m
	o := harness.PodOptions{Namespace: "demo", Name: client.Name(), ServiceAccount: client.Name(),
		Labels: map[string]string{"app": client.Name()}, HTTPPorts: []uint32{8080}, Sidecar: true}
	var err error
	if o.Injected, err = m.Inject(client, o, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.StartPod(ctx, client, o); err != nil {
		im.fail("%v", err)
	}
	if _, err := m.WaitSynced(ctx, []string{"server.demo", client.Name() + ".demo"}, 60*time.Second); err != nil {
		im.fail("%v", err)
	}
	return client
}

// cxTotal is the number of connections p's Envoy accepted on virtualInbound (-1 when
// the admin API does not answer).
func cxTotal(ctx context.Context, p *harness.Pod) int {
	out, err := p.Exec(ctx, "curl", "-sS", "--max-time", "2", "http://127.0.0.1:15000/stats?filter=^listener.0.0.0.0_15006.downstream_cx_total$")
	if err != nil {
		return -1
	}
	_, v, ok := strings.Cut(strings.TrimSpace(string(out)), ": ")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return n
}
