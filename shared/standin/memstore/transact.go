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
		op     replication.TxOp
		pk, rk string
		data   []byte
	}
	if len(ops) == 0 || len(ops) > replication.MaxTxOps {
		return fmt.Errorf("%w: a transaction takes 1 to %d writes, not %d", replication.ErrInvalid, replication.MaxTxOps, len(ops))
	}
	writes := make([]write, len(ops))
	seen := map[string]bool{}
	for i, op := range ops {
		w := write{op: op, pk: op.Keys.PartitionKey, rk: op.Keys.RowKey}
		if op.Kind != replication.TxDelete {
			var err error
			if w.pk, w.rk, w.data, err = keysOf(op.Entity); err != nil {
				return err
			}
		}
		if w.pk != writes[0].pk && i > 0 || w.pk == "" {
			return fmt.Errorf("%w: a transaction writes one partition", replication.ErrInvalid)
		}
		if seen[w.rk] {
			return fmt.Errorf("%w: a transaction writes each entity once (%s twice)", replication.ErrInvalid, w.rk)
		}
		seen[w.rk] = true
		writes[i] = w
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rows := s.row(table, writes[0].pk)
	for _, w := range writes {
		old, exists := rows[w.rk]
		switch {
		case w.op.Kind == replication.TxInsert && exists:
			return fmt.Errorf("%s/%s/%s exists: %w", table, w.pk, w.rk, replication.ErrConflict)
		case (w.op.Kind == replication.TxUpdate || w.op.Kind == replication.TxDelete) && !exists:
			return fmt.Errorf("%s/%s/%s: %w", table, w.pk, w.rk, replication.ErrNotFound)
		case (w.op.Kind == replication.TxUpdate || w.op.Kind == replication.TxDelete) && w.op.IfMatch != "" && w.op.IfMatch != old.etag:
			return fmt.Errorf("%s/%s/%s changed: %w", table, w.pk, w.rk, replication.ErrConflict)
		case w.op.Kind < replication.TxInsert || w.op.Kind > replication.TxDelete:
			return fmt.Errorf("%w: transaction write kind %d", replication.ErrInvalid, w.op.Kind)
		}
	}
	for _, w := range writes {
		if w.op.Kind == replication.TxDelete {
			delete(rows, w.rk)
			continue
		}
		rows[w.rk] = entity{data: w.data, etag: s.nextETag()}
	}
	return nil
}
