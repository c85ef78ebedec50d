package xds

import (
	"slices"
	"testing"

	"github.com/wardenmesh/warden/watch"
)

// clientCredentials resolves only plain kubernetes://<name> names, only in the
// proxy's namespace: a Secret of the same name elsewhere, a namespace-qualified name
// or another scheme is never resolved.
func TestClientCredentialsOwnNamespaceOnly(t *testing.T) {
	const ca = "-----BEGIN CERTIFICATE-----\nMIIBnzCCAUSgAwIBAgICFQAwCgYIKoZIzj0EAwIwNTETMBEGA1UEChMKV2FyZGVuIGUyZTEeMBwGA1UEAxMVV2FyZGVuIGUyZSBnYXRld2F5IENBMCAXDTI2MDEwMTAwMDAwMFoYDzIxMjYwMTAxMDAwMDAwWjA1MRMwEQYDVQQKEwpXYXJkZW4gZTJlMR4wHAYDVQQDExVXYXJkZW4gZTJlIGdhdGV3YXkgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARZGTE1dZp3SpapXnmxTNJAtxpZGscGRV+RSes7fOFo34ZU4D8ZhSotsCi64eOzxmtUPFI1q4jztlwG47tnjBDeo0IwQDAOBgNVHQ8BAf8EBAMCAoQwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQU3rkJvp5PFvcX6u/p+0f26k0enFMwCgYIKoZIzj0EAwIDSQAwRgIhANu2DpizqhHrDBSVAMGvuGBlyduh3kOrN5KiXr39GC3SAiEAtO/Ye4HvLinYfZSCxFE3qrOqRc4VF/G5QOUdfHjNEgI=\n-----END CERTIFICATE-----\n"
	in := &watch.Input{Secrets: map[string]*watch.Secret{
		"shop/own":       {CAPEM: []byte(ca), Uses: watch.UseClient},
		"partner/theirs": {CAPEM: []byte(ca), Uses: watch.UseClient},
		"partner/own":    {CAPEM: []byte(ca), Uses: watch.UseClient},
	}}
	names := []string{"kubernetes://own-cacert", "kubernetes://theirs-cacert", "kubernetes://partner/own-cacert",
		"kubernetes://partner/theirs-cacert", "kubernetes-gateway://partner/theirs-cacert", "default"}
	got := clientCredentials(in, "shop", names, nil)
	var served []string
	for n := range got {
		served = append(served, n)
	}
	slices.Sort(served)
	if !slices.Equal(served, []string{"kubernetes://own-cacert"}) {
		t.Fatalf("served %v, want only kubernetes://own-cacert", served)
	}
	if string(got["kubernetes://own-cacert"].GetValidationContext().GetTrustedCa().GetInlineBytes()) != ca {
		t.Error("kubernetes://own-cacert is not shop/own's CA")
	}
}
