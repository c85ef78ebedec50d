package scenario

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
)

// Load reads, substitutes, defaults and validates one scenario file. Problems in the
// file are *Error values joined with errors.Join; a file that cannot be read gives
// the os error wrapped.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", path, err)
	}
	return parse(path, filepath.Dir(abs), data)
}

// Files lists the scenario files of dir: every `*.yaml` entry directly in it (not in
// subdirectories) that is not a directory or other special file, sorted by file name.
func Files(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list scenarios: %w", err)
	}
	var files []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		// Stat follows symbolic links; a file that cannot be examined is listed so
		// that loading it reports why.
		info, err := os.Stat(path)
		if err != nil || info.Mode().IsRegular() {
			files = append(files, path)
		}
	}
	return files, nil
}

// LoadDir loads every file Files lists, in that order. It returns the scenarios that
// loaded together with an error joining the problems of those that did not, so that a
// runner can run the good ones and fail the others. A name used by an earlier file
// makes a later file fail. A directory without scenario files is an error.
func LoadDir(dir string) ([]*Scenario, error) {
	files, err := Files(dir)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no *.yaml scenario files in %s", dir)
	}
	var (
		scenarios []*Scenario
		errs      []error
		byName    = make(map[string]string)
	)
	for _, file := range files {
		sc, err := Load(file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if first, ok := byName[sc.Name]; ok {
			errs = append(errs, &Error{File: file, Field: "name", Msg: fmt.Sprintf("%q is also the name of %s", sc.Name, first)})
			continue
		}
		byName[sc.Name] = file
		scenarios = append(scenarios, sc)
	}
	return scenarios, errors.Join(errs...)
}

// parse turns the content of the scenario file named file, in directory dir, into a
// validated Scenario.
func parse(file, dir string, data []byte) (*Scenario, error) {
	p := &problems{file: file}
	docs, err := splitDocuments(data)
	switch {
	case err != nil:
		return nil, &Error{File: file, Msg: "invalid YAML: " + err.Error()}
	case len(docs) == 0:
		return nil, &Error{File: file, Msg: "empty scenario"}
	case len(docs) > 1:
		return nil, &Error{File: file, Msg: "holds " + strconv.Itoa(len(docs)) + " YAML documents; want one scenario per file"}
	}
	checkShape(p, "", docs[0].obj, reflect.TypeFor[Scenario]())
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	sc, err := decode(docs[0].obj)
	if err != nil {
		return nil, &Error{File: file, Msg: err.Error()}
	}
	sc.Path, sc.Dir = file, dir

	s := &substituter{dir: dir, p: p, cache: make(map[string]string)}
	s.walk("", reflect.ValueOf(sc))
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	applyDefaults(sc)
	validate(p, sc)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return sc, nil
}

// decode decodes a mapping that checkShape accepted. Unknown fields are still refused
// here as a second line of defence.
func decode(obj map[string]any) (*Scenario, error) {
	js, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode scenario: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var sc Scenario
	if err := dec.Decode(&sc); err != nil {
		return nil, fmt.Errorf("decode scenario: %w", err)
	}
	return &sc, nil
}

// applyDefaults names unnamed steps `step-<index>` (from 1) and gives HTTP requests
// method GET.
func applyDefaults(sc *Scenario) {
	for i := range sc.Steps {
		st := &sc.Steps[i]
		if st.Name == "" {
			st.Name = "step-" + strconv.Itoa(i+1)
		}
		if r := st.Request; r != nil && r.TCP == "" && r.Method == "" {
			r.Method = "GET"
		}
		if l := st.UnderLoad; l != nil && l.Request.Method == "" {
			l.Request.Method = "GET"
		}
	}
}
