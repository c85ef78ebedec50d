package scenario

import (
	"regexp"
	"strconv"
)

// Error is one problem found in a scenario file. Load returns them joined with
// errors.Join, so errors.As finds the first one.
type Error struct {
	// File is the scenario file's path as given to Load.
	File string
	// Field is the YAML path of the offending value, such as `steps[2].request.url`;
	// empty when the problem concerns the whole file.
	Field string
	// Msg says what is wrong.
	Msg string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.File + ": " + e.Msg
	}
	return e.File + ": " + e.Field + ": " + e.Msg
}

// problems collects the errors found in one file.
type problems struct {
	file string
	errs []error
}

func (p *problems) add(field, msg string) {
	p.errs = append(p.errs, &Error{File: p.file, Field: field, Msg: msg})
}

var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// child returns the YAML path of key inside the mapping at path. Keys that are not
// plain identifiers are quoted in brackets: apps["istioinaction/webapp"].
func child(path, key string) string {
	if !plainKey.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// index returns the YAML path of item i (from 0) of the list at path.
func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
