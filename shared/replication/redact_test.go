package replication_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/standby-dr/standby/shared/replication"
)

func TestRedact(t *testing.T) {
	secrets := []string{
		"https://acct.blob.core.windows.net/c/b.vhd?sv=2024-01-01&se=2026&sr=b&sp=r&sig=SECRETSIG%3D",
		"DefaultEndpointsProtocol=https;AccountName=a;AccountKey=SECRETKEY==;EndpointSuffix=core.windows.net",
		"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=SECRETSAK=",
		"GET https://app.azurewebsites.net/api/v1/groups?code=SECRETCODE",
		"Authorization: Bearer SECRETTOKEN.abc",
	}
	for _, s := range secrets {
		if got := replication.Redact(s); strings.Contains(got, "SECRET") {
			t.Errorf("Redact(%q) = %q", s, got)
		}
	}
	if got := replication.Redact("https://acct.blob.core.windows.net/c/b.vhd"); got != "https://acct.blob.core.windows.net/c/b.vhd" {
		t.Errorf("a URL without a secret changed: %s", got)
	}
	var buf bytes.Buffer
	log := slog.New(replication.RedactingHandler(slog.NewJSONHandler(&buf, nil))).With("conn", secrets[1])
	log.Warn("copying "+secrets[0], "err", errors.New("failed: "+secrets[2]), slog.Group("g", "url", secrets[3]))
	if strings.Contains(buf.String(), "SECRET") {
		t.Fatalf("a log record holds a secret: %s", buf.String())
	}
}
