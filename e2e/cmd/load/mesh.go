package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wardenmesh/warden/e2e/xdsload"
)

func writeFile(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func meshPolicy(mode string) string {
	return "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: " + mode + "}}\n"
}

func nsName(i int) string { return fmt.Sprintf("ns-%03d", i) }

// writeMesh writes namespaces, one workload + Service per proxy, one AuthorizationPolicy
// per namespace and `policies` more spread over the namespaces, each selecting one app.
func writeMesh(dir string, proxies, namespaces, policies int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "00-mesh.yaml"), meshPolicy("STRICT")); err != nil {
		return err
	}
	for n := 0; n < namespaces; n++ {
		var b strings.Builder
		ns := nsName(n)
		fmt.Fprintf(&b, "apiVersion: v1\nkind: Namespace\nmetadata: {name: %s, labels: {istio-injection: enabled}}\n", ns)
		fmt.Fprintf(&b, "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ns-allow, namespace: %s}\nspec:\n  rules: [{from: [{source: {namespaces: [%q]}}]}]\n", ns, ns)
		for i := n; i < proxies; i += namespaces {
			app := fmt.Sprintf("app-%04d", i)
			ip := fmt.Sprintf("10.%d.%d.%d", 100+i/65536, (i/256)%256, i%256)
			fmt.Fprintf(&b, `---
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}, annotations: {warden.io/pod-ip: "%[3]s"}}
    spec: {serviceAccountName: %[1]s, containers: [{name: app, image: app, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s, namespace: %[2]s}
spec: {selector: {app: %[1]s}, ports: [{name: http, port: 80, targetPort: 8080}]}
`, app, ns, ip)
		}
		for p := n; p < policies; p += namespaces {
			app := fmt.Sprintf("app-%04d", p%proxies)
			fmt.Fprintf(&b, "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: pol-%05d, namespace: %s}\nspec:\n  selector: {matchLabels: {app: %s}}\n  action: DENY\n  rules: [{to: [{operation: {paths: [\"/admin-%d\"]}}]}]\n", p, ns, app, p)
		}
		if err := writeFile(filepath.Join(dir, ns+".yaml"), b.String()); err != nil {
			return err
		}
	}
	return nil
}

// onePolicy selects exactly the target's workload.
func onePolicy(p *xdsload.Proxy) string {
	return fmt.Sprintf("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: one, namespace: %s}\nspec:\n  selector: {matchLabels: {app: %s}}\n  mtls: {mode: PERMISSIVE}\n", p.NS, p.App)
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func waitReady(ctx context.Context, addr string) error {
	for {
		r, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wardend not ready: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func fetchTo(addr, path, file string) error {
	r, err := http.Get("http://" + addr + path)
	if err != nil {
		return err
	}
	defer r.Body.Close()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, r.Body)
	return err
}
