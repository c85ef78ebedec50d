package translate

import (
	"encoding/base64"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wardenmesh/warden/watch"
)

// One DestinationRule in the root namespace names credentialName "client" for every
// proxy. Each proxy's cluster reads the Secret of its own namespace: shop has one,
// other does not, and the clusters built for one must never be reused for the other
// (the cluster cache is keyed by the proxy namespace for such rules).
func TestCredentialNameReadsTheProxyNamespace(t *testing.T) {
	g, err := os.ReadFile("testdata/gateway-tls.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ca := regexp.MustCompile(`ca\.crt: (\S+)`).FindSubmatch(g)
	if ca == nil {
		t.Fatal("no ca.crt in testdata/gateway-tls.in.yaml")
	}
	if _, err := base64.StdEncoding.DecodeString(string(ca[1])); err != nil {
		t.Fatal(err)
	}
	pod := func(ns string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: " + ns + ", labels: {app: web}, annotations: {warden.io/pod-ip: \"10.0.0.1\"}}\nspec: {serviceAccountName: web, containers: [{name: web, image: x}]}\n"
	}
	docs := []string{
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {istio-injection: enabled}}\n",
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: other, labels: {istio-injection: enabled}}\n",
		pod("shop"), pod("other"),
		"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: api, namespace: istio-system}\nspec: {hosts: [api.example.com], location: MESH_EXTERNAL, resolution: DNS, ports: [{number: 80, name: http, protocol: HTTP, targetPort: 443}]}\n",
		"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: api, namespace: istio-system}\nspec: {host: api.example.com, trafficPolicy: {tls: {mode: SIMPLE, credentialName: client}}}\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: client, namespace: shop}\ndata: {ca.crt: " + string(ca[1]) + "}\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: client, namespace: istio-system}\ndata: {ca.crt: " + string(ca[1]) + "}\n",
	}
	objs, diags := watch.DecodeFile("mesh.yaml", []byte(strings.Join(docs, "---\n")))
	for _, d := range diags {
		if d.IsError() {
			t.Fatalf("input rejected: %v", d)
		}
	}
	x := NewIndex(watch.Build(objs, diags))
	const cred = watch.CredentialPrefix + "client" + watch.CACertSuffix
	for _, order := range [][]string{{"shop", "other"}, {"other", "shop"}} {
		x := x
		if order[0] == "other" {
			x = NewIndex(watch.Build(objs, diags))
		}
		for _, ns := range order {
			out := x.Translate(Proxy{ID: "web." + ns, Namespace: ns, Pod: "web", ServiceAccount: "web"})
			has := slices.Contains(out.SecretNames, cred)
			var blocked string
			for _, d := range out.Diagnostics {
				if d.Field == "spec.trafficPolicy.tls.credentialName" {
					blocked = d.Message
				}
			}
			switch ns {
			case "shop":
				if !has || blocked != "" {
					t.Errorf("%v: shop: SecretNames %v, diagnostic %q; want %s and no diagnostic", order, out.SecretNames, blocked, cred)
				}
			case "other":
				if has || !strings.Contains(blocked, "no Secret other/client") {
					t.Errorf("%v: other: SecretNames %v, diagnostic %q; want no %s and a diagnostic naming other/client", order, out.SecretNames, blocked, cred)
				}
			}
		}
	}

	// Kubernetes mode reads Secrets per use: --gateway-secret-namespaces for Gateway
	// credentialName, --client-secret-namespaces for DestinationRule credentialName. A
	// Secret of a namespace read for gateways only (istio-system here, which has a
	// Secret "client") is not a client credential: the rule is blocked there, and the
	// hint names the flag of the missing use. other is read for nothing.
	in := watch.Build(objs, diags)
	in.SetSecretUses([]string{"istio-system"}, []string{"shop"})
	pod3 := "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: istio-system, labels: {app: web}, annotations: {warden.io/pod-ip: \"10.0.0.1\"}}\nspec: {serviceAccountName: web, containers: [{name: web, image: x}]}\n"
	objs3, diags3 := watch.DecodeFile("mesh.yaml", []byte(strings.Join(append(docs, pod3), "---\n")))
	in3 := watch.Build(objs3, diags3)
	in3.SetSecretUses([]string{"istio-system"}, []string{"shop"})
	for _, c := range []struct {
		in         *watch.Input
		ns, want   string
		servesCred bool
	}{
		{in, "other", "reads no Secrets of namespace other for clients: add it to --client-secret-namespaces", false},
		{in, "shop", "", true},
		{in3, "istio-system", "reads no Secrets of namespace istio-system for clients: add it to --client-secret-namespaces", false},
	} {
		out := NewIndex(c.in).Translate(Proxy{ID: "web." + c.ns, Namespace: c.ns, Pod: "web", ServiceAccount: "web"})
		var got string
		for _, d := range out.Diagnostics {
			if d.Field == "spec.trafficPolicy.tls.credentialName" {
				got = d.Message
			}
		}
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("gateway Secrets of istio-system, client Secrets of shop; proxy of %s: diagnostic %q, want one containing %q", c.ns, got, c.want)
		}
		if has := slices.Contains(out.SecretNames, cred); has != c.servesCred {
			t.Errorf("proxy of %s: SecretNames %v, want %s: %v", c.ns, out.SecretNames, cred, c.servesCred)
		}
	}
}
