package kube

import "github.com/wardenmesh/warden/watch"

// Debounce defaults, the same as directory mode's.
const (
	DefaultHoldOff = watch.DefaultHoldOff
	DefaultMaxWait = watch.DefaultMaxWait
)
