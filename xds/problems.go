package xds

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"

	"github.com/wardenmesh/warden/translate"
	"github.com/wardenmesh/warden/watch"
)

// ConfigProblem is one configuration Diagnostic, from decoding the input or from
// translating it for proxies, with the connected proxies whose translation reported it
// (none for a decoding problem). In JSON it is the Diagnostic's fields plus "proxies".
type ConfigProblem struct {
	watch.Diagnostic
	Proxies []string `json:"proxies,omitempty"`
}

// Problems lists every current configuration problem: the Input's diagnostics and
// each connected proxy's translation diagnostics, each once, sorted like the Input's.
func (s *Server) Problems() []ConfigProblem {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.problemsLocked()
}

func (s *Server) problemsLocked() []ConfigProblem {
	perProxy := make(map[string][]watch.Diagnostic, len(s.proxies))
	for id, p := range s.proxies {
		perProxy[id] = p.diags
	}
	var inputDiags []watch.Diagnostic
	if s.input != nil {
		inputDiags = s.input.Diagnostics
	}
	return mergeProblems(inputDiags, perProxy)
}

// Analyze is what wardend would report for in if every workload with a proxy
// (sidecar or gateway) were connected: the Input's diagnostics plus each proxy's
// translation diagnostics, merged as Problems merges them. `wardenctl analyze -f`
// runs it offline.
func Analyze(in *watch.Input) []ConfigProblem {
	x := translate.NewIndex(in)
	perProxy := map[string][]watch.Diagnostic{}
	for _, w := range in.Workloads {
		if !w.Sidecar && !w.Gateway {
			continue
		}
		p := translate.Proxy{ID: w.PodName + "." + w.Namespace, Namespace: w.Namespace, Pod: w.PodName,
			ServiceAccount: w.ServiceAccount, Labels: w.PodLabels, IP: w.IP, Gateway: w.Gateway}
		perProxy[p.ID] = x.Translate(p).Diagnostics
	}
	return mergeProblems(in.Diagnostics, perProxy)
}

// mergeProblems lists each diagnostic once, with the proxies whose translation
// reported it, sorted by location, object, field and message.
func mergeProblems(inputDiags []watch.Diagnostic, perProxy map[string][]watch.Diagnostic) []ConfigProblem {
	byDiag := map[watch.Diagnostic]int{}
	var out []ConfigProblem
	add := func(d watch.Diagnostic, proxy string) {
		i, ok := byDiag[d]
		if !ok {
			i = len(out)
			byDiag[d] = i
			out = append(out, ConfigProblem{Diagnostic: d})
		}
		// One proxy's diagnostics are added together, so a repeat within them is
		// the last entry: no scan of a list that may name every proxy.
		if ps := out[i].Proxies; proxy != "" && (len(ps) == 0 || ps[len(ps)-1] != proxy) {
			out[i].Proxies = append(ps, proxy)
		}
	}
	for _, d := range inputDiags {
		add(d, "")
	}
	for id, ds := range perProxy {
		for _, d := range ds {
			add(d, id)
		}
	}
	for i := range out {
		slices.Sort(out[i].Proxies)
	}
	slices.SortFunc(out, func(a, b ConfigProblem) int {
		return cmp.Or(cmp.Compare(a.Source.File, b.Source.File), cmp.Compare(a.Source.Doc, b.Source.Doc),
			cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.Field, b.Field), cmp.Compare(a.Message, b.Message), cmp.Compare(a.Severity, b.Severity))
	})
	return out
}

// problemReporter makes every configuration problem visible once: it logs each
// Diagnostic the first time it is reported for an input version (not at every push),
// sets the config-error metric, and hands the problems to Options.OnProblems (Kubernetes
// Events). A problem no longer reported when the input changes is forgotten, so one
// fixed and made again is logged again.
type problemReporter struct {
	mu      sync.Mutex
	logged  map[watch.Diagnostic]bool
	version string
	last    []ConfigProblem
}

// reportProblems is called after each new input and each push round.
func (s *Server) reportProblems() {
	s.mu.Lock()
	probs := s.problemsLocked()
	version := ""
	if s.input != nil {
		version = s.input.Version
	}
	s.mu.Unlock()

	r := &s.problems
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.logged == nil {
		r.logged = map[watch.Diagnostic]bool{}
	}
	if version != r.version {
		now := make(map[watch.Diagnostic]bool, len(probs))
		for _, p := range probs {
			now[p.Diagnostic] = true
		}
		for d := range r.logged {
			if !now[d] {
				delete(r.logged, d)
			}
		}
		r.version = version
	}
	for _, p := range probs {
		if r.logged[p.Diagnostic] {
			continue
		}
		r.logged[p.Diagnostic] = true
		logProblem(s.log, p)
	}
	if slices.EqualFunc(probs, r.last, sameProblem) {
		return
	}
	r.last = probs
	m := s.opts.Metrics.ConfigErrors
	m.Reset()
	for _, p := range probs {
		m.WithLabelValues(metricKind(p.Kind), p.Severity).Inc()
	}
	if s.opts.OnProblems != nil {
		s.opts.OnProblems(probs)
	}
}

func sameProblem(a, b ConfigProblem) bool {
	return a.Diagnostic == b.Diagnostic && slices.Equal(a.Proxies, b.Proxies)
}

// metricKind bounds the kind label: kinds Warden reads, "Translation", or "other"
// (a kind typed by a user, such as a cut-off one, never becomes a label).
func metricKind(kind string) string {
	switch {
	case kind == "":
		return "file"
	case kind == "Translation" || watch.IsKnownKind(kind):
		return kind
	}
	return "other"
}

// logProblem logs one problem as one line: the message, then where (file and document,
// or the API server), which object, which field, and the proxies it affects.
func logProblem(log *slog.Logger, p ConfigProblem) {
	level := slog.LevelWarn
	if p.IsError() {
		level = slog.LevelError
	}
	attrs := []any{"source", p.Source.String(), "kind", p.Kind, "namespace", p.Namespace, "name", p.Name, "field", p.Field}
	if len(p.Proxies) > 0 {
		attrs = append(attrs, "proxies", p.Proxies)
	}
	log.Log(context.Background(), level, "configuration problem: "+p.Message, attrs...)
}
