package tables

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/standby-dr/standby/shared/azure/azconn"
	"github.com/standby-dr/standby/shared/replication"
)

// Transact submits the writes as one entity group transaction (POST $batch with one changeset: all
// or nothing, one partition, at most 100 entities, each once). The service reports a failed write
// inside the batch's own multipart answer, which the SDK turns into an error without that write's
// status; so a failed transaction's preconditions are read again to name the failure (ErrConflict,
// ErrNotFound), and anything else is the translated error.
func (s *Store) Transact(ctx context.Context, table string, ops []replication.TxOp) error {
	actions := make([]aztables.TransactionAction, len(ops))
	keys := make([]replication.Keys, len(ops))
	for i, op := range ops {
		var data []byte
		var err error
		if op.Kind == replication.TxDelete {
			keys[i] = op.Keys
			data, err = json.Marshal(map[string]string{"PartitionKey": op.Keys.PartitionKey, "RowKey": op.Keys.RowKey})
		} else {
			data, keys[i].PartitionKey, keys[i].RowKey, err = encodeEntity(op.Entity)
		}
		if err != nil {
			return fmt.Errorf("%w: %v", replication.ErrInvalid, err)
		}
		etag := azcore.ETagAny
		if op.IfMatch != "" {
			etag = azcore.ETag(op.IfMatch)
		}
		switch op.Kind {
		case replication.TxInsert:
			actions[i] = aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: data}
		case replication.TxUpdate:
			actions[i] = aztables.TransactionAction{ActionType: aztables.TransactionTypeUpdateReplace, Entity: data, IfMatch: &etag}
		case replication.TxUpsert:
			actions[i] = aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: data}
		case replication.TxDelete:
			actions[i] = aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete, Entity: data, IfMatch: &etag}
		default:
			return fmt.Errorf("%w: transaction write kind %d", replication.ErrInvalid, op.Kind)
		}
	}
	if err := replication.CheckTx(keys); err != nil {
		return err
	}
	client := s.svc.NewClient(table)
	_, err := client.SubmitTransaction(ctx, actions, nil)
	if isTableNotFound(err) {
		if err = s.EnsureTable(ctx, table); err == nil {
			_, err = client.SubmitTransaction(ctx, actions, nil)
		}
	}
	if err == nil {
		return nil
	}
	what := fmt.Sprintf("a transaction of %d writes to %s/%s", len(ops), table, keys[0].PartitionKey)
	if failed := s.failedPrecondition(ctx, client, table, ops, keys); failed != nil {
		return fmt.Errorf("%s: %w", what, failed)
	}
	return azconn.Translate(err, what)
}

// failedPrecondition reads the entities again and names the first write whose precondition does not
// hold now (nil when all hold: the transaction failed for another reason).
func (s *Store) failedPrecondition(ctx context.Context, client *aztables.Client, table string, ops []replication.TxOp, keys []replication.Keys) error {
	for i, op := range ops {
		if op.Kind == replication.TxUpsert {
			continue
		}
		resp, err := client.GetEntity(ctx, keys[i].PartitionKey, keys[i].RowKey, nil)
		err = azconn.Translate(err, "")
		exists := err == nil
		if err != nil && !errors.Is(err, replication.ErrNotFound) {
			return nil // cannot tell
		}
		if failed := replication.TxPrecondition(op, exists, replication.ETag(resp.ETag), fmt.Sprintf("%s/%s/%s", table, keys[i].PartitionKey, keys[i].RowKey)); failed != nil {
			return failed
		}
	}
	return nil
}
