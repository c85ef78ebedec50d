package main

import "testing"

// Envoy ACKs a listener or cluster before it has warmed: until then config_dump shows
// the previous one as active and the accepted one as warming. The warming one is what
// the diff compares, so a SYNCED proxy whose new listener is still warming agrees.
func TestEnvoyResourcesPreferWarming(t *testing.T) {
	dump := []byte(`{"configs": [
	  {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump", "dynamic_listeners": [
	    {"name": "virtualInbound",
	     "active_state": {"version_info": "old", "listener": {"name": "virtualInbound", "stat_prefix": "old"}},
	     "warming_state": {"version_info": "new", "listener": {"name": "virtualInbound", "stat_prefix": "new"}}},
	    {"name": "only-active", "active_state": {"version_info": "v1", "listener": {"name": "only-active"}}}]},
	  {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
	   "dynamic_active_clusters": [{"version_info": "c1", "cluster": {"name": "a"}}],
	   "dynamic_warming_clusters": [{"version_info": "c2", "cluster": {"name": "b"}}]}]}`)
	got, err := envoyResources(dump)
	if err != nil {
		t.Fatal(err)
	}
	if v := got["LDS"]["virtualInbound"].version; v != "new" {
		t.Errorf("virtualInbound: version %q, want the warming one (new)", v)
	}
	if _, ok := got["LDS"]["only-active"]; !ok {
		t.Error("a listener with only an active state is missing")
	}
	for _, c := range []string{"a", "b"} {
		if _, ok := got["CDS"][c]; !ok {
			t.Errorf("cluster %s (active or warming) is missing", c)
		}
	}
}

// Envoy redacts sensitive values in config_dump (the token file of a gRPC access
// logger's credential): the diff does not count them as differences.
func TestCoversRedacted(t *testing.T) {
	want := map[string]any{"filename": "/var/run/secrets/warden/token", "port": 1.0}
	if !covers(want, map[string]any{"filename": "[redacted]", "port": 1.0}) {
		t.Error("a redacted value is counted as a difference")
	}
	if covers(want, map[string]any{"filename": "[redacted]", "port": 2.0}) {
		t.Error("a real difference next to a redacted value is hidden")
	}
}
