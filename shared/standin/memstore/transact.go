package memstore

import (
	"context"
	"fmt"

	"github.com/standby-dr/standby/shared/replication"
)

// Transact checks every write's precondition first, then applies them all under one lock: all or
// nothing, as Table storage's entity group transaction.
func (s *State) Transact(_ context.Context, table string, ops []replication.TxOp) error {
	type write struct {
		op   replication.TxOp
		keys replication.Keys
		data []byte
	}
	writes := make([]write, len(ops))
	keys := make([]replication.Keys, len(ops))
	for i, op := range ops {
		if op.Kind < replication.TxInsert || op.Kind > replication.TxDelete {
			return fmt.Errorf("%w: transaction write kind %d", replication.ErrInvalid, op.Kind)
		}
		w := write{op: op, keys: op.Keys}
		if op.Kind != replication.TxDelete {
			var err error
			if w.keys.PartitionKey, w.keys.RowKey, w.data, err = keysOf(op.Entity); err != nil {
				return err
			}
		}
		writes[i], keys[i] = w, w.keys
	}
	if err := replication.CheckTx(keys); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rows := s.row(table, keys[0].PartitionKey)
	for _, w := range writes {
		old, exists := rows[w.keys.RowKey]
		if err := replication.TxPrecondition(w.op, exists, old.etag, table+"/"+w.keys.PartitionKey+"/"+w.keys.RowKey); err != nil {
			return err
		}
	}
	for _, w := range writes {
		if w.op.Kind == replication.TxDelete {
			delete(rows, w.keys.RowKey)
			continue
		}
		rows[w.keys.RowKey] = entity{data: w.data, etag: s.nextETag()}
	}
	return nil
}
