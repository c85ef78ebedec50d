package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardenmesh/warden/e2e/harness"
)

// syncz reads one proxy's row from wardend's /debug/syncz.
func syncz(t *testing.T, m *harness.Mesh, id string) (connectedAt time.Time, intended map[string]string) {
	t.Helper()
	r, err := http.Get("http://" + m.DebugAddr + "/debug/syncz")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var resp struct {
		Proxies []struct {
			ID          string    `json:"id"`
			ConnectedAt time.Time `json:"connectedAt"`
			Types       map[string]struct {
				Intended string `json:"intended"`
			} `json:"types"`
		} `json:"proxies"`
	}
	if err := json.NewDecoder(r.Body).Decode(&resp); err != nil {
		t.Fatal(err)
	}
	for _, p := range resp.Proxies {
		if p.ID == id {
			intended = map[string]string{}
			for k, v := range p.Types {
				intended[k] = v.Intended
			}
			return p.ConnectedAt, intended
		}
	}
	t.Fatalf("proxy %s not in /debug/syncz", id)
	return
}

// envoySerials lists the serial numbers of the certificates an Envoy holds (admin /certs).
func envoySerials(ctx context.Context, p *harness.Pod) (string, error) {
	out, err := p.Exec(ctx, "curl", "-sS", "--max-time", "5", "http://127.0.0.1:15000/certs")
	if err != nil {
		return "", fmt.Errorf("%v: %s", err, out)
	}
	var certs struct {
		Certificates []struct {
			CertChain []struct {
				SerialNumber    string `json:"serial_number"`
				SubjectAltNames []struct {
					URI string `json:"uri"`
				} `json:"subject_alt_names"`
			} `json:"cert_chain"`
		} `json:"certificates"`
	}
	if err := json.Unmarshal(out, &certs); err != nil {
		return "", fmt.Errorf("admin /certs: %v: %s", err, out)
	}
	var serials []string
	for _, c := range certs.Certificates {
		for _, cc := range c.CertChain {
			for _, san := range cc.SubjectAltNames {
				if strings.HasPrefix(san.URI, "spiffe://") {
					serials = append(serials, cc.SerialNumber)
				}
			}
		}
	}
	if len(serials) == 0 {
		return "", fmt.Errorf("no workload certificate in admin /certs: %s", out)
	}
	// Each TLS context holding the certificate lists it once; a listener still draining
	// holds one more. The certificates served are the distinct serials.
	slices.Sort(serials)
	return strings.Join(slices.Compact(serials), ","), nil
}

// TestCertificateRotationWithoutReconnect runs wardend with a 40 s workload certificate
// lifetime: at half life the sidecar receives a new certificate over SDS on the same
// stream (no reconnect), nothing but SDS changes, and mTLS keeps working.
func TestCertificateRotationWithoutReconnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d := startDemo(ctx, t, harness.Options{WardendArgs: []string{"--workload-cert-ttl", "40s"}}, nil)
	m, client, fail := d.m, d.client, d.fail
	var first string
	if err := waitUntil(ctx, 20*time.Second, func() (err error) { first, err = envoySerials(ctx, client); return err }); err != nil {
		fail("%v", err)
	}
	connected, before := syncz(t, m, "client.demo")

	// 40 s lifetime, back-dated 10 s: rotation is due 10 s after the mint.
	var second string
	err := waitUntil(ctx, 60*time.Second, func() error {
		s, err := envoySerials(ctx, client)
		if err != nil {
			return err
		}
		if s == first {
			return fmt.Errorf("still serving serial %s", s)
		}
		second = s
		return nil
	})
	if err != nil {
		fail("the sidecar never received a rotated certificate: %v", err)
	}
	t.Logf("certificate rotated: serial %s -> %s", first, second)
	if _, err := m.WaitSynced(ctx, []string{"client.demo", "server.demo"}, 30*time.Second); err != nil {
		fail("%v", err)
	}
	again, after := syncz(t, m, "client.demo")
	if !again.Equal(connected) {
		fail("the proxy reconnected to get its new certificate (connected %v, now %v)", connected, again)
	}
	for _, typ := range []string{"CDS", "LDS", "EDS", "RDS"} {
		if before[typ] != after[typ] {
			fail("rotation changed %s (%s -> %s): only SDS may change", typ, before[typ], after[typ])
		}
	}
	if before["SDS"] == after["SDS"] {
		fail("SDS version did not change with the certificate")
	}
	r, err := m.Request(ctx, client, "GET", "http://server.demo/after-rotation", nil)
	if err != nil {
		fail("%v", err)
	}
	if r.Status != 200 || !strings.Contains(r.Body, "URI=spiffe://cluster.local/ns/demo/sa/client") {
		fail("mTLS after rotation: got %s %s", r, r.Body)
	}
}
