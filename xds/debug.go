package xds

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"sort"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/protobuf/encoding/protojson"
)

// SynczResponse is the body of /debug/syncz.
type SynczResponse struct {
	Wardend      string        `json:"wardend"`
	InputVersion string        `json:"inputVersion"`
	Proxies      []ProxyStatus `json:"proxies"`
	// Diagnostics are every configuration problem (Server.Problems): decoding and
	// translation diagnostics, each with the proxies it affects.
	Diagnostics []ConfigProblem `json:"diagnostics,omitempty"`
}

// DebugHandler serves the debug API: /debug/syncz (with every configuration problem), /debug/config_dump, /debug/inputz,
// /debug/mtlsz, /debug/describe, /debug/authz, /debug/denials, /debug/observedz, /debug/pprof/, and also /metrics,
// /healthz and /readyz. It shows every proxy's configuration (never key material) and
// profiling data, and checks no credential: serve it on loopback, or behind
// OperatorAuth.Protect over TLS.
func (s *Server) DebugHandler() http.Handler {
	mux := http.NewServeMux()
	s.registerHealth(mux)
	mux.HandleFunc("/debug/syncz", func(w http.ResponseWriter, r *http.Request) {
		resp := SynczResponse{Wardend: s.opts.Replica, Proxies: s.tracker.Snapshot()}
		if in := s.Input(); in != nil {
			resp.InputVersion = in.Version
		}
		resp.Diagnostics = s.Problems()
		writeJSON(w, resp)
	})
	mux.HandleFunc("/debug/config_dump", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("proxy")
		snap, err := s.ServedResources(id)
		if err != nil {
			http.Error(w, "no configuration for proxy "+id+" (is it connected?)", http.StatusNotFound)
			return
		}
		out := map[string]any{}
		for _, typ := range servedTypes {
			items := snap.GetResources(typ)
			names := make([]string, 0, len(items))
			for n := range items {
				names = append(names, n)
			}
			sort.Strings(names)
			var list []json.RawMessage
			for _, n := range names {
				if typ == resource.SecretType {
					// Never expose key material: name the secret only.
					b, _ := json.Marshal(map[string]string{"name": n})
					list = append(list, b)
					continue
				}
				// Proto field names, as Envoy's own config_dump prints them, so the two compare.
				b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(items[n])
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				list = append(list, b)
			}
			out[shortName(typ)] = map[string]any{"version": snap.GetVersion(typ), "resources": list}
		}
		writeJSON(w, out)
	})
	mux.HandleFunc("/debug/inputz", func(w http.ResponseWriter, r *http.Request) {
		resp := map[string]any{}
		if in := s.Input(); in != nil {
			resp["version"] = in.Version
			resp["diagnostics"] = in.Diagnostics
		}
		writeJSON(w, resp)
	})
	s.registerViews(mux)
	s.registerAccessLog(mux)
	mux.HandleFunc("/debug/authz", s.AuthzCheckHandler)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// MetricsHandler serves /metrics, /healthz and /readyz and nothing else: it is meant
// to be scraped and probed without a credential. The metrics are counts, durations
// and expiries, never key material or tokens.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	s.registerHealth(mux)
	return mux
}

func (s *Server) registerHealth(mux *http.ServeMux) {
	mux.Handle("/metrics", promhttp.HandlerFor(s.opts.Metrics.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if s.Input() == nil {
			http.Error(w, "no configuration loaded yet", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
