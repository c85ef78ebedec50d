// Package adversarial attacks a real wardend the way a process with one pod's
// credential (or none) would: real gRPC clients over TLS against the wardend binary.
// Each test asserts what was refused, what was logged, and that nothing of another
// identity was served. The directory-mode wardend here listens on loopback only.
package adversarial
