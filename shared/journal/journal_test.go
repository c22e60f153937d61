package journal_test

import (
	"testing"

	"github.com/standby-dr/standby/shared/journal"
	"github.com/standby-dr/standby/shared/storetest"
	"github.com/standby-dr/standby/shared/testenv"
)

func TestJournalStoreContractAzurite(t *testing.T) {
	storetest.RunJournalStore(t, journal.New(testenv.BlobService(t, "source"), testenv.Unique("journal")), "group-1")
}
