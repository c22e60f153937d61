package journal_test

import (
	"testing"

	"github.com/standby-dr/standby/shared/azure/journal"
	"github.com/standby-dr/standby/shared/testkit/storetest"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

func TestJournalStoreContractAzurite(t *testing.T) {
	storetest.RunJournalStore(t, journal.New(testenv.BlobService(t, "source"), testenv.Unique("journal")), "group-1")
}
