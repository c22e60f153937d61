// Package memstore holds in-memory implementations of the storage ports (PageStore, StateStore,
// JournalStore) and the broker ports (ChangePublisher: Hub, JobSender: Queue), so the domain runs whole
// in one test process. They pass the Azure adapters' contract suites (shared/testkit/storetest, shared/testkit/brokertest).
package memstore

import "github.com/standby-dr/standby/shared/replication"

var (
	_ replication.PageStore    = (*Pages)(nil)
	_ replication.StateStore   = (*State)(nil)
	_ replication.JournalStore = (*Journal)(nil)
)
