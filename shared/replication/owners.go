package replication

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// A group owns the target blobs it created, and the existing ones it was explicitly given (a reprotect's
// original disks); no blob is ever two groups'. Ownership is one row per blob, inserted before the blob
// is created or adopted, so that of two groups naming the same blob only the first gets it. A group
// deletes only blobs it owns.

// ownersTable records each target blob's owner (partition = container, row = the blob's name with '/'
// as '~': Table keys may not hold '/').
const ownersTable = "owners"

// BlobOwner is a blob's ownership row.
type BlobOwner struct {
	Keys
	Group string    `json:"Group"`
	Given bool      `json:"Given"` // adopted through target.disks, not created
	Since time.Time `json:"Since"`
}

// blobName is the grammar of a given target blob's name: what Table keys and URLs carry safely.
var blobName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$`) // Table keys hold at most 1 KiB

func ownerKeys(ref DiskRef) Keys {
	return Keys{PartitionKey: ref.Container, RowKey: strings.ReplaceAll(ref.Name, "/", "~")}
}

// claimBlob makes group the blob's owner (fresh: just now), or says whose it is.
func claimBlob(ctx context.Context, state StateStore, ref DiskRef, group string, given bool, now time.Time) (fresh bool, err error) {
	_, err = state.Insert(ctx, ownersTable, BlobOwner{Keys: ownerKeys(ref), Group: group, Given: given, Since: now})
	if !errors.Is(err, ErrConflict) {
		return err == nil, err
	}
	owner, err := blobOwner(ctx, state, ref)
	if err != nil || owner == group {
		return false, err
	}
	return false, fmt.Errorf("%w: %s belongs to group %s", ErrConflict, ref, owner)
}

// blobOwner is the group owning the blob ("" for none).
func blobOwner(ctx context.Context, state StateStore, ref DiskRef) (string, error) {
	var o BlobOwner
	k := ownerKeys(ref)
	_, err := state.Get(ctx, ownersTable, k.PartitionKey, k.RowKey, &o)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return o.Group, err
}

// releaseBlob drops group's ownership of the blob (another's stays).
func releaseBlob(ctx context.Context, state StateStore, ref DiskRef, group string) error {
	owner, err := blobOwner(ctx, state, ref)
	if err != nil || owner != group {
		return err
	}
	k := ownerKeys(ref)
	err = state.Delete(ctx, ownersTable, k.PartitionKey, k.RowKey, "")
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// ownsCreated reports whether the group may delete a target blob it lists as created: it owns it, or
// it was enabled before ownership was recorded (no claim, no owner row) and so made it itself.
func ownsCreated(ctx context.Context, state StateStore, g *Group, ref DiskRef) (bool, error) {
	owner, err := blobOwner(ctx, state, ref)
	if err != nil {
		return false, err
	}
	return owner == g.Record.Group() || (owner == "" && g.Record.Claim == ""), nil
}
