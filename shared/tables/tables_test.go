package tables_test

import (
	"testing"

	"github.com/standby-dr/standby/shared/azconn"
	"github.com/standby-dr/standby/shared/storetest"
	"github.com/standby-dr/standby/shared/tables"
	"github.com/standby-dr/standby/shared/testenv"
)

func TestStateStoreContractAzurite(t *testing.T) {
	cs := testenv.Storage(t, "target")
	svc, err := tables.ServiceClient(azconn.Setting{Name: "target", ConnectionString: cs})
	if err != nil {
		t.Fatal(err)
	}
	storetest.RunStateStore(t, tables.New(svc), testenv.Unique("state"))
}
