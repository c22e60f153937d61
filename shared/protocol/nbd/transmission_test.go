package nbd

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestCommands(t *testing.T) {
	ts, d0, _ := twoExports(t, &Server{})
	c, size, flags := connect(t, ts.path, "vm1/disk0")
	if size != 1<<20 || flags != flagsWritableExports {
		t.Fatalf("NBD_OPT_GO: size %d flags %#x", size, flags)
	}
	data := pattern(64<<10, 3)
	if r := c.do(cmdWrite, 0, 4096, uint32(len(data)), data); r.errno != 0 {
		t.Fatalf("write: errno %d", r.errno)
	}
	if r := c.do(cmdRead, 0, 4096, uint32(len(data)), nil); r.errno != 0 || !bytes.Equal(r.data, data) {
		t.Fatalf("read back: errno %d, equal %v", r.errno, bytes.Equal(r.data, data))
	}
	if r := c.do(cmdWrite, cmdFlagFUA, 0, 512, pattern(512, 9)); r.errno != 0 {
		t.Fatalf("FUA write: errno %d", r.errno)
	}
	if r := c.do(cmdWriteZeroes, cmdFlagNoHole|cmdFlagFUA, 4096, 4096, nil); r.errno != 0 {
		t.Fatalf("write zeroes: errno %d", r.errno)
	}
	if r := c.do(cmdTrim, cmdFlagFUA, 8192, 4096, nil); r.errno != 0 {
		t.Fatalf("trim: errno %d", r.errno)
	}
	if r := c.do(cmdFlush, 0, 0, 0, nil); r.errno != 0 {
		t.Fatalf("flush: errno %d", r.errno)
	}
	// FUA is valid on every command once advertised ('Command flags'), reads included.
	if r := c.do(cmdRead, cmdFlagFUA, 0, 0, nil); r.errno != 0 || len(r.data) != 0 {
		t.Fatalf("empty FUA read: errno %d, %d bytes", r.errno, len(r.data))
	}
	want := make([]byte, 1<<20)
	copy(want[4096:], data)
	copy(want, pattern(512, 9))
	clear(want[4096 : 3*4096])
	if got := d0.snapshot(); !bytes.Equal(got, want) {
		t.Error("the export does not hold what was written")
	}
	writes, fua, zeroes, trims, flushes := d0.counts()
	// FUA on the write and the write-zeroes; FUA on the trim is a flush after it.
	if writes != 2 || fua != 2 || zeroes != 1 || trims != 1 || flushes != 2 {
		t.Errorf("export calls: %d writes (%d FUA), %d zeroes, %d trims, %d flushes; want 2 (2), 1, 1, 2", writes, fua, zeroes, trims, flushes)
	}
}

func TestRequestErrors(t *testing.T) {
	ts, d0, _ := twoExports(t, &Server{})
	c, _, _ := connect(t, ts.path, "vm1/disk0")
	const size = 1 << 20
	for _, tc := range []struct {
		name          string
		typ, flags    uint16
		off           uint64
		length        uint32
		payload       bool
		errno         uint32
		alsoReadsData bool
	}{
		{name: "unknown command", typ: 99, errno: errInval},
		{name: "cache, not advertised", typ: cmdCache, length: 512, errno: errInval},
		{name: "block status, not negotiated", typ: 7, length: 512, errno: errInval},
		{name: "unknown flag", typ: cmdRead, flags: 1 << 9, length: 512, errno: errInval},
		{name: "DF without structured replies", typ: cmdRead, flags: 1 << 2, length: 512, errno: errInval},
		{name: "NO_HOLE on a write", typ: cmdWrite, flags: cmdFlagNoHole, length: 512, payload: true, errno: errInval},
		{name: "FAST_ZERO not advertised", typ: cmdWriteZeroes, flags: 1 << 4, length: 512, errno: errInval},
		{name: "read over the maximum payload", typ: cmdRead, length: MaxPayload + 512, errno: errInval},
		{name: "write over the maximum payload", typ: cmdWrite, length: MaxPayload + 512, payload: true, errno: errInval},
		{name: "unaligned offset", typ: cmdRead, off: 100, length: 512, errno: errInval},
		{name: "unaligned length", typ: cmdWrite, length: 100, payload: true, errno: errInval},
		{name: "read past the end", typ: cmdRead, off: size - 512, length: 1024, errno: errInval},
		{name: "read starting past the end", typ: cmdRead, off: size + 512, length: 0, errno: errInval},
		{name: "offset overflows", typ: cmdRead, off: 1<<64 - 512, length: 1024, errno: errInval},
		{name: "trim past the end", typ: cmdTrim, off: size, length: 512, errno: errInval},
		{name: "write past the end", typ: cmdWrite, off: size - 512, length: 1024, payload: true, errno: errNoSpc},
		{name: "write zeroes past the end", typ: cmdWriteZeroes, off: size, length: 512, errno: errNoSpc},
		{name: "flush with a length", typ: cmdFlush, length: 512, errno: errInval},
		{name: "zero-length write at the end", typ: cmdWrite, off: size, errno: 0},
		{name: "write zeroes longer than the maximum payload", typ: cmdWriteZeroes, length: size, errno: 0},
	} {
		var payload []byte
		if tc.payload {
			payload = pattern(int(tc.length), 1) // a refused write's data is read and dropped
		}
		r := c.do(tc.typ, tc.flags, tc.off, tc.length, payload)
		if r.errno != tc.errno || len(r.data) != 0 {
			t.Errorf("%s: errno %d with %d bytes, want %d", tc.name, r.errno, len(r.data), tc.errno)
		}
	}
	// Still in step, and nothing reached the export but the last write-zeroes.
	if r := c.do(cmdRead, 0, 0, 512, nil); r.errno != 0 || len(r.data) != 512 {
		t.Fatalf("read after the errors: errno %d", r.errno)
	}
	if writes, _, zeroes, trims, _ := d0.counts(); writes != 0 || zeroes != 1 || trims != 0 {
		t.Errorf("refused requests reached the export: %d writes, %d zeroes, %d trims", writes, zeroes, trims)
	}
}

func TestReadOnlyExportRefusesWrites(t *testing.T) {
	ts, _, d1 := twoExports(t, &Server{})
	c, _, flags := connect(t, ts.path, "vm1/disk1")
	if flags&flagReadOnly == 0 {
		t.Fatalf("flags %#x without NBD_FLAG_READ_ONLY", flags)
	}
	if r := c.do(cmdWrite, 0, 0, 4096, pattern(4096, 1)); r.errno != errPerm {
		t.Errorf("write: errno %d, want EPERM", r.errno)
	}
	if r := c.do(cmdTrim, 0, 0, 4096, nil); r.errno != errPerm {
		t.Errorf("trim: errno %d, want EPERM", r.errno)
	}
	if r := c.do(cmdWriteZeroes, 0, 0, 4096, nil); r.errno != errPerm {
		t.Errorf("write zeroes: errno %d, want EPERM", r.errno)
	}
	if r := c.do(cmdRead, cmdFlagFUA, 0, 512, nil); r.errno != errInval {
		t.Errorf("FUA read, FUA not advertised: errno %d, want EINVAL", r.errno)
	}
	if r := c.do(cmdRead, 0, 0, 512, nil); r.errno != 0 || len(r.data) != 512 {
		t.Errorf("read: errno %d", r.errno)
	}
	if writes, _, zeroes, trims, _ := d1.counts(); writes+zeroes+trims != 0 {
		t.Error("a read-only export was written")
	}
}

func TestHugeWriteDisconnects(t *testing.T) {
	ts, _, _ := twoExports(t, &Server{})
	c, _, _ := connect(t, ts.path, "vm1/disk0")
	c.request(cmdWrite, 0, 1, 0, 0xfffffe00, nil) // 4 GiB announced: not worth reading to skip
	c.closed()
}

func TestBadRequestMagicDisconnects(t *testing.T) {
	ts, _, _ := twoExports(t, &Server{})
	c, _, _ := connect(t, ts.path, "vm1/disk0")
	c.write(make([]byte, 28))
	c.closed()
}

func TestBackendErrorsMapToNBDErrors(t *testing.T) {
	ts, d0, _ := twoExports(t, &Server{})
	var fail atomic.Pointer[error]
	d0.hook = func(op string, off int64) error { return *fail.Load() }
	c, _, _ := connect(t, ts.path, "vm1/disk0")
	for _, tc := range []struct {
		err   error
		errno uint32
	}{
		{fmt.Errorf("quota: %w", syscall.EDQUOT), errNoSpc},
		{syscall.EROFS, errPerm},
		{errors.New("replication journal closed"), errIO},
	} {
		fail.Store(&tc.err)
		if r := c.do(cmdWrite, 0, 0, 512, pattern(512, 1)); r.errno != tc.errno {
			t.Errorf("write failing with %v: errno %d, want %d", tc.err, r.errno, tc.errno)
		}
		if r := c.do(cmdRead, 0, 0, 512, nil); r.errno != tc.errno || r.data != nil {
			t.Errorf("read failing with %v: errno %d and %d bytes, want %d and none", tc.err, r.errno, len(r.data), tc.errno)
		}
	}
}

// gate blocks the export's operations at chosen offsets until released.
type gate struct {
	mu      sync.Mutex
	blocked map[int64]chan struct{}
	entered chan int64
}

func newGate(offsets ...int64) *gate {
	g := &gate{blocked: map[int64]chan struct{}{}, entered: make(chan int64, 100)}
	for _, off := range offsets {
		g.blocked[off] = make(chan struct{})
	}
	return g
}

func (g *gate) hook(op string, off int64) error {
	g.entered <- off
	g.mu.Lock()
	ch := g.blocked[off]
	g.mu.Unlock()
	if ch != nil {
		<-ch
	}
	return nil
}

// release lets the operations at off through, from now on.
func (g *gate) release(off int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ch := g.blocked[off]; ch != nil {
		close(ch)
		delete(g.blocked, off)
	}
}

func TestRepliesOutOfOrder(t *testing.T) {
	ts, d0, _ := twoExports(t, &Server{})
	g := newGate(0)
	d0.hook = g.hook
	c, _, _ := connect(t, ts.path, "vm1/disk0")
	c.request(cmdRead, 0, 1, 0, 512, nil)    // blocks in the export
	c.request(cmdRead, 0, 2, 4096, 512, nil) // overtakes it
	c.request(cmdWrite, 0, 3, 8192, 512, pattern(512, 5))
	got := []uint64{c.reply().cookie, c.reply().cookie}
	g.release(0)
	got = append(got, c.reply().cookie)
	if got[2] != 1 || got[0] == 1 || got[1] == 1 {
		t.Errorf("reply order %v: the blocked read (cookie 1) should come last", got)
	}
}

func TestDiscWaitsForRequestsInFlight(t *testing.T) {
	ts, d0, _ := twoExports(t, &Server{})
	d0.hook = func(op string, off int64) error {
		time.Sleep(50 * time.Millisecond)
		return nil
	}
	c, _, _ := connect(t, ts.path, "vm1/disk0")
	for i := range 8 {
		c.request(cmdWrite, 0, uint64(i), uint64(i)*4096, 4096, pattern(4096, byte(i)))
	}
	c.request(cmdDisc, 0, 100, 0, 0, nil)
	seen := map[uint64]bool{}
	for range 8 {
		r := c.reply()
		if r.errno != 0 || seen[r.cookie] {
			t.Fatalf("reply %d: errno %d, seen before %v", r.cookie, r.errno, seen[r.cookie])
		}
		seen[r.cookie] = true
	}
	c.closed() // no reply to NBD_CMD_DISC
	got := d0.snapshot()
	for i := range 8 {
		if !bytes.Equal(got[i*4096:(i+1)*4096], pattern(4096, byte(i))) {
			t.Errorf("write %d acknowledged but not in the export", i)
		}
	}
}

func TestMaxInFlightBoundsAConnection(t *testing.T) {
	ts, d0, _ := twoExports(t, &Server{MaxInFlight: 3})
	var in, most atomic.Int64
	d0.hook = func(op string, off int64) error {
		n := in.Add(1)
		defer in.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(10 * time.Millisecond)
		return nil
	}
	c, _, _ := connect(t, ts.path, "vm1/disk0")
	for i := range 30 {
		c.request(cmdRead, 0, uint64(i), uint64(i)*512, 512, nil)
	}
	for range 30 {
		if r := c.reply(); r.errno != 0 {
			t.Fatalf("read %d: errno %d", r.cookie, r.errno)
		}
	}
	if m := most.Load(); m != 3 {
		t.Errorf("%d requests in service at once, want MaxInFlight = 3", m)
	}
}

func TestConnectionsAtOnce(t *testing.T) {
	ts, d0, _ := twoExports(t, &Server{})
	const conns, perConn, block = 4, 32, 4096
	var wg sync.WaitGroup
	for i := range conns {
		c, _, _ := connect(t, ts.path, "vm1/disk0")
		wg.Go(func() {
			go func() {
				for j := range perConn {
					off := uint64(i*perConn+j) * block
					c.request(cmdWrite, cmdFlagFUA, off, off, block, pattern(block, byte(i*perConn+j)))
				}
			}()
			for range perConn {
				if r := c.reply(); r.errno != 0 {
					t.Errorf("connection %d: write at %d: errno %d", i, r.cookie, r.errno)
				}
			}
		})
	}
	wg.Wait()
	got := d0.snapshot()
	for k := range conns * perConn {
		if !bytes.Equal(got[k*block:(k+1)*block], pattern(block, byte(k))) {
			t.Fatalf("block %d does not hold its write", k)
		}
	}
}

func TestShutdownFinishesRequestsInFlight(t *testing.T) {
	ts, d0, _ := twoExports(t, &Server{})
	g := newGate(4096)
	d0.hook = g.hook
	t.Cleanup(func() { g.release(4096) }) // a failure must not leave Serve waiting for the gated write
	c, _, _ := connect(t, ts.path, "vm1/disk0")
	idle, _, _ := connect(t, ts.path, "vm1/disk1")
	hs := dial(t, ts.path) // still negotiating
	hs.greet(clientFixedNewstyle)
	c.request(cmdWrite, 0, 1, 4096, 4096, pattern(4096, 7))
	<-g.entered
	ts.cancel()
	time.Sleep(50 * time.Millisecond)
	select {
	case <-ts.done:
		t.Fatal("Serve returned with a request in service")
	default:
	}
	// A negotiating client is told the server shuts down, and may abort cleanly.
	hs.option(optGo, infoRequest("vm1/disk0"))
	if r := hs.optReply(); r.typ != repErrShutdown {
		t.Errorf("option during a shutdown: %#x, want NBD_REP_ERR_SHUTDOWN", r.typ)
	}
	hs.option(optAbort, nil)
	if r := hs.optReply(); r.typ != repAck {
		t.Errorf("NBD_OPT_ABORT during a shutdown: %#x, want NBD_REP_ACK", r.typ)
	}
	hs.closed()
	g.release(4096)
	if r := c.reply(); r.cookie != 1 || r.errno != 0 {
		t.Errorf("the write in service: cookie %d errno %d, want 1 and success", r.cookie, r.errno)
	}
	c.closed()
	idle.closed()
	if err := ts.stop(t); err != nil {
		t.Errorf("Serve: %v", err)
	}
	if !bytes.Equal(d0.snapshot()[4096:8192], pattern(4096, 7)) {
		t.Error("the acknowledged write is not in the export")
	}
}

// A client that disconnects in the middle of a write's payload: nothing of the torn write reaches the
// export, and the server goes on serving another connection.
func TestDisconnectMidWriteWritesNothing(t *testing.T) {
	ts, d0, _ := twoExports(t, &Server{})
	c, _, _ := connect(t, ts.path, "vm1/disk0")
	payload := pattern(64<<10, 7)
	c.request(cmdWrite, 0, 1, 0, uint32(len(payload)), payload[:20<<10]) // a third of the payload, then gone
	c.c.Close()
	other, _, _ := connect(t, ts.path, "vm1/disk0")
	if r := other.do(cmdRead, 0, 0, 64<<10, nil); r.errno != 0 || !bytes.Equal(r.data, make([]byte, 64<<10)) {
		t.Fatalf("after a torn write: errno %d, the range holds written data: %v", r.errno, !bytes.Equal(r.data, make([]byte, 64<<10)))
	}
	if writes, _, _, _, _ := d0.counts(); writes != 0 {
		t.Fatalf("%d writes reached the export from a torn request", writes)
	}
}
