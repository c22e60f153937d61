package nbd

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Export is the backend of one NBD export: a range of Size bytes. The server calls it from many
// goroutines at once (several requests in flight on several connections), and gives it only requests
// inside [0, Size) aligned to MinBlockSize, so it need not check them again.
//
// Every connection to an export shares one Export value, and the server advertises
// NBD_FLAG_CAN_MULTI_CONN on that ground (proto.md, 'Transmission flags'): an implementation must keep
// no per-connection cache, so that a completed write is visible to every connection, and Flush and
// FUA must cover what every connection wrote.
type Export interface {
	// Size is the export's size in bytes, fixed while it is exported.
	Size() int64
	// ReadAt reads len(p) bytes at off, as io.ReaderAt does.
	ReadAt(p []byte, off int64) (int, error)
	// WriteAt writes p at off and returns once the write is on the backing store and captured; with
	// fua, once it is also durable (proto.md, 'Ordering of messages and writes').
	WriteAt(p []byte, off int64, fua bool) error
	// WriteZeroes makes length bytes at off read as zeros, fully provisioned (it serves
	// NBD_CMD_FLAG_NO_HOLE too); fua as for WriteAt.
	WriteZeroes(off, length int64, fua bool) error
	// Trim tells the backend length bytes at off are no longer needed. The client may assume nothing
	// of their contents afterwards (proto.md, 'Request types', NBD_CMD_TRIM), but an export that is
	// replicated should make them read as zeros, so that its replicas can match it byte for byte.
	Trim(off, length int64) error
	// Flush makes every write acknowledged so far durable, on every connection.
	Flush() error
}

// ExportOptions are how an export is offered.
type ExportOptions struct {
	// Description is shown to people: in NBD_OPT_LIST replies and NBD_INFO_DESCRIPTION.
	Description string
	// ReadOnly advertises NBD_FLAG_READ_ONLY and fails every write, trim and write-zeroes with EPERM.
	ReadOnly bool
}

// FileExport is an Export over a regular file or a block device. FUA and Flush are fsync; Trim punches
// a hole where the platform can (the range then reads as zeros) and writes zeros where it cannot.
type FileExport struct {
	f    *os.File
	size int64
}

// NewFileExport exports f, whose size is read once, here. The caller keeps f and closes it after the
// server stopped using it.
func NewFileExport(f *os.File) (*FileExport, error) {
	size, err := f.Seek(0, io.SeekEnd) // a block device reports its size this way, not with Stat
	if err != nil {
		return nil, fmt.Errorf("nbd: size of %s: %w", f.Name(), err)
	}
	return &FileExport{f: f, size: size}, nil
}

// Size returns the file's size when the export was made.
func (e *FileExport) Size() int64 { return e.size }

// ReadAt reads from the file.
func (e *FileExport) ReadAt(p []byte, off int64) (int, error) { return e.f.ReadAt(p, off) }

// WriteAt writes to the file, and syncs it when fua is set.
func (e *FileExport) WriteAt(p []byte, off int64, fua bool) error {
	if _, err := e.f.WriteAt(p, off); err != nil {
		return err
	}
	if fua {
		return e.f.Sync()
	}
	return nil
}

// zeroes is written by WriteZeroes; WriteAt only reads its argument, so one buffer serves every call.
var zeroes = make([]byte, 1<<20)

// WriteZeroes writes zeros, never a hole, so the range stays provisioned.
func (e *FileExport) WriteZeroes(off, length int64, fua bool) error {
	if err := e.writeZeroes(off, length); err != nil {
		return err
	}
	if fua {
		return e.f.Sync()
	}
	return nil
}

func (e *FileExport) writeZeroes(off, length int64) error {
	for length > 0 {
		n := min(length, int64(len(zeroes)))
		if _, err := e.f.WriteAt(zeroes[:n], off); err != nil {
			return err
		}
		off, length = off+n, length-n
	}
	return nil
}

// Trim punches a hole, or writes zeros where the file system or device cannot: either way the range
// reads as zeros afterwards.
func (e *FileExport) Trim(off, length int64) error {
	err := punchHole(e.f, off, length)
	if errors.Is(err, errNoPunch) {
		return e.writeZeroes(off, length)
	}
	return err
}

// Flush syncs the file.
func (e *FileExport) Flush() error { return e.f.Sync() }
