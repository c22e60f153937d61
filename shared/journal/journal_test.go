package journal_test

import (
	"testing"

	"github.com/standby-dr/standby/shared/azconn"
	"github.com/standby-dr/standby/shared/journal"
	"github.com/standby-dr/standby/shared/pageblobs"
	"github.com/standby-dr/standby/shared/storetest"
	"github.com/standby-dr/standby/shared/testenv"
)

func TestJournalStoreContractAzurite(t *testing.T) {
	cs := testenv.Storage(t, "source")
	svc, err := pageblobs.ServiceClient(azconn.Setting{Name: "source", ConnectionString: cs})
	if err != nil {
		t.Fatal(err)
	}
	storetest.RunJournalStore(t, journal.New(svc, testenv.Unique("journal")), "group-1")
}
