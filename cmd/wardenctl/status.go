package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenmesh/warden/xds"
)

func newStatusCmd() *cobra.Command {
	var (
		servers           []string
		envoyAdmin, dumpF string
		output            *outputFormat
		failUnsynced      bool
		timeout           time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status [POD.NAMESPACE]",
		Short: "Show whether each proxy runs the configuration wardend intends",
		Long: `Show, per proxy and per xDS type, whether the proxy has acknowledged what wardend intends:
SYNCED (acknowledged the current version), STALE (sent or due but not yet acknowledged; the
age says how long), NOT SENT, or ERROR (Envoy rejected it; the reason is shown).

With several wardend replicas, name them all (--server a,b,c, or --server repeated):
they are asked at once and each proxy is shown once, from the replica it is connected
to most recently (the WARDEND column). A replica that does not answer is an ERROR line
after the table (on stderr with -o json|yaml); the others' proxies are still shown, and
the exit code is 4 (3 when --fail-unsynced finds a proxy not SYNCED). With POD.NAMESPACE, the per-type detail is shown;
add --envoy-admin URL (or --envoy-config-dump FILE, "-" for stdin) to compare what
wardend intends with what that Envoy actually holds.`,
		Example: `  wardenctl status
  wardenctl status -o json --fail-unsynced
  wardenctl status webapp.istioinaction --envoy-admin http://127.0.0.1:15000
  kubectl exec webapp-0 -c istio-proxy -- curl -s 'localhost:15000/config_dump?include_eds' | \
    wardenctl status webapp.istioinaction --envoy-config-dump -`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, owner, down := fetchReplicas(servers, timeout)
			if len(down) == len(servers) {
				return errors.Join(down...)
			}
			proxies := resp.Proxies
			if len(args) == 1 {
				proxies = nil
				for _, p := range resp.Proxies {
					if p.ID == args[0] {
						proxies = append(proxies, p)
					}
				}
				if len(proxies) == 0 {
					return errors.Join(append([]error{fmt.Errorf("proxy %s is not connected to wardend at %s",
						args[0], strings.Join(servers, ", "))}, down...)...)
				}
			}
			var diffs []typeDiff
			if len(args) == 1 && (envoyAdmin != "" || dumpF != "") {
				want, err := fetchIntended(owner[args[0]], args[0], timeout)
				if err != nil {
					return err
				}
				dump, err := readEnvoyDump(envoyAdmin, dumpF, timeout)
				if err != nil {
					return err
				}
				got, err := envoyResources(dump)
				if err != nil {
					return err
				}
				if diffs, err = diffConfigs(want, got); err != nil {
					return err
				}
			}
			w := cmd.OutOrStdout()
			var v any = jsonRows(proxies)
			if diffs != nil {
				v = map[string]any{"proxy": jsonRows(proxies)[0], "diff": diffs}
			}
			if err := output.print(w, v, func() error {
				if len(args) == 1 {
					printDetail(w, proxies[0])
					if diffs != nil {
						printDiff(w, diffs)
					}
				} else {
					printTable(w, proxies)
				}
				if len(resp.Diagnostics) > 0 && len(args) == 0 {
					printProblems(w, resp.Diagnostics)
				}
				printUnreachable(w, down)
				return nil
			}); err != nil {
				return err
			}
			if !output.isHuman() { // the JSON stays one document; the errors go to stderr
				printUnreachable(cmd.ErrOrStderr(), down)
			}
			if failUnsynced {
				var bad []string
				for _, p := range proxies {
					if !p.Synced() {
						bad = append(bad, p.ID)
					}
				}
				for _, d := range diffs {
					if !d.inSync() {
						bad = append(bad, args[0]+" ("+d.Type+" differs from Envoy)")
					}
				}
				if len(bad) > 0 {
					return &exitError{code: 3, msg: fmt.Sprintf("not SYNCED: %s", strings.Join(bad, ", "))}
				}
			}
			if len(down) > 0 {
				return &exitError{code: 4, msg: fmt.Sprintf("%d of %d wardend replica(s) unreachable", len(down), len(servers))}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&servers, "server", []string{defaultDebugAddr()}, "wardend debug address(es), host:port (loopback HTTP) or https://host:port (with --kubeconfig or --token); several for several replicas")
	f.StringVar(&envoyAdmin, "envoy-admin", "", "with POD.NAMESPACE: the proxy's Envoy admin URL, to compare its config_dump with wardend's intent")
	f.StringVar(&dumpF, "envoy-config-dump", "", "with POD.NAMESPACE: a saved Envoy config_dump (with ?include_eds) to compare, - for stdin")
	output = addOutputFlag(f, "table")
	f.BoolVar(&failUnsynced, "fail-unsynced", false, "exit with code 3 when any proxy is not SYNCED")
	f.DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for wardend")
	return cmd
}

// fetchAll is fetchReplicas for commands that need every replica: an unreachable one
// is an error.
func fetchAll(servers []string, timeout time.Duration) (*xds.SynczResponse, map[string]string, error) {
	merged, owner, down := fetchReplicas(servers, timeout)
	if len(down) > 0 {
		return nil, nil, errors.Join(down...)
	}
	return merged, owner, nil
}

// fetchReplicas reads every replica's status (all at once) and shows each proxy once:
// from the replica it connected to most recently (a proxy that moved keeps no stale
// row). owner maps proxy id to that replica's server address; down holds one error per
// replica that did not answer, whose proxies are then missing from merged.
func fetchReplicas(servers []string, timeout time.Duration) (merged *xds.SynczResponse, owner map[string]string, down []error) {
	merged = &xds.SynczResponse{}
	owner = map[string]string{}
	byID := map[string]xds.ProxyStatus{}
	seenDiag := map[string]int{} // index in merged.Diagnostics
	resps := make([]*xds.SynczResponse, len(servers))
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, srv := range servers {
		wg.Go(func() { resps[i], errs[i] = fetchSyncz(srv, timeout) })
	}
	wg.Wait()
	for i, srv := range servers {
		r, err := resps[i], errs[i]
		if err != nil {
			down = append(down, fmt.Errorf("wardend at %s: %w", srv, err))
			continue
		}
		for _, p := range r.Proxies {
			if cur, ok := byID[p.ID]; !ok || p.ConnectedAt.After(cur.ConnectedAt) {
				byID[p.ID], owner[p.ID] = p, srv
			}
		}
		for _, d := range r.Diagnostics {
			k := d.String()
			i, ok := seenDiag[k]
			if !ok {
				seenDiag[k] = len(merged.Diagnostics)
				merged.Diagnostics = append(merged.Diagnostics, xds.ConfigProblem{Diagnostic: d.Diagnostic})
				i = len(merged.Diagnostics) - 1
			}
			for _, p := range d.Proxies { // each replica translates for its own proxies
				if !slices.Contains(merged.Diagnostics[i].Proxies, p) {
					merged.Diagnostics[i].Proxies = append(merged.Diagnostics[i].Proxies, p)
				}
			}
		}
	}
	for _, p := range byID {
		merged.Proxies = append(merged.Proxies, p)
	}
	sort.Slice(merged.Proxies, func(i, j int) bool {
		a, b := merged.Proxies[i], merged.Proxies[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return merged, owner, down
}

// printUnreachable prints one line per replica that did not answer.
func printUnreachable(w io.Writer, down []error) {
	if len(down) > 0 {
		fmt.Fprintln(w)
	}
	for _, err := range down {
		fmt.Fprintf(w, "ERROR: %v (its proxies are not shown)\n", err)
	}
}

func fetchSyncz(server string, timeout time.Duration) (*xds.SynczResponse, error) {
	c, err := newDebugClient(server, timeout)
	if err != nil {
		return nil, err
	}
	var resp xds.SynczResponse
	if err := c.getJSON("/debug/syncz", &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// statusRow is the documented JSON shape of one proxy.
type statusRow struct {
	Name         string                   `json:"name"`
	Namespace    string                   `json:"namespace"`
	EnvoyVersion string                   `json:"envoyVersion"`
	Wardend      string                   `json:"wardend"`
	Synced       bool                     `json:"synced"`
	Types        map[string]statusTypeRow `json:"types"`
}

type statusTypeRow struct {
	Status   string `json:"status"`
	Sent     string `json:"sent,omitempty"`
	Acked    string `json:"acked,omitempty"`
	Intended string `json:"intended,omitempty"`
	Error    string `json:"error,omitempty"`
	StaleFor string `json:"staleFor,omitempty"`
}

func jsonRows(ps []xds.ProxyStatus) []statusRow {
	rows := make([]statusRow, 0, len(ps))
	for _, p := range ps {
		r := statusRow{Name: p.Name, Namespace: p.Namespace, EnvoyVersion: p.EnvoyVersion, Wardend: p.Wardend,
			Synced: p.Synced(), Types: map[string]statusTypeRow{}}
		for k, t := range p.Types {
			r.Types[k] = statusTypeRow{Status: t.Status, Sent: t.Sent, Acked: t.Acked, Intended: t.Intended, Error: t.Error, StaleFor: t.StaleFor}
		}
		rows = append(rows, r)
	}
	return rows
}

func cell(t xds.TypeStatus) string {
	switch t.Status {
	case xds.StatusError:
		msg := t.Error
		if len(msg) > 40 {
			msg = msg[:37] + "..."
		}
		return "ERROR (" + msg + ")"
	case xds.StatusStale:
		return "STALE (" + t.StaleFor + ")"
	case xds.StatusNotSent:
		if t.Empty {
			return "NOT SENT (none)"
		}
		if !t.Requested {
			return "NOT SENT (not subscribed)"
		}
	}
	return t.Status
}

func printTable(w io.Writer, ps []xds.ProxyStatus) {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCDS\tLDS\tEDS\tRDS\tSDS\tWARDEND\tVERSION")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, cell(p.Types["CDS"]), cell(p.Types["LDS"]),
			cell(p.Types["EDS"]), cell(p.Types["RDS"]), cell(p.Types["SDS"]), p.Wardend, p.EnvoyVersion)
	}
	tw.Flush()
}

func printDetail(w io.Writer, p xds.ProxyStatus) {
	fmt.Fprintf(w, "Proxy:           %s\nService account: %s\nEnvoy:           %s\nWardend:         %s\nConnected since: %s\n\n",
		p.ID, p.ServiceAccount, p.EnvoyVersion, p.Wardend, p.ConnectedAt.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tSTATUS\tINTENDED\tSENT\tACKED\tLAST ACK\tERROR")
	for _, t := range xds.ShortTypes {
		s := p.Types[t]
		last := "-"
		if !s.LastAckAt.IsZero() {
			last = s.LastAckAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t, cell(s), dash(s.Intended), dash(s.Sent), dash(s.Acked), last, dash(s.Error))
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printProblems prints the configuration problems: a summary line (errors, warnings,
// proxies affected), then one line per problem with the proxies it affects.
func printProblems(w io.Writer, probs []xds.ConfigProblem) {
	var errs, warns int
	proxies := map[string]bool{}
	for _, p := range probs {
		if p.IsError() {
			errs++
		} else {
			warns++
		}
		for _, id := range p.Proxies {
			proxies[id] = true
		}
	}
	fmt.Fprintf(w, "\n%d configuration problem(s): %d error(s), %d warning(s), %d proxy(ies) affected; see `wardenctl analyze` or wardend's log:\n",
		len(probs), errs, warns, len(proxies))
	for _, p := range probs {
		fmt.Fprintf(w, "  %s: %s\n", strings.ToUpper(p.Severity), p.String())
		if len(p.Proxies) > 0 {
			slices.Sort(p.Proxies)
			fmt.Fprintf(w, "    proxies: %s\n", strings.Join(p.Proxies, ", "))
		}
	}
}
