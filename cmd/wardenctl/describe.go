package main

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenmesh/warden/translate"
)

func newDescribeCmd() *cobra.Command {
	var (
		server  string
		output  *outputFormat
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "describe POD.NAMESPACE",
		Short: "Show a workload's identity and the security policies that apply to it",
		Long: `Show, for one workload, what wardend serves it: its identity (SPIFFE ID, and the serial
and expiry of the certificate its connected proxy is served), the Services it backs, the
effective inbound mTLS mode per port and why, every AuthorizationPolicy and
RequestAuthentication that applies (with the rules enforced on HTTP and on TCP ports),
the DestinationRules that shape its outbound TLS, and the problems with those objects.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := output.check(); err != nil {
				return err
			}
			var d translate.WorkloadDescription
			if err := viewFetch(server, "/debug/describe?pod="+url.QueryEscape(args[0]), timeout, &d); err != nil {
				return err
			}
			return output.print(cmd.OutOrStdout(), d, func() error { printDescription(cmd.OutOrStdout(), d); return nil })
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", defaultDebugAddr(), "wardend's debug address, host:port (loopback HTTP) or https://host:port")
	output = addOutputFlag(f, "table")
	f.DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for wardend")
	return cmd
}

func printDescription(w io.Writer, d translate.WorkloadDescription) {
	proxy := d.Proxy
	switch {
	case d.Connected:
		proxy += ", connected"
	case d.Proxy == translate.ProxyNone:
		proxy += " (nothing enforces the policies below)"
	default:
		proxy += ", not connected"
	}
	cert := "none served (no proxy connected)"
	if c := d.Certificate; c != nil {
		cert = "serial " + c.Serial + ", valid " + c.NotBefore.Format(time.RFC3339) + " to " + c.NotAfter.Format(time.RFC3339)
	}
	fmt.Fprintf(w, "Pod:              %s.%s\nService account:  %s\nSPIFFE ID:        %s\nIP:               %s\nProxy:            %s\nCertificate:      %s\n",
		d.Name, d.Namespace, d.ServiceAccount, d.SPIFFEID, dash(d.IP), proxy, cert)

	section(w, "Services", len(d.Services))
	for _, s := range d.Services {
		fmt.Fprintf(w, "  %s (%s): %s\n", s.Name, s.Host, strings.Join(s.Ports, ", "))
	}

	m := d.MTLS
	if m.Mode == "" {
		fmt.Fprintf(w, "\nInbound mTLS: -\n  %s\n", m.Reason)
	} else {
		fmt.Fprintf(w, "\nInbound mTLS: %s (%s)\n  why: %s\n", m.Mode, m.Policy, m.Reason)
		if len(m.Ports) > 0 {
			tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
			fmt.Fprintln(tw, "  PORT\tMODE\tPOLICY\tWHY")
			for _, p := range m.Ports {
				fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", p.Port, p.Mode, p.Policy, p.Reason)
			}
			tw.Flush()
		}
		if m.IstioDifference != "" {
			fmt.Fprintf(w, "  note: %s\n", m.IstioDifference)
		}
	}

	section(w, "Authorization policies", len(d.AuthorizationPolicies))
	if len(d.AuthorizationPolicies) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
		fmt.Fprintln(tw, "  POLICY\tACTION\tSCOPE\tHTTP RULES\tTCP RULES")
		for _, p := range d.AuthorizationPolicies {
			action := p.Action
			if p.DryRun {
				action += " (dry-run)"
			}
			httpRules, tcpRules := ruleList(p.HTTPRules, p.Rules), ruleList(p.TCPRules, p.Rules)
			if p.Invalid != "" {
				httpRules, tcpRules = "deny all: "+p.Invalid, "deny all"
			}
			if p.CustomDeny != "" {
				action += " as DENY (provider not called: " + p.CustomDeny + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", p.Name, action, p.Scope, httpRules, tcpRules)
		}
		tw.Flush()
	}

	section(w, "Request authentications", len(d.RequestAuthentications))
	for _, r := range d.RequestAuthentications {
		what := "issuers " + strings.Join(r.Issuers, ", ")
		switch {
		case r.Rejected:
			what = "rejected: every request gets 401 until it is fixed"
		case len(r.Issuers) == 0:
			what = "no JWT rules"
		}
		fmt.Fprintf(w, "  %s (%s): %s\n", r.Name, r.Scope, what)
	}

	section(w, "Destination rules (outbound TLS)", len(d.DestinationRules))
	for _, r := range d.DestinationRules {
		fmt.Fprintf(w, "  %s (host %s):\n", r.Name, r.Host)
		tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
		for _, t := range r.Targets {
			tls := t.TLS
			if t.Field != "" {
				tls += " (" + t.Field + ")"
			}
			fmt.Fprintf(tw, "    %s\t%s\n", t.Service, tls)
		}
		tw.Flush()
	}

	if e := d.Egress; e != nil {
		what := "destinations outside the registry are passed through"
		if e.Policy == "REGISTRY_ONLY" {
			what = "destinations outside the registry are refused"
		}
		section(w, "Egress ("+e.Policy+": "+what+"); ServiceEntry hosts", len(e.Hosts))
		tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
		for _, h := range e.Hosts {
			fmt.Fprintf(tw, "  %s\t%s\t%s %s\t%s\n", h.Host, h.Entry, h.Location, h.Resolution, h.TLS)
		}
		tw.Flush()
	}

	section(w, "Diagnostics", len(d.Diagnostics))
	for _, dg := range d.Diagnostics {
		fmt.Fprintf(w, "  %s: %s\n", strings.ToUpper(dg.Severity), dg.String())
	}
}

// section prints a section title, with "(none)" when it is empty.
func section(w io.Writer, title string, n int) {
	if n == 0 {
		fmt.Fprintf(w, "\n%s: (none)\n", title)
		return
	}
	fmt.Fprintf(w, "\n%s:\n", title)
}

// ruleList names the enforced rules out of total: "all (2)", "1 of 2: [1]", "none of 2".
func ruleList(idx []int, total int) string {
	switch {
	case total == 0:
		return "no rules (matches nothing)"
	case len(idx) == total:
		return "all " + strconv.Itoa(total)
	case len(idx) == 0:
		return "none of " + strconv.Itoa(total)
	}
	s := make([]string, len(idx))
	for i, v := range idx {
		s[i] = strconv.Itoa(v)
	}
	return "rules " + strings.Join(s, ",") + " of " + strconv.Itoa(total)
}
