// Command wardenctl is Warden's command-line tool: proxy bootstraps, sync status,
// traffic-capture rules, and the views users need to understand their mesh.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/wardenmesh/warden/cmd/wardenctl/capture"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(exitCode(err))
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "wardenctl",
		Short:         "Inspect and operate a Warden mesh",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	conn = &connFlags{}
	addConnFlags(root.PersistentFlags(), conn)
	root.AddCommand(newBootstrapCmd(), newTokenCmd(), newStatusCmd(), capture.NewCommand())
	root.AddCommand(newCheckCmd())
	root.AddCommand(newMTLSCmd(), newDescribeCmd(), newAnalyzeCmd(), newDenialsCmd())
	return root
}

// exitError carries a specific exit code (e.g. --fail-unsynced).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func exitCode(err error) int {
	if e, ok := err.(*exitError); ok {
		return e.code
	}
	return 1
}

// defaultStateDir is shared by wardend and wardenctl bootstrap.
func defaultStateDir() string {
	if d := os.Getenv("WARDEN_STATE_DIR"); d != "" {
		return d
	}
	return "/var/lib/warden"
}

func defaultDebugAddr() string {
	if a := os.Getenv("WARDEN_DEBUG_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:15014"
}
