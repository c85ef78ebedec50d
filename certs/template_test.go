package certs

import (
	"crypto/x509"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLeafTemplate(t *testing.T) {
	id := mustID(t, "ns1", "sa1")
	serial := big.NewInt(42)
	caNotAfter := t0.Add(365 * 24 * time.Hour)

	tmpl, err := leafTemplate(workloadSpec(id, 24*time.Hour), serial, t0, caNotAfter)
	if err != nil {
		t.Fatal(err)
	}
	if len(tmpl.URIs) != 1 || tmpl.URIs[0].String() != id.String() {
		t.Errorf("URIs = %v, want exactly %s", tmpl.URIs, id)
	}
	if len(tmpl.DNSNames)+len(tmpl.IPAddresses)+len(tmpl.EmailAddresses) != 0 || tmpl.Subject.CommonName != "" {
		t.Errorf("workload template has extra names: %+v %v %v", tmpl.Subject, tmpl.DNSNames, tmpl.IPAddresses)
	}
	if want := t0.Add(-time.Minute); !tmpl.NotBefore.Equal(want) {
		t.Errorf("NotBefore = %v, want %v", tmpl.NotBefore, want)
	}
	if want := t0.Add(-time.Minute).Add(24 * time.Hour); !tmpl.NotAfter.Equal(want) {
		t.Errorf("NotAfter = %v, want %v", tmpl.NotAfter, want)
	}
	if tmpl.IsCA || tmpl.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment {
		t.Errorf("IsCA=%v KeyUsage=%v", tmpl.IsCA, tmpl.KeyUsage)
	}
	wantEKU := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	if !slices.Equal(tmpl.ExtKeyUsage, wantEKU) {
		t.Errorf("ExtKeyUsage = %v, want %v", tmpl.ExtKeyUsage, wantEKU)
	}
	if tmpl.SerialNumber.Cmp(serial) != 0 {
		t.Errorf("serial = %v", tmpl.SerialNumber)
	}
}

func TestLeafTemplateClampsToCA(t *testing.T) {
	caNotAfter := t0.Add(2 * time.Hour)
	tmpl, err := leafTemplate(workloadSpec(mustID(t, "a", "b"), 24*time.Hour), big.NewInt(1), t0, caNotAfter)
	if err != nil {
		t.Fatal(err)
	}
	if !tmpl.NotAfter.Equal(caNotAfter) {
		t.Errorf("NotAfter = %v, want clamped to %v", tmpl.NotAfter, caNotAfter)
	}
}

func TestLeafTemplateErrors(t *testing.T) {
	id := mustID(t, "a", "b")
	tests := []struct {
		name       string
		spec       leafSpec
		serial     *big.Int
		caNotAfter time.Time
		want       string
	}{
		{"expired ca", workloadSpec(id, time.Hour), big.NewInt(1), t0, "signing ca expired"},
		{"zero ttl", workloadSpec(id, 0), big.NewInt(1), t0.Add(time.Hour), "ttl"},
		{"empty id", leafSpec{ttl: time.Hour}, big.NewInt(1), t0.Add(time.Hour), "empty spiffe id"},
		{"zero serial", workloadSpec(id, time.Hour), big.NewInt(0), t0.Add(time.Hour), "serial"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := leafTemplate(tc.spec, tc.serial, t0, tc.caNotAfter)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestRootTemplate(t *testing.T) {
	tmpl := rootTemplate(t0, big.NewInt(7))
	if !tmpl.IsCA || !tmpl.BasicConstraintsValid || tmpl.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("root template is not a CA: %+v", tmpl)
	}
	if want := t0.AddDate(10, 0, 0); tmpl.NotAfter.Before(want.Add(-72*time.Hour)) || tmpl.NotAfter.After(want) {
		t.Errorf("NotAfter = %v, want about ten years after %v", tmpl.NotAfter, t0)
	}
}

func TestShortTTLIsNotBornExpired(t *testing.T) {
	for _, ttl := range []time.Duration{2 * time.Second, 40 * time.Second, 4 * time.Minute, 24 * time.Hour} {
		back := min(ClockSkew, ttl/4)
		if back != backdate(ttl) {
			t.Fatalf("ttl %v: backdate %v, want %v", ttl, backdate(ttl), back)
		}
		if ttl-back <= ttl/2 {
			t.Errorf("ttl %v: only %v of life left at mint", ttl, ttl-back)
		}
	}
}
