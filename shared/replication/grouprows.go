package replication

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// GroupRows names rows of a group's partition: the ones a change writes (UpdateGroup).
type GroupRows uint8

// The rows of a group's record, one per writer (GroupRecord).
const (
	StateRow GroupRows = 1 << iota
	ProgressRow
	AgentRow
	HealthRow

	// AllRows is every row: what a test's set-up writes.
	AllRows = StateRow | ProgressRow | AgentRow | HealthRow
)

// recordRow is one row of a group's record: its row key, its part of the record, and the part as the
// row is written (with the row's keys).
type recordRow struct {
	row    GroupRows
	key    string
	part   func(r *GroupRecord) any // a pointer into r
	entity func(r *GroupRecord) any
}

// recordRows are the record's rows, the state row first.
var recordRows = []recordRow{
	{StateRow, stateRow, func(r *GroupRecord) any { return &r.GroupState },
		func(r *GroupRecord) any { return r.GroupState }},
	{ProgressRow, "progress", func(r *GroupRecord) any { return &r.GroupProgress },
		func(r *GroupRecord) any {
			return struct {
				Keys
				GroupProgress
			}{Keys{r.PartitionKey, "progress"}, r.GroupProgress}
		}},
	{AgentRow, "agent", func(r *GroupRecord) any { return &r.AgentStatus },
		func(r *GroupRecord) any {
			return struct {
				Keys
				AgentStatus
			}{Keys{r.PartitionKey, "agent"}, r.AgentStatus}
		}},
	{HealthRow, "health", func(r *GroupRecord) any { return &r.GroupHealth },
		func(r *GroupRecord) any {
			return struct {
				Keys
				GroupHealth
			}{Keys{r.PartitionKey, "health"}, r.GroupHealth}
		}},
}

func (rows GroupRows) String() string {
	var names []string
	for _, rr := range recordRows {
		if rows&rr.row != 0 {
			names = append(names, rr.key)
		}
	}
	return strings.Join(names, "+")
}

// loadedRecord is a group's record with the ETag of each row read (a row missing: a group made before
// the split, whose state row still holds that part).
type loadedRecord struct {
	rec   GroupRecord
	etags map[GroupRows]ETag
}

// recordReader collects a record from a partition query. Rows arrive in key order, the state row after
// the others, and a state row from before the split holds every part: so the state row is decoded
// into the whole record, each other row into a part of its own, and the parts replace the state row's
// when the query is done.
type recordReader struct {
	loaded loadedRecord
	parts  GroupRecord
}

// row takes one row of the query, reporting whether it is a record row.
func (rd *recordReader) row(key string, decode func(any) error, etag ETag) (bool, error) {
	for _, rr := range recordRows {
		if rr.key != key {
			continue
		}
		if rd.loaded.etags == nil {
			rd.loaded.etags = map[GroupRows]ETag{}
		}
		rd.loaded.etags[rr.row] = etag
		if rr.row == StateRow {
			return true, decode(&rd.loaded.rec)
		}
		return true, decode(rr.part(&rd.parts))
	}
	return false, nil
}

// record is the record read; found is whether its state row was among the rows.
func (rd *recordReader) record() (loaded loadedRecord, found bool) {
	if _, found = rd.loaded.etags[StateRow]; !found {
		return loadedRecord{}, false
	}
	for _, rr := range recordRows[1:] {
		if _, ok := rd.loaded.etags[rr.row]; ok {
			reflect.ValueOf(rr.part(&rd.loaded.rec)).Elem().Set(reflect.ValueOf(rr.part(&rd.parts)).Elem())
		}
	}
	return rd.loaded, true
}

// readGroup reads a group's partition in one query: its record, with each row's ETag, and (withVMs)
// its VM rows by row key — which a change of the record does not need decoded.
func readGroup(ctx context.Context, store StateStore, group string, withVMs bool) (loadedRecord, map[string]vMRecord, error) {
	var rd recordReader
	vms := map[string]vMRecord{}
	err := store.Query(ctx, GroupsTable, group, func(decode func(any) error, etag ETag) error {
		var keys Keys
		if err := decode(&keys); err != nil {
			return err
		}
		if ok, err := rd.row(keys.RowKey, decode, etag); ok || err != nil {
			return err
		}
		if withVMs && strings.HasPrefix(keys.RowKey, vmRowPrefix) {
			var vm vMRecord
			if err := decode(&vm); err != nil {
				return err
			}
			vms[keys.RowKey] = vm
		}
		return nil
	})
	if err != nil {
		return loadedRecord{}, nil, err
	}
	loaded, found := rd.record()
	if !found {
		return loadedRecord{}, nil, fmt.Errorf("group %s does not exist: %w", group, ErrNoGroup)
	}
	return loaded, vms, nil
}

// UpdateGroup changes a group's record: change may read every row but writes only the rows named, in
// one transaction guarded by the ETag each was read with, so only writers of the same row contend. A
// change to a row it did not name is refused (a bug, never silently lost). A record from before the
// split gets its missing rows in the same transaction, from what its state row held. ErrUnchanged
// from change writes nothing.
func UpdateGroup(ctx context.Context, store StateStore, group string, rows GroupRows, change func(*GroupRecord) error) (GroupRecord, error) {
	for attempt := 0; attempt < maxRaces; attempt++ {
		if err := backOff(ctx, attempt); err != nil {
			return GroupRecord{}, err
		}
		loaded, _, err := readGroup(ctx, store, group, false)
		if err != nil {
			return GroupRecord{}, err
		}
		before, rec := loaded.rec, loaded.rec
		if err := change(&rec); err != nil {
			if errors.Is(err, ErrUnchanged) {
				return loaded.rec, nil
			}
			return loaded.rec, err
		}
		var ops []TxOp
		for _, rr := range recordRows {
			etag, present := loaded.etags[rr.row]
			switch {
			case rows&rr.row == 0 && !reflect.DeepEqual(rr.part(&before), rr.part(&rec)):
				return loaded.rec, fmt.Errorf("group %s: a change named the rows %s but changed the %s row", group, rows, rr.key)
			case rows&rr.row != 0 && present:
				ops = append(ops, TxOp{Kind: TxUpdate, Entity: rr.entity(&rec), IfMatch: etag})
			case !present: // a record from before the split: this part moves to its own row now
				ops = append(ops, TxOp{Kind: TxInsert, Entity: rr.entity(&rec)})
			}
		}
		err = store.Transact(ctx, GroupsTable, ops)
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
			continue // another writer of these rows, or a deletion: read again
		}
		if err != nil {
			return loaded.rec, err
		}
		return rec, nil
	}
	return GroupRecord{}, fmt.Errorf("group %s, rows %s: too many concurrent changes: %w", group, rows, ErrConflict)
}

// createRecordOps are the writes that make a new group's record: the state row inserted (which fails
// when the group exists), every other row upserted over what a deletion that stopped halfway left.
func createRecordOps(rec *GroupRecord) []TxOp {
	ops := make([]TxOp, 0, len(recordRows))
	for _, rr := range recordRows {
		kind := TxUpsert
		if rr.row == StateRow {
			kind = TxInsert
		}
		ops = append(ops, TxOp{Kind: kind, Entity: rr.entity(rec)})
	}
	return ops
}
