package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/wardenmesh/warden/certs"
	"github.com/wardenmesh/warden/xds"
)

func newBootstrapCmd() *cobra.Command {
	var (
		ns, sa, pod, labels, server, stateDir, trustDomain, wardendNS, ips, out string
		tokenFile, rootCert                                                     string
		ttl                                                                     time.Duration
		delta, gateway                                                          bool
	)
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Print an Envoy bootstrap that connects a proxy to wardend with a signed identity token",
		Long: `Print the Envoy bootstrap (JSON) for one proxy. The xDS connection uses TLS pinned to the
mesh root and to wardend's SPIFFE ID, and carries a token signed with the key in the state
directory that binds the proxy to one pod and service account: wardend only ever mints that
service account's certificate for it.`,
		Example: `  wardenctl bootstrap --namespace istioinaction --service-account webapp --pod webapp-0 \
    --labels app=webapp --server 10.248.0.1:15012 > envoy.json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ns == "" || sa == "" || pod == "" {
				return fmt.Errorf("--namespace, --service-account and --pod are required")
			}
			lbls, err := parseLabels(labels)
			if err != nil {
				return err
			}
			tok, rootPEM, err := bootstrapCredentials(tokenFile, rootCert, stateDir, trustDomain,
				certs.TokenClaims{Namespace: ns, ServiceAccount: sa, Pod: pod}, ttl)
			if err != nil {
				return err
			}
			td, err := spiffeid.TrustDomainFromString(trustDomain)
			if err != nil {
				return fmt.Errorf("--trust-domain: %w", err)
			}
			wid, err := xds.WardendID(td, wardendNS)
			if err != nil {
				return err
			}
			var ipList []string
			if ips != "" {
				ipList = strings.Split(ips, ",")
			}
			b, err := xds.Bootstrap(xds.BootstrapOptions{
				Identity: xds.Identity{Namespace: ns, ServiceAccount: sa, Pod: pod},
				Labels:   lbls, IPs: ipList, Gateway: gateway, Server: server, ServerID: wid.String(),
				RootPEM: rootPEM, Token: tok, Delta: delta,
			})
			if err != nil {
				return err
			}
			if err := b.ValidateAll(); err != nil {
				return fmt.Errorf("generated bootstrap is invalid: %w", err)
			}
			data, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(b)
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(append(data, '\n'))
				return err
			}
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return err
			}
			return os.WriteFile(out, append(data, '\n'), 0o600)
		},
	}
	f := cmd.Flags()
	f.StringVar(&ns, "namespace", "", "the pod's namespace")
	f.StringVar(&sa, "service-account", "", "the pod's service account (the identity its certificate will carry)")
	f.StringVar(&pod, "pod", "", "the pod's name")
	f.StringVar(&labels, "labels", "", "the pod's labels, k=v,k2=v2 (used when wardend does not know the pod)")
	f.StringVar(&ips, "ips", "", "the pod's IP addresses, comma-separated")
	f.StringVar(&server, "server", "127.0.0.1:15012", "wardend's xDS address as the proxy reaches it")
	f.StringVar(&stateDir, "state-dir", defaultStateDir(), "wardend's state directory (token key and mesh CA)")
	f.StringVar(&trustDomain, "trust-domain", "cluster.local", "mesh trust domain (must match wardend's)")
	f.StringVar(&wardendNS, "wardend-namespace", "warden-system", "wardend's namespace (part of its pinned SPIFFE ID)")
	f.StringVar(&tokenFile, "token-file", "", "use this Kubernetes service-account token (a projected token for audience --token-audience of wardend) instead of signing one; read once, now")
	f.StringVar(&rootCert, "root-cert", "", "the mesh root certificate (PEM) to pin; default: from the state directory")
	f.DurationVar(&ttl, "token-ttl", 30*24*time.Hour, "how long the identity token is valid")
	f.BoolVar(&delta, "delta", false, "use incremental (delta) xDS instead of state-of-the-world")
	f.BoolVar(&gateway, "gateway", false, "bootstrap an ingress gateway rather than a sidecar")
	f.StringVarP(&out, "output", "o", "", "write to this file instead of stdout")
	return cmd
}

// bootstrapCredentials returns the token the proxy presents and the mesh root it pins:
// a service-account token read from tokenFile (Kubernetes mode) or a token signed with
// the state directory's key, and the root from rootCert or the state directory.
func bootstrapCredentials(tokenFile, rootCert, stateDir, trustDomain string, claims certs.TokenClaims, ttl time.Duration) (string, []byte, error) {
	var (
		tok     string
		rootPEM []byte
	)
	if tokenFile != "" {
		data, err := os.ReadFile(tokenFile)
		if err != nil {
			return "", nil, fmt.Errorf("--token-file: %w", err)
		}
		if tok = strings.TrimSpace(string(data)); tok == "" {
			return "", nil, fmt.Errorf("--token-file %s is empty", tokenFile)
		}
	}
	if rootCert != "" {
		data, err := os.ReadFile(rootCert)
		if err != nil {
			return "", nil, fmt.Errorf("--root-cert: %w", err)
		}
		rootPEM = data
	}
	if tok == "" {
		signer, err := certs.LoadOrCreateTokenKey(stateDir)
		if err != nil {
			return "", nil, fmt.Errorf("token key in %s: %w (run on the wardend host, pass --state-dir, or use --token-file)", stateDir, err)
		}
		if tok, err = signer.Sign(claims, ttl, time.Now()); err != nil {
			return "", nil, err
		}
	}
	if rootPEM == nil {
		ca, err := certs.LoadOrCreateCA(stateDir, trustDomain, time.Now)
		if err != nil {
			return "", nil, fmt.Errorf("mesh CA in %s: %w (or pass --root-cert)", stateDir, err)
		}
		rootPEM = ca.RootPEM()
	}
	return tok, rootPEM, nil
}

func parseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	if s == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--labels: %q is not key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}
