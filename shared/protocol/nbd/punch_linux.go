package nbd

import (
	"errors"
	"os"
	"syscall"
)

// fallocate(2) modes; the syscall package has the call but not these names.
const (
	fallocKeepSize  = 0x01 // FALLOC_FL_KEEP_SIZE
	fallocPunchHole = 0x02 // FALLOC_FL_PUNCH_HOLE
)

// errNoPunch says the file cannot have holes punched; the caller writes zeros instead.
var errNoPunch = errors.New("hole punching not supported")

// punchHole deallocates length bytes at off, which then read as zeros: on a regular file the hole reads
// as zeros, on a block device Linux zeroes the range (blkdev_fallocate).
func punchHole(f *os.File, off, length int64) error {
	rc, err := f.SyscallConn() // not Fd, which would put the file in blocking mode
	if err != nil {
		return err
	}
	for {
		cerr := rc.Control(func(fd uintptr) {
			err = syscall.Fallocate(int(fd), fallocPunchHole|fallocKeepSize, off, length)
		})
		if cerr != nil {
			return cerr
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.ENOSYS), errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.ENODEV):
			return errNoPunch
		default:
			return err
		}
	}
}
