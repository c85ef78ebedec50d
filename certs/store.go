package certs

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Store caches one SVID per SPIFFE ID, minting on first use and again once
// the held SVID is past half its life. It is safe for concurrent use; each
// ID is minted by at most one caller at a time.
type Store struct {
	ca  *CA
	ttl time.Duration
	now func() time.Time
	log *slog.Logger

	mu      sync.Mutex
	entries map[spiffeid.ID]*storeEntry

	issued atomic.Uint64
	// wake tells RunRotation that the schedule may have moved earlier.
	wake chan struct{}
}

type storeEntry struct {
	mint sync.Mutex // held while minting, so minting happens once
	svid atomic.Pointer[SVID]
}

// StoreOption configures a Store.
type StoreOption func(*Store)

// WithLogger sets the logger for rotation failures (default: discard).
func WithLogger(l *slog.Logger) StoreOption {
	return func(s *Store) { s.log = l }
}

// NewStore returns an empty store that issues SVIDs from ca valid for ttl.
// NotBefore is back-dated by ClockSkew (at most a quarter of ttl), and the whole
// lifetime is ttl, so an SVID is rotated a quarter of ttl or more after it is
// minted. A nil now means time.Now.
func NewStore(ca *CA, ttl time.Duration, now func() time.Time, opts ...StoreOption) *Store {
	if now == nil {
		now = time.Now
	}
	s := &Store{
		ca:      ca,
		ttl:     ttl,
		now:     now,
		log:     slog.New(slog.DiscardHandler),
		entries: make(map[spiffeid.ID]*storeEntry),
		wake:    make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Get returns the current SVID for id, minting one if none is held or the
// held one is due for rotation.
func (s *Store) Get(id spiffeid.ID) (*SVID, error) {
	e := s.entry(id)
	if sv := e.svid.Load(); sv != nil && s.now().Before(sv.RotateAt()) {
		return sv, nil
	}
	sv, _, err := s.refresh(id, e)
	return sv, err
}

func (s *Store) entry(id spiffeid.ID) *storeEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[id]
	if !ok {
		e = &storeEntry{}
		s.entries[id] = e
	}
	return e
}

// refresh mints a new SVID for e unless another caller did so while this one
// waited for the lock. It reports whether it minted.
func (s *Store) refresh(id spiffeid.ID, e *storeEntry) (*SVID, bool, error) {
	e.mint.Lock()
	defer e.mint.Unlock()
	now := s.now()
	if sv := e.svid.Load(); sv != nil && now.Before(sv.RotateAt()) {
		return sv, false, nil
	}
	sv, err := s.ca.issue(workloadSpec(id, s.ttl), now)
	if err != nil {
		return nil, false, err
	}
	e.svid.Store(sv)
	s.issued.Add(1)
	s.notify()
	return sv, true, nil
}

func (s *Store) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Forget drops the SVID held for id (its proxy went away).
func (s *Store) Forget(id spiffeid.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.entries, id)
}

// Issued is the number of certificates the store has minted.
func (s *Store) Issued() uint64 { return s.issued.Load() }

// NextRotation is the earliest RotateAt of the held SVIDs, zero if none.
func (s *Store) NextRotation() time.Time {
	return s.earliest(func(sv *SVID) time.Time { return sv.RotateAt() })
}

// EarliestExpiry is the earliest NotAfter of the held SVIDs, zero if none.
func (s *Store) EarliestExpiry() time.Time {
	return s.earliest(func(sv *SVID) time.Time { return sv.NotAfter })
}

func (s *Store) earliest(at func(*SVID) time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var t time.Time
	for _, e := range s.entries {
		sv := e.svid.Load()
		if sv == nil {
			continue
		}
		if v := at(sv); t.IsZero() || v.Before(t) {
			t = v
		}
	}
	return t
}

// snapshot returns the held entries.
func (s *Store) snapshot() map[spiffeid.ID]*storeEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[spiffeid.ID]*storeEntry, len(s.entries))
	for id, e := range s.entries {
		out[id] = e
	}
	return out
}

// holds reports whether e is still the entry for id (not forgotten).
func (s *Store) holds(id spiffeid.ID, e *storeEntry) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entries[id] == e
}
