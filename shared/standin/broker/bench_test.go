package broker

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkFigure_broker_publish_events_per_s: one-event sends to the embedded broker (each a durable
// SQLite transaction), the change stream's local cost per descriptor.
func BenchmarkFigure_broker_publish_events_per_s(b *testing.B) {
	br, err := Open(filepath.Join(b.TempDir(), "broker.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	ctx := context.Background()
	br.Apply(ctx, Config{EventHubs: []HubConfig{{Name: "changes", PartitionCount: 4}}})
	body := make([]byte, 300) // a descriptor's size
	const n = 2000
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for j := 0; j < n; j++ {
			if _, err := br.Publish(ctx, "changes", "g1", []Event{{Body: body}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "events/s")
}
