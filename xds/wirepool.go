package xds

import (
	"google.golang.org/grpc/mem"
)

// wirePoolMax is the largest buffer WireBufferPool pools: 32 KiB, two HTTP/2 frames.
const wirePoolMax = 1 << 15

// WireBufferPool is the buffer pool wardend gives gRPC (cmd/wardend sets it as the
// default in an init function; gRPC reads it for its proto codec, which marshals every
// outgoing message into one pooled buffer, and for its transports).
//
// gRPC's own default rounds any message of more than 32 KiB up to a 1 MiB buffer and
// keeps returned buffers in a sync.Pool. An xDS response of a sidecar (CDS of every
// Service in the mesh, LDS) is tens to hundreds of KiB, so every proxy's response in
// flight, and every one sent since the last GC, held 1 MiB: at 1,000 proxies this was
// the largest holder of the heap (bench-kube's profile, README). This pool keeps gRPC's
// tiers up to 32 KiB, with every power of two from 256 B so a buffer is at most twice
// its message, and allocates a larger buffer at exactly its message's size and does not
// keep it: it is garbage once the transport has written it.
func WireBufferPool() mem.BufferPool {
	small, err := mem.NewBinaryTieredBufferPool(8, 9, 10, 11, 12, 13, 14, 15)
	if err != nil {
		panic(err) // constant exponents: cannot fail
	}
	return wirePool{small: small}
}

type wirePool struct{ small mem.BufferPool }

func (p wirePool) Get(n int) *[]byte {
	if n <= wirePoolMax {
		return p.small.Get(n)
	}
	b := make([]byte, n)
	return &b
}

func (p wirePool) Put(b *[]byte) {
	if cap(*b) <= wirePoolMax {
		p.small.Put(b)
	}
}

// readBufferSize is each xDS connection's read buffer (grpc.ReadBufferSize).
const readBufferSize = 8 << 10
