package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenmesh/warden/watch"
	"github.com/wardenmesh/warden/xds"
)

// analyzeRow is the documented JSON shape of one diagnostic of `wardenctl analyze -o json`.
type analyzeRow struct {
	Severity  string   `json:"severity"`
	File      string   `json:"file,omitempty"` // "" for objects from the API server
	Doc       int      `json:"doc"`            // 0-based document in file; -1 for the whole file
	Kind      string   `json:"kind,omitempty"`
	Namespace string   `json:"namespace,omitempty"`
	Name      string   `json:"name,omitempty"`
	Field     string   `json:"field,omitempty"`
	Message   string   `json:"message"`
	Proxies   []string `json:"proxies,omitempty"` // proxies whose translation reported it
	Text      string   `json:"text"`              // the one-line form wardend logs
}

func newAnalyzeCmd() *cobra.Command {
	var (
		dir     string
		servers []string
		output  string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "analyze",
		Short: "Report every configuration problem, offline on a folder (-f) or from a running wardend",
		Long: `analyze reports every diagnostic Warden has about a configuration: decoding
problems (file, document, object, field) and translation problems (with the proxies
they affect). With -f DIR it reads the folder offline, with wardend's decoder and
translation, for every workload with a proxy; without -f it asks running wardends
(--server) what they report for their connected proxies.

Exit status: 0 no problem, 1 warnings only, 2 errors (use it in CI before kubectl apply).`,
		Example: `  wardenctl analyze -f ./mesh
  wardenctl analyze -f ./mesh -o json
  wardenctl analyze --server 127.0.0.1:15014`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %s: want table or json", output)
			}
			var probs []xds.ConfigProblem
			if dir != "" {
				in, _, err := watch.LoadDir(dir)
				if err != nil {
					return err
				}
				probs = xds.Analyze(in)
			} else {
				resp, _, err := fetchAll(servers, timeout)
				if err != nil {
					return err
				}
				probs = resp.Diagnostics
			}
			if err := printAnalysis(cmd.OutOrStdout(), output, probs); err != nil {
				return err
			}
			return analyzeExit(probs)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&dir, "filename", "f", "", "folder of manifests to analyze offline (as wardend --config-dir reads it)")
	f.StringSliceVar(&servers, "server", []string{defaultDebugAddr()}, "without -f: wardend debug address(es), as for status")
	f.StringVarP(&output, "output", "o", "table", "output format: table or json")
	f.DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for wardend")
	return cmd
}

func printAnalysis(w io.Writer, output string, probs []xds.ConfigProblem) error {
	if output == "json" {
		rows := make([]analyzeRow, 0, len(probs))
		for _, p := range probs {
			rows = append(rows, analyzeRow{Severity: p.Severity, File: p.Source.File, Doc: p.Source.Doc, Kind: p.Kind,
				Namespace: p.Namespace, Name: p.Name, Field: p.Field, Message: p.Message, Proxies: p.Proxies, Text: p.String()})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(rows)
	}
	var errs, warns int
	for _, p := range probs {
		if p.IsError() {
			errs++
		} else {
			warns++
		}
		fmt.Fprintf(w, "%s: %s\n", strings.ToUpper(p.Severity), p.String())
		if len(p.Proxies) > 0 {
			fmt.Fprintf(w, "    proxies: %s\n", strings.Join(p.Proxies, ", "))
		}
	}
	if len(probs) == 0 {
		fmt.Fprintln(w, "no configuration problems")
		return nil
	}
	fmt.Fprintf(w, "%d error(s), %d warning(s)\n", errs, warns)
	return nil
}

// analyzeExit is the exit status: 0 none, 1 warnings only, 2 errors.
func analyzeExit(probs []xds.ConfigProblem) error {
	var errs, warns int
	for _, p := range probs {
		if p.IsError() {
			errs++
		} else {
			warns++
		}
	}
	switch {
	case errs > 0:
		return &exitError{code: 2, msg: fmt.Sprintf("%d configuration error(s), %d warning(s)", errs, warns)}
	case warns > 0:
		return &exitError{code: 1, msg: fmt.Sprintf("%d configuration warning(s)", warns)}
	}
	return nil
}
