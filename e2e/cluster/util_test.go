package cluster

import (
	"fmt"
	"strconv"
)

func itoa(n int) string { return strconv.Itoa(n) }

// fmtSscan parses a run id "w<n>".
func fmtSscan(runID string, n *int) (int, error) {
	return fmt.Sscanf(runID, "w%d", n)
}
