package translate

import (
	"encoding/json"
	"strings"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"

	"github.com/wardenmesh/warden/inject"
)

// TestAppProbesOnlyFromPodObject: a proxy whose pod wardend does not know gets no probe
// listener and no app-health cluster, whatever labels its credential carries (the
// same labels as a pod that declares probers), and a known pod's proxy gets them
// whatever its credential says.
func TestAppProbesOnlyFromPodObject(t *testing.T) {
	in := loadCase(t, "probes-node-metadata-only")
	ghost := Translate(in, Proxy{Namespace: "foo", Pod: "ghost", Labels: map[string]string{"app": "web"}, IP: "10.0.0.99"})
	if l, cs := probeResources(ghost); l != nil || len(cs) != 0 {
		t.Errorf("proxy without a Pod object: listener %v, clusters %d; want none", l != nil, len(cs))
	}
	web := Translate(in, Proxy{Namespace: "foo", Pod: "web", Labels: map[string]string{"app": "other"}})
	if l, cs := probeResources(web); l == nil || len(cs) != 1 {
		t.Errorf("proxy of pod web: listener %v, clusters %d; want the listener and one cluster", l != nil, len(cs))
	}
}

// TestAppProbeClustersOnlyDeclaredPorts: in every golden case, each app-health cluster
// reaches 127.0.0.1 on a port some prober of the pod's annotation names, and nothing
// else.
func TestAppProbeClustersOnlyDeclaredPorts(t *testing.T) {
	for _, gc := range loadGoldenCases(t) {
		out := Translate(gc.in, gc.proxy)
		_, cs := probeResources(out)
		if len(cs) == 0 {
			continue
		}
		w := gc.in.WorkloadByPod(gc.proxy.Namespace, gc.proxy.Pod)
		if w == nil {
			t.Fatalf("%s: app-health clusters for a proxy without a Pod object", gc.name)
		}
		declared := map[uint32]bool{}
		var raw map[string]json.RawMessage
		_ = json.Unmarshal([]byte(w.PodAnnotations[inject.AnnotationAppProbers]), &raw)
		for _, r := range raw {
			var p inject.Prober
			if json.Unmarshal(r, &p) == nil && p.Port() > 0 {
				declared[uint32(p.Port())] = true
			}
		}
		for _, c := range cs {
			for _, lle := range c.GetLoadAssignment().GetEndpoints() {
				for _, e := range lle.GetLbEndpoints() {
					a := e.GetEndpoint().GetAddress().GetSocketAddress()
					if a.GetAddress() != "127.0.0.1" || !declared[a.GetPortValue()] || envoyPorts[int(a.GetPortValue())] {
						t.Errorf("%s: cluster %s reaches %s:%d, not a declared probe port on loopback", gc.name, c.Name, a.GetAddress(), a.GetPortValue())
					}
				}
			}
		}
	}
}

// probeResources picks the probe listener and the app-health clusters of out.
func probeResources(out *Output) (*listener.Listener, []*cluster.Cluster) {
	var l *listener.Listener
	var cs []*cluster.Cluster
	for _, r := range out.Listeners {
		if x := r.(*listener.Listener); x.Name == appProbeListenerName {
			l = x
		}
	}
	for _, r := range out.Clusters {
		if c := r.(*cluster.Cluster); strings.HasPrefix(c.Name, "app-health|") {
			cs = append(cs, c)
		}
	}
	return l, cs
}
