package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/wardenmesh/warden/certs"
	"github.com/wardenmesh/warden/xds"
)

// proxyFlags are the identity flags `bootstrap` and `token` share.
type proxyFlags struct {
	ns, sa, pod, labels, ips string
}

func (p *proxyFlags) add(f *pflag.FlagSet) {
	f.StringVar(&p.ns, "namespace", "", "the pod's namespace")
	f.StringVar(&p.sa, "service-account", "", "the pod's service account (the identity its certificate will carry)")
	f.StringVar(&p.pod, "pod", "", "the pod's name")
	f.StringVar(&p.labels, "labels", "", "the pod's labels, k=v,k2=v2 (signed into a directory-mode token; used when wardend has no Pod object for the pod)")
	f.StringVar(&p.ips, "ips", "", "the pod's IP addresses, comma-separated (signed into a directory-mode token)")
}

func (p *proxyFlags) parse() (xds.Identity, error) {
	if p.ns == "" || p.sa == "" || p.pod == "" {
		return xds.Identity{}, fmt.Errorf("--namespace, --service-account and --pod are required")
	}
	lbls, err := parseLabels(p.labels)
	if err != nil {
		return xds.Identity{}, err
	}
	var ips []string
	if p.ips != "" {
		ips = strings.Split(p.ips, ",")
	}
	return xds.Identity{Namespace: p.ns, ServiceAccount: p.sa, Pod: p.pod, Labels: lbls, IPs: ips}, nil
}

// tokenFlags say how a directory-mode credential is signed and written.
type tokenFlags struct {
	stateDir string
	ttl      time.Duration
	owner    string
}

func (t *tokenFlags) add(f *pflag.FlagSet) {
	f.StringVar(&t.stateDir, "state-dir", defaultStateDir(), "wardend's state directory (token key and mesh CA)")
	f.DurationVar(&t.ttl, "token-ttl", 30*24*time.Hour, "how long a signed token is valid (rewrite it with `wardenctl token` before then; Envoy reads it on every connection)")
	f.StringVar(&t.owner, "token-owner", "", "uid[:gid] to own the token file (Envoy's user, e.g. 1337); it stays mode 0600")
}

// writeSigned signs a token for id with the state directory's key and writes it to
// path, mode 0600, replacing any old one atomically (a reader sees the old or the new
// token, never half of one).
func (t *tokenFlags) writeSigned(id xds.Identity, path string) error {
	signer, err := certs.LoadOrCreateTokenKey(t.stateDir)
	if err != nil {
		return fmt.Errorf("token key in %s: %w (run on the wardend host or pass --state-dir)", t.stateDir, err)
	}
	tok, err := signer.Sign(certs.TokenClaims{Namespace: id.Namespace, ServiceAccount: id.ServiceAccount, Pod: id.Pod,
		Labels: id.Labels, IPs: id.IPs}, t.ttl, time.Now())
	if err != nil {
		return err
	}
	return writePrivate(path, []byte(tok), t.owner)
}

// writePrivate writes data to path with mode 0600 (owned by owner when set), via a
// temporary file and a rename.
func writePrivate(path string, data []byte, owner string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if owner != "" {
		uid, gid, err := parseOwner(owner)
		if err != nil {
			tmp.Close()
			return err
		}
		if err := tmp.Chown(uid, gid); err != nil {
			tmp.Close()
			return fmt.Errorf("--token-owner: %w", err)
		}
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func parseOwner(s string) (int, int, error) {
	u, g, hasGroup := strings.Cut(s, ":")
	uid, err := strconv.Atoi(u)
	if err != nil {
		return 0, 0, fmt.Errorf("--token-owner %q: want uid[:gid]", s)
	}
	gid := uid
	if hasGroup {
		if gid, err = strconv.Atoi(g); err != nil {
			return 0, 0, fmt.Errorf("--token-owner %q: want uid[:gid]", s)
		}
	}
	return uid, gid, nil
}

func newBootstrapCmd() *cobra.Command {
	var (
		pf                                         proxyFlags
		tf                                         tokenFlags
		server, trustDomain, wardendNS, serverName string
		out, tokenFile, rootCert                   string
		delta, gateway, signToken                  bool
		statsPort                                  uint32
	)
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Write an Envoy bootstrap that connects a proxy to wardend",
		Long: `Write the Envoy bootstrap (JSON) for one proxy. The xDS connection uses TLS pinned to the
mesh root and to wardend's name. The bootstrap holds no secret: Envoy reads its credential
from --token-file whenever it opens an xDS stream, so Envoy's admin (config_dump) shows only
the path, and a rewritten token file (a kubelet-rotated projected token, or a new one from
` + "`wardenctl token`" + `) is used from the next connection on, without restarting Envoy.

In Kubernetes, --token-file is the pod's projected service-account token for wardend's
audience. In directory mode, --sign-token signs a token with the state directory's key
(binding the proxy to one pod, service account, labels and IPs) and writes it there.`,
		Example: `  wardenctl bootstrap --namespace istioinaction --service-account webapp --pod webapp-0 \
    --labels app=webapp --server 10.248.0.1:15012 \
    --sign-token --token-file /etc/warden/webapp-0.token --token-owner 1337 -o envoy.json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := pf.parse()
			if err != nil {
				return err
			}
			if tokenFile == "" {
				return fmt.Errorf("--token-file is required")
			}
			if abs, err := filepath.Abs(tokenFile); err == nil {
				tokenFile = abs
			}
			if signToken {
				if err := tf.writeSigned(id, tokenFile); err != nil {
					return err
				}
			} else if fi, err := os.Stat(tokenFile); err != nil {
				return fmt.Errorf("--token-file: %w (pass --sign-token in directory mode to create it)", err)
			} else if fi.Size() == 0 {
				return fmt.Errorf("--token-file %s is empty", tokenFile)
			}
			rootPEM, err := meshRoot(rootCert, tf.stateDir, trustDomain)
			if err != nil {
				return err
			}
			if serverName == "" {
				serverName = xds.ServerName(wardendNS)
			}
			b, err := xds.Bootstrap(xds.BootstrapOptions{
				Identity: id, Labels: id.Labels, IPs: id.IPs, Gateway: gateway, Server: server, ServerName: serverName,
				RootPEM: rootPEM, TokenFile: tokenFile, Delta: delta, StatsPort: statsPort,
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
			data = append(data, '\n')
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(data)
				return err
			}
			return writePrivate(out, data, tf.owner)
		},
	}
	f := cmd.Flags()
	pf.add(f)
	tf.add(f)
	f.StringVar(&server, "server", "127.0.0.1:15012", "wardend's xDS address as the proxy reaches it")
	f.StringVar(&trustDomain, "trust-domain", "cluster.local", "mesh trust domain (must match wardend's; used to open the state directory's CA)")
	f.StringVar(&wardendNS, "wardend-namespace", "warden-system", "wardend's namespace (its certificate names wardend.<namespace>.svc)")
	f.StringVar(&serverName, "server-name", "", "the name wardend's certificate must carry (default wardend.<wardend-namespace>.svc)")
	f.StringVar(&tokenFile, "token-file", xds.DefaultTokenPath, "the credential file Envoy reads on every xDS connection (a projected service-account token in Kubernetes)")
	f.BoolVar(&signToken, "sign-token", false, "directory mode: sign a token with the state directory's key and write it to --token-file")
	f.StringVar(&rootCert, "root-cert", "", "the mesh root certificate (PEM) to pin; default: from the state directory")
	f.BoolVar(&delta, "delta", false, "use incremental (delta) xDS instead of state-of-the-world")
	f.BoolVar(&gateway, "gateway", false, "bootstrap an ingress gateway rather than a sidecar (wardend serves it as one only if its Pod object is a gateway's: label istio: ingressgateway or egressgateway, or annotation inject.istio.io/templates: gateway)")
	f.Uint32Var(&statsPort, "stats-port", xds.DefaultStatsPort, "serve Envoy's own stats for scraping on 0.0.0.0:<port>/stats/prometheus (nothing else of the admin); 0: none")
	f.StringVarP(&out, "output", "o", "", "write to this file (mode 0600, owned by --token-owner when set) instead of stdout")
	return cmd
}

func newTokenCmd() *cobra.Command {
	var (
		pf  proxyFlags
		tf  tokenFlags
		out string
	)
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Sign (or re-sign) a directory-mode proxy credential file",
		Long: `Sign a token for one pod with the state directory's key and write it, mode 0600, to -o.
Envoy reads that file on every xDS connection, so re-running this before the token expires
(from cron or a systemd timer) keeps a proxy connected for as long as it runs.`,
		Example: `  wardenctl token --namespace demo --service-account client --pod client-0 --labels app=client \
    --token-owner 1337 -o /etc/warden/client-0.token`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := pf.parse()
			if err != nil {
				return err
			}
			if out == "" {
				return fmt.Errorf("-o FILE is required (a token never goes to stdout)")
			}
			return tf.writeSigned(id, out)
		},
	}
	pf.add(cmd.Flags())
	tf.add(cmd.Flags())
	cmd.Flags().StringVarP(&out, "output", "o", "", "the token file to write (mode 0600)")
	return cmd
}

// meshRoot returns the mesh root to pin: from rootCert, else the state directory's CA.
func meshRoot(rootCert, stateDir, trustDomain string) ([]byte, error) {
	if rootCert != "" {
		data, err := os.ReadFile(rootCert)
		if err != nil {
			return nil, fmt.Errorf("--root-cert: %w", err)
		}
		return data, nil
	}
	ca, err := certs.LoadOrCreateCA(stateDir, trustDomain, time.Now)
	if err != nil {
		return nil, fmt.Errorf("mesh CA in %s: %w (or pass --root-cert)", stateDir, err)
	}
	return ca.RootPEM(), nil
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
