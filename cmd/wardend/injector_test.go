package main

import (
	"encoding/json"
	"testing"

	"github.com/spf13/pflag"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

func TestInjectConfigFromFlags(t *testing.T) {
	parse := func(args ...string) options {
		t.Helper()
		var o options
		f := pflag.NewFlagSet("wardend", pflag.ContinueOnError)
		f.StringVar(&o.namespace, "namespace", "warden-system", "")
		addKubeFlags(f, &o.kube)
		addInjectFlags(f, &o.inject)
		if err := f.Parse(args); err != nil {
			t.Fatal(err)
		}
		return o
	}
	o := parse()
	if o.inject.addr != ":15017" || o.inject.webhook != "warden-sidecar-injector" {
		t.Fatalf("defaults: --inject-addr %q, --inject-webhook-config %q", o.inject.addr, o.inject.webhook)
	}
	cfg := injectConfig(parse("--namespace", "mesh", "--token-audience", "aud", "--inject-proxy-image", "e:1", "--inject-init-image", "w:1"))
	if cfg.XDSAddress != "wardend.mesh.svc:15012" || cfg.WardendNamespace != "mesh" || cfg.TokenAudience != "aud" ||
		cfg.ProxyImage != "e:1" || cfg.InitImage != "w:1" || cfg.RootConfigMap != "warden-ca-root" {
		t.Fatalf("config %+v", cfg)
	}
	if cfg := injectConfig(parse("--inject-xds-address", "10.0.0.1:15012")); cfg.XDSAddress != "10.0.0.1:15012" {
		t.Fatalf("--inject-xds-address: %s", cfg.XDSAddress)
	}
}

func TestCABundlePatchGuardsEachWebhook(t *testing.T) {
	root := []byte("-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n")
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{Webhooks: []admissionregistrationv1.MutatingWebhook{
		{Name: "a", ClientConfig: admissionregistrationv1.WebhookClientConfig{CABundle: root}},
		{Name: "b"},
		{Name: "c", ClientConfig: admissionregistrationv1.WebhookClientConfig{CABundle: []byte("old")}},
	}}
	got, err := json.Marshal(caBundlePatch(mwc, root))
	if err != nil {
		t.Fatal(err)
	}
	b64, _ := json.Marshal(root)
	want := `[{"op":"test","path":"/webhooks/1/name","value":"b"},{"op":"add","path":"/webhooks/1/clientConfig/caBundle","value":` + string(b64) + `},` +
		`{"op":"test","path":"/webhooks/2/name","value":"c"},{"op":"add","path":"/webhooks/2/clientConfig/caBundle","value":` + string(b64) + `}]`
	if string(got) != want {
		t.Fatalf("patch\n%s\nwant\n%s", got, want)
	}
	mwc.Webhooks[1].ClientConfig.CABundle, mwc.Webhooks[2].ClientConfig.CABundle = root, root
	if ops := caBundlePatch(mwc, root); len(ops) != 0 {
		t.Fatalf("up-to-date bundles patched: %v", ops)
	}
}
