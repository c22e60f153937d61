package pageblobs

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/standby-dr/standby/shared/azure/azconn"
	"github.com/standby-dr/standby/shared/replication"
)

// StartCopy starts a server-side copy of the snapshot into dst (on the emulator: copies client-side
// before it returns, see Store.emulator).
func (s *Store) StartCopy(ctx context.Context, src replication.DiskRef, snapshot string, dst replication.DiskRef) error {
	pb, err := s.snapshotClient(src, snapshot)
	if err != nil {
		return err
	}
	if s.emulator {
		return s.copyClientSide(ctx, src, snapshot, dst)
	}
	_, err = s.page(dst).StartCopyFromURL(ctx, pb.URL(), nil)
	return azconn.Translate(err, fmt.Sprintf("copying %s@%s to %s", src, snapshot, dst))
}

// StartCopyFromURL starts a server-side copy of the blob at srcURL into dst. The emulator copies only
// within its own account, client-side like StartCopy (a local compute's disk exports live there).
func (s *Store) StartCopyFromURL(ctx context.Context, srcURL string, dst replication.DiskRef) error {
	if s.emulator {
		src, err := replication.PageBlobRef(srcURL)
		if err != nil || s.page(src).URL() != strings.SplitN(srcURL, "?", 2)[0] {
			return fmt.Errorf("%w: the emulator copies only from its own account's blobs into %s", replication.ErrInvalid, dst)
		}
		return s.copyClientSide(ctx, src, "", dst)
	}
	_, err := s.page(dst).StartCopyFromURL(ctx, srcURL, nil)
	// The URL carries a SAS: only the destination is named in the error.
	return azconn.Translate(err, "copying an exported disk into "+dst.String())
}

// copiedMeta marks a blob a client-side copy completed (CopyStatus reports it like a finished copy).
const copiedMeta = "standbycopy"

func (s *Store) copyClientSide(ctx context.Context, src replication.DiskRef, snapshot string, dst replication.DiskRef) error {
	size, err := s.snapshotSize(ctx, src, snapshot)
	if err != nil {
		return err
	}
	if err := s.Delete(ctx, dst); err != nil {
		return err
	}
	if err := s.Create(ctx, dst, size); err != nil {
		return err
	}
	ranges, err := s.AllocatedRanges(ctx, src, snapshot)
	if err != nil {
		return err
	}
	for _, r := range ranges {
		for off := r.Offset; off < r.End(); off += replication.MaxPageWrite {
			n := min(int64(replication.MaxPageWrite), r.End()-off)
			data, err := s.ReadRange(ctx, src, snapshot, off, n)
			if err != nil {
				return err
			}
			if err := s.WritePages(ctx, dst, off, data); err != nil {
				return err
			}
		}
	}
	done := "success"
	_, err = s.page(dst).SetMetadata(ctx, map[string]*string{copiedMeta: &done}, nil)
	return azconn.Translate(err, "marking the copy "+dst.String())
}

func (s *Store) snapshotSize(ctx context.Context, d replication.DiskRef, snapshot string) (int64, error) {
	pb, err := s.snapshotClient(d, snapshot)
	if err != nil {
		return 0, err
	}
	props, err := pb.GetProperties(ctx, nil)
	if err != nil {
		return 0, azconn.Translate(err, "reading properties of "+d.String())
	}
	return *props.ContentLength, nil
}

// CopyStatus reports the copy into dst.
func (s *Store) CopyStatus(ctx context.Context, dst replication.DiskRef) (replication.CopyState, error) {
	props, err := s.page(dst).GetProperties(ctx, nil)
	if err != nil {
		return replication.CopyState{}, azconn.Translate(err, "reading copy status of "+dst.String())
	}
	for k, v := range props.Metadata {
		if strings.EqualFold(k, copiedMeta) && v != nil {
			return replication.CopyState{Status: *v, Copied: *props.ContentLength, Total: *props.ContentLength}, nil
		}
	}
	var st replication.CopyState
	if props.CopyStatus != nil {
		st.Status = string(*props.CopyStatus)
	}
	if props.CopyStatusDescription != nil {
		st.Description = *props.CopyStatusDescription
	}
	if props.CopyProgress != nil { // "copied/total"
		if a, b, ok := strings.Cut(*props.CopyProgress, "/"); ok {
			st.Copied, _ = strconv.ParseInt(a, 10, 64)
			st.Total, _ = strconv.ParseInt(b, 10, 64)
		}
	}
	return st, nil
}
