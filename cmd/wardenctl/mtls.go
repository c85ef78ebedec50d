package main

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
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
		all               bool
		timeout           time.Duration
	)
	cmd := &cobra.Command{
		Use:   "mtls",
		Short: "Show the effective inbound mTLS mode of each workload",
		Long: `Show, per workload and target port, the inbound mTLS mode wardend serves (STRICT,
PERMISSIVE or DISABLE), the PeerAuthentication that decided it ("(mesh default)" when
none does), and whether the workload has a proxy and whether it is connected now.

A workload without a sidecar enforces nothing whatever its mode; an ingress gateway's
listeners come from Gateway servers, not from PeerAuthentication.`,
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
	return cmd
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
