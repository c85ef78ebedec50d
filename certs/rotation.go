package certs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

const (
	// rotationRetry is how long RunRotation waits after a failed mint
	// before trying again.
	rotationRetry = 10 * time.Second
	// rotationGap is the least time between two rotation passes, so that
	// SVIDs that are due as soon as minted (a CA about to expire clamping
	// NotAfter) cannot make the loop spin.
	rotationGap = time.Second
)

// RunRotation re-mints SVIDs as they reach RotateAt until ctx is done, and
// calls onRotate with the IDs whose SVID changed so that their proxies can
// be sent the new secret on their open streams. It sleeps on a timer until
// NextRotation and wakes early when a new SVID is minted. Run one per Store.
func (s *Store) RunRotation(ctx context.Context, onRotate func(ids []spiffeid.ID)) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		var fire <-chan time.Time
		if next := s.NextRotation(); !next.IsZero() {
			timer.Reset(next.Sub(s.now()))
			fire = timer.C
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
			continue
		case <-fire:
		}
		ids, err := s.rotateDue()
		if len(ids) > 0 && onRotate != nil {
			onRotate(ids)
		}
		pause := rotationGap
		if err != nil {
			s.log.Error("svid rotation failed; retrying", "retry_in", rotationRetry, "err", err)
			pause = rotationRetry
		}
		if !sleepCtx(ctx, pause) {
			return
		}
	}
}

// rotateDue re-mints every held SVID whose RotateAt has passed and returns
// the IDs that got a new SVID, sorted.
func (s *Store) rotateDue() ([]spiffeid.ID, error) {
	now := s.now()
	var (
		ids  []spiffeid.ID
		errs []error
	)
	for id, e := range s.snapshot() {
		sv := e.svid.Load()
		if sv == nil || now.Before(sv.RotateAt()) || !s.holds(id, e) {
			continue
		}
		_, minted, err := s.refresh(id, e)
		if err != nil {
			errs = append(errs, fmt.Errorf("rotate %s: %w", id, err))
			continue
		}
		if minted {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b spiffeid.ID) int { return strings.Compare(a.String(), b.String()) })
	return ids, errors.Join(errs...)
}

// sleepCtx waits for d or ctx, reporting false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
