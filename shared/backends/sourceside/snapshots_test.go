package sourceside_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/standby-dr/standby/shared/azure/azsnapshots"
	. "github.com/standby-dr/standby/shared/backends/sourceside"
	_ "github.com/standby-dr/standby/shared/backends/standins" // registers the local compute
	"github.com/standby-dr/standby/shared/standin/localcompute"
)

const testSub = "6f1c2a3b-0d4e-4f5a-8b9c-0123456789ab"

func settings(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

// StandbySourceCompute selects Azure or the local compute, and refuses anything else naming the part.
func TestOpenDiskSnapshots(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	s, err := OpenDiskSnapshots(settings(map[string]string{SettingSourceCompute: "SubscriptionId=" + testSub}), log)
	if az, ok := s.(*azsnapshots.Snapshots); err != nil || !ok || az.SubscriptionID != testSub {
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

// A build without the stand-ins (the agent's Azure build) refuses a setting that names one, saying which
// build runs it, and changes nothing.
func TestStandInsMissingFromTheBuild(t *testing.T) {
	registered := SwapStandIns(nil)
	defer SwapStandIns(registered)
	log := slog.New(slog.DiscardHandler)
	_, err := OpenDiskSnapshots(settings(map[string]string{SettingSourceCompute: "UseLocalCompute=true;Dir=" + t.TempDir()}), log)
	if err == nil || !strings.Contains(err.Error(), "the local compute, a local stand-in this build does not include") || !strings.Contains(err.Error(), "-tags standin") {
		t.Errorf("local compute without stand-ins: %v", err)
	}
	_, err = OpenStream(settings(map[string]string{SettingEventHubs: "UseEmbeddedBroker=true;Path=" + t.TempDir() + "/b.db"}))
	if err == nil || !strings.Contains(err.Error(), SettingEventHubs+" names the embedded broker") {
		t.Errorf("embedded broker without stand-ins: %v", err)
	}
}
