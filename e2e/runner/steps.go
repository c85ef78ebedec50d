package runner

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wardenmesh/warden/certs"
	"github.com/wardenmesh/warden/e2e/harness"
	"github.com/wardenmesh/warden/e2e/scenario"
	"github.com/wardenmesh/warden/watch"
)

// outcome is what one step observed, against what it wanted.
type outcome struct {
	pass    bool
	want    string
	got     string
	from    string // caller pod id, for diagnostics
	to      string // target, for the demo table
	waited  time.Duration
	proxies []string // proxies involved, for diagnostics
}

func (w *world) caller(ref string) (*harness.Pod, error) {
	if ref == scenario.Outside {
		return w.outside, nil
	}
	r, err := scenario.ParsePodRef(ref)
	if err != nil {
		return nil, err
	}
	p := w.mesh.Pod(r.Name + "." + r.Namespace)
	if p == nil {
		return nil, fmt.Errorf("no pod %s (pods come from Deployments and Pods in the manifests)", ref)
	}
	return p, nil
}

func (w *world) runRequest(ctx context.Context, st *scenario.Step) (outcome, error) {
	r := st.Request
	from, err := w.caller(r.From)
	if err != nil {
		return outcome{}, err
	}
	o := outcome{from: r.From, proxies: []string{from.ID()}}
	connect := ""
	if r.To != "" {
		ref, port, err := scenario.ParsePodPort(r.To)
		if err != nil {
			return outcome{}, err
		}
		target := w.mesh.Pod(ref.Name + "." + ref.Namespace)
		if target == nil {
			return outcome{}, fmt.Errorf("request.to: no pod %s", ref)
		}
		connect = target.IP() + ":" + strconv.Itoa(port)
		o.proxies = append(o.proxies, target.ID())
	}
	if r.IsTCP() {
		o.to = "tcp://" + r.TCP
		return w.runTCP(ctx, from, r, connect, st.Expect, o)
	}
	o.to = r.URL
	if t := w.targetProxy(r.URL); t != "" {
		o.proxies = append(o.proxies, t)
	}
	args := []string{w.mesh.Bin.App, "request", "-url", r.URL, "-method", r.Method, "-timeout", "5s"}
	if connect != "" {
		args = append(args, "-connect", connect)
	}
	if r.Body != "" {
		args = append(args, "-body", r.Body)
	}
	hk := make([]string, 0, len(r.Headers))
	for k := range r.Headers {
		hk = append(hk, k)
	}
	sort.Strings(hk)
	for _, k := range hk {
		args = append(args, "-header", k+"="+r.Headers[k])
	}
	e := st.Expect
	var statsPod *harness.Pod
	var before map[string]int64
	if e.EnvoyStats != nil {
		if statsPod, err = w.caller(e.EnvoyStats.Pod); err != nil {
			return outcome{}, fmt.Errorf("expect.envoyStats.pod: %w", err)
		}
		o.proxies = append(o.proxies, statsPod.ID())
		if before, err = w.mesh.EnvoyCounters(ctx, statsPod); err != nil {
			return outcome{}, err
		}
	}
	out, err := from.Exec(ctx, args...)
	if err != nil {
		return outcome{}, fmt.Errorf("request from %s: %v: %s", r.From, err, out)
	}
	var res harness.Result
	if err := json.Unmarshal(out, &res); err != nil {
		return outcome{}, fmt.Errorf("request from %s: bad client output %q", r.From, out)
	}
	got := res.String()
	if !res.ConnectionError && res.Error == "" {
		got = fmt.Sprintf("status %d", res.Status)
	}
	var want []string
	pass := true
	if e.ConnectionError {
		want = append(want, "connection error")
		pass = pass && res.ConnectionError
	} else {
		want = append(want, fmt.Sprintf("status %d", e.Status))
		pass = pass && !res.ConnectionError && res.Error == "" && res.Status == e.Status
	}
	if e.BodyContains != "" {
		want = append(want, fmt.Sprintf("body containing %q", e.BodyContains))
		pass = pass && strings.Contains(res.Body, e.BodyContains)
	}
	if e.BodyNotContains != "" {
		want = append(want, fmt.Sprintf("body not containing %q", e.BodyNotContains))
		pass = pass && !strings.Contains(res.Body, e.BodyNotContains)
	}
	for _, name := range sortedStrings(e.ResponseHeaders) {
		want = append(want, fmt.Sprintf("header %s: %q", name, e.ResponseHeaders[name]))
		vals := res.Headers[strings.ToLower(name)]
		if !slices.Contains(vals, e.ResponseHeaders[name]) {
			pass = false
			got += fmt.Sprintf(", header %s: %q", name, vals)
		}
	}
	for _, name := range e.ResponseHeadersAbsent {
		want = append(want, "no header "+name)
		if vals, ok := res.Headers[strings.ToLower(name)]; ok {
			pass = false
			got += fmt.Sprintf(", header %s: %q", name, vals)
		}
	}
	if e.EnvoyStats != nil {
		ok, desc, err := w.checkCounters(ctx, statsPod, before, e.EnvoyStats.Increase)
		if err != nil {
			return outcome{}, err
		}
		want = append(want, "envoy "+e.EnvoyStats.Pod+" counters "+increaseText(e.EnvoyStats.Increase))
		if !ok {
			pass = false
			got += ", counters " + desc
		}
	}
	if pass && res.ConnectionError {
		got = "connection error"
	}
	if !pass && res.Body != "" {
		got += " body " + strconv.Quote(truncate(res.Body, 300))
	}
	o.pass, o.want, o.got = pass, strings.Join(want, ", "), got
	return o, nil
}

// checkCounters waits briefly until every counter grew by exactly its increase since
// before, and describes what it saw otherwise. Envoy counts a request before its
// response leaves, so the wait only covers the admin read racing a late increment.
func (w *world) checkCounters(ctx context.Context, p *harness.Pod, before map[string]int64, want map[string]int) (bool, string, error) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		after, err := w.mesh.EnvoyCounters(ctx, p)
		if err != nil {
			return false, "", err
		}
		got := map[string]int{}
		ok := true
		for name, n := range want {
			got[name] = int(after[name] - before[name])
			ok = ok && got[name] == n
		}
		if ok {
			return true, increaseText(got), nil
		}
		if time.Now().After(deadline) {
			return false, increaseText(got) + changedCounters(before, after, 12), nil
		}
		select {
		case <-ctx.Done():
			return false, "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// changedCounters lists up to n counters that grew between before and after, so a
// failure shows what Envoy did count.
func changedCounters(before, after map[string]int64, n int) string {
	var parts, rest []string
	for _, name := range sortedStrings(after) {
		d := after[name] - before[name]
		switch {
		case d <= 0 || strings.HasPrefix(name, "http.admin."):
		case strings.HasPrefix(name, "http.") || strings.HasPrefix(name, "tcp."):
			// the filter stats (rbac, ext_authz, jwt_authn) of the chains first
			parts = append(parts, fmt.Sprintf("%s +%d", name, d))
		default:
			rest = append(rest, fmt.Sprintf("%s +%d", name, d))
		}
	}
	parts = append(parts, rest...)
	if len(parts) == 0 {
		return " (no counter grew)"
	}
	if len(parts) > n {
		parts = append(parts[:n], fmt.Sprintf("and %d more", len(parts)-n))
	}
	return " (grew: " + strings.Join(parts, ", ") + ")"
}

func increaseText(m map[string]int) string {
	var parts []string
	for _, name := range sortedStrings(m) {
		parts = append(parts, fmt.Sprintf("%s +%d", name, m[name]))
	}
	return strings.Join(parts, ", ")
}

func sortedStrings[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (w *world) runTCP(ctx context.Context, from *harness.Pod, r *scenario.Request, connect string, e *scenario.Expect, o outcome) (outcome, error) {
	addr := r.TCP
	if connect != "" {
		addr = connect
	}
	line := "warden-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	args := []string{w.mesh.Bin.App, "tcp", "-addr", addr, "-line", line, "-timeout", "5s"}
	if r.ServerFirst { // format 1.2: wait for the server's greeting first
		args = append(args, "-server-first")
	}
	out, err := from.Exec(ctx, args...)
	if err != nil {
		return outcome{}, fmt.Errorf("tcp from %s: %v: %s", r.From, err, out)
	}
	var res struct {
		Echo  bool   `json:"echo"`
		Got   string `json:"got"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return outcome{}, fmt.Errorf("tcp from %s: bad client output %q", r.From, out)
	}
	got := "echo"
	if !res.Echo {
		got = "no echo (" + res.Error + ")"
	}
	if e.ConnectionError {
		o.pass, o.want = !res.Echo, "connection error"
	} else {
		o.pass, o.want = res.Echo, "echo"
	}
	o.got = got
	return o, nil
}

// targetProxy names the sidecar behind a URL's service, for diagnostics.
func (w *world) targetProxy(rawURL string) string {
	host := rawURL
	if i := strings.Index(host, "://"); i >= 0 {
		host = host[i+3:]
	}
	if i := strings.IndexAny(host, "/?"); i >= 0 {
		host = host[:i]
	}
	if h, _, err := splitHostPortLoose(host); err == nil {
		host = h
	}
	for _, svc := range w.input.Services {
		if host == svc.Name+"."+svc.Namespace || strings.HasPrefix(host, svc.Name+"."+svc.Namespace+".") {
			for _, sp := range svc.Ports {
				for _, ep := range w.input.Endpoints(svc, sp) {
					if ep.Workload != nil {
						return ep.Workload.PodName + "." + ep.Workload.Namespace
					}
				}
			}
		}
	}
	return ""
}

func splitHostPortLoose(hp string) (string, string, error) {
	i := strings.LastIndex(hp, ":")
	if i < 0 {
		return hp, "", nil
	}
	return hp[:i], hp[i+1:], nil
}

// resolveService finds the Service a caller in namespace ns means by host (cluster DNS rules).
func resolveService(in *watch.Input, ns, host string) *watch.Service {
	for _, svc := range in.Services {
		names := []string{svc.Name + "." + svc.Namespace, svc.Name + "." + svc.Namespace + ".svc",
			svc.Name + "." + svc.Namespace + ".svc." + in.DomainSuffix}
		if svc.Namespace == ns {
			names = append(names, svc.Name)
		}
		for _, n := range names {
			if n == host {
				return svc
			}
		}
	}
	return nil
}

func (w *world) runPeerCert(ctx context.Context, st *scenario.Step) (outcome, error) {
	pc := st.PeerCertificate
	from, err := w.caller(pc.From)
	if err != nil {
		return outcome{}, err
	}
	host, port, err := scenario.ParseHostPort(pc.To)
	if err != nil {
		return outcome{}, err
	}
	in := w.input
	svc := resolveService(in, from.Opts.Namespace, host)
	if svc == nil {
		return outcome{}, fmt.Errorf("peerCertificate.to: no service %s seen from namespace %s", host, from.Opts.Namespace)
	}
	var ep *watch.Endpoint
	for _, sp := range svc.Ports {
		if int(sp.Port) == port {
			if eps := in.Endpoints(svc, sp); len(eps) > 0 {
				ep = &eps[0]
			}
		}
	}
	if ep == nil {
		return outcome{}, fmt.Errorf("peerCertificate.to: service %s has no ready endpoint on port %d", host, port)
	}
	// The caller's own workload certificate: the same CA mints it for the same SPIFFE ID
	// its sidecar holds.
	ca, err := w.backend.meshCA(ctx, in.TrustDomain)
	if err != nil {
		return outcome{}, err
	}
	id, err := certs.WorkloadID(ca.TrustDomain(), from.Opts.Namespace, from.Opts.ServiceAccount)
	if err != nil {
		return outcome{}, err
	}
	svid, err := ca.SignWorkload(id, time.Hour)
	if err != nil {
		return outcome{}, err
	}
	certPath, keyPath := filepath.Join(from.Dir(), "peer-cert.pem"), filepath.Join(from.Dir(), "peer-key.pem")
	if err := os.WriteFile(certPath, svid.CertChainPEM, 0o644); err != nil {
		return outcome{}, err
	}
	if err := os.WriteFile(keyPath, svid.KeyPEM, 0o644); err != nil {
		return outcome{}, err
	}
	fqdn := in.Hostname(svc)
	sni := fmt.Sprintf("outbound_.%d_._.%s", port, fqdn)
	// As the proxy's uid, so the capture rules leave the handshake alone.
	out, err := from.ExecAs(ctx, harness.ProxyUID, harness.ProxyUID, w.mesh.Bin.App, "tls-peer",
		"-addr", ep.IP+":"+strconv.Itoa(int(ep.Port)), "-cert", certPath, "-key", keyPath, "-sni", sni,
		"-alpn", "istio-http/1.1,istio", "-timeout", "5s")
	if err != nil {
		return outcome{}, fmt.Errorf("tls-peer from %s: %v: %s", pc.From, err, out)
	}
	var res struct {
		URISANs   []string  `json:"uriSANs"`
		NotBefore time.Time `json:"notBefore"`
		NotAfter  time.Time `json:"notAfter"`
		PEM       string    `json:"pem"`
		Error     string    `json:"error"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return outcome{}, fmt.Errorf("tls-peer: bad output %q", out)
	}
	o := outcome{from: pc.From, to: pc.To, proxies: []string{from.ID()}}
	if ep.Workload != nil {
		o.proxies = append(o.proxies, ep.Workload.PodName+"."+ep.Workload.Namespace)
	}
	if res.Error != "" {
		o.want, o.got = "a TLS handshake", "error: "+res.Error
		return o, nil
	}
	e := st.Expect
	var want, got []string
	pass := true
	if e.URISAN != "" {
		want = append(want, "URI SAN "+e.URISAN)
		got = append(got, "URI SANs "+strings.Join(res.URISANs, ","))
		pass = pass && len(res.URISANs) == 1 && res.URISANs[0] == e.URISAN
	}
	if e.ChainsToMeshRoot {
		want = append(want, "chains to the mesh root")
		if err := verifyChain([]byte(res.PEM), ca); err != nil {
			got = append(got, "does not chain: "+err.Error())
			pass = false
		} else {
			got = append(got, "chains to the mesh root")
		}
	}
	if d := e.MaxValidityDuration(); d > 0 {
		v := res.NotAfter.Sub(res.NotBefore)
		want = append(want, "valid at most "+d.String())
		got = append(got, "valid "+v.Round(time.Second).String())
		pass = pass && v <= d
	}
	o.pass, o.want, o.got = pass, strings.Join(want, ", "), strings.Join(got, ", ")
	return o, nil
}

func verifyChain(pemChain []byte, ca *certs.CA) error {
	var chain []*x509.Certificate
	for rest := pemChain; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return err
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return fmt.Errorf("no certificate presented")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: ca.Roots(), Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
