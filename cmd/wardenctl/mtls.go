package main

import (
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenmesh/warden/translate"
	"github.com/wardenmesh/warden/xds"
)

func newMTLSCmd() *cobra.Command {
	var (
		server, namespace string
		output            *outputFormat
		all, observed     bool
		since, timeout    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "mtls",
		Short: "Show the effective inbound mTLS mode of each workload",
		Long: `Show, per workload and target port, the inbound mTLS mode wardend serves (STRICT,
PERMISSIVE or DISABLE), the PeerAuthentication that decided it ("(mesh default)" when
none does), and whether the workload has a proxy and whether it is connected now.

A workload without a sidecar enforces nothing whatever its mode; an ingress gateway's
listeners come from Gateway servers, not from PeerAuthentication.

--observed adds what the proxies' access logs showed per port over --since: the
callers seen over mTLS (by identity) and over plaintext (by address), and a warning
for a PERMISSIVE port that still sees plaintext callers, which is what to check before
switching it to STRICT. Every plaintext request to a PERMISSIVE port is logged to
wardend; mTLS requests are seen only when the MeshConfig sets accessLogFile (full
access logs) or when they are denied.

A plaintext caller stops showing once it is meshed: its plaintext requests to a port
move to the MESHED column (and stop warning) when they are older than a later request
from the same address to that port over mTLS, or older than the connection of a
sidecar whose pod holds that address (the proven pod IPs). Plaintext requests sent
after both still show. A caller recreated with a new address shows under its old one
until --since passes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := output.check(); err != nil {
				return err
			}
			ns := namespace
			if all {
				ns = ""
			}
			var resp xds.MTLSzResponse
			if err := viewFetch(server, "/debug/mtlsz?namespace="+url.QueryEscape(ns), timeout, &resp); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if observed {
				return printObserved(w, output, server, ns, since, timeout, resp.Workloads)
			}
			return output.print(w, resp.Workloads, func() error {
				if len(resp.Workloads) == 0 {
					where := "namespace " + ns
					if ns == "" {
						where = "the mesh"
					}
					fmt.Fprintf(w, "No workloads in %s.\n", where)
					return nil
				}
				printMTLSTable(w, resp.Workloads)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", defaultDebugAddr(), "wardend's debug address, host:port (loopback HTTP) or https://host:port")
	output = addOutputFlag(f, "table")
	f.StringVarP(&namespace, "namespace", "n", "default", "namespace of the workloads")
	f.BoolVarP(&all, "all-namespaces", "A", false, "workloads of every namespace")
	f.DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for wardend")
	f.BoolVar(&observed, "observed", false, "add the mTLS and plaintext callers the access logs showed per port")
	f.DurationVar(&since, "since", 10*time.Minute, "with --observed: the access log entries newer than this")
	return cmd
}

// observedView is `mtls --observed -o json`: the intended modes and what was seen.
type observedView struct {
	Workloads []translate.WorkloadMTLS `json:"workloads"`
	Observed  []xds.ObservedPort       `json:"observed"`
	Warnings  []string                 `json:"warnings,omitempty"`
}

func printObserved(w io.Writer, output *outputFormat, server, ns string, since, timeout time.Duration, rows []translate.WorkloadMTLS) error {
	q := url.Values{}
	q.Set("namespace", ns)
	if since > 0 {
		q.Set("since", since.String())
	}
	var obs xds.ObservedResponse
	if err := viewFetch(server, "/debug/observedz?"+q.Encode(), timeout, &obs); err != nil {
		return err
	}
	v := observedView{Workloads: rows, Observed: obs.Ports, Warnings: observedWarnings(rows, obs.Ports)}
	return output.print(w, v, func() error {
		printMTLSTable(w, rows)
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
		fmt.Fprintln(tw, "NAME\tPORT\tMTLS CALLERS\tPLAINTEXT CALLERS\tMESHED (PLAINTEXT BEFORE)")
		for _, p := range obs.Ports {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", p.Proxy, p.Port, callerList(p.MTLS), callerList(p.Plaintext), callerList(p.Meshed))
		}
		tw.Flush()
		for _, warn := range v.Warnings {
			fmt.Fprintln(w, "WARNING: "+warn)
		}
		return nil
	})
}

// observedWarnings names each PERMISSIVE port that plaintext callers still reach.
func observedWarnings(rows []translate.WorkloadMTLS, obs []xds.ObservedPort) []string {
	mode := map[string]string{}
	for _, r := range rows {
		for _, p := range r.Ports {
			mode[r.Name+"."+r.Namespace+":"+strconv.FormatUint(uint64(p.Port), 10)] = p.Mode
		}
	}
	var out []string
	for _, p := range obs {
		m := mode[p.Proxy+":"+strconv.FormatUint(uint64(p.Port), 10)]
		if len(p.Plaintext) > 0 && m == "PERMISSIVE" {
			out = append(out, fmt.Sprintf("%s port %d is PERMISSIVE and still has plaintext callers (%s): switching it to STRICT would refuse them",
				p.Proxy, p.Port, callerList(p.Plaintext)))
		}
	}
	return out
}

func callerList(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = fmt.Sprintf("%s (%d)", k, m[k])
	}
	return strings.Join(keys, ", ")
}

// printMTLSTable prints one row per workload; ports with another decision than the
// first follow on their own lines.
func printMTLSTable(w io.Writer, rows []translate.WorkloadMTLS) {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPROXY\tPORTS\tMODE\tPOLICY")
	for _, r := range rows {
		name, proxy := r.Name+"."+r.Namespace, proxyCell(r)
		for _, g := range portGroups(r) {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, proxy, g.ports, g.mode, g.policy)
			name, proxy = "", ""
		}
	}
	tw.Flush()
}

type portGroup struct{ ports, mode, policy string }

// portGroups groups a row's ports by decision, in port order of first appearance.
// A workload without known ports shows its workload-wide decision for "*".
func portGroups(r translate.WorkloadMTLS) []portGroup {
	if r.Mode == "" {
		return []portGroup{{"-", "-", "(gateway)"}}
	}
	if len(r.Ports) == 0 {
		return []portGroup{{"*", r.Mode, r.Policy}}
	}
	var out []portGroup
	idx := map[[2]string]int{}
	for _, p := range r.Ports {
		k := [2]string{p.Mode, p.Policy}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, portGroup{mode: p.Mode, policy: p.Policy})
		}
		if out[i].ports != "" {
			out[i].ports += ","
		}
		out[i].ports += strconv.FormatUint(uint64(p.Port), 10)
	}
	return out
}

func proxyCell(r translate.WorkloadMTLS) string {
	if r.Proxy == translate.ProxyNone && !r.Connected {
		return "none (mode not enforced)"
	}
	if r.Connected {
		return r.Proxy + ", connected"
	}
	return r.Proxy + ", not connected"
}

// viewFetch GETs a wardend debug view and decodes its JSON into v.
func viewFetch(server, path string, timeout time.Duration, v any) error {
	c, err := newDebugClient(server, timeout)
	if err != nil {
		return err
	}
	return c.getJSON(path, v)
}
