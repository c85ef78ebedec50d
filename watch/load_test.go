package watch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const fixtures = "../../shared/fixtures"

func TestLoadDirFixtures(t *testing.T) {
	t.Run("ch9", func(t *testing.T) {
		in, diags, err := LoadDir(filepath.Join(fixtures, "ch9"))
		if err != nil {
			t.Fatal(err)
		}
		if errs := errorsOf(diags); len(errs) != 0 {
			t.Errorf("errors: %v", errs)
		}
		if len(in.ServiceEntries) != 1 || in.ServiceEntries[0].Name != "httpbin-headless-se" {
			t.Errorf("ServiceEntries = %v, want the headless httpbin one", in.ServiceEntries)
		}
		if len(in.PeerAuthentications) != 2 || len(in.RequestAuthentications) != 1 || len(in.AuthorizationPolicies) == 0 {
			t.Errorf("security objects: %d PA, %d RA, %d AP", len(in.PeerAuthentications), len(in.RequestAuthentications), len(in.AuthorizationPolicies))
		}
		// sleep.yaml has no namespace: like kubectl without -n, it lands in default.
		sleep := in.WorkloadByPod("default", "sleep")
		if sleep == nil || sleep.ServiceAccount != "sleep" || !in.ServiceAccounts["default/sleep"] {
			t.Errorf("sleep workload = %+v", sleep)
		}
		if in.Namespace("istio-system") == nil || in.Namespace("default") == nil {
			t.Error("namespaces missing")
		}
	})
	t.Run("services", func(t *testing.T) {
		in, diags, err := LoadDir(filepath.Join(fixtures, "services"))
		if err != nil {
			t.Fatal(err)
		}
		if len(diags) != 0 {
			t.Errorf("diagnostics: %v", diags)
		}
		webapp := in.ServiceByHost("webapp.default.svc.cluster.local")
		if webapp == nil || len(in.Gateways) != 1 || len(in.VirtualServices) != 1 {
			t.Fatalf("webapp %v, %d gateways, %d virtual services", webapp, len(in.Gateways), len(in.VirtualServices))
		}
		if got := in.ServiceAccountsOf(webapp); len(got) != 1 || got[0] != "webapp" {
			t.Errorf("webapp accounts = %v", got)
		}
	})
	t.Run("online-boutique", func(t *testing.T) {
		in, diags, err := LoadDir(filepath.Join(fixtures, "online-boutique"))
		if err != nil {
			t.Fatal(err)
		}
		if len(diags) != 0 {
			t.Errorf("diagnostics: %v", diags)
		}
		for _, ns := range []string{"cart", "frontend", "payment", "istio-system"} {
			if in.Namespace(ns) == nil {
				t.Errorf("namespace %s missing", ns)
			}
		}
	})
}

func TestDecodeDirSkipsDotfilesAndFollowsFileSymlinks(t *testing.T) {
	dir := t.TempDir()
	sa := func(name string) string {
		return "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: " + name + ", namespace: ns}\n"
	}
	writeFile(t, dir, "b/one.yaml", sa("one"))
	writeFile(t, dir, "a.yml", sa("two"))
	writeFile(t, dir, "notes.txt", sa("ignored-txt"))
	writeFile(t, dir, ".hidden.yaml", sa("ignored-dotfile"))
	writeFile(t, dir, "..2024_01_01/linked.yaml", sa("linked"))
	if err := os.Symlink("..2024_01_01/linked.yaml", filepath.Join(dir, "linked.yaml")); err != nil {
		t.Fatal(err)
	}
	objs, diags, err := DecodeDir(dir)
	if err != nil || len(diags) != 0 {
		t.Fatalf("err %v diagnostics %v", err, diags)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.Name+"@"+filepath.Base(o.Source.File))
	}
	want := "two@a.yml one@one.yaml linked@linked.yaml" // lexical order, b/ before linked.yaml
	if strings.Join(got, " ") != want {
		t.Errorf("objects = %v, want %s", got, want)
	}
	if _, _, err := DecodeDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("no error for a missing directory")
	}
}
