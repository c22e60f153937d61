package qemu

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// The boot tests use scripts/vm-image.sh's outputs; they do not build them (the script may install
// packages with apt-get, which is no test's business): run the script first (a `vm-image` make target
// that `test` depends on). Without QEMU or the images they skip, unless STANDBY_REQUIRE_QEMU=1 is set
// (make test), which makes them fail. STANDBY_VM_DIR points at the images elsewhere.

const bootTimeout = 2 * time.Minute // a TCG boot takes seconds; a loaded CI machine gets room

func skipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("STANDBY_REQUIRE_QEMU") != "" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// images returns the VM images, or skips (fails under STANDBY_REQUIRE_QEMU) without QEMU or images.
func images(t testing.TB) Images {
	t.Helper()
	if _, err := exec.LookPath(Binary); err != nil {
		skipOrFail(t, "no "+Binary+" (apt-get install qemu-system-x86, or run scripts/vm-image.sh): "+err.Error())
	}
	dir := os.Getenv("STANDBY_VM_DIR")
	if dir == "" {
		root, err := filepath.Abs(".")
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := os.Stat(filepath.Join(root, "scripts", "vm-image.sh")); err == nil {
				break
			}
			if filepath.Dir(root) == root {
				skipOrFail(t, "no scripts/vm-image.sh here or above; set STANDBY_VM_DIR to the VM images")
			}
			root = filepath.Dir(root)
		}
		dir = filepath.Join(root, DefaultImageDir)
	}
	im, err := LoadImages(dir)
	if err != nil {
		skipOrFail(t, err.Error())
	}
	return im
}

func boot(t testing.TB, ctx context.Context, spec Spec) *Machine {
	t.Helper()
	m, err := Boot(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
	return m
}

func TestArgs(t *testing.T) {
	s := Spec{Name: "web,1", Kernel: "/k", Initrd: "/i", Append: "quiet", Disks: []string{"/a,b.img", "/c.img"},
		Snapshot: true}
	args := strings.Join(s.Args(), " ")
	for _, want := range []string{
		"-name web,,1", "-machine q35,accel=tcg", "-m 256 -smp 1", "-nographic", "-no-reboot", "-serial stdio",
		"-kernel /k -initrd /i", "-append console=ttyS0 root=/dev/vda rw panic=-1 quiet",
		"-drive file=/a,,b.img,format=raw,if=virtio,cache=writeback -drive file=/c.img,", "-nic none", "-snapshot",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("args lack %q: %s", want, args)
		}
	}
	if strings.Contains(args, "kvm") {
		t.Errorf("args use KVM: %s", args)
	}
	if s.RebootOnReset = true; strings.Contains(strings.Join(s.Args(), " "), "-no-reboot") {
		t.Errorf("a machine that reboots on reset has -no-reboot")
	}
	s = Spec{Kernel: "/k", Initrd: "/i", Disks: []string{"/a"}, Network: User, MemoryMiB: 512, CPUs: 2}
	args = strings.Join(s.Args(), " ")
	for _, want := range []string{"-name vm", "-m 512 -smp 2", "-nic user,model=virtio-net-pci"} {
		if !strings.Contains(args, want) {
			t.Errorf("args lack %q: %s", want, args)
		}
	}
	if strings.Contains(args, "hostfwd") || strings.Contains(args, "-snapshot") {
		t.Errorf("unexpected args: %s", args)
	}
}

func TestParseHealth(t *testing.T) {
	h, ok := ParseHealth("[  1.2] x STANDBY-GUEST-UP host=db-1 disks=/dev/vda,/dev/vdb")
	if !ok || h.Host != "db-1" || !slices.Equal(h.Disks, []string{"/dev/vda", "/dev/vdb"}) {
		t.Fatalf("ParseHealth: %+v %v", h, ok)
	}
	if _, ok := ParseHealth("Booting the kernel"); ok {
		t.Fatal("a line without the health mark parsed")
	}
}

func TestBootChecksSpec(t *testing.T) {
	if _, err := Boot(context.Background(), Spec{Kernel: "/k", Initrd: "/i"}); err == nil {
		t.Fatal("a spec without disks booted")
	}
	dir := t.TempDir()
	_, err := Boot(context.Background(), Spec{Kernel: dir + "/none", Initrd: dir + "/none", Disks: []string{dir}})
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing kernel: %v", err)
	}
}

// The OS disk boots read-only (Snapshot): the guest reports itself up with the disk's hostname and its
// disk, answers on its console, powers off cleanly on Stop, and the image is unchanged.
func TestBootSnapshot(t *testing.T) {
	im := images(t)
	before := fileHash(t, im.OS)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	spec := im.Spec("snap", im.OS)
	spec.Snapshot = true
	spec.SerialLog = filepath.Join(t.TempDir(), "serial.log")
	m := boot(t, ctx, spec)
	if m.PID() <= 0 {
		t.Fatalf("pid %d", m.PID())
	}
	h, err := m.WaitHealthy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("up in %v: %s", time.Since(m.Started()).Round(time.Millisecond), h.Line)
	if want := diskFile(t, im.OS, "/etc/hostname"); h.Host != want {
		t.Errorf("host %q, the disk's /etc/hostname says %q", h.Host, want)
	}
	if !slices.Equal(h.Disks, []string{"/dev/vda"}) {
		t.Errorf("disks %v, want [/dev/vda]", h.Disks)
	}
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	_, err = m.WaitFor(short, "never printed")
	cancelShort()
	var we *WaitError
	if !errors.As(err, &we) || !errors.Is(err, context.DeadlineExceeded) || !slices.Contains(we.Tail, h.Line) {
		t.Errorf("WaitFor's timeout: %v", err)
	}
	if err := m.Send("echo sum-$((40+2))"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.WaitFor(ctx, "sum-42"); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := m.Err(); err != nil {
		t.Errorf("qemu's exit after a poweroff: %v", err)
	}
	log, err := os.ReadFile(spec.SerialLog)
	if err != nil || !strings.Contains(string(log), h.Line) || !strings.Contains(string(log), "reboot: Power down") {
		t.Errorf("serial log (%v) lacks the health line or the power-down:\n%s", err, log)
	}
	if fileHash(t, im.OS) != before {
		t.Error("a snapshot boot changed the OS disk image")
	}
}

// A second (blank) disk is the guest's /dev/vdb.
func TestBootTwoDisks(t *testing.T) {
	im := images(t)
	data := filepath.Join(t.TempDir(), "data.img")
	if err := os.WriteFile(data, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	spec := im.Spec("two", im.OS, data)
	spec.Snapshot = true
	m := boot(t, ctx, spec)
	h, err := m.WaitHealthy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(h.Disks, []string{"/dev/vda", "/dev/vdb"}) {
		t.Errorf("disks %v, want [/dev/vda /dev/vdb]: %s", h.Disks, h.Line)
	}
	if err := m.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// User-mode networking gives the guest a NIC (it configures nothing).
func TestUserNetwork(t *testing.T) {
	im := images(t)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	spec := im.Spec("net", im.OS)
	spec.Snapshot, spec.Network = true, User
	m := boot(t, ctx, spec)
	if _, err := m.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	// The console echoes the input: the output's marker is computed, so only the output matches.
	if err := m.Send("echo nics-$((1+1)): $(ls /sys/class/net)"); err != nil {
		t.Fatal(err)
	}
	if line, err := m.WaitFor(ctx, "nics-2: "); err != nil || !strings.Contains(line, "eth0") {
		t.Fatalf("the guest's NICs: %q %v", line, err)
	}
	if err := m.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// A disk of zeros never becomes healthy: the error says why with the serial console's tail.
func TestGarbageDiskNeverHealthy(t *testing.T) {
	im := images(t)
	disk := filepath.Join(t.TempDir(), "zeros.img")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 64<<20); err != nil {
		t.Fatal(err)
	}
	m := boot(t, context.Background(), im.Spec("garbage", disk))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	line, err := m.WaitFor(ctx, Healthy)
	var we *WaitError
	if !errors.As(err, &we) {
		t.Fatalf("WaitFor on a zeroed disk: line %q, error %v", line, err)
	}
	t.Logf("the expected error: %v", err)
	if len(we.Tail) == 0 || len(we.Tail) > tailLines {
		t.Errorf("tail of %d lines", len(we.Tail))
	}
	if !strings.Contains(err.Error(), we.Tail[len(we.Tail)-1]) {
		t.Error("the error's text lacks the serial tail")
	}
	if errors.Is(err, ErrExited) && !strings.Contains(strings.Join(we.Tail, "\n"), "STANDBY-INITRD-FAIL") {
		t.Error("the machine exited without the initramfs saying why")
	}
}

// A read-write boot (no Snapshot) writes to the disk (the guest appends to /var/lib/standby/boots), and
// after a clean poweroff e2fsck, the independent judge, finds the filesystem clean.
func TestPoweroffLeavesDiskClean(t *testing.T) {
	im := images(t)
	if _, err := exec.LookPath("e2fsck"); err != nil {
		skipOrFail(t, "no e2fsck (apt-get install e2fsprogs)")
	}
	disk := filepath.Join(t.TempDir(), "os.img")
	copySparse(t, im.OS, disk)
	boots := len(strings.Fields(diskFile(t, disk, "/var/lib/standby/boots")))
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	m := boot(t, ctx, im.Spec("rw", disk))
	if _, err := m.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	out, err := exec.Command("e2fsck", "-fn", disk).CombinedOutput()
	if err != nil {
		t.Fatalf("e2fsck -fn after a poweroff: %v\n%s", err, out)
	}
	if n := len(strings.Fields(diskFile(t, disk, "/var/lib/standby/boots"))); n != boots+2 { // "<time> boot"
		t.Errorf("boots file has %d fields, want %d: the guest's write did not reach the disk", n, boots+2)
	}
}

// Ending Boot's context kills QEMU, whatever the guest is doing.
func TestContextKills(t *testing.T) {
	im := images(t)
	ctx, cancel := context.WithCancel(context.Background())
	spec := im.Spec("ctx", im.OS)
	spec.Snapshot = true
	m := boot(t, ctx, spec)
	cancel()
	select {
	case <-m.Exited():
	case <-time.After(15 * time.Second):
		t.Fatal("qemu still runs after its context ended")
	}
	if m.Err() == nil {
		t.Error("a killed qemu reports no error")
	}
}

// BenchmarkBoot measures QEMU's start to the guest's health line (TCG, 1 CPU, 256 MiB), reported as
// boot-ms (the median of the runs: go test -run '^$' -bench Boot -benchtime 3x ./shared/standin/qemu/).
func BenchmarkBoot(b *testing.B) {
	im := images(b)
	var times []time.Duration
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
		spec := im.Spec("bench", im.OS)
		spec.Snapshot = true
		m, err := Boot(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.WaitHealthy(ctx); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(m.Started()))
		if err := m.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	b.ReportMetric(float64(times[len(times)/2].Milliseconds()), "boot-ms")
	b.Logf("boot to health: %v", times)
}

func fileHash(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// diskFile reads a file from an ext4 image with debugfs (e2fsprogs), with no mount.
func diskFile(t testing.TB, image, path string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", "cat "+path, image).Output()
	if err != nil {
		t.Fatalf("debugfs cat %s in %s: %v", path, image, err)
	}
	return strings.TrimSpace(string(out))
}

// copySparse copies an image, leaving its zero MiBs as holes.
func copySparse(t testing.TB, from, to string) {
	t.Helper()
	src, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	zero := make([]byte, 1<<20)
	for off := 0; off < len(src); off += len(zero) {
		chunk := src[off:min(off+len(zero), len(src))]
		if string(chunk) == string(zero[:len(chunk)]) {
			continue
		}
		if _, err := dst.WriteAt(chunk, int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	if err := dst.Truncate(int64(len(src))); err != nil {
		t.Fatal(err)
	}
}
