// Package tables is the state store (replication.StateStore) over Azure Table storage.
package tables

import (
	"context"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/standby-dr/standby/shared/azure/azconn"
	"github.com/standby-dr/standby/shared/replication"
)

// Store is a state store over one storage account's Table service.
type Store struct {
	svc *aztables.ServiceClient
}

// New wraps a Table service client.
func New(svc *aztables.ServiceClient) *Store { return &Store{svc: svc} }

// ServiceClient builds a Table service client from a resolved connection setting.
func ServiceClient(s azconn.Setting) (*aztables.ServiceClient, error) {
	opts := &aztables.ClientOptions{ClientOptions: azconn.ClientOptions()}
	return azconn.Connect(s, func(cs string) (*aztables.ServiceClient, error) {
		return aztables.NewServiceClientFromConnectionString(cs, opts)
	}, func(cred azcore.TokenCredential) (*aztables.ServiceClient, error) {
		return aztables.NewServiceClient(s.ServiceURI, cred, opts)
	})
}

// EnsureTable creates the table when missing.
func (s *Store) EnsureTable(ctx context.Context, table string) error {
	_, err := s.svc.CreateTable(ctx, table, nil)
	if err != nil && !strings.Contains(err.Error(), "TableAlreadyExists") {
		return azconn.Translate(err, "creating table "+table)
	}
	return nil
}

// isTableNotFound: writes create their table on first use, so callers need no set-up step.
func isTableNotFound(err error) bool {
	return err != nil && strings.Contains(err.Error(), "TableNotFound")
}

// Ping checks that the Table service answers (the health check): it queries one table (Query Tables
// with $top=1). That needs only Microsoft.Storage/storageAccounts/tableServices/tables/read, which
// Storage Table Data Reader and Contributor grant; Get Table Service Properties is not in those roles.
func (s *Store) Ping(ctx context.Context) error {
	pager := s.svc.NewListTablesPager(&aztables.ListTablesOptions{Top: ptr(int32(1))})
	_, err := pager.NextPage(ctx)
	return azconn.Translate(err, "listing tables")
}

func ptr[T any](v T) *T { return &v }

// Get reads one entity into a typed struct.
func (s *Store) Get(ctx context.Context, table, pk, rk string, into any) (replication.ETag, error) {
	resp, err := s.svc.NewClient(table).GetEntity(ctx, pk, rk, nil)
	if err != nil {
		return "", azconn.Translate(err, fmt.Sprintf("reading %s/%s/%s", table, pk, rk))
	}
	if err := decodeEntity(resp.Value, into); err != nil {
		return "", err
	}
	return replication.ETag(resp.ETag), nil
}

// Insert adds a new entity; an existing key → ErrConflict.
func (s *Store) Insert(ctx context.Context, table string, entity any) (replication.ETag, error) {
	data, pk, rk, err := encodeEntity(entity)
	if err != nil {
		return "", fmt.Errorf("%w: %v", replication.ErrInvalid, err)
	}
	resp, err := s.svc.NewClient(table).AddEntity(ctx, data, nil)
	if isTableNotFound(err) {
		if err = s.EnsureTable(ctx, table); err == nil {
			resp, err = s.svc.NewClient(table).AddEntity(ctx, data, nil)
		}
	}
	if err != nil {
		return "", azconn.Translate(err, fmt.Sprintf("inserting %s/%s/%s", table, pk, rk))
	}
	return replication.ETag(resp.ETag), nil
}

// Update replaces an entity if its ETag still matches (any ETag when ifMatch is empty).
func (s *Store) Update(ctx context.Context, table string, entity any, ifMatch replication.ETag) (replication.ETag, error) {
	data, pk, rk, err := encodeEntity(entity)
	if err != nil {
		return "", fmt.Errorf("%w: %v", replication.ErrInvalid, err)
	}
	etag := azcore.ETagAny
	if ifMatch != "" {
		etag = azcore.ETag(ifMatch)
	}
	resp, err := s.svc.NewClient(table).UpdateEntity(ctx, data, &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeReplace})
	if err != nil {
		return "", azconn.Translate(err, fmt.Sprintf("updating %s/%s/%s", table, pk, rk))
	}
	return replication.ETag(resp.ETag), nil
}

// Upsert inserts or replaces an entity unconditionally.
func (s *Store) Upsert(ctx context.Context, table string, entity any) (replication.ETag, error) {
	data, pk, rk, err := encodeEntity(entity)
	if err != nil {
		return "", fmt.Errorf("%w: %v", replication.ErrInvalid, err)
	}
	upsert := func() (aztables.UpsertEntityResponse, error) {
		return s.svc.NewClient(table).UpsertEntity(ctx, data, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace})
	}
	resp, err := upsert()
	if isTableNotFound(err) {
		if err = s.EnsureTable(ctx, table); err == nil {
			resp, err = upsert()
		}
	}
	if err != nil {
		return "", azconn.Translate(err, fmt.Sprintf("upserting %s/%s/%s", table, pk, rk))
	}
	return replication.ETag(resp.ETag), nil
}

// Delete removes an entity if its ETag still matches (any when ifMatch is empty).
func (s *Store) Delete(ctx context.Context, table, pk, rk string, ifMatch replication.ETag) error {
	etag := azcore.ETagAny
	if ifMatch != "" {
		etag = azcore.ETag(ifMatch)
	}
	_, err := s.svc.NewClient(table).DeleteEntity(ctx, pk, rk, &aztables.DeleteEntityOptions{IfMatch: &etag})
	return azconn.Translate(err, fmt.Sprintf("deleting %s/%s/%s", table, pk, rk))
}

// Query visits a partition's entities in row-key order.
func (s *Store) Query(ctx context.Context, table, pk string, visit func(decode func(any) error, etag replication.ETag) error) error {
	return s.list(ctx, table, fmt.Sprintf("PartitionKey eq '%s'", strings.ReplaceAll(pk, "'", "''")), visit)
}

// ListRows visits the entities with the row key, across partitions.
func (s *Store) ListRows(ctx context.Context, table, rk string, visit func(decode func(any) error, etag replication.ETag) error) error {
	return s.list(ctx, table, fmt.Sprintf("RowKey eq '%s'", strings.ReplaceAll(rk, "'", "''")), visit)
}

func (s *Store) list(ctx context.Context, table, filter string, visit func(decode func(any) error, etag replication.ETag) error) error {
	pager := s.svc.NewClient(table).NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if isTableNotFound(err) {
			return nil // a table nobody wrote to yet holds nothing
		}
		if err != nil {
			return azconn.Translate(err, fmt.Sprintf("querying %s where %s", table, filter))
		}
		for _, data := range page.Entities {
			data := data
			if err := visit(func(into any) error { return decodeEntity(data, into) }, replication.ETag(etagOf(data))); err != nil {
				return err
			}
		}
	}
	return nil
}

var _ replication.StateStore = (*Store)(nil)
