package azcompute

import (
	"bytes"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/testkit/fakearm"
)

// newFake starts a fake ARM and a Compute pointed at it; logs go to the returned buffer, which tests
// search for secrets (and the test fails if the token or a signature reached it).
func newFake(t *testing.T) (*fakearm.Server, *Compute, *bytes.Buffer) {
	t.Helper()
	f := fakearm.New(t)
	c, err := New(fakearm.Sub, "westeurope", fakearm.Credential{}, f.Options())
	if err != nil {
		t.Fatal(err)
	}
	var logs *bytes.Buffer
	c.Log, logs = fakearm.Logger(t)
	c.PollInterval = time.Millisecond
	c.HTTP = f.Srv.Client()
	return f, c, logs
}

const rgPath = fakearm.RGPath

func depPath(name string) string {
	return rgPath + "/providers/Microsoft.Resources/deployments/" + name
}
