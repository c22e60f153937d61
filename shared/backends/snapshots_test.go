package backends

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/standby-dr/standby/shared/azure/azcompute"
	"github.com/standby-dr/standby/shared/standin/localcompute"
)

// StandbySourceCompute selects Azure or the local compute, and refuses anything else naming the part.
func TestOpenDiskSnapshots(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	s, err := OpenDiskSnapshots(settings(map[string]string{SettingSourceCompute: "SubscriptionId=" + testSub}), log)
	if az, ok := s.(*azcompute.Snapshots); err != nil || !ok || az.SubscriptionID != testSub {
		t.Fatalf("Azure: %T %v", s, err)
	}
	s, err = OpenDiskSnapshots(settings(map[string]string{SettingSourceCompute: "UseLocalCompute=true;Dir=" + t.TempDir(),
		SettingCache: "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1"}), log)
	if _, ok := s.(*localcompute.Compute); err != nil || !ok {
		t.Fatalf("local: %T %v", s, err)
	}
	for value, want := range map[string]string{
		"":                                        SettingSourceCompute,
		"UseLocalCompute=true":                    "Dir=",
		"UseLocalCompute=true;Dir=x;Images=y":     "Dir=",
		"SubscriptionId=" + testSub + ";Dir=x":    "Dir",
		"SubscriptionId=not-a-guid":               "GUID",
		"SubscriptionId=" + testSub + ";Location": "Key=value",
	} {
		if _, err := OpenDiskSnapshots(settings(map[string]string{SettingSourceCompute: value}), log); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error naming %q", value, err, want)
		}
	}
}
