package xds

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wardenmesh/warden/certs"
	"github.com/wardenmesh/warden/internal/meshtest"
	"github.com/wardenmesh/warden/translate"
	"github.com/wardenmesh/warden/watch"
)

// genMesh is a generated mesh as manifests by object key, so that a test can change,
// add and delete single objects and rebuild the Input.
type genMesh struct {
	docs map[string]string
	ids  []Identity
}

var genNamespaces = []string{"ns0", "ns1", "ns2", "ns3"}

func newGenMesh(pods int) *genMesh {
	m := &genMesh{docs: map[string]string{}}
	m.docs["ns/istio-system"] = meshtest.RootNamespace
	for n, ns := range genNamespaces {
		m.docs["ns/"+ns] = fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: %s, labels: {istio-injection: enabled}}\n", ns)
		for w := range pods {
			app := fmt.Sprintf("app%d", w)
			m.docs["pod/"+ns+"/"+app] = genPod(ns, app, n, w, "v1")
			m.docs["svc/"+ns+"/"+app] = fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: %s}\nspec: {clusterIP: 10.96.%d.%d, selector: {app: %s}, ports: [{name: http, port: 80, targetPort: 8080}, {name: tcp, port: 9000}]}\n",
				app, ns, n, w, app)
			m.ids = append(m.ids, Identity{Namespace: ns, ServiceAccount: app, Pod: app, IPs: []string{fmt.Sprintf("10.%d.%d.1", n, w)}})
		}
	}
	return m
}

func genPod(ns, app string, n, w int, version string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: %s, labels: {app: %s, version: %s}}
spec:
  serviceAccountName: %s
  containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}, {name: tcp, containerPort: 9000}]}]
status: {podIP: 10.%d.%d.1}
`, app, ns, app, version, app, n, w)
}

func (m *genMesh) input(t testing.TB) *watch.Input {
	keys := make([]string, 0, len(m.docs))
	for k := range m.docs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	docs := make([]string, 0, len(keys))
	for _, k := range keys {
		docs = append(docs, m.docs[k])
	}
	return meshtest.InputAllowingErrors(t, docs...)
}

// change applies one random change and describes it.
func (m *genMesh) change(r *rand.Rand, pods int) string {
	ns := genNamespaces[r.IntN(len(genNamespaces))]
	if r.IntN(4) == 0 {
		ns = "istio-system"
	}
	app := fmt.Sprintf("app%d", r.IntN(pods))
	name := fmt.Sprintf("p%d", r.IntN(3))
	specs := []string{
		`{action: DENY, rules: [{to: [{operation: {paths: ["/admin"]}}]}]}`,
		`{rules: [{from: [{source: {principals: ["cluster.local/ns/ns1/sa/app0"]}}]}]}`,
		`{selector: {matchLabels: {app: ` + app + `}}, action: ALLOW, rules: [{to: [{operation: {ports: ["9000"]}}]}]}`,
		`{selector: {matchLabels: {version: v2}}, action: DENY, rules: [{}]}`,
		`{action: ALLOW}`,
		`{action: DENY, rules: [{to: [{operation: {methods: [GET]}}]}], bogusField: 1}`, // rejected
	}
	switch k := r.IntN(10); {
	case k < 4:
		key := "ap/" + ns + "/" + name
		if _, ok := m.docs[key]; ok && r.IntN(3) == 0 {
			delete(m.docs, key)
			return "delete AuthorizationPolicy " + ns + "/" + name
		}
		m.docs[key] = meshtest.AuthorizationPolicy(name, ns, specs[r.IntN(len(specs))])
		return "set AuthorizationPolicy " + ns + "/" + name
	case k < 6:
		key := "ra/" + ns + "/" + name
		if _, ok := m.docs[key]; ok && r.IntN(3) == 0 {
			delete(m.docs, key)
			return "delete RequestAuthentication " + ns + "/" + name
		}
		sel := ""
		if r.IntN(2) == 0 {
			sel = "selector: {matchLabels: {app: " + app + "}}, "
		}
		m.docs[key] = fmt.Sprintf("apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: %s, namespace: %s}\nspec: {%sjwtRules: [{issuer: %q, jwks: '{\"keys\":[]}'}]}\n",
			name, ns, sel, fmt.Sprintf("https://issuer%d.example", r.IntN(3)))
		return "set RequestAuthentication " + ns + "/" + name
	case k == 6:
		modes := []string{"STRICT", "PERMISSIVE", "DISABLE"}
		m.docs["pa/"+ns] = meshtest.PeerAuthentication("default", ns, "{mtls: {mode: "+modes[r.IntN(3)]+"}}")
		return "set PeerAuthentication " + ns + "/default"
	case k == 7:
		m.docs["dr/"+ns] = fmt.Sprintf("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: dr, namespace: %s}\nspec: {host: %s.%s.svc.cluster.local, trafficPolicy: {tls: {mode: %s}}}\n",
			ns, app, genNamespaces[r.IntN(len(genNamespaces))], []string{"ISTIO_MUTUAL", "DISABLE"}[r.IntN(2)])
		return "set DestinationRule " + ns + "/dr"
	case k == 8 && ns != "istio-system":
		n := strings.TrimPrefix(ns, "ns")
		var ni, wi int
		fmt.Sscan(n, &ni)
		fmt.Sscan(strings.TrimPrefix(app, "app"), &wi)
		m.docs["pod/"+ns+"/"+app] = genPod(ns, app, ni, wi, []string{"v1", "v2"}[r.IntN(2)])
		return "relabel Pod " + ns + "/" + app
	default:
		key := "svc/" + ns + "/extra"
		if _, ok := m.docs[key]; ok {
			delete(m.docs, key)
			return "delete Service " + ns + "/extra"
		}
		m.docs[key] = fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: extra, namespace: %s}\nspec: {selector: {app: %s}, ports: [{name: http, port: 8080}]}\n", ns, app)
		return "add Service " + ns + "/extra"
	}
}

// pushNow runs the push SetInput asked for, synchronously.
func pushNow(s *Server) {
	select {
	case <-s.dirty:
	default:
	}
	s.pushAll(context.Background())
}

func newScopeServer(t testing.TB) *Server {
	ca, err := certs.LoadOrCreateCA(t.TempDir(), "cluster.local", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{Log: slog.New(slog.DiscardHandler), Secrets: &CertSecrets{CA: ca, Store: certs.NewStore(ca, time.Hour, time.Now)}})
}

func addProxies(s *Server, ids []Identity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.proxies[id.NodeID()] = &proxy{ident: id, streams: map[int64]bool{}}
	}
}

// TestScopedPushEqualsFullTranslation is the equivalence property of the dependency
// index: over random sequences of changes to a generated mesh, after each scoped push
// every proxy serves exactly what a full translation of the new Input gives it (the
// content versions of every type, and its diagnostics), whichever proxies the push
// re-translated.
func TestScopedPushEqualsFullTranslation(t *testing.T) {
	const pods, steps = 3, 60
	scoped := 0
	for seed := uint64(1); seed <= 4; seed++ {
		r := rand.New(rand.NewPCG(seed, 14))
		m := newGenMesh(pods)
		s := newScopeServer(t)
		addProxies(s, m.ids)
		s.SetInput(m.input(t))
		pushNow(s)
		for step := range steps {
			what := m.change(r, pods)
			in := m.input(t)
			before := s.translated.Load()
			s.SetInput(in)
			pushNow(s)
			n := s.translated.Load() - before
			if n < int64(len(m.ids)) {
				scoped++
			}
			full := translate.NewIndex(in)
			rc := newResourceCache()
			for _, id := range m.ids {
				out := full.Translate(translate.Proxy{ID: id.NodeID(), Namespace: id.Namespace, Pod: id.Pod, ServiceAccount: id.ServiceAccount, IP: id.IPs[0]})
				sec, err := s.opts.Secrets.WorkloadSecret(id)
				if err != nil {
					t.Fatal(err)
				}
				want, err := buildSnapshot(out, sec, rc)
				if err != nil {
					t.Fatal(err)
				}
				s.mu.Lock()
				p := s.proxies[id.NodeID()]
				got, diags := p.versions, p.diags
				s.mu.Unlock()
				if !reflect.DeepEqual(got, want.versions) {
					t.Fatalf("seed %d step %d (%s; %d proxies re-translated): proxy %s serves versions %v, a full translation gives %v",
						seed, step, what, n, id.NodeID(), got, want.versions)
				}
				if !reflect.DeepEqual(diags, out.Diagnostics) {
					t.Fatalf("seed %d step %d (%s): proxy %s has diagnostics %v, a full translation gives %v", seed, step, what, id.NodeID(), diags, out.Diagnostics)
				}
				snap, err := s.cache.GetSnapshot(id.NodeID())
				if err != nil {
					t.Fatal(err)
				}
				for typ, v := range want.versions {
					if snap.GetVersion(typ) != v {
						t.Fatalf("seed %d step %d: proxy %s cache holds %s version %s, want %s", seed, step, id.NodeID(), shortName(typ), snap.GetVersion(typ), v)
					}
				}
			}
		}
	}
	// The property must have been tested on scoped pushes, not only on full ones.
	if scoped < 20 {
		t.Fatalf("only %d of the pushes were scoped", scoped)
	}
}

// TestNamespacePolicyChangeRetranslatesOnlyItsNamespace: a namespace
// AuthorizationPolicy re-translates that namespace's proxies; a root-namespace one,
// every proxy; re-setting the same manifests, none.
func TestNamespacePolicyChangeRetranslatesOnlyItsNamespace(t *testing.T) {
	m := newGenMesh(3)
	s := newScopeServer(t)
	addProxies(s, m.ids)
	s.SetInput(m.input(t))
	pushNow(s)
	count := func(what string, want int64) {
		t.Helper()
		before := s.translated.Load()
		s.SetInput(m.input(t))
		pushNow(s)
		if got := s.translated.Load() - before; got != want {
			t.Errorf("%s: %d proxies re-translated, want %d", what, got, want)
		}
	}
	count("same manifests", 0)
	m.docs["ap/ns2"] = meshtest.AuthorizationPolicy("deny", "ns2", `{action: DENY, rules: [{}]}`)
	count("AuthorizationPolicy in ns2", 3)
	m.docs["ap/root"] = meshtest.AuthorizationPolicy("deny", "istio-system", `{action: DENY, rules: [{}]}`)
	count("AuthorizationPolicy in the root namespace", int64(len(m.ids)))
	m.docs["pa/ns1"] = meshtest.PeerAuthentication("default", "ns1", `{mtls: {mode: STRICT}}`)
	count("PeerAuthentication in ns1", int64(len(m.ids)))
}
