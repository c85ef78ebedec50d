package xds

import "testing"

// A buffer of more than 32 KiB is exactly its message's size and is never handed out
// again once returned; a small one keeps gRPC's pooling (length as asked, capacity at
// most twice it).
func TestWireBufferPool(t *testing.T) {
	p := WireBufferPool()
	for _, n := range []int{1, 300, 4097, 1 << 15} {
		b := p.Get(n)
		if len(*b) != n || cap(*b) < n || cap(*b) > 2*n+256 {
			t.Errorf("Get(%d): len %d cap %d, want len %d and cap in [%d, %d]", n, len(*b), cap(*b), n, n, 2*n+256)
		}
		p.Put(b)
	}
	for _, n := range []int{1<<15 + 1, 200_000, 3 << 20} {
		b := p.Get(n)
		if len(*b) != n || cap(*b) != n {
			t.Errorf("Get(%d): len %d cap %d, want both %d", n, len(*b), cap(*b), n)
		}
		first := &(*b)[0]
		p.Put(b)
		for i := 0; i < 3; i++ {
			c := p.Get(n)
			if &(*c)[0] == first {
				t.Fatalf("Get(%d) after Put handed out the returned %d-byte buffer again: large buffers must not be kept", n, n)
			}
		}
	}
}
