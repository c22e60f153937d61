package agent

import (
	"testing"

	"github.com/standby-dr/standby/shared/replication"
)

// Every source kind the domain accepts has its capture here (source_<kind>.go), and only nbd: disks
// are served as NBD exports.
func TestEverySourceKindHasACapture(t *testing.T) {
	for _, k := range replication.SourceKinds {
		c, ok := captures[k]
		if !ok {
			t.Errorf("source kind %s has no capture in the agent: add source_%s.go", k, k)
			continue
		}
		if c.exported() != (k == replication.SourceNBD) {
			t.Errorf("source kind %s: exported %v", k, c.exported())
		}
	}
	if _, _, err := captureOf(replication.DiskRefSpec{Key: "vm/d", Spec: replication.DiskSpec{Source: "tape:/dev/st0"}}); err == nil {
		t.Error("an unknown source kind was given a capture")
	}
}
