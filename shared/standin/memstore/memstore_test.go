package memstore

import (
	"testing"

	"github.com/standby-dr/standby/shared/testkit/storetest"
)

func TestPageStoreContract(t *testing.T)    { storetest.RunPageStore(t, NewPages(), "disks") }
func TestStateStoreContract(t *testing.T)   { storetest.RunStateStore(t, NewState(), "state") }
func TestJournalStoreContract(t *testing.T) { storetest.RunJournalStore(t, NewJournal(), "group-1") }
