package tests

import (
	"bytes"
	"context"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/standin/qemu"
)

// guestDiskErrors are what Linux 6.1 says when a disk fails under a filesystem: the NBD client's
// (drivers/block/nbd.c: 797 "Other side returned error", 488 "Connection timed out" — the variant that
// fails a request, not "Connection timed out, retrying"), the block layer's, ext4's, and the workload's
// own failure line. Not "Dead connection, failed to find a fallback" (nbd.c:945): find_fallback prints it
// before the request waits for a new socket (wait_for_reconnect, nbd.c:969), so with a dead-connection
// timeout it is the start of a wait, not a failure; the failure after a wait that ran out is an I/O error.
var guestDiskErrors = []string{"Other side returned error", "Connection timed out\n", "I/O error", "EXT4-fs error",
	"Remounting filesystem read-only", "STANDBY-TXN-FAIL"}

// The disk of a VM survives its agent: a QEMU guest with Debian's cloud kernel whose data disk is the
// kernel's own NBD client (/dev/nbd0, attached over netlink by agent attach inside the guest) on the
// agent's export runs ext4 and the SQLite workload while the agent is killed with -9 mid-write and
// started again, then stopped (SIGTERM) and replaced by a different binary, as an upgrade does. The
// guest must see no I/O error and its workload must carry on past each restart; then every recovery
// point is clean with its database whole, and a planned failover equals the disk byte for byte.
func TestNBDKernelClientSurvivesAgentRestarts(t *testing.T) {
	d := newDatabaseGuest(t, "nbdkern")
	images, tools, s, group, dir, data, spec, osDisk := d.images, d.tools, d.s, d.group, d.dir, d.data, d.spec, d.osDisk
	// The guest runs the agent's own binary for the attachment (stripped: the OS disk is 64 MiB).
	attacher := filepath.Join(dir, "agent-attach")
	buildAgent(t, attacher, "-s -w")
	run(t, tools["debugfs"], "-w", "-R", "write "+attacher+" /bin/agent", osDisk)
	// QEMU's user-mode network takes the guest's connections to 10.0.2.2 to the host's loopback, where
	// the agent serves: the guest's kernel is the agent's client as on a VM, with a network between.
	port := strconv.Itoa(freePort(t))
	agentArgs := []string{"-group", group, "-state", filepath.Join(dir, "agent"), "-marker-interval", "1500ms",
		"-nbd", "127.0.0.1:" + port, "-nbd-tcp", "-source", "db/data=" + data}
	p := startAgent(t, s, append(agentArgs, "-spec", spec)...)
	awaitGroupState(t, s, group, "Protected", 90*time.Second)

	serial := filepath.Join(dir, "serial.log")
	ctx := context.Background()
	m, err := qemu.Boot(ctx, qemu.Spec{Name: "nbd-kernel", Kernel: images.Kernel, Initrd: images.Initrd, Disks: []string{osDisk},
		Network: qemu.User, Append: "standby.ip=10.0.2.15/24", MemoryMiB: 512, SerialLog: serial})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(m.PID(), syscall.SIGKILL)
		<-m.Exited()
		if t.Failed() {
			t.Logf("the guest's console, but its transactions:\n%s", lastLines(withoutTransactions(serial), 120))
		}
	})
	awaitConsole(t, m, "STANDBY-GUEST-UP", 2*time.Minute)
	// Short timeouts, so the test waits little for the requests a killed agent held: the kernel sends
	// them again 5 s after they went out.
	m.Send("/bin/agent attach -device /dev/nbd0 -export db/data -nbd 10.0.2.2:" + port +
		" -connections 2 -io-timeout 5s -dead-timeout 180s &")
	awaitConsole(t, m, `"msg":"attached"`, time.Minute)
	console := &txnLog{seen: map[int64]time.Time{}}
	defer console.follow(serial)()
	m.Send("mkdir -p /data && mount -t ext4 /dev/nbd0 /data && echo STANDBY-DATA-\"MOUNTED\" && /bin/sqlwork /data/db.sqlite 0 20 &")
	// The quotes keep the console's echo of the command from matching.
	awaitConsole(t, m, "STANDBY-DATA-MOUNTED", time.Minute)
	carriesOn := func(what string) {
		before := console.count()
		waitFor(t, 2*time.Minute, "30 more transactions "+what, func() bool { return console.count() > before+30 })
	}
	carriesOn("before the first kill")
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))

	// 1. kill -9 mid-write and a restart, as Restart=always does.
	time.Sleep(time.Duration(rng.Intn(1500)) * time.Millisecond)
	killed := time.Now()
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	killedAt := console.count()
	time.Sleep(time.Duration(500+rng.Intn(1500)) * time.Millisecond)
	p = startAgent(t, s, agentArgs...)
	carriesOn("after kill -9 and a restart")
	t.Logf("kill -9 with %d transactions committed; the workload carried on to %d; its longest pause: %.1f s", killedAt, console.count(), console.longestPause(killed).Seconds())

	// 2. An upgrade: SIGTERM (systemd's stop), another binary started in its place.
	// The stripped build the guest runs is another binary of the same source.
	if sameFile(t, attacher, filepath.Join(binDir, "agent")) {
		t.Fatal("the upgrade's binary is the same file as the running agent's")
	}
	upgradeStarted := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t, time.Minute)
	p = startAgentProc(t, s, attacher, nil, agentArgs...)
	carriesOn("after an upgrade")
	t.Logf("upgrade: the workload carried on to %d; its longest pause: %.1f s", console.count(), console.longestPause(upgradeStarted).Seconds())

	// The guest's kernel reconnected each time and never failed a request.
	m.Send("kill $(pidof sqlwork); sleep 1; sync; umount /data && echo STANDBY-DATA-\"UNMOUNTED\"")
	awaitConsole(t, m, "STANDBY-DATA-UNMOUNTED", time.Minute)
	log, _ := os.ReadFile(serial)
	for _, bad := range guestDiskErrors {
		if bytes.Contains(log, []byte(bad)) {
			t.Fatalf("the guest saw its disk fail (%q):\n%s", bad, lastLines(string(log), 60))
		}
	}
	if n := bytes.Count(log, []byte("reconnected socket")); n < 2 {
		t.Fatalf("the kernel reconnected %d sockets (its 'reconnected socket'), want at least one per restart:\n%s", n, lastLines(string(log), 60))
	}

	// The points up to one after the unmount: each clean with its database whole (a sample of at most
	// eight in make test, every one in make soak); then a planned failover equals the disk.
	unmounted := time.Now()
	c := newGuestDiskChecker(t, s, group, console, tools)
	waitFor(t, time.Minute, "a recovery point after the unmount", func() bool { return c.points(1)[0].SourceTime.After(unmounted) })
	points := samplePoints(c.points(3), os.Getenv("STANDBY_SOAK_ROUNDS") != "", "")
	for i, pt := range points {
		c.point(i, pt)
	}
	c.provedSomething()
	job := s.runJob(t, "/api/v1/groups/"+group+"/failover", `{"type":"planned"}`, 3*time.Minute)
	p.wait(t, time.Minute)
	compareWithSources(t, spec, group+"-failover")
	t.Logf("two restarts (kill -9, an upgrade) under the guest's kernel NBD client: no I/O error, %d transactions; %d points clean, %d transactions verified; planned failover to %s equals the disk",
		console.count(), len(points), c.verified, job.Point)
}

// awaitConsole waits for a line on the machine's console.
func awaitConsole(t *testing.T, m *qemu.Machine, substring string, limit time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	if _, err := m.WaitFor(ctx, substring); err != nil {
		t.Fatalf("waiting for %q on %s's console: %v\n%s", substring, m.Name(), err, strings.Join(m.Tail(40), "\n"))
	}
}

// buildAgent builds the agent (with the stand-ins, as make build does) with the given linker flags,
// statically linked.
func buildAgent(t *testing.T, out, ldflags string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-tags", "standin", "-ldflags", ldflags, "-o", out, "./cmd/agent")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // static: the guest has no libc
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/agent: %v\n%s", err, b)
	}
}

func sameFile(t *testing.T, a, b string) bool {
	read := func(p string) []byte {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	return bytes.Equal(read(a), read(b))
}

// withoutTransactions is a serial log without the workload's STANDBY-TXN lines.
func withoutTransactions(serial string) string {
	log, _ := os.ReadFile(serial)
	var keep []string
	for _, line := range strings.Split(string(log), "\n") {
		if !strings.HasPrefix(line, "STANDBY-TXN ") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}
