//go:build linux

package agent

import (
	"errors"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// zeroRange makes [off, off+n) of f read as zeros without writing them. A regular file's range is
// deallocated (FALLOC_FL_PUNCH_HOLE with FALLOC_FL_KEEP_SIZE: "subsequent reads from this range will
// return zeros", fallocate(2)) or, with provision, zeroed keeping its blocks (FALLOC_FL_ZERO_RANGE); a
// block device's range is zeroed by the device (BLKZEROOUT, which the kernel guarantees reads back as
// zeros, where BLKDISCARD does not; block/ioctl.c, blk_ioctl_zeroout). It reports false when the file
// system or device cannot, so that the caller writes the zeros itself.
func zeroRange(f *os.File, off, n int64, provision bool) (bool, error) {
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	if st.Mode()&os.ModeDevice != 0 {
		r := [2]uint64{uint64(off), uint64(n)}
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKZEROOUT, uintptr(unsafe.Pointer(&r))); e != 0 {
			return unsupported(e)
		}
		return true, nil
	}
	mode := uint32(unix.FALLOC_FL_PUNCH_HOLE | unix.FALLOC_FL_KEEP_SIZE)
	if provision {
		mode = unix.FALLOC_FL_ZERO_RANGE | unix.FALLOC_FL_KEEP_SIZE
	}
	if err := unix.Fallocate(int(f.Fd()), mode, off, n); err != nil {
		return unsupported(err)
	}
	return true, nil
}

// unsupported tells "the file system or device cannot" (write the zeros) from a real failure.
func unsupported(err error) (bool, error) {
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		return false, nil
	}
	return false, err
}
