package nbd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// These tests run clients nobody here wrote against the server: libnbd's nbdinfo and nbdcopy
// (Debian's libnbd-bin) and QEMU's qemu-io (qemu-utils). scripts/vm-image.sh installs both packages;
// without a tool the test skips, unless STANDBY_REQUIRE_QEMU is set (make test), which fails it.

func need(t *testing.T, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		why := fmt.Sprintf("%s not found: install Debian's %s (apt-get install -y --no-install-recommends %s, or run scripts/vm-image.sh)", tool, pkg, pkg)
		if os.Getenv("STANDBY_REQUIRE_QEMU") != "" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
}

// tracked is an Export that counts its FUA writes and the most calls it had in service at once.
type tracked struct {
	Export
	inService, most, fua, zeroes, trims, flushes atomic.Int64
}

func (e *tracked) enter() func() {
	n := e.inService.Add(1)
	for m := e.most.Load(); n > m && !e.most.CompareAndSwap(m, n); m = e.most.Load() {
	}
	time.Sleep(100 * time.Microsecond) // long enough for requests to overlap
	return func() { e.inService.Add(-1) }
}

func (e *tracked) WriteAt(p []byte, off int64, fua bool) error {
	defer e.enter()()
	if fua {
		e.fua.Add(1)
	}
	return e.Export.WriteAt(p, off, fua)
}

func (e *tracked) WriteZeroes(off, length int64, fua bool) error {
	e.zeroes.Add(1)
	return e.Export.WriteZeroes(off, length, fua)
}

func (e *tracked) Trim(off, length int64) error {
	e.trims.Add(1)
	return e.Export.Trim(off, length)
}

func (e *tracked) Flush() error {
	e.flushes.Add(1)
	return e.Export.Flush()
}

// countingListener counts the connections it accepted.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// fileServer serves a 64 MiB file as vm1/disk0 (writable, described) and a 1 MiB one as vm1/disk1
// (read-only) on a unix socket, or on loopback TCP.
type fileServer struct {
	disk0, disk1 string // the backing files
	exp0         *tracked
	l            *countingListener
}

func serveFiles(t *testing.T, tcp bool) *fileServer {
	t.Helper()
	dir := socketDir(t)
	srv := &fileServer{disk0: filepath.Join(dir, "disk0.raw"), disk1: filepath.Join(dir, "disk1.raw")}
	s := &Server{Logger: testLogger(t)}
	for _, d := range []struct {
		path     string
		size     int64
		readOnly bool
	}{{srv.disk0, 64 << 20, false}, {srv.disk1, 1 << 20, true}} {
		f, err := os.OpenFile(d.path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		if err := f.Truncate(d.size); err != nil {
			t.Fatal(err)
		}
		e, err := NewFileExport(f)
		if err != nil {
			t.Fatal(err)
		}
		var exp Export = e
		if !d.readOnly {
			srv.exp0 = &tracked{Export: e}
			exp = srv.exp0
		}
		if err := s.Add("vm1/"+strings.TrimSuffix(filepath.Base(d.path), ".raw"), exp, ExportOptions{Description: "disk of vm1", ReadOnly: d.readOnly}); err != nil {
			t.Fatal(err)
		}
	}
	addr := "unix:" + filepath.Join(dir, "nbd.sock")
	if tcp {
		addr = "127.0.0.1:0"
	}
	l, err := Listen(addr, ListenOptions{AllowTCP: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.l = &countingListener{Listener: l}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, srv.l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv
}

func (srv *fileServer) uri(export string) string { return URI(srv.l.Addr(), export) }

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestNbdinfoShowsWhatIsAdvertised(t *testing.T) {
	need(t, "nbdinfo", "libnbd-bin")
	srv := serveFiles(t, false)
	var info struct {
		Protocol   string `json:"protocol"`
		Structured bool   `json:"structured"`
		Exports    []map[string]any
	}
	if err := json.Unmarshal([]byte(run(t, "nbdinfo", "--json", srv.uri("vm1/disk0"))), &info); err != nil {
		t.Fatal(err)
	}
	if info.Protocol != "newstyle-fixed" || info.Structured || len(info.Exports) != 1 {
		t.Fatalf("nbdinfo: protocol %q, structured %v, %d exports", info.Protocol, info.Structured, len(info.Exports))
	}
	want := map[string]any{
		"export-name": "vm1/disk0", "description": "disk of vm1", "export-size": float64(64 << 20),
		"is_read_only": false, "can_flush": true, "can_fua": true, "can_trim": true, "can_zero": true,
		"can_multi_conn": true, "can_cache": false, "can_df": false, "can_fast_zero": false, "is_rotational": false,
		"block_size_minimum": float64(512), "block_size_preferred": float64(4096), "block_size_maximum": float64(32 << 20),
	}
	for k, v := range want {
		if got := info.Exports[0][k]; got != v {
			t.Errorf("nbdinfo %s = %v, want %v", k, got, v)
		}
	}
}

func TestNbdinfoListsExports(t *testing.T) {
	need(t, "nbdinfo", "libnbd-bin")
	srv := serveFiles(t, false)
	var info struct{ Exports []map[string]any }
	if err := json.Unmarshal([]byte(run(t, "nbdinfo", "--list", "--json", srv.uri(""))), &info); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range info.Exports {
		got = append(got, fmt.Sprintf("%v ro=%v size=%v", e["export-name"], e["is_read_only"], e["export-size"]))
	}
	if want := []string{"vm1/disk0 ro=false size=6.7108864e+07", "vm1/disk1 ro=true size=1.048576e+06"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("nbdinfo --list: %v, want %v", got, want)
	}
}

// qemuIO runs qemu-io commands on an export; qemu-io reports a failed pattern check in its output
// (and its exit status), so both are checked.
func qemuIO(t *testing.T, uri string, cmds ...string) {
	t.Helper()
	args := []string{"-f", "raw"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out := run(t, "qemu-io", append(args, uri)...)
	if strings.Contains(out, "fail") || strings.Contains(out, "error") {
		t.Fatalf("qemu-io %v:\n%s", cmds, out)
	}
}

func TestQemuIO(t *testing.T) {
	need(t, "qemu-io", "qemu-utils")
	for _, tcp := range []bool{false, true} {
		t.Run(map[bool]string{false: "unix", true: "tcp"}[tcp], func(t *testing.T) {
			srv := serveFiles(t, tcp)
			uri := srv.uri("vm1/disk0")
			if tcp && !strings.HasPrefix(uri, "nbd://127.0.0.1:") {
				t.Fatalf("URI %s: want nbd://127.0.0.1:PORT/vm1/disk0", uri)
			}
			qemuIO(t, uri, "write -P 0xab 0 1M", "read -P 0xab 0 1M", "flush")
			qemuIO(t, uri, "write -f -P 0xcd 1M 64k", "write -z 0 64k", "discard 64k 64k", "flush")
			qemuIO(t, uri, "read -P 0 0 128k", "read -P 0xab 128k 896k", "read -P 0xcd 1M 64k")
			data, err := os.ReadFile(srv.disk0)
			if err != nil {
				t.Fatal(err)
			}
			want := append(append(make([]byte, 128<<10), bytes.Repeat([]byte{0xab}, 896<<10)...), bytes.Repeat([]byte{0xcd}, 64<<10)...)
			if !bytes.Equal(data[:len(want)], want) {
				t.Error("the backing file does not hold what qemu-io wrote")
			}
			e := srv.exp0
			if e.fua.Load() == 0 || e.zeroes.Load() == 0 || e.trims.Load() == 0 || e.flushes.Load() == 0 {
				t.Errorf("export saw %d FUA writes, %d write-zeroes, %d trims, %d flushes: want each", e.fua.Load(), e.zeroes.Load(), e.trims.Load(), e.flushes.Load())
			}
			// QEMU reads NBD_FLAG_READ_ONLY and refuses to open the export for writing.
			if out, err := exec.Command("qemu-io", "-f", "raw", "-c", "write -P 1 0 4k", srv.uri("vm1/disk1")).CombinedOutput(); err == nil {
				t.Errorf("qemu-io wrote to the read-only export:\n%s", out)
			}
		})
	}
}

func TestNbdcopyRoundTrip(t *testing.T) {
	need(t, "nbdcopy", "libnbd-bin")
	srv := serveFiles(t, false)
	dir := t.TempDir()
	src, back := filepath.Join(dir, "src.raw"), filepath.Join(dir, "back.raw")
	data := make([]byte, 64<<20)
	rand.Read(data)
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "nbdcopy", "--connections=4", "--threads=4", "--requests=16", "--flush", src, srv.uri("vm1/disk0"))
	if n := srv.l.accepted.Load(); n < 4 {
		t.Errorf("nbdcopy made %d connections, want 4 (is NBD_FLAG_CAN_MULTI_CONN advertised?)", n)
	}
	if m := srv.exp0.most.Load(); m < 2 {
		t.Errorf("at most %d write in service at once: requests were not served concurrently", m)
	}
	if got, err := os.ReadFile(srv.disk0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the backing file differs from the source after nbdcopy in (%v)", err)
	}
	run(t, "nbdcopy", "--connections=4", "--threads=4", "--requests=16", srv.uri("vm1/disk0"), back)
	if got, err := os.ReadFile(back); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("nbdcopy out differs from the source (%v)", err)
	}
}
