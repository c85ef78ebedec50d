package xds

import (
	"syscall"
	"testing"
	"time"

	alsdata "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
)

// BenchmarkAccessLogIngest streams denial entries over a real TLS gRPC access log
// stream, 100 per message as Envoy batches them, into a window far smaller than the
// flood, and reports entries/s and wardend's CPU (this process: server and client)
// per 1,000 entries, without the rate cap (raw capacity). The window must stay within its caps.
func BenchmarkAccessLogIngest(b *testing.B) {
	ts := startServer(b, func(o *Options) { o.AccessLogEntries, o.AccessLogBytes, o.AccessLogRate = 5000, 2<<20, -1 })
	api := Identity{Namespace: "shop", ServiceAccount: "api", Pod: "api-0"}
	st := ts.alsStream(b, ts.token(b, api))
	batch := make([]*alsdata.HTTPAccessLogEntry, 100)
	for i := range batch {
		batch[i] = deniedHTTP(b, "/admin")
	}
	if err := st.Send(&alsv3.StreamAccessLogsMessage{Identifier: &alsv3.StreamAccessLogsMessage_Identifier{Node: nodeOf(b, api), LogName: "warden"}}); err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuTime()
	start := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := st.Send(&alsv3.StreamAccessLogsMessage{LogEntries: httpLogs(batch...)}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := st.CloseAndRecv(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	entries := float64(b.N * len(batch))
	b.ReportMetric(entries/time.Since(start).Seconds(), "entries/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/(entries/1000), "cpu-ms/1000entries")
	w := ts.srv.AccessLog().Stats()
	if w.Entries > w.MaxEntries || w.Bytes > w.MaxBytes || w.Received != uint64(entries) {
		b.Fatalf("window %+v after %v entries", w, entries)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
