package main

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wardenmesh/warden/translate"
	"github.com/wardenmesh/warden/translate/authz"
	"github.com/wardenmesh/warden/watch"
	"github.com/wardenmesh/warden/xds"
)

// Flip is one caller -> workload pair whose decision a policy change flips.
type Flip struct {
	Caller   string `json:"caller"` // URI SAN, or "plaintext <ip>"
	Workload string `json:"workload"`
	Port     uint32 `json:"port"`
	From     string `json:"from"` // ALLOW or DENY today
	To       string `json:"to"`   // with the change
	Count    int    `json:"count"`
	// Rule is what decides with the change (empty when no rule does).
	Rule string `json:"rule,omitempty"`
}

// PreviewResult is `check --observed -o json`.
type PreviewResult struct {
	Replayed int    `json:"replayed"`
	Window   any    `json:"window"`
	Flips    []Flip `json:"flips"`
}

// previewObserved replays the window's entries through the policies of dir and of
// dir with the objects of file added (an object of the same kind, namespace and name
// replaced), and lists the pairs whose decision differs.
func previewObserved(server string, timeout, since time.Duration, dir, file string) (PreviewResult, error) {
	objs, diags, err := watch.DecodeDir(dir)
	if err != nil {
		return PreviewResult{}, fmt.Errorf("load %s: %w", dir, err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return PreviewResult{}, err
	}
	change, cdiags := watch.DecodeFile(file, data)
	for _, d := range cdiags {
		if d.Severity == watch.SeverityError {
			return PreviewResult{}, fmt.Errorf("%s: %s", file, d.String())
		}
	}
	if len(change) == 0 {
		return PreviewResult{}, fmt.Errorf("%s: no objects", file)
	}
	type key struct{ kind, ns, name string }
	replaced := map[key]bool{}
	for _, o := range change {
		replaced[key{o.Kind, o.Namespace, o.Name}] = true
	}
	var next []watch.Object
	for _, o := range objs {
		if !replaced[key{o.Kind, o.Namespace, o.Name}] {
			next = append(next, o)
		}
	}
	next = append(next, change...)
	before, after := translate.NewIndex(watch.Build(objs, diags)), translate.NewIndex(watch.Build(next, diags))

	q := url.Values{}
	if since > 0 {
		q.Set("since", since.String())
	}
	var resp xds.AccessLogResponse
	if err := viewFetch(server, "/debug/accesslog?"+q.Encode(), timeout, &resp); err != nil {
		return PreviewResult{}, err
	}
	type pair struct {
		caller, workload string
		port             uint32
		from, to, rule   string
	}
	counts := map[pair]int{}
	replayed := 0
	for _, e := range resp.Entries {
		if e.Protocol != "HTTP" {
			continue // TCP entries carry no request to replay
		}
		req := authz.CheckRequest{Port: e.Port, Method: e.Method, Path: e.Path, Host: e.Authority}
		caller := e.Peer
		if h, _, err := net.SplitHostPort(e.Source); err == nil {
			req.SourceIP = h
		}
		if e.Peer == xds.Plaintext {
			caller = "plaintext " + req.SourceIP
		} else {
			req.Principal = e.Peer
		}
		p := translate.Proxy{ID: e.Proxy, Namespace: e.Namespace, Pod: e.Pod}
		a, b := before.Check(p, req), after.Check(p, req)
		replayed++
		if a.Decision == b.Decision {
			continue
		}
		rule := ""
		if b.Rule != nil {
			rule = b.Rule.Rule
		}
		counts[pair{caller, e.Proxy, e.Port, a.Decision, b.Decision, rule}]++
	}
	out := PreviewResult{Replayed: replayed, Window: resp.Window, Flips: []Flip{}}
	for k, n := range counts {
		out.Flips = append(out.Flips, Flip{Caller: k.caller, Workload: k.workload, Port: k.port, From: k.from, To: k.to, Count: n, Rule: k.rule})
	}
	sort.Slice(out.Flips, func(i, j int) bool {
		a, b := out.Flips[i], out.Flips[j]
		if a.Workload != b.Workload {
			return a.Workload < b.Workload
		}
		if a.Caller != b.Caller {
			return a.Caller < b.Caller
		}
		return a.Port < b.Port
	})
	return out, nil
}

func printPreview(w io.Writer, r PreviewResult) {
	fmt.Fprintf(w, "Replayed %d observed HTTP requests; %d caller -> workload pairs flip.\n", r.Replayed, len(r.Flips))
	if len(r.Flips) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CALLER\tWORKLOAD\tPORT\tTODAY\tWITH CHANGE\tREQUESTS\tRULE")
	for _, f := range r.Flips {
		rule := f.Rule
		if rule == "" {
			rule = strings.Repeat("-", 1)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%s\n", f.Caller, f.Workload, f.Port, f.From, f.To, f.Count, rule)
	}
	tw.Flush()
}
