package certs

import (
	"testing"
	"time"
)

func BenchmarkSignWorkload(b *testing.B) {
	ca := selfSignedCA(b, nil)
	id, err := WorkloadID(ca.TrustDomain(), "default", "web")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ca.SignWorkload(id, 24*time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}
