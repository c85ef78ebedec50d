package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"
)

// typeDiff compares what wardend intends for one xDS type with what Envoy holds.
type typeDiff struct {
	Type          string   `json:"type"`
	WardendVer    string   `json:"wardendVersion"`
	EnvoyVersions []string `json:"envoyVersions,omitempty"`
	Missing       []string `json:"missingInEnvoy,omitempty"` // intended, not in Envoy
	Extra         []string `json:"extraInEnvoy,omitempty"`   // in Envoy, not intended
	Differs       []string `json:"differs,omitempty"`        // same name, other content
}

func (d typeDiff) inSync() bool { return len(d.Missing)+len(d.Extra)+len(d.Differs) == 0 }

// intended is wardend's /debug/config_dump: per short type, a version and resources.
type intended map[string]struct {
	Version   string            `json:"version"`
	Resources []json.RawMessage `json:"resources"`
}

func fetchIntended(server, proxy string, timeout time.Duration) (intended, error) {
	c, err := newDebugClient(server, timeout)
	if err != nil {
		return nil, err
	}
	var in intended
	return in, c.getJSON("/debug/config_dump?proxy="+url.QueryEscape(proxy), &in)
}

// readEnvoyDump reads Envoy's admin config_dump (with EDS) from a URL or a file ("-" = stdin).
func readEnvoyDump(admin, file string, timeout time.Duration) ([]byte, error) {
	if admin != "" {
		c := &http.Client{Timeout: timeout}
		r, err := c.Get(strings.TrimRight(admin, "/") + "/config_dump?include_eds")
		if err != nil {
			return nil, fmt.Errorf("envoy admin %s: %w", admin, err)
		}
		defer r.Body.Close()
		return io.ReadAll(r.Body)
	}
	if file == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(file)
}

// envoyResources extracts, per short type, resource name -> (version, resource JSON)
// from Envoy's config_dump.
type envoyRes struct {
	version string
	body    any
}

func envoyResources(dump []byte) (map[string]map[string]envoyRes, error) {
	var d struct {
		Configs []map[string]json.RawMessage `json:"configs"`
	}
	if err := json.Unmarshal(dump, &d); err != nil {
		return nil, fmt.Errorf("envoy config_dump: %w", err)
	}
	out := map[string]map[string]envoyRes{"CDS": {}, "LDS": {}, "RDS": {}, "EDS": {}, "SDS": {}}
	type listenerState struct {
		VersionInfo string          `json:"version_info"`
		Listener    json.RawMessage `json:"listener"`
	}
	type entry struct {
		Name         string          `json:"name"`
		VersionInfo  string          `json:"version_info"`
		Cluster      json.RawMessage `json:"cluster"`
		RouteConfig  json.RawMessage `json:"route_config"`
		EndpointCfg  json.RawMessage `json:"endpoint_config"`
		ActiveState  *listenerState  `json:"active_state"`
		WarmingState *listenerState  `json:"warming_state"`
	}
	add := func(typ, nameField string, version string, raw json.RawMessage) error {
		if len(raw) == 0 {
			return nil
		}
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil {
			return err
		}
		delete(body, "@type")
		name, _ := body[nameField].(string)
		out[typ][name] = envoyRes{version, body}
		return nil
	}
	for _, c := range d.Configs {
		var typ string
		_ = json.Unmarshal(c["@type"], &typ)
		list := func(key string) []entry {
			var es []entry
			_ = json.Unmarshal(c[key], &es)
			return es
		}
		var err error
		switch {
		case strings.HasSuffix(typ, "ClustersConfigDump"):
			// A warming cluster or listener is what Envoy accepted last (it ACKs before
			// warming ends); it replaces the active one once warm.
			for _, key := range []string{"dynamic_active_clusters", "dynamic_warming_clusters"} {
				for _, e := range list(key) {
					if err == nil {
						err = add("CDS", "name", e.VersionInfo, e.Cluster)
					}
				}
			}
		case strings.HasSuffix(typ, "ListenersConfigDump"):
			for _, e := range list("dynamic_listeners") {
				st := e.ActiveState
				if e.WarmingState != nil {
					st = e.WarmingState
				}
				if st != nil && err == nil {
					err = add("LDS", "name", st.VersionInfo, st.Listener)
				}
			}
		case strings.HasSuffix(typ, "RoutesConfigDump"):
			for _, e := range list("dynamic_route_configs") {
				err = add("RDS", "name", e.VersionInfo, e.RouteConfig)
			}
		case strings.HasSuffix(typ, "EndpointsConfigDump"):
			for _, e := range list("dynamic_endpoint_configs") {
				err = add("EDS", "cluster_name", e.VersionInfo, e.EndpointCfg)
			}
		case strings.HasSuffix(typ, "SecretsConfigDump"):
			for _, e := range list("dynamic_active_secrets") {
				out["SDS"][e.Name] = envoyRes{version: e.VersionInfo}
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// diffConfigs compares wardend's intent with Envoy's dump, per type. Secrets are
// compared by name only: neither side shows key material.
func diffConfigs(want intended, got map[string]map[string]envoyRes) ([]typeDiff, error) {
	var out []typeDiff
	for _, typ := range []string{"CDS", "LDS", "EDS", "RDS", "SDS"} {
		w := want[typ]
		d := typeDiff{Type: typ, WardendVer: w.Version}
		wantByName := map[string]any{}
		nameField := "name"
		if typ == "EDS" {
			nameField = "cluster_name"
		}
		for _, raw := range w.Resources {
			var body map[string]any
			if err := json.Unmarshal(raw, &body); err != nil {
				return nil, err
			}
			name, _ := body[nameField].(string)
			wantByName[name] = body
		}
		versions := map[string]bool{}
		for name, body := range wantByName {
			e, ok := got[typ][name]
			if !ok {
				d.Missing = append(d.Missing, name)
				continue
			}
			versions[e.version] = true
			if typ != "SDS" && !covers(normalize(body), normalize(e.body)) {
				d.Differs = append(d.Differs, name)
			}
		}
		for name := range got[typ] {
			if _, ok := wantByName[name]; ok {
				continue
			}
			// Envoy lists the endpoints of every cluster, EDS or not; only EDS ones are served.
			if typ == "EDS" && intendedCluster(want, name) {
				continue
			}
			d.Extra = append(d.Extra, name)
		}
		for v := range versions {
			d.EnvoyVersions = append(d.EnvoyVersions, v)
		}
		sort.Strings(d.Missing)
		sort.Strings(d.Extra)
		sort.Strings(d.Differs)
		sort.Strings(d.EnvoyVersions)
		out = append(out, d)
	}
	return out, nil
}

// covers reports whether got holds everything in want: Envoy fills in defaults
// (health status, weights, overprovisioning), so it may hold more, never less or other.
func covers(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok || !covers(wv, gv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !covers(w[i], g[i]) {
				return false
			}
		}
		return true
	default:
		// Envoy's admin redacts sensitive fields (a token file's path among them), so
		// a redacted value stands for whatever wardend sent.
		if got == "[redacted]" {
			return true
		}
		return reflect.DeepEqual(want, got)
	}
}

// intendedCluster reports whether wardend serves a cluster by that name (over CDS).
func intendedCluster(want intended, name string) bool {
	for _, raw := range want["CDS"].Resources {
		var c struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(raw, &c) == nil && c.Name == name {
			return true
		}
	}
	return false
}

// normalize makes both sides comparable: wardend prints proto field names, as Envoy
// does; only the "@type" of the top-level resource differs (Envoy adds it).
func normalize(v any) any {
	if m, ok := v.(map[string]any); ok {
		c := make(map[string]any, len(m))
		for k, val := range m {
			if k != "@type" {
				c[k] = val
			}
		}
		return c
	}
	return v
}

func printDiff(w io.Writer, diffs []typeDiff) {
	fmt.Fprintln(w, "\nWardend intent vs Envoy config_dump:")
	for _, d := range diffs {
		if d.inSync() {
			fmt.Fprintf(w, "  %s: in sync (wardend %s, envoy %s)\n", d.Type, dash(d.WardendVer), dash(strings.Join(d.EnvoyVersions, ",")))
			continue
		}
		fmt.Fprintf(w, "  %s: DIFFERENT (wardend %s, envoy %s)\n", d.Type, dash(d.WardendVer), dash(strings.Join(d.EnvoyVersions, ",")))
		for _, n := range d.Missing {
			fmt.Fprintf(w, "    - %s (intended, not in Envoy)\n", n)
		}
		for _, n := range d.Extra {
			fmt.Fprintf(w, "    + %s (in Envoy, not intended)\n", n)
		}
		for _, n := range d.Differs {
			fmt.Fprintf(w, "    ~ %s (content differs)\n", n)
		}
	}
}
