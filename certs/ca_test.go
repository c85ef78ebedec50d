package certs

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

func TestSelfSignedCACreatedAndReloaded(t *testing.T) {
	clock := newFakeClock(t0)
	stateDir := filepath.Join(t.TempDir(), "state")

	first, err := LoadOrCreateCA(stateDir, testTD, clock.Now)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	assertMode(t, stateDir, 0o700|os.ModeDir)
	assertMode(t, filepath.Join(stateDir, SelfCADir, RootKeyFile), 0o600)
	assertMode(t, filepath.Join(stateDir, SelfCADir, RootCertFile), 0o644)

	root := first.cert
	if root.Subject.CommonName != "warden root" || len(root.Subject.Organization) != 1 || root.Subject.Organization[0] != "warden" {
		t.Errorf("root subject = %v", root.Subject)
	}
	if !root.IsCA || root.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("root IsCA=%v KeyUsage=%v", root.IsCA, root.KeyUsage)
	}
	if len(root.URIs) != 0 {
		t.Errorf("root has URI SANs %v", root.URIs)
	}
	if got, want := first.RootExpiry(), t0.Add(RootValidity); !got.Equal(want) {
		t.Errorf("RootExpiry = %v, want %v", got, want)
	}

	clock.Set(t0.Add(48 * time.Hour))
	second, err := LoadOrCreateCA(stateDir, testTD, clock.Now)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if !bytes.Equal(first.RootPEM(), second.RootPEM()) {
		t.Fatal("root changed across restart")
	}
	// A certificate from the reloaded CA verifies against the first bundle.
	id := mustID(t, "default", "web")
	svid, err := second.SignWorkload(id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateSVID(svid.CertChainPEM, svid.KeyPEM, first.Bundle(), id, clock.Now()); err != nil {
		t.Fatalf("svid from reloaded ca: %v", err)
	}
	if svid.Leaf.Issuer.CommonName != "warden root" {
		t.Errorf("issuer = %v", svid.Leaf.Issuer)
	}
	if got := bytes.Count(svid.CertChainPEM, []byte("BEGIN CERTIFICATE")); got != 1 {
		t.Errorf("self-signed chain has %d certificates, want the leaf only", got)
	}
}

func TestSelfSignedCAPartialFilesIsError(t *testing.T) {
	stateDir := t.TempDir()
	if _, err := LoadOrCreateCA(stateDir, testTD, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(stateDir, SelfCADir, RootCertFile)); err != nil {
		t.Fatal(err)
	}
	_, err := LoadOrCreateCA(stateDir, testTD, nil)
	if err == nil || !strings.Contains(err.Error(), RootCertFile+" is missing") {
		t.Fatalf("err = %v, want it to name the missing %s", err, RootCertFile)
	}
}

func TestLoadOrCreateCARejectsBadTrustDomain(t *testing.T) {
	if _, err := LoadOrCreateCA(t.TempDir(), "Not A Domain", nil); err == nil {
		t.Fatal("want error for an invalid trust domain")
	}
}

// pluggedFixture is a root with a chain of intermediates, the last one
// signing.
type pluggedFixture struct {
	root          testCert
	intermediates []testCert // from the root down
}

func newPluggedFixture(t *testing.T, depth int, notAfter time.Time) pluggedFixture {
	t.Helper()
	f := pluggedFixture{root: newTestCA(t, "test root", nil, t0.Add(-time.Hour), t0.Add(10*365*24*time.Hour))}
	parent := f.root
	for i := range depth {
		ic := newTestCA(t, "intermediate "+string(rune('a'+i)), &parent, t0.Add(-time.Hour), notAfter)
		f.intermediates = append(f.intermediates, ic)
		parent = ic
	}
	return f
}

func (f pluggedFixture) signer() testCert { return f.intermediates[len(f.intermediates)-1] }

// write stores the files as Istio's tools make them: cert-chain.pem starts
// with ca-cert and ends with the root.
func (f pluggedFixture) write(t *testing.T, dir string) {
	t.Helper()
	var chain []byte
	for i := len(f.intermediates) - 1; i >= 0; i-- {
		chain = append(chain, f.intermediates[i].pem()...)
	}
	chain = append(chain, f.root.pem()...)
	writeTestFile(t, filepath.Join(dir, PluggedCertFile), f.signer().pem())
	writeTestFile(t, filepath.Join(dir, PluggedKeyFile), ecKeyPEM(t, f.signer().key))
	writeTestFile(t, filepath.Join(dir, PluggedRootFile), f.root.pem())
	writeTestFile(t, filepath.Join(dir, PluggedChainFile), chain)
}

func TestPluggedCA(t *testing.T) {
	for _, depth := range []int{1, 2} {
		t.Run(string(rune('0'+depth))+"-intermediates", func(t *testing.T) {
			clock := newFakeClock(t0)
			stateDir := t.TempDir()
			f := newPluggedFixture(t, depth, t0.Add(365*24*time.Hour))
			f.write(t, filepath.Join(stateDir, PluggedCADir))

			ca, err := LoadOrCreateCA(stateDir, testTD, clock.Now)
			if err != nil {
				t.Fatalf("load plugged ca: %v", err)
			}
			if _, err := os.Stat(filepath.Join(stateDir, SelfCADir)); !os.IsNotExist(err) {
				t.Errorf("self-signed root was created next to a plugged ca (stat err %v)", err)
			}
			if !bytes.Equal(ca.RootPEM(), f.root.pem()) {
				t.Error("RootPEM is not root-cert.pem")
			}
			if !ca.RootExpiry().Equal(f.root.cert.NotAfter) {
				t.Errorf("RootExpiry = %v, want %v", ca.RootExpiry(), f.root.cert.NotAfter)
			}

			id := mustID(t, "shop", "cart")
			svid, err := ca.SignWorkload(id, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := x509svid.Parse(svid.CertChainPEM, svid.KeyPEM)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(parsed.Certificates), 1+depth; got != want {
				t.Fatalf("chain has %d certificates, want leaf + %d intermediates", got, depth)
			}
			for i, c := range parsed.Certificates[1:] {
				if want := f.intermediates[depth-1-i].cert; !c.Equal(want) {
					t.Errorf("chain[%d] = %s, want %s", i+1, c.Subject, want.Subject)
				}
			}
			bundle, err := x509bundle.Load(spiffeid.RequireTrustDomainFromString(testTD), filepath.Join(stateDir, PluggedCADir, PluggedRootFile))
			if err != nil {
				t.Fatal(err)
			}
			gotID, chains, err := x509svid.Verify(parsed.Certificates, bundle, x509svid.WithTime(clock.Now()))
			if err != nil {
				t.Fatalf("verify against root-cert.pem: %v", err)
			}
			if gotID != id {
				t.Errorf("verified id %s, want %s", gotID, id)
			}
			if top := chains[0][len(chains[0])-1]; !top.Equal(f.root.cert) {
				t.Errorf("chain ends at %s, want the plugged root", top.Subject)
			}
		})
	}
}

func TestPluggedCAWithoutCertChainFile(t *testing.T) {
	dir := t.TempDir()
	f := newPluggedFixture(t, 1, t0.Add(24*time.Hour))
	f.write(t, dir)
	if err := os.Remove(filepath.Join(dir, PluggedChainFile)); err != nil {
		t.Fatal(err)
	}
	ca, err := LoadPluggedCA(dir, testTD, newFakeClock(t0).Now)
	if err != nil {
		t.Fatalf("ca-cert signed by the root needs no cert-chain.pem: %v", err)
	}
	if _, err := ca.SignWorkload(mustID(t, "a", "b"), time.Hour); err != nil {
		t.Fatal(err)
	}
}

func TestPluggedCAErrorsNameTheFile(t *testing.T) {
	other := newTestCA(t, "other root", nil, t0.Add(-time.Hour), t0.Add(24*time.Hour))
	leafLike := func(t *testing.T, f pluggedFixture) testCert {
		tmpl := *f.signer().cert
		tmpl.IsCA = false
		tmpl.KeyUsage = 0
		root := f.root
		return signTestCert(t, &tmpl, f.signer().key, &root)
	}
	tests := []struct {
		name   string
		mutate func(t *testing.T, dir string, f pluggedFixture)
		want   []string
	}{
		{
			name: "mismatched key",
			mutate: func(t *testing.T, dir string, f pluggedFixture) {
				writeTestFile(t, filepath.Join(dir, PluggedKeyFile), ecKeyPEM(t, other.key))
			},
			want: []string{PluggedKeyFile, "does not match", PluggedCertFile},
		},
		{
			name: "ca-cert is not a ca",
			mutate: func(t *testing.T, dir string, f pluggedFixture) {
				writeTestFile(t, filepath.Join(dir, PluggedCertFile), leafLike(t, f).pem())
			},
			want: []string{PluggedCertFile, "not a CA"},
		},
		{
			name: "ca-cert does not chain to root",
			mutate: func(t *testing.T, dir string, f pluggedFixture) {
				writeTestFile(t, filepath.Join(dir, PluggedRootFile), other.pem())
				writeTestFile(t, filepath.Join(dir, PluggedChainFile), nil)
			},
			want: []string{PluggedCertFile, "does not chain", PluggedRootFile},
		},
		{
			name: "missing key",
			mutate: func(t *testing.T, dir string, f pluggedFixture) {
				if err := os.Remove(filepath.Join(dir, PluggedKeyFile)); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{PluggedKeyFile + " is missing"},
		},
		{
			name: "garbage root",
			mutate: func(t *testing.T, dir string, f pluggedFixture) {
				writeTestFile(t, filepath.Join(dir, PluggedRootFile), []byte("not pem"))
			},
			want: []string{PluggedRootFile, "no PEM certificate"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stateDir := t.TempDir()
			dir := filepath.Join(stateDir, PluggedCADir)
			f := newPluggedFixture(t, 1, t0.Add(24*time.Hour))
			f.write(t, dir)
			tc.mutate(t, dir, f)
			_, err := LoadOrCreateCA(stateDir, testTD, newFakeClock(t0).Now)
			if err == nil {
				t.Fatal("want error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestCAFromPEMRoundTrip(t *testing.T) {
	clock := newFakeClock(t0)
	dir := t.TempDir()
	f := newPluggedFixture(t, 2, t0.Add(24*time.Hour))
	f.write(t, dir)
	ca, err := LoadPluggedCA(dir, testTD, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, rootPEM, chainPEM := ca.PEM()
	if _, err := CAFromPEM(certPEM, keyPEM, rootPEM, chainPEM, "", clock.Now); err == nil {
		t.Error("want error for an empty trust domain")
	}
	again, err := CAFromPEM(certPEM, keyPEM, rootPEM, chainPEM, testTD, clock.Now)
	if err != nil {
		t.Fatalf("CAFromPEM(PEM()): %v", err)
	}
	if !bytes.Equal(again.RootPEM(), ca.RootPEM()) || !bytes.Equal(again.intermediatesPEM, ca.intermediatesPEM) {
		t.Error("round trip changed the ca")
	}
	id := mustID(t, "x", "y")
	svid, err := again.SignWorkload(id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateSVID(svid.CertChainPEM, svid.KeyPEM, ca.Bundle(), id, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := CAFromPEM(certPEM, keyPEM, rootPEM, chainPEM, testTD, newFakeClock(t0.Add(48*time.Hour)).Now); err == nil {
		t.Error("want error for an expired ca certificate")
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode(); got != want {
		t.Errorf("%s mode = %v, want %v", path, got, want)
	}
}

func TestLoadOrCreateCAConcurrentCreators(t *testing.T) {
	stateDir := t.TempDir()
	const n = 4
	roots := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			ca, err := LoadOrCreateCA(stateDir, testTD, nil)
			if err == nil {
				roots[i] = ca.RootPEM()
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !bytes.Equal(roots[i], roots[0]) {
			t.Fatal("concurrent creators ended with different roots")
		}
	}
	entries, err := os.ReadDir(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != SelfCADir {
		t.Errorf("state dir holds %v, want only %s/", entries, SelfCADir)
	}
}
