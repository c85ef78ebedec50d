package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// outputFormat is the value of a command's -o flag: json, yaml, or the command's own
// human-readable form (named table or text). Every command prints through it.
type outputFormat struct {
	value string
	human string // "table" or "text"
}

// addOutputFlag registers -o/--output on f with the human form as default.
func addOutputFlag(f *pflag.FlagSet, human string) *outputFormat {
	o := &outputFormat{human: human}
	f.StringVarP(&o.value, "output", "o", human, "output format: "+human+", json or yaml")
	return o
}

// check rejects an unknown format before any work is done (or wardend is asked).
func (o *outputFormat) check() error {
	switch o.value {
	case "", o.human, "json", "yaml":
		return nil
	}
	return fmt.Errorf("-o %s: want %s, json or yaml", o.value, o.human)
}

// isHuman reports whether the human-readable form was asked for.
func (o *outputFormat) isHuman() bool { return o.value == "" || o.value == o.human }

// print writes v as JSON or YAML, or calls human for the human-readable form.
func (o *outputFormat) print(w io.Writer, v any, human func() error) error {
	if err := o.check(); err != nil {
		return err
	}
	switch o.value {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode yaml: %w", err)
		}
		_, err = w.Write(b)
		return err
	}
	return human()
}
