package vhd

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// qemu-img (Debian's qemu-utils) is the independent judge: it must read a raw image followed by the
// footer as a VHD ("vpc") of the image's size.
func qemuImg(t *testing.T) string {
	path, err := exec.LookPath("qemu-img")
	if err != nil {
		if os.Getenv("STANDBY_REQUIRE_QEMU") == "1" {
			t.Fatal("qemu-img is required (STANDBY_REQUIRE_QEMU=1): apt-get install qemu-utils")
		}
		t.Skip("qemu-img not found: install qemu-utils (apt-get install qemu-utils) to check footers against QEMU")
	}
	return path
}

type qemuInfo struct {
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual-size"`
}

func qemuInfoOf(t *testing.T, qemu string, args ...string) qemuInfo {
	t.Helper()
	out, err := exec.Command(qemu, append([]string{"info", "--output=json"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img info %v: %v\n%s", args, err, out)
	}
	var info qemuInfo
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("qemu-img info: %v\n%s", err, out)
	}
	return info
}

func TestQemuReadsFixedVHD(t *testing.T) {
	qemu := qemuImg(t)
	for _, mib := range []int64{1, 5, 130} {
		size := mib << 20
		path := filepath.Join(t.TempDir(), "disk.vhd")
		f, err := NewFixed(size, NewID(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		writeImage(t, path, size, f.Bytes())
		// Hyper-V and Azure size a VHD by its current size; QEMU does when told to.
		info := qemuInfoOf(t, qemu, "--image-opts", "driver=vpc,force_size_calc=current_size,file.filename="+path)
		if info.Format != "vpc" || info.VirtualSize != size {
			t.Errorf("%d MiB: qemu-img sees %+v, want vpc of %d bytes", mib, info, size)
		}
		// By default QEMU sizes an image of an unknown creator by its geometry, as Virtual PC did: the
		// geometry's sectors, which the CHS algorithm never makes more than the disk's.
		info = qemuInfoOf(t, qemu, "-f", "vpc", path)
		if want := f.Geometry.Sectors() * SectorSize; info.Format != "vpc" || info.VirtualSize != want || want > size {
			t.Errorf("%d MiB: qemu-img sees %+v by geometry, want vpc of %d bytes", mib, info, want)
		}
	}
}

// QEMU checks the checksum too: a footer whose bytes changed after it was computed is refused.
func TestQemuRefusesABadChecksum(t *testing.T) {
	qemu := qemuImg(t)
	f, _ := NewFixed(1<<20, NewID(), time.Now())
	footer := f.Bytes()
	footer[300] = 1
	path := filepath.Join(t.TempDir(), "disk.vhd")
	writeImage(t, path, 1<<20, footer)
	out, err := exec.Command(qemu, "info", "-f", "vpc", path).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "checksum") {
		t.Errorf("qemu-img took a footer with a bad checksum: %v\n%s", err, out)
	}
}

// writeImage writes a raw image of size bytes (some data at the start, the rest a hole) and the footer.
func writeImage(t *testing.T, path string, size int64, footer [FooterSize]byte) {
	t.Helper()
	file, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	file.WriteAt([]byte("data at the start"), 0)
	if _, err := file.WriteAt(footer[:], size); err != nil {
		t.Fatal(err)
	}
}
