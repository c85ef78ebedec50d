package certs

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// shiftedClock runs at real speed but can be moved, so that an SVID minted
// "half a life ago" is due for rotation after milliseconds of real timer.
type shiftedClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *shiftedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *shiftedClock) Shift(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset = d
}

// rotationRunner runs RunRotation and collects what onRotate reports.
type rotationRunner struct {
	rotated chan []spiffeid.ID
	cancel  context.CancelFunc
	done    chan struct{}
}

func startRotation(t *testing.T, store *Store) *rotationRunner {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &rotationRunner{rotated: make(chan []spiffeid.ID), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		store.RunRotation(ctx, func(ids []spiffeid.ID) {
			select {
			case r.rotated <- ids:
			case <-ctx.Done():
			}
		})
	}()
	t.Cleanup(r.stop(t))
	return r
}

func (r *rotationRunner) next(t *testing.T) []spiffeid.ID {
	t.Helper()
	select {
	case ids := <-r.rotated:
		return ids
	case <-time.After(10 * time.Second):
		t.Fatal("onRotate not called within 10s")
		return nil
	}
}

func (r *rotationRunner) stop(t *testing.T) func() {
	return func() {
		r.cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("RunRotation did not return after cancel")
		}
	}
}

func newRotationStore(t *testing.T, clock *shiftedClock, ttl time.Duration) *Store {
	t.Helper()
	clock.Shift(-ttl) // the root must predate back-dated mints
	ca := selfSignedCA(t, clock.Now)
	clock.Shift(0)
	return NewStore(ca, ttl, clock.Now, WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil))))
}

func TestRunRotationRotatesOnlyDueSVIDs(t *testing.T) {
	clock := &shiftedClock{}
	const ttl = time.Hour
	store := newRotationStore(t, clock, ttl)
	late := mustID(t, "ns", "late")
	lateSVID, err := store.Get(late) // due in about half an hour
	if err != nil {
		t.Fatal(err)
	}
	// Mint "soon" as if half a life ago, so it is due about 50ms from now.
	clock.Shift(ClockSkew - (ttl+ClockSkew)/2 + 50*time.Millisecond)
	soon := mustID(t, "ns", "soon")
	soonSVID, err := store.Get(soon)
	if err != nil {
		t.Fatal(err)
	}
	clock.Shift(0)

	runner := startRotation(t, store)
	if ids := runner.next(t); !slices.Equal(ids, []spiffeid.ID{soon}) {
		t.Fatalf("rotated %v, want only %s", ids, soon)
	}
	got, err := store.Get(soon)
	if err != nil {
		t.Fatal(err)
	}
	if got == soonSVID || !got.RotateAt().After(clock.Now()) {
		t.Error("Get does not return a fresh SVID after rotation")
	}
	if sv, _ := store.Get(late); sv != lateSVID {
		t.Error("an SVID that was not due was replaced")
	}
	if got := store.Issued(); got != 3 {
		t.Errorf("Issued = %d, want 3", got)
	}
}

func TestRunRotationWakesForNewSVIDs(t *testing.T) {
	clock := &shiftedClock{}
	// A ttl of 2s is back-dated by a quarter (0.5s), which puts RotateAt half a
	// second after the mint.
	store := newRotationStore(t, clock, 2*time.Second)
	runner := startRotation(t, store) // idle: nothing to rotate yet

	id := mustID(t, "ns", "new")
	if _, err := store.Get(id); err != nil {
		t.Fatal(err)
	}
	if ids := runner.next(t); !slices.Equal(ids, []spiffeid.ID{id}) {
		t.Fatalf("rotated %v, want %s", ids, id)
	}
}
