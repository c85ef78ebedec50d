package xds

import (
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"
)

// parkingCache wraps go-control-plane's SnapshotCache to break the NACK resend loop:
// a SotW NACK carries the previously accepted version, so the plain cache sees a
// version mismatch and re-sends the rejected configuration at once, forever. When a
// NACK rejects the version the snapshot still holds, the watch is parked (treated as
// up to date) until the configuration changes.
type parkingCache struct {
	cache.SnapshotCache
	tracker *Tracker
}

func (c *parkingCache) CreateWatch(req *cache.Request, sub cache.Subscription, ch chan cache.Response) (func(), error) {
	if req.GetErrorDetail() != nil {
		id := req.GetNode().GetId()
		if snap, err := c.GetSnapshot(id); err == nil {
			cur := snap.GetVersion(req.GetTypeUrl())
			if cur != "" && cur == c.tracker.RejectedVersion(id, req.GetTypeUrl()) {
				parked := proto.Clone(req).(*cache.Request)
				parked.VersionInfo = cur
				req = parked
			}
		}
	}
	return c.SnapshotCache.CreateWatch(req, sub, ch)
}
