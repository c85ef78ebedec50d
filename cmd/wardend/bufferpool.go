package main

import (
	"google.golang.org/grpc/experimental"

	"github.com/wardenmesh/warden/xds"
)

// gRPC's default buffer pool holds a 1 MiB buffer for every xDS response larger than
// 32 KiB; xds.WireBufferPool sizes them to the message and does not keep them.
// gRPC reads its default pool only at init time.
func init() {
	experimental.SetDefaultBufferPool(xds.WireBufferPool())
}
