package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Healthy starts the line the guest's init prints on its serial console once it is up:
//
//	STANDBY-GUEST-UP host=<hostname> disks=/dev/vda,/dev/vdb
const Healthy = "STANDBY-GUEST-UP"

// Health is what a guest's health line says.
type Health struct {
	Host  string   // the hostname, read from the OS disk's /etc/hostname
	Disks []string // the guest's virtio disks (/dev/vd*), in order
	Line  string   // the line itself
}

// ParseHealth reads a health line (or a line containing one, such as a prefixed log line).
func ParseHealth(line string) (Health, bool) {
	i := strings.Index(line, Healthy)
	if i < 0 {
		return Health{}, false
	}
	h := Health{Line: line[i:]}
	for _, f := range strings.Fields(line[i+len(Healthy):]) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "host":
			h.Host = v
		case "disks":
			if v != "" {
				h.Disks = strings.Split(v, ",")
			}
		}
	}
	return h, true
}

// WaitHealthy waits for the guest's health line (see WaitFor for the errors).
func (m *Machine) WaitHealthy(ctx context.Context) (Health, error) {
	line, err := m.WaitFor(ctx, Healthy)
	if err != nil {
		return Health{}, err
	}
	h, _ := ParseHealth(line)
	return h, nil
}

// DefaultImageDir is where scripts/vm-image.sh writes its outputs, relative to the repository's root.
const DefaultImageDir = ".local/vm"

// Images are scripts/vm-image.sh's outputs: the boot files and the OS disk image.
type Images struct {
	Dir    string
	Kernel string // vmlinuz
	Initrd string // initrd.img
	OS     string // os.img: a raw ext4 disk, the guest's /dev/vda
}

// ErrNoImages is (wrapped in) LoadImages' error when an output is missing.
var ErrNoImages = errors.New("no VM images (run scripts/vm-image.sh)")

// LoadImages finds scripts/vm-image.sh's outputs in dir.
func LoadImages(dir string) (Images, error) {
	im := Images{Dir: dir, Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img"),
		OS: filepath.Join(dir, "os.img")}
	for _, f := range []string{im.Kernel, im.Initrd, im.OS} {
		if _, err := os.Stat(f); err != nil {
			return Images{}, fmt.Errorf("%w: %s", ErrNoImages, f)
		}
	}
	return im, nil
}

// Spec is a spec booting the images' kernel and initramfs from the given disks (the first is the OS disk).
func (im Images) Spec(name string, disks ...string) Spec {
	return Spec{Name: name, Kernel: im.Kernel, Initrd: im.Initrd, Disks: disks}
}
