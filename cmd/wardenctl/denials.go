package main

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenmesh/warden/xds"
)

func newDenialsCmd() *cobra.Command {
	var (
		server  string
		output  *outputFormat
		since   time.Duration
		dryRun  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "denials [POD.NAMESPACE]",
		Short: "Show recent denials with the policy rule that decided each",
		Long: `Show the requests and connections RBAC denied, newest first, from the access log
entries the proxies sent to wardend: the deciding rule (ns[NS]-policy[NAME]-rule[N],
the name ` + "`wardenctl check`" + ` gives, or "no ALLOW policy matched"), the caller (its
mTLS identity, or "plaintext" and its address), the filter chain and the request.
Sidecars and ingress gateways both send them; a TCP connection the network RBAC filter
closed shows with protocol TCP and the rule from its termination details.

--dry-run shows instead what dry-run (istio.io/dry-run) policies would have denied,
while the requests themselves went through.

wardend keeps a bounded window of entries (capped in entries and bytes); the header
line says how many entries it pushed out.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := output.check(); err != nil {
				return err
			}
			q := url.Values{}
			if len(args) == 1 {
				if !strings.Contains(args[0], ".") {
					return fmt.Errorf("%q: want POD.NAMESPACE", args[0])
				}
				q.Set("pod", args[0])
			}
			if since > 0 {
				q.Set("since", since.String())
			}
			if dryRun {
				q.Set("dryRun", "true")
			}
			var resp xds.DenialsResponse
			if err := viewFetch(server, "/debug/denials?"+q.Encode(), timeout, &resp); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			return output.print(w, resp, func() error {
				printDenials(w, resp)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", defaultDebugAddr(), "wardend's debug address, host:port (loopback HTTP) or https://host:port")
	output = addOutputFlag(f, "table")
	f.DurationVar(&since, "since", 10*time.Minute, "only entries newer than this (0: the whole window)")
	f.BoolVar(&dryRun, "dry-run", false, "what dry-run policies would have denied")
	f.DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for wardend")
	return cmd
}

func printDenials(w io.Writer, resp xds.DenialsResponse) {
	what := "Denials"
	if resp.DryRun {
		what = "Would-be denials of dry-run policies"
	}
	fmt.Fprintf(w, "%s: %d (window: %d of %d entries, %d pushed out)\n", what, len(resp.Entries),
		resp.Window.Entries, resp.Window.MaxEntries, resp.Window.Dropped)
	if len(resp.Entries) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tWORKLOAD\tRULE\tCALLER\tCHAIN\tREQUEST")
	for _, e := range resp.Entries {
		rule := e.Policy
		if resp.DryRun {
			rule = e.DryRunPolicy
		}
		caller := e.Peer
		if caller == xds.Plaintext {
			caller = "plaintext " + e.Source
		}
		req := e.Protocol + " :" + fmt.Sprint(e.Port)
		if e.Protocol == "HTTP" {
			req = fmt.Sprintf("%s %s%s -> %d", e.Method, e.Authority, e.Path, e.Status)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Format(time.TimeOnly), e.Proxy, rule, caller, e.FilterChain, req)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKLOAD\tRULE\tCOUNT")
	for _, c := range resp.Counts {
		fmt.Fprintf(tw, "%s\t%s\t%d\n", c.Proxy, c.Policy, c.Count)
	}
	tw.Flush()
}
