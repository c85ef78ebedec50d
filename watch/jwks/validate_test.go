package jwks

import (
	"strings"
	"testing"
)

func TestUsable(t *testing.T) {
	rsa := `{"kty":"RSA","alg":"RS256","n":"0FUIfx2uDxzQW5JgdRZ017Dn","e":"AQAB"}`
	// A valid P-256 point (the generator).
	ec := `{"kty":"EC","crv":"P-256","x":"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY","y":"T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"}`
	cases := []struct {
		name        string
		in          string
		wantSkipped int
		wantErr     string
	}{
		{"rsa", `{"keys":[` + rsa + `]}`, 0, ""},
		{"ec", `{"keys":[` + ec + `]}`, 0, ""},
		{"okp", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`, 0, ""},
		{"oct", `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`, 0, ""},
		{"one bad one good", `{"keys":[{"kty":"RSA","n":"!!","e":"AQAB"},` + rsa + `]}`, 1, ""},
		{"not json", `{"keys": [`, 0, "parse JWKS"},
		{"no keys member", `{"kty":"RSA"}`, 0, "no \"keys\""},
		{"empty", `{"keys":[]}`, 0, "empty"},
		{"ec off curve", `{"keys":[{"kty":"EC","crv":"P-256","x":"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY","y":"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY"}]}`, 1, "EC point"},
		{"alg mismatch", `{"keys":[{"kty":"RSA","alg":"ES256","n":"AQAB","e":"AQAB"}]}`, 1, "does not fit"},
		{"unknown kty", `{"keys":[{"kty":"foo"}]}`, 1, "not supported"},
		{"missing e", `{"keys":[{"kty":"RSA","n":"AQAB"}]}`, 1, "e is missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, skipped, err := Usable(c.in)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if skipped != c.wantSkipped {
				t.Errorf("skipped = %d, want %d", skipped, c.wantSkipped)
			}
			if again, s2, err := Usable(out); err != nil || s2 != 0 || again != out {
				t.Errorf("output is not a clean key set: %q (%d, %v)", out, s2, err)
			}
		})
	}
}
