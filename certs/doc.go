// Package certs owns the mesh CA: the root (self-signed and kept in the state
// directory, or plugged in from Istio-style cacerts files), SPIFFE workload
// certificates (SVIDs), their validation and rotation, and the signed bootstrap
// tokens that let a proxy prove who it is in directory mode.
package certs
