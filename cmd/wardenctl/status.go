package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/wardenmesh/warden/xds"
)

func newStatusCmd() *cobra.Command {
	var (
		server, output string
		failUnsynced   bool
		timeout        time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status [POD.NAMESPACE]",
		Short: "Show whether each proxy runs the configuration wardend intends",
		Long: `Show, per proxy and per xDS type, whether the proxy has acknowledged what wardend intends:
SYNCED (acknowledged the current version), STALE (sent or due but not yet acknowledged; the
age says how long), NOT SENT, or ERROR (Envoy rejected it; the reason is shown).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := fetchSyncz(server, timeout)
			if err != nil {
				return err
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
					return fmt.Errorf("proxy %s is not connected to wardend at %s", args[0], server)
				}
			}
			w := cmd.OutOrStdout()
			switch output {
			case "json":
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				if err := enc.Encode(jsonRows(proxies)); err != nil {
					return err
				}
			case "yaml":
				b, err := yaml.Marshal(jsonRows(proxies))
				if err != nil {
					return err
				}
				if _, err := w.Write(b); err != nil {
					return err
				}
			case "table", "":
				if len(args) == 1 {
					printDetail(w, proxies[0])
				} else {
					printTable(w, proxies)
				}
				if len(resp.Diagnostics) > 0 && len(args) == 0 {
					fmt.Fprintf(w, "\n%d configuration problem(s); see `wardenctl status -o json` or wardend's log:\n", len(resp.Diagnostics))
					for _, d := range resp.Diagnostics {
						fmt.Fprintf(w, "  %s: %s\n", strings.ToUpper(d.Severity), d.String())
					}
				}
			default:
				return fmt.Errorf("-o %s: want table, json or yaml", output)
			}
			if failUnsynced {
				var bad []string
				for _, p := range proxies {
					if !p.Synced() {
						bad = append(bad, p.ID)
					}
				}
				if len(bad) > 0 {
					return &exitError{code: 3, msg: fmt.Sprintf("%d proxy(ies) not SYNCED: %s", len(bad), strings.Join(bad, ", "))}
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", defaultDebugAddr(), "wardend's debug address (host:port)")
	f.StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	f.BoolVar(&failUnsynced, "fail-unsynced", false, "exit with code 3 when any proxy is not SYNCED")
	f.DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for wardend")
	return cmd
}

func fetchSyncz(server string, timeout time.Duration) (*xds.SynczResponse, error) {
	c := &http.Client{Timeout: timeout}
	r, err := c.Get("http://" + server + "/debug/syncz")
	if err != nil {
		return nil, fmt.Errorf("cannot reach wardend at %s: %w (is it running? see --server)", server, err)
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
		return nil, fmt.Errorf("wardend at %s: %s: %s", server, r.Status, strings.TrimSpace(string(b)))
	}
	var resp xds.SynczResponse
	if err := json.NewDecoder(r.Body).Decode(&resp); err != nil {
		return nil, fmt.Errorf("decode status from %s: %w", server, err)
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
