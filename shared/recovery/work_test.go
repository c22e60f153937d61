package recovery

import (
	"encoding/json"
	"testing"
	"time"
)

// A job row written before the accessors existed reads the same through them, and what they write is
// what those rows held.
func TestJobWorkKeepsItsStoredShape(t *testing.T) {
	stored := `{"time":"2026-12-01T10:00:00.5Z","effectiveSeq":"42","effectiveTime":"2026-12-01T09:59:59Z","source:vm/d":"file:/dev/vdb",` +
		`"child:shop":"0123456789abcdef0123456789abcdef","ack:approve":"2026-12-01T10:01:00Z","action:approve":"acknowledged 2026-12-01T10:01:00Z"}`
	var w JobWork
	if err := json.Unmarshal([]byte(stored), &w); err != nil {
		t.Fatal(err)
	}
	if at, ok := w.ReplayTime(); !ok || !at.Equal(time.Date(2026, 12, 1, 10, 0, 0, 5e8, time.UTC)) {
		t.Errorf("replay time %v %v", at, ok)
	}
	if s, ok := w.EffectiveTime(); !ok || s != "2026-12-01T09:59:59Z" {
		t.Errorf("effective time %q %v", s, ok)
	}
	if w.Sources()["vm/d"] != "file:/dev/vdb" || w.Children()["shop"] != "0123456789abcdef0123456789abcdef" || len(w.Sources()) != 1 {
		t.Errorf("sources %v children %v", w.Sources(), w.Children())
	}
	if w.Ack("approve") == "" || w.ActionDone("approve") == "" || w.Ack("other") != "" {
		t.Errorf("ack %q done %q", w.Ack("approve"), w.ActionDone("approve"))
	}
	again := JobWork{}
	again.SetReplayTime(time.Date(2026, 12, 1, 10, 0, 0, 5e8, time.UTC))
	again.SetEffective(42, time.Date(2026, 12, 1, 9, 59, 59, 0, time.UTC))
	again.SetSource("vm/d", "file:/dev/vdb")
	again.SetChild("shop", "0123456789abcdef0123456789abcdef")
	again.SetAck("approve", time.Date(2026, 12, 1, 10, 1, 0, 0, time.UTC))
	again.SetActionDone("approve", "acknowledged 2026-12-01T10:01:00Z")
	data, _ := json.Marshal(again)
	var a, b map[string]string
	json.Unmarshal(data, &a)
	json.Unmarshal([]byte(stored), &b)
	if len(a) != len(b) {
		t.Fatalf("written %s, stored %s", data, stored)
	}
	for k, v := range b {
		if a[k] != v {
			t.Errorf("%s: written %q, stored %q", k, a[k], v)
		}
	}
}
