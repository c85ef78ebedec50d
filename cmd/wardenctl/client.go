package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// connFlags say how wardenctl reaches wardend's debug API. A plain host:port is
// loopback HTTP with no credential (the default, as through `kubectl port-forward`);
// https://host:port is an exposed debug API: wardenctl verifies wardend's certificate
// against the mesh root and its SPIFFE ID, and sends a bearer token.
type connFlags struct {
	kubeconfig, token, tokenFile, caFile, wardendNS string

	rootsOnce sync.Once
	roots     []*x509.Certificate
	rootsErr  error
}

// conn holds the global flags of the current command line (set up by newRoot).
var conn = &connFlags{}

func addConnFlags(f *pflag.FlagSet, c *connFlags) {
	f.StringVar(&c.kubeconfig, "kubeconfig", "", "with --server https://...: send this kubeconfig's bearer token (token, token file or exec plugin) to wardend; also where the mesh root is read when --ca-file is not given")
	f.StringVar(&c.token, "token", "", "with --server https://...: bearer token to send to wardend (instead of the kubeconfig's)")
	f.StringVar(&c.tokenFile, "token-file", "", "with --server https://...: file holding the bearer token to send to wardend")
	f.StringVar(&c.caFile, "ca-file", "", "with --server https://...: the mesh root (PEM) wardend's certificate must chain to; default: ConfigMap warden-ca-root (key root-cert.pem) in --wardend-namespace, read with --kubeconfig")
	f.StringVar(&c.wardendNS, "wardend-namespace", "warden-system", "wardend's namespace: part of the SPIFFE ID its certificate must carry, and where warden-ca-root is read")
}

func (c *connFlags) hasCredential() bool {
	return c.kubeconfig != "" || c.token != "" || c.tokenFile != ""
}

// debugClient reads one wardend's debug API.
type debugClient struct {
	server string // as the user named it
	base   string // scheme://host:port
	http   *http.Client
}

// newDebugClient returns the client every debug-API command uses for server
// (host:port, http://host:port or https://host:port).
func newDebugClient(server string, timeout time.Duration) (*debugClient, error) {
	c := &debugClient{server: server, http: &http.Client{Timeout: timeout}}
	switch {
	case strings.HasPrefix(server, "https://"):
		c.base = strings.TrimRight(server, "/")
		rt, err := conn.transport(timeout)
		if err != nil {
			return nil, fmt.Errorf("wardend at %s: %w", server, err)
		}
		c.http.Transport = rt
		return c, nil
	case strings.HasPrefix(server, "http://"):
		c.base = strings.TrimRight(server, "/")
	default:
		c.base = "http://" + server
	}
	if conn.hasCredential() {
		return nil, fmt.Errorf("wardend at %s is plain HTTP: refusing to send a bearer token over plaintext; use --server https://HOST:PORT", server)
	}
	return c, nil
}

// get returns the body of a 200 response to GET path.
func (c *debugClient) get(path string) ([]byte, error) {
	r, err := c.http.Get(c.base + path)
	if err != nil {
		return nil, fmt.Errorf("cannot reach wardend at %s: %w (is it running? see --server)", c.server, err)
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
		msg := fmt.Sprintf("wardend at %s: %s: %s", c.server, r.Status, strings.TrimSpace(string(b)))
		switch {
		case r.StatusCode == http.StatusUnauthorized && !strings.HasPrefix(c.base, "https://"):
			msg += " (its debug API needs a credential: --server https://HOST:PORT with --kubeconfig, --token or --token-file)"
		case r.StatusCode == http.StatusForbidden:
			msg += " (an admin can bind the ClusterRole warden-debug-reader to you)"
		}
		return nil, errors.New(msg)
	}
	return io.ReadAll(r.Body)
}

// getJSON decodes the JSON body of a 200 response to GET path into v.
func (c *debugClient) getJSON(path string, v any) error {
	b, err := c.get(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s from %s: %w", path, c.server, err)
	}
	return nil
}

// transport verifies wardend with the mesh root and its SPIFFE ID
// (spiffe://<trust domain>/ns/<wardend-namespace>/sa/wardend), and authenticates
// with the bearer token.
func (c *connFlags) transport(timeout time.Duration) (http.RoundTripper, error) {
	roots, err := c.meshRoots(timeout)
	if err != nil {
		return nil, err
	}
	want := "/ns/" + c.wardendNS + "/sa/wardend"
	tlsCfg := tlsconfig.TLSClientConfig(anyTrustDomain(roots), tlsconfig.AdaptMatcher(func(id spiffeid.ID) error {
		if id.Path() != want {
			return fmt.Errorf("its certificate is %s, not wardend's (spiffe://<trust domain>%s; see --wardend-namespace)", id, want)
		}
		return nil
	}))
	base := &http.Transport{TLSClientConfig: tlsCfg, Proxy: http.ProxyFromEnvironment, TLSHandshakeTimeout: timeout}
	switch {
	case c.token != "":
		return rest.HTTPWrappersForConfig(&rest.Config{BearerToken: strings.TrimSpace(c.token)}, base)
	case c.tokenFile != "":
		return rest.HTTPWrappersForConfig(&rest.Config{BearerTokenFile: c.tokenFile}, base)
	case c.kubeconfig != "":
		cfg, err := c.restConfig()
		if err != nil {
			return nil, err
		}
		if cfg.BearerToken == "" && cfg.BearerTokenFile == "" && cfg.ExecProvider == nil && cfg.AuthProvider == nil {
			return nil, fmt.Errorf("the user of kubeconfig %s has no bearer token (token, tokenFile or exec plugin): "+
				"wardend accepts bearer tokens only; use --token or --token-file", c.kubeconfig)
		}
		// Only the credential goes to wardend: no basic auth, no impersonation headers.
		cfg.Username, cfg.Password, cfg.Impersonate, cfg.UserAgent = "", "", rest.ImpersonationConfig{}, "wardenctl"
		return rest.HTTPWrappersForConfig(cfg, base)
	}
	return nil, errors.New("an https:// debug API needs a credential: --kubeconfig, --token or --token-file")
}

func (c *connFlags) restConfig() (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", c.kubeconfig, err)
	}
	return cfg, nil
}

// meshRoots reads the mesh root once: from --ca-file, else from the ConfigMap
// warden-ca-root in wardend's namespace.
func (c *connFlags) meshRoots(timeout time.Duration) ([]*x509.Certificate, error) {
	c.rootsOnce.Do(func() {
		var pemData []byte
		from := c.caFile
		switch {
		case c.caFile != "":
			pemData, c.rootsErr = os.ReadFile(c.caFile)
		case c.kubeconfig != "":
			from = "ConfigMap " + c.wardendNS + "/warden-ca-root"
			pemData, c.rootsErr = c.rootFromConfigMap(timeout)
		default:
			c.rootsErr = errors.New("cannot verify wardend's certificate: give the mesh root with --ca-file, or --kubeconfig to read ConfigMap warden-ca-root")
			return
		}
		if c.rootsErr == nil {
			c.roots, c.rootsErr = parsePEMCerts(from, pemData)
		}
	})
	return c.roots, c.rootsErr
}

func (c *connFlags) rootFromConfigMap(timeout time.Duration) ([]byte, error) {
	cfg, err := c.restConfig()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = timeout
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	cm, err := client.CoreV1().ConfigMaps(c.wardendNS).Get(context.Background(), "warden-ca-root", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read the mesh root (ConfigMap %s/warden-ca-root; or give --ca-file): %w", c.wardendNS, err)
	}
	root := cm.Data["root-cert.pem"]
	if root == "" {
		return nil, fmt.Errorf("ConfigMap %s/warden-ca-root has no root-cert.pem", c.wardendNS)
	}
	return []byte(root), nil
}

func parsePEMCerts(from string, data []byte) ([]*x509.Certificate, error) {
	b, err := x509bundle.Parse(spiffeid.RequireTrustDomainFromString("pem.invalid"), data)
	if err != nil {
		return nil, fmt.Errorf("mesh root from %s: %w", from, err)
	}
	if len(b.X509Authorities()) == 0 {
		return nil, fmt.Errorf("mesh root from %s: no certificate", from)
	}
	return b.X509Authorities(), nil
}

// anyTrustDomain is the mesh root for whatever trust domain wardend's SPIFFE ID names:
// the root is what is pinned, and wardenctl does not know the trust domain.
type anyTrustDomain []*x509.Certificate

func (r anyTrustDomain) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return x509bundle.FromX509Authorities(td, r), nil
}
