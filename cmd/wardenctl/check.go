package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenmesh/warden/translate"
	"github.com/wardenmesh/warden/translate/authz"
	"github.com/wardenmesh/warden/watch"
	"github.com/wardenmesh/warden/xds"
)

func newCheckCmd() *cobra.Command {
	var (
		req         authz.CheckRequest
		headers     []string
		claims      string
		server, dir string
		output      *outputFormat
		timeout     time.Duration
		observed    bool
		file        string
		since       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "check POD.NAMESPACE",
		Short: "Explain whether a proxy's AuthorizationPolicies allow a request, and which policy decided",
		Long: `Evaluate the AuthorizationPolicies that apply to the proxy of POD.NAMESPACE for one request and print
ALLOW or DENY with the deciding policy and rule (or "no ALLOW policy matched"), the CUSTOM
provider that would be asked, AUDIT matches, and what dry-run policies would have decided.

wardend evaluates the same compiled policies it turned into the proxy's RBAC filters, so the
answer is what Envoy does. With --config-dir the evaluation runs offline on manifest files.

--observed -f policy.yaml previews a change before it is applied: it replays the HTTP
requests of wardend's access log window (--since) through the policies of --config-dir
(the manifests wardend serves) and through the same with policy.yaml's objects added or
replacing those of the same kind, namespace and name, and lists each caller -> workload
pair whose decision flips (ALLOW -> DENY or DENY -> ALLOW) with its request count. The
window holds denials, dry-run denials and plaintext requests of PERMISSIVE ports; with
the MeshConfig's accessLogFile set it holds every request.`,
		Example: `  wardenctl check webapp.istioinaction --from-pod sleep.default --path /hello/world
  wardenctl check catalog.istioinaction --from cluster.local/ns/istioinaction/sa/webapp --method POST --path /items
  wardenctl check httpbin.foo --from-pod sleep.foo --header x-token=abc --claims '{"iss":"https://idp","sub":"u1"}'
  wardenctl check --observed -f new-policy.yaml --config-dir ./mesh --since 1h`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := output.check(); err != nil {
				return err
			}
			if observed {
				if file == "" || dir == "" {
					return fmt.Errorf("--observed needs -f (the change) and --config-dir (the manifests wardend serves)")
				}
				if len(args) != 0 {
					return fmt.Errorf("--observed replays every workload's requests: give no POD.NAMESPACE")
				}
				r, err := previewObserved(server, timeout, since, dir, file)
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				return output.print(w, r, func() error { printPreview(w, r); return nil })
			}
			if len(args) != 1 {
				return fmt.Errorf("want POD.NAMESPACE")
			}
			if _, _, ok := strings.Cut(args[0], "."); !ok {
				return fmt.Errorf("%q: want POD.NAMESPACE", args[0])
			}
			for _, h := range headers {
				k, v, ok := strings.Cut(h, "=")
				if !ok || k == "" {
					return fmt.Errorf("--header %q: want name=value", h)
				}
				if req.Headers == nil {
					req.Headers = map[string]string{}
				}
				req.Headers[k] = v
			}
			if claims != "" {
				if err := json.Unmarshal([]byte(claims), &req.Claims); err != nil {
					return fmt.Errorf("--claims: not a JSON object: %w", err)
				}
			}
			var res authz.CheckResult
			var err error
			if dir != "" {
				res, err = checkOffline(dir, args[0], req)
			} else {
				res, err = checkServer(server, timeout, args[0], req)
			}
			if err != nil {
				return err
			}
			return printCheck(cmd.OutOrStdout(), output, req, res)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Principal, "from", "", "caller identity, e.g. cluster.local/ns/default/sa/sleep")
	f.StringVar(&req.FromPod, "from-pod", "", "calling pod, POD.NAMESPACE: its identity (when it has a sidecar) and IP")
	f.StringVar(&req.SourceIP, "source-ip", "", "caller IP address (default: the --from-pod's IP)")
	f.StringVar(&req.Method, "method", "GET", "HTTP method")
	f.StringVar(&req.Path, "path", "/", "request path (a query is ignored, as by RBAC)")
	f.StringVar(&req.Host, "host", "", "Host header (default: <service>.<namespace> of the port)")
	f.StringArrayVar(&headers, "header", nil, "request header name=value (repeatable)")
	f.Uint32Var(&req.Port, "port", 0, "target (container) port (default: the workload's first HTTP port)")
	f.StringVar(&claims, "claims", "", "payload of a verified JWT, as JSON")
	f.StringVar(&server, "server", defaultDebugAddr(), "wardend debug address, host:port (loopback HTTP) or https://host:port")
	f.StringVar(&dir, "config-dir", "", "evaluate offline from the manifests in this directory instead of asking wardend")
	output = addOutputFlag(f, "text")
	f.DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for wardend")
	f.BoolVar(&observed, "observed", false, "preview -f's change on the requests of wardend's access log window")
	f.StringVarP(&file, "file", "f", "", "with --observed: manifests of the new or changed policies")
	f.DurationVar(&since, "since", time.Hour, "with --observed: the access log entries newer than this")
	return cmd
}

func checkServer(server string, timeout time.Duration, proxy string, req authz.CheckRequest) (authz.CheckResult, error) {
	q, err := xds.AuthzQuery(proxy, req)
	if err != nil {
		return authz.CheckResult{}, err
	}
	c, err := newDebugClient(server, timeout)
	if err != nil {
		return authz.CheckResult{}, err
	}
	var resp xds.AuthzCheckResponse
	if err := c.getJSON("/debug/authz?"+q.Encode(), &resp); err != nil {
		return authz.CheckResult{}, err
	}
	return resp.Result, nil
}

func checkOffline(dir, proxy string, req authz.CheckRequest) (authz.CheckResult, error) {
	in, _, err := watch.LoadDir(dir)
	if err != nil {
		return authz.CheckResult{}, fmt.Errorf("load %s: %w", dir, err)
	}
	pod, ns, _ := strings.Cut(proxy, ".")
	if in.WorkloadByPod(ns, pod) == nil {
		return authz.CheckResult{}, fmt.Errorf("no pod or deployment %s in namespace %s under %s", pod, ns, dir)
	}
	return translate.Check(in, translate.Proxy{ID: proxy, Namespace: ns, Pod: pod}, req), nil
}

func printCheck(w io.Writer, output *outputFormat, req authz.CheckRequest, res authz.CheckResult) error {
	return output.print(w, res, func() error { printCheckText(w, req, res); return nil })
}

// printCheckText is check's human-readable form.
func printCheckText(w io.Writer, req authz.CheckRequest, res authz.CheckResult) {
	decision := res.Decision
	if len(res.Custom) > 0 && decision == "ALLOW" {
		decision = "ALLOW (if the CUSTOM provider allows)"
	}
	fmt.Fprintf(w, "%s\n", decision)
	fmt.Fprintf(w, "  reason:    %s\n", res.Reason)
	if res.Rule != nil {
		fmt.Fprintf(w, "  policy:    %s (rule %s)\n", res.Rule.Policy, res.Rule.Rule)
	}
	caller := "plaintext, no identity"
	if res.Principal != "" {
		caller = res.Principal
	}
	if res.MTLSMode == "" { // a gateway: PeerAuthentication does not apply to its listeners
		fmt.Fprintf(w, "  proxy:     %s port %d (%s, gateway)\n", res.Proxy, res.Port, res.Protocol)
	} else {
		fmt.Fprintf(w, "  proxy:     %s port %d (%s, mTLS %s)\n", res.Proxy, res.Port, res.Protocol, res.MTLSMode)
	}
	fmt.Fprintf(w, "  caller:    %s\n", caller)
	if res.Protocol == "HTTP" {
		fmt.Fprintf(w, "  request:   %s %s (RBAC sees path %s)\n", req.Method, req.Path, res.Path)
	}
	for _, c := range res.Custom {
		fmt.Fprintf(w, "  custom:    provider %s is asked first (policy %s, rule %s); it may deny\n", c.Provider, c.Policy, c.Rule)
	}
	for _, a := range res.Audit {
		fmt.Fprintf(w, "  audit:     %s (rule %s)\n", a.Policy, a.Rule)
	}
	for _, d := range res.DryRun {
		line := fmt.Sprintf("dry-run %s policies would %s", d.Action, d.Decision)
		if d.Matched != nil {
			line += fmt.Sprintf(": %s (rule %s)", d.Matched.Policy, d.Matched.Rule)
		} else if d.Action == "ALLOW" {
			line += ": none matched"
		}
		fmt.Fprintf(w, "  dry-run:   %s\n", line)
	}
	for _, p := range res.Problems {
		fmt.Fprintf(w, "  problem:   %s\n", p)
	}
}
