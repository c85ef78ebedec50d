package certs

import (
	"sync"
	"testing"
	"time"
)

func TestStoreRotatesAtHalfLife(t *testing.T) {
	clock := newFakeClock(t0)
	store := NewStore(selfSignedCA(t, clock.Now), 2*time.Hour, clock.Now)
	id := mustID(t, "default", "web")

	if !store.NextRotation().IsZero() || !store.EarliestExpiry().IsZero() {
		t.Fatal("empty store has a rotation or expiry time")
	}
	first, err := store.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := store.Get(id); err != nil || again != first {
		t.Fatalf("second Get minted again (err %v)", err)
	}
	if got := store.NextRotation(); !got.Equal(first.RotateAt()) {
		t.Errorf("NextRotation = %v, want %v", got, first.RotateAt())
	}
	if got := store.EarliestExpiry(); !got.Equal(first.NotAfter) {
		t.Errorf("EarliestExpiry = %v, want %v", got, first.NotAfter)
	}

	clock.Set(first.RotateAt().Add(-time.Second))
	if sv, err := store.Get(id); err != nil || sv != first {
		t.Fatalf("re-minted before RotateAt (err %v)", err)
	}
	if got := store.Issued(); got != 1 {
		t.Fatalf("Issued = %d before half life, want 1", got)
	}

	clock.Set(first.RotateAt())
	second, err := store.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if second == first || second.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
		t.Fatal("not re-minted at RotateAt")
	}
	if got := store.Issued(); got != 2 {
		t.Errorf("Issued = %d, want 2", got)
	}
	if want := first.RotateAt().Add(-ClockSkew).Add(2 * time.Hour); !second.NotAfter.Equal(want) {
		t.Errorf("new NotAfter = %v, want %v (minted on the store's clock)", second.NotAfter, want)
	}
}

func TestStoreTracksEarliestAcrossIDs(t *testing.T) {
	clock := newFakeClock(t0)
	store := NewStore(selfSignedCA(t, clock.Now), time.Hour, clock.Now)
	a, b := mustID(t, "ns", "a"), mustID(t, "ns", "b")
	svA, err := store.Get(a)
	if err != nil {
		t.Fatal(err)
	}
	clock.Set(t0.Add(10 * time.Minute))
	if _, err := store.Get(b); err != nil {
		t.Fatal(err)
	}
	if got := store.NextRotation(); !got.Equal(svA.RotateAt()) {
		t.Errorf("NextRotation = %v, want a's %v", got, svA.RotateAt())
	}
	store.Forget(a)
	if got, want := store.NextRotation(), svA.RotateAt().Add(10*time.Minute); !got.Equal(want) {
		t.Errorf("after Forget(a) NextRotation = %v, want b's %v", got, want)
	}
	store.Forget(b)
	if !store.NextRotation().IsZero() {
		t.Error("NextRotation not zero after forgetting everything")
	}
}

func TestStoreConcurrentGetMintsOnce(t *testing.T) {
	clock := newFakeClock(t0)
	store := NewStore(selfSignedCA(t, clock.Now), time.Hour, clock.Now)
	id := mustID(t, "default", "web")

	const callers = 32
	start := make(chan struct{})
	results := make([]*SVID, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			results[i], errs[i] = store.Get(id)
		})
	}
	close(start)
	wg.Wait()
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if results[i] != results[0] {
			t.Fatalf("caller %d got a different SVID", i)
		}
	}
	if got := store.Issued(); got != 1 {
		t.Fatalf("Issued = %d after %d concurrent Gets, want 1", got, callers)
	}
}
