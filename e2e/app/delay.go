package main

import (
	"fmt"
	"net/http"
	"time"
)

// delayHeader makes the echo app wait before it answers: a Go duration, at most
// maxDelay. It gives tests a request that is still in flight for a known while (a
// pod told to stop during it must still answer it).
const delayHeader = "x-delay"

const maxDelay = 30 * time.Second

// withDelay waits for the request's x-delay before calling h; a malformed or too long
// delay is a 400 that names the header.
func withDelay(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.Header.Get(delayHeader)
		if v == "" {
			h.ServeHTTP(w, r)
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > maxDelay {
			http.Error(w, fmt.Sprintf("header %s: %q is not a duration between 0s and %s", delayHeader, v, maxDelay), http.StatusBadRequest)
			return
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		h.ServeHTTP(w, r)
	})
}
