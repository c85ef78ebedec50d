package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestOutputFormat: every command's -o goes through outputFormat: json and yaml
// encode the value, the command's human form (its default) calls the printer, and an
// unknown format is refused naming the ones accepted, without printing anything.
func TestOutputFormat(t *testing.T) {
	v := map[string]any{"proxy": "web.demo", "synced": true}
	for _, c := range []struct {
		human, arg, want, err string
	}{
		{"table", "", "HUMAN", ""},
		{"table", "table", "HUMAN", ""},
		{"text", "text", "HUMAN", ""},
		{"table", "json", "{\n  \"proxy\": \"web.demo\",\n  \"synced\": true\n}\n", ""},
		{"table", "yaml", "proxy: web.demo\nsynced: true\n", ""},
		{"table", "text", "", "-o text: want table, json or yaml"},
		{"text", "wide", "", "-o wide: want text, json or yaml"},
	} {
		f := pflag.NewFlagSet("t", pflag.ContinueOnError)
		o := addOutputFlag(f, c.human)
		if c.arg != "" {
			if err := f.Parse([]string{"-o", c.arg}); err != nil {
				t.Fatal(err)
			}
		}
		var buf bytes.Buffer
		err := o.print(&buf, v, func() error { buf.WriteString("HUMAN"); return nil })
		if c.err != "" {
			if err == nil || err.Error() != c.err || buf.Len() != 0 || o.check() == nil {
				t.Errorf("-o %s (human %s): err %v, output %q; want %q and nothing printed", c.arg, c.human, err, buf.String(), c.err)
			}
			continue
		}
		if err != nil || buf.String() != c.want {
			t.Errorf("-o %s (human %s): %q, %v; want %q", c.arg, c.human, buf.String(), err, c.want)
		}
		if strings.Contains(f.Lookup("output").Usage, c.human) == false {
			t.Errorf("usage %q does not name %s", f.Lookup("output").Usage, c.human)
		}
	}
}
