package translate

import "testing"

// The client address `wardenctl check` uses at a gateway follows Envoy's
// xff_num_trusted_hops: the hops-th X-Forwarded-For entry from the right.
func TestXFFClient(t *testing.T) {
	for _, tc := range []struct {
		xff  string
		hops uint32
		want string // "" for the connection's peer
	}{
		{"203.0.113.7", 0, ""},
		{"203.0.113.7", 1, "203.0.113.7"},
		{"198.51.100.9, 203.0.113.7", 1, "203.0.113.7"},
		{"198.51.100.9, 203.0.113.7", 2, "198.51.100.9"},
		{"203.0.113.7", 2, ""},
		{"not-an-ip", 1, ""},
		{"", 1, ""},
	} {
		ip, ok := xffClient(map[string]string{"X-Forwarded-For": tc.xff}, tc.hops)
		got := ""
		if ok {
			got = ip.String()
		}
		if got != tc.want {
			t.Errorf("xff %q hops %d: %q, want %q", tc.xff, tc.hops, got, tc.want)
		}
	}
}
