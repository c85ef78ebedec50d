// Package scenario loads and validates end-to-end scenario files (format version 1.2,
// described in FORMAT.md beside this file; version 1 is shared/docs/scenarios.md, and
// 1.1 and 1.2 only add optional fields) so that a runner can execute them.
//
// Loading is strict: unknown fields, wrong value types, duplicate keys and invalid
// values are errors that name the file and the YAML path of the offending value, for
// example `x.yaml: steps[2].request.exepct: unknown field`. List indexes in paths
// count from 0. After parsing, every `${file:PATH}` inside a string value is replaced by
// that file's content with surrounding whitespace trimmed, PATH being relative to the
// scenario file. The package starts no processes and opens no connections.
package scenario
