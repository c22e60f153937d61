package tests

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/azure/pageblobs"
	"github.com/standby-dr/standby/shared/azure/tables"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/qemu"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

// The crash-consistency proof with software nobody here wrote: a QEMU guest (Debian's kernel, ext4)
// whose data disk is the agent's NBD export, through QEMU's own NBD client, runs a SQLite database
// committing fsync'd transactions and prints each committed id on its serial console. QEMU and the
// agent are killed with -9 at random moments, rounds times; then the recovery points (every one in make
// soak, up to eight in make test), a few restores to random moments and an unplanned failover's disk
// are each checked by e2fsprogs and the sqlite3 CLI: the filesystem is clean after journal replay alone, the database's integrity check says ok,
// and every transaction whose commit was on the console before the point's source time is there.
func TestNBDGuestDatabaseSurvivesCrashes(t *testing.T) {
	rounds := 2
	if n, err := strconv.Atoi(os.Getenv("STANDBY_SOAK_ROUNDS")); err == nil && n > 0 {
		rounds = n // make soak
	}
	d := newDatabaseGuest(t, "nbddb")
	images, tools, s, group, dir, data, spec, osDisk := d.images, d.tools, d.s, d.group, d.dir, d.data, d.spec, d.osDisk
	state, sock := filepath.Join(dir, "agent"), filepath.Join(dir, "nbd.sock")
	agentArgs := []string{"-group", group, "-state", state, "-marker-interval", "1500ms", "-nbd", "unix:" + sock,
		"-source", "db/data=" + data}
	p := startAgent(t, s, append(agentArgs, "-spec", spec)...)
	awaitGroupState(t, s, group, "Protected", 90*time.Second)
	console := &txnLog{seen: map[int64]time.Time{}}
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for round := 1; round <= rounds; round++ {
		serial := filepath.Join(dir, fmt.Sprintf("serial-%d.log", round))
		m, err := qemu.Boot(context.Background(), qemu.Spec{Name: "nbd-db", Kernel: images.Kernel, Initrd: images.Initrd,
			Disks: []string{osDisk}, NBD: []string{"nbd+unix:///db/data?socket=" + sock}, SerialLog: serial})
		if err != nil {
			t.Fatal(err)
		}
		awaitConsole(t, m, "STANDBY-GUEST-UP", 2*time.Minute)
		stopFollow := console.follow(serial)
		m.Send("mkdir -p /data && mount -t ext4 /dev/vdb /data && /bin/sqlwork /data/db.sqlite 0 20")
		before := console.count()
		waitFor(t, 60*time.Second, "transactions on the console", func() bool { return console.count() > before+30 })
		if round == 1 { // a recovery point holds transactions (later rounds' points wait for their resync)
			committed := time.Now()
			waitFor(t, 2*time.Minute, "a recovery point after the first transactions", func() bool {
				points, _ := replication.ListPoints(context.Background(), tables.New(testenv.TableService(t, "target")), group)
				return len(points) > 0 && points[0].SourceTime.After(committed)
			})
		}
		time.Sleep(time.Duration(500+rng.Intn(2500)) * time.Millisecond)
		victims := []func(){func() { syscall.Kill(m.PID(), syscall.SIGKILL) }, func() { p.cmd.Process.Signal(syscall.SIGKILL) }}
		rng.Shuffle(len(victims), func(i, j int) { victims[i], victims[j] = victims[j], victims[i] })
		victims[0]()
		time.Sleep(time.Duration(rng.Intn(300)) * time.Millisecond)
		victims[1]()
		<-m.Exited()
		<-p.done
		stopFollow()
		t.Logf("round %d: killed with %d transactions committed so far", round, console.count())
		// Its unclean stop makes it compare checksums with the target; the guest may write meanwhile.
		p = startAgent(t, s, agentArgs...)
		waitFor(t, 60*time.Second, "the agent's export", func() bool { return strings.Contains(p.out.String(), "nbd export") })
	}
	awaitGroupState(t, s, group, "Protected", 90*time.Second)
	p.cmd.Process.Signal(syscall.SIGKILL) // the source site dies
	<-p.done
	settle(t, s, group)
	proveRestores(t, s, group, rounds, rounds > 2, console, tools, rng)
}

// The agent's NBD export, driven by clients nobody here wrote — nbdcopy (libnbd) over four connections,
// then qemu-io's writes with FUA, write-zeroes, discard and flush — replicates byte for byte: after a
// planned failover the failed-over disk equals the export's backing file, and the group shows the disk
// as captured crash-consistently.
func TestNBDExportReplicatesByteForByte(t *testing.T) {
	tools := needTools(t, "nbdcopy", "qemu-io")
	s := newStack(t, "*/1 * * * * *")
	group, dir := testenv.Unique("nbdcopy"), t.TempDir()
	data, sock := filepath.Join(dir, "data.img"), filepath.Join(dir, "nbd.sock")
	if err := os.WriteFile(data, nil, 0o644); err != nil || os.Truncate(data, 32<<20) != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "spec.json")
	writeJSON(t, spec, map[string]any{"vms": []any{map[string]any{"name": "vm0", "disks": []any{
		map[string]any{"name": "data", "sizeBytes": 32 << 20, "source": "nbd:" + data}}}}})
	p := startAgent(t, s, "-group", group, "-spec", spec, "-state", filepath.Join(dir, "agent"), "-nbd", "unix:"+sock,
		"-marker-interval", "1s", "-duration", "3m")
	awaitGroupState(t, s, group, "Protected", 60*time.Second)
	random := make([]byte, 16<<20)
	rand.New(rand.NewSource(time.Now().UnixNano())).Read(random)
	src := filepath.Join(dir, "random.bin")
	os.WriteFile(src, random, 0o644)
	uri := "nbd+unix:///vm0/data?socket=" + sock
	run(t, tools["nbdcopy"], "--connections=4", "--requests=16", src, uri)
	run(t, tools["qemu-io"], "-f", "raw", "-c", "write -f -P 0x5a 20M 1M", "-c", "write -z 2M 3M", "-c", "discard 8M 1M",
		"-c", "write -P 0x33 31M 512", "-c", "flush", uri)
	want := append([]byte(nil), random...)
	want = append(want, make([]byte, 16<<20)...)
	copy(want[20<<20:21<<20], bytes.Repeat([]byte{0x5a}, 1<<20))
	clear(want[2<<20 : 5<<20])
	clear(want[8<<20 : 9<<20])
	copy(want[31<<20:], bytes.Repeat([]byte{0x33}, 512))
	if got, _ := os.ReadFile(data); !bytes.Equal(got, want) {
		t.Fatal("the export's backing file is not what the clients wrote")
	}
	job := s.runJob(t, "/api/v1/groups/"+group+"/failover", `{"type":"planned"}`, 2*time.Minute)
	p.wait(t, 30*time.Second)
	compareWithSources(t, spec, group+"-failover")
	_, _, body := s.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
	if !strings.Contains(body, `"mode": "nbd"`) || !strings.Contains(body, `"crashConsistent": true`) {
		t.Fatalf("the group's view does not show the capture: %s", body)
	}
	t.Logf("planned failover to %s: the failed-over disk equals the export's backing file", job.Point)
}

// databaseGuest is the set-up of the database guest's proofs: a stack, a group whose one disk db/data
// (64 MiB, ext4) is the file data served over NBD (the spec in spec), and the guest's OS disk with the
// workload.
type databaseGuest struct {
	images                         qemu.Images
	tools                          map[string]string
	s                              *stack
	group, dir, data, spec, osDisk string
}

func newDatabaseGuest(t *testing.T, prefix string) *databaseGuest {
	d := &databaseGuest{images: vmImages(t), tools: needTools(t, "e2fsck", "debugfs", "mke2fs", "sqlite3"),
		s: newStack(t, "*/1 * * * * *"), group: testenv.Unique(prefix), dir: t.TempDir()}
	d.data, d.spec = filepath.Join(d.dir, "data.img"), filepath.Join(d.dir, "spec.json")
	run(t, d.tools["mke2fs"], "-q", "-t", "ext4", "-L", "data", "-F", d.data, "64M")
	writeJSON(t, d.spec, map[string]any{"vms": []any{map[string]any{"name": "db", "disks": []any{
		map[string]any{"name": "data", "sizeBytes": 64 << 20, "source": "nbd:" + d.data}}}},
		"policy": map[string]int{"crashConsistentIntervalSeconds": 60}})
	d.osDisk = guestWithWorkload(t, d.images, d.tools, d.dir)
	return d
}

// settle waits until apply has applied what the journal holds and cutpoints has promoted its markers:
// the watermark and the newest point stay the same for three seconds.
func settle(t *testing.T, s *stack, group string) {
	last, since := "", time.Now()
	waitFor(t, 3*time.Minute, group+" to settle", func() bool {
		_, _, body := s.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
		page := s.points(t, group)
		now := fmt.Sprint(watermark(body), len(page.Points))
		if len(page.Points) > 0 {
			now += page.Points[0].ID
		}
		if now != last {
			last, since = now, time.Now()
		}
		time.Sleep(200 * time.Millisecond)
		return time.Since(since) > 3*time.Second
	})
}

// proveRestores checks every recovery point, restores to random moments, and an unplanned failover.
func proveRestores(t *testing.T, s *stack, group string, rounds int, all bool, console *txnLog, tools map[string]string, rng *rand.Rand) {
	// The unplanned failover first: it may promote the last markers apply finished, and every point is
	// then checked, the failover's among them.
	job := s.runJob(t, "/api/v1/groups/"+group+"/failover", `{"type":"unplanned","recoveryPoint":"latestProcessed"}`, 4*time.Minute)
	c := newGuestDiskChecker(t, s, group, console, tools)
	points := c.points(3)
	checked := samplePoints(points, all, job.Point)
	for i, pt := range checked {
		c.point(i, pt)
	}
	// Random moments while the database ran: from its first transaction to the newest point.
	oldest, newest := points[len(points)-1].SourceTime, points[0].SourceTime
	if first := console.first(); first.After(oldest) && first.Before(newest) {
		oldest = first
	}
	for i := 0; i < 3; i++ {
		at := oldest.Add(time.Duration(rng.Int63n(int64(newest.Sub(oldest)) + 1)))
		res, err := c.restorer.Restore(context.Background(), replication.RestoreRequest{Group: group, Time: at, Container: fmt.Sprintf("%s-t%d", group, i)})
		if err != nil {
			t.Fatal(err)
		}
		c.check(fmt.Sprintf("restore to %s", at.Format("15:04:05.000")), res.Disks["db/data"], res.EffectiveAt)
	}
	var failoverPoint replication.RecoveryPoint
	for _, pt := range points {
		if pt.ID == job.Point {
			failoverPoint = pt
		}
	}
	if failoverPoint.ID == "" {
		t.Fatalf("failed over to %s, which is not among the points", job.Point)
	}
	c.check("unplanned failover to "+job.Point, replication.DiskIn(group+"-failover", "db/data"), failoverPoint.SourceTime)
	c.provedSomething()
	t.Logf("proof: %d rounds of kill -9, %d transactions committed; %d of %d points, 3 restores to random moments and the failover checked: each clean, its database whole; %d transactions verified",
		rounds, console.count(), len(checked), len(points), c.verified)
}

// guestDiskChecker restores copies of a group's db/data disk (the database guest's) and checks each with
// e2fsprogs and sqlite3 (checkGuestDisk).
type guestDiskChecker struct {
	t        *testing.T
	group    string
	pages    *pageblobs.Store
	restorer *replication.Restorer
	console  *txnLog
	tools    map[string]string
	verified int64 // transactions found whole, summed over the checks
}

func newGuestDiskChecker(t *testing.T, s *stack, group string, console *txnLog, tools map[string]string) *guestDiskChecker {
	pages := pageblobs.New(testenv.BlobService(t, "target"))
	return &guestDiskChecker{t: t, group: group, pages: pages, console: console, tools: tools,
		restorer: &replication.Restorer{State: tables.New(testenv.TableService(t, "target")), Pages: pages, Journal: s.journal(t), Parallelism: 4}}
}

// points are the group's recovery points, newest first; fewer than least fails the test.
func (c *guestDiskChecker) points(least int) []replication.RecoveryPoint {
	points, err := replication.ListPoints(context.Background(), tables.New(testenv.TableService(c.t, "target")), c.group)
	if err != nil || len(points) < least {
		c.t.Fatalf("%d points (%v), want at least %d", len(points), err, least)
	}
	return points
}

// point restores a recovery point (into the container <group>-p<i>) and checks it.
func (c *guestDiskChecker) point(i int, pt replication.RecoveryPoint) {
	res, err := c.restorer.Restore(context.Background(), replication.RestoreRequest{Group: c.group, PointID: pt.ID, Container: fmt.Sprintf("%s-p%d", c.group, i)})
	if err != nil {
		c.t.Fatal(err)
	}
	c.check("point "+pt.ID, res.Disks["db/data"], pt.SourceTime)
}

// check copies a disk out and checks it: clean, its database whole, with every transaction the console
// showed before at.
func (c *guestDiskChecker) check(name string, ref replication.DiskRef, at time.Time) {
	img := filepath.Join(c.t.TempDir(), "data.img")
	got, err := c.pages.ReadRange(context.Background(), ref, "", 0, 64<<20)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(img, got, 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.verified += checkGuestDisk(c.t, name, img, c.console.before(at), c.tools)
}

func (c *guestDiskChecker) provedSomething() {
	if c.verified == 0 {
		c.t.Fatal("no checked copy held a transaction: the proof proved nothing")
	}
}

// samplePoints is every point (all, as make soak asks), or at most eight: the four newest, the
// failover's, and the rest spread over the others — each restore copies and checks a whole disk.
func samplePoints(points []replication.RecoveryPoint, all bool, failover string) []replication.RecoveryPoint {
	if all || len(points) <= 8 {
		return points
	}
	var out []replication.RecoveryPoint
	for i, p := range points {
		if i < 4 || p.ID == failover || (i-4)%((len(points)-4)/4+1) == 0 {
			out = append(out, p)
		}
	}
	return out
}

// checkGuestDisk replays the filesystem's journal alone, then asks e2fsck (read-only) whether the
// filesystem is clean, and the sqlite3 CLI whether the database is whole and holds every transaction
// id up to mustHave.
func checkGuestDisk(t *testing.T, name, img string, mustHave int64, tools map[string]string) (verified int64) {
	t.Helper()
	if out, err := exec.Command(tools["e2fsck"], "-E", "journal_only", "-y", img).CombinedOutput(); err != nil && exitCode(err) > 1 {
		t.Fatalf("%s: replaying the journal: %v\n%s", name, err, out)
	}
	if out, err := exec.Command(tools["e2fsck"], "-f", "-n", img).CombinedOutput(); err != nil {
		t.Fatalf("%s: the filesystem is not clean after journal replay: %v\n%s", name, err, out)
	}
	db := filepath.Join(filepath.Dir(img), "db.sqlite")
	for _, f := range []string{"db.sqlite", "db.sqlite-journal"} {
		exec.Command(tools["debugfs"], "-R", "dump /"+f+" "+filepath.Join(filepath.Dir(img), f), img).Run()
	}
	if _, err := os.Stat(db); err != nil {
		if mustHave > 0 {
			t.Fatalf("%s: no database, but transaction %d was committed before it", name, mustHave)
		}
		t.Logf("%s: clean; from before the database", name)
		return 0
	}
	schema, err := exec.Command(tools["sqlite3"], db, "PRAGMA integrity_check;", "SELECT count(*) FROM sqlite_master WHERE name IN ('txn', 'total');").CombinedOutput()
	if strings.TrimSpace(string(schema)) == "ok\n0" && err == nil { // the file exists, the schema's transaction did not commit
		if mustHave > 0 {
			t.Fatalf("%s: no schema, but transaction %d was committed before it", name, mustHave)
		}
		t.Logf("%s: clean; from before the database's schema", name)
		return 0
	}
	out, err := exec.Command(tools["sqlite3"], db, "PRAGMA integrity_check;",
		"SELECT count(*), coalesce(max(id), 0), (SELECT rows FROM total) = count(*) AND (SELECT bytes FROM total) = coalesce(sum(size), 0) FROM txn;").CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err != nil || len(lines) != 2 || lines[0] != "ok" {
		t.Fatalf("%s: sqlite3: %v\n%s", name, err, out)
	}
	var count, maxID, totalsAgree int64
	fmt.Sscanf(strings.ReplaceAll(lines[1], "|", " "), "%d %d %d", &count, &maxID, &totalsAgree)
	if count != maxID || totalsAgree != 1 || maxID < mustHave {
		t.Fatalf("%s: %d rows up to id %d (totals agree: %d); transaction %d was committed before it", name, count, maxID, totalsAgree, mustHave)
	}
	t.Logf("%s: clean; transactions 1..%d, of which 1..%d were on the console before it", name, maxID, mustHave)
	return maxID
}

func exitCode(err error) int {
	if e, ok := err.(*exec.ExitError); ok {
		return e.ExitCode()
	}
	return -1
}

// guestWithWorkload is the VM image's OS disk with the database workload (scripts/vm-image.sh builds
// sqlwork, statically linked) written into it by debugfs.
func guestWithWorkload(t *testing.T, images qemu.Images, tools map[string]string, dir string) string {
	sqlwork := filepath.Join(images.Dir, "sqlwork")
	if _, err := os.Stat(sqlwork); err != nil {
		t.Fatalf("%v: scripts/vm-image.sh builds it", err)
	}
	osDisk := filepath.Join(dir, "os.img")
	run(t, "cp", "--sparse=always", images.OS, osDisk)
	run(t, tools["debugfs"], "-w", "-R", "write "+sqlwork+" /bin/sqlwork", osDisk)
	run(t, tools["debugfs"], "-w", "-R", "set_inode_field /bin/sqlwork mode 0100755", osDisk)
	return osDisk
}

// needTools finds host tools by name (in PATH or /sbin).
func needTools(t testing.TB, names ...string) map[string]string {
	found := map[string]string{}
	for _, n := range names {
		path, err := exec.LookPath(n)
		if err != nil {
			if _, serr := os.Stat("/sbin/" + n); serr == nil {
				path, err = "/sbin/"+n, nil
			}
		}
		if err != nil {
			t.Fatalf("%s: %v (scripts/vm-image.sh installs it)", n, err)
		}
		found[n] = path
	}
	return found
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// awaitGroupState waits until the group's view says state.
func awaitGroupState(t testing.TB, s *stack, group, state string, limit time.Duration) {
	t.Helper()
	waitFor(t, limit, group+" "+state, func() bool {
		_, _, body := s.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
		return strings.Contains(body, `"state": "`+state+`"`)
	})
}

// txnLog is what the guests' consoles said was committed, and when this process first read it: a
// commit is durable before its line is printed, and read after, so a transaction read before a moment
// was durable before it.
type txnLog struct {
	mu   sync.Mutex
	seen map[int64]time.Time
}

// follow reads a serial log as it grows until the returned stop is called.
func (l *txnLog) follow(path string) (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		var f *os.File
		for f == nil {
			f, _ = os.Open(path)
			time.Sleep(10 * time.Millisecond)
		}
		defer f.Close()
		r := bufio.NewReader(f)
		var partial string
		for {
			line, err := r.ReadString('\n')
			partial += line
			if err == nil {
				l.note(partial, time.Now())
				partial = ""
				continue
			}
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return func() { close(done); <-finished }
}

func (l *txnLog) note(line string, at time.Time) {
	id, ok := strings.CutPrefix(strings.TrimSpace(line), "STANDBY-TXN ")
	n, err := strconv.ParseInt(id, 10, 64)
	if !ok || err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, seen := l.seen[n]; !seen {
		l.seen[n] = at
	}
}

func (l *txnLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen)
}

// first is when the first transaction was read.
func (l *txnLog) first() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first time.Time
	for _, seen := range l.seen {
		if first.IsZero() || seen.Before(first) {
			first = seen
		}
	}
	return first
}

// longestPause is the longest time between two transactions read one after the other, from the first
// read after since on: how long the workload stood still.
func (l *txnLog) longestPause(since time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var times []time.Time
	for _, seen := range l.seen {
		times = append(times, seen)
	}
	slices.SortFunc(times, time.Time.Compare)
	var longest time.Duration
	for i := 1; i < len(times); i++ {
		if times[i].After(since) {
			longest = max(longest, times[i].Sub(times[i-1]))
		}
	}
	return longest
}

// before is the highest transaction read before at.
func (l *txnLog) before(at time.Time) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var highest int64
	for id, seen := range l.seen {
		if seen.Before(at) && id > highest {
			highest = id
		}
	}
	return highest
}
