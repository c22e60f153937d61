package tables_test

import (
	"context"
	"testing"

	"github.com/standby-dr/standby/shared/azure/tables"
	"github.com/standby-dr/standby/shared/testkit/storetest"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

func TestStateStoreContractAzurite(t *testing.T) {
	storetest.RunStateStore(t, tables.New(testenv.TableService(t, "target")), testenv.Unique("state"))
}

// The health check queries one table (an operation the Storage Table Data roles allow).
func TestPing(t *testing.T) {
	if err := tables.New(testenv.TableService(t, "target")).Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}
