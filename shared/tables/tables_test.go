package tables_test

import (
	"testing"

	"github.com/standby-dr/standby/shared/storetest"
	"github.com/standby-dr/standby/shared/tables"
	"github.com/standby-dr/standby/shared/testenv"
)

func TestStateStoreContractAzurite(t *testing.T) {
	storetest.RunStateStore(t, tables.New(testenv.TableService(t, "target")), testenv.Unique("state"))
}
