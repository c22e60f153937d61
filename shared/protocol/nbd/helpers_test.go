package nbd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// memExport is an Export in memory that counts what it is asked, and may run a hook (which may block)
// before each operation.
type memExport struct {
	mu                               sync.Mutex
	data                             []byte
	writes, fuaWrites, zeroes, trims int
	flushes                          int
	hook                             func(op string, off int64) error
}

func newMem(size int) *memExport { return &memExport{data: make([]byte, size)} }

func (m *memExport) Size() int64 { return int64(len(m.data)) }

func (m *memExport) before(op string, off int64) error {
	if m.hook != nil {
		return m.hook(op, off)
	}
	return nil
}

func (m *memExport) ReadAt(p []byte, off int64) (int, error) {
	if err := m.before("read", off); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return copy(p, m.data[off:]), nil
}

func (m *memExport) WriteAt(p []byte, off int64, fua bool) error {
	if err := m.before("write", off); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	copy(m.data[off:], p)
	m.writes++
	if fua {
		m.fuaWrites++
	}
	return nil
}

func (m *memExport) WriteZeroes(off, length int64, fua bool) error {
	if err := m.before("zero", off); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.data[off : off+length])
	m.zeroes++
	if fua {
		m.fuaWrites++
	}
	return nil
}

func (m *memExport) Trim(off, length int64) error {
	if err := m.before("trim", off); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.data[off : off+length])
	m.trims++
	return nil
}

func (m *memExport) Flush() error {
	if err := m.before("flush", 0); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flushes++
	return nil
}

func (m *memExport) snapshot() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.data)
}

func (m *memExport) counts() (writes, fuaWrites, zeroes, trims, flushes int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.writes, m.fuaWrites, m.zeroes, m.trims, m.flushes
}

// testServer is a Server serving a unix socket until the test ends.
type testServer struct {
	*Server
	path   string
	cancel context.CancelFunc
	done   chan error
}

// socketDir is a short directory: a unix socket path must fit in 108 bytes, which t.TempDir's
// may not.
func socketDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "nbd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func serve(t testing.TB, s *Server) *testServer {
	t.Helper()
	if s.Logger == nil {
		s.Logger = testLogger(t)
	}
	path := filepath.Join(socketDir(t), "nbd.sock")
	l, err := Listen("unix:"+path, ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: s, path: path, cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- s.Serve(ctx, l) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

// stop cancels Serve and waits for it to return.
func (ts *testServer) stop(t testing.TB) error {
	t.Helper()
	ts.cancel()
	select {
	case err := <-ts.done:
		ts.done <- err // for the next stop
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return after its context was cancelled")
		return nil
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testWriter sends the server's log to the test's log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// client is a small NBD client that sends what a test tells it, right or wrong.
type client struct {
	t     testing.TB
	c     net.Conn
	r     *bufio.Reader
	reads map[uint64]int // cookie → length of the reads in flight
}

func dial(t testing.TB, path string) *client {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return &client{t: t, c: c, r: bufio.NewReader(c), reads: map[uint64]int{}}
}

// write sends parts in one write: the server may answer the first part and hang up (NBD_OPT_ABORT),
// and a second write would then fail.
func (c *client) write(parts ...[]byte) {
	c.t.Helper()
	if _, err := c.c.Write(bytes.Join(parts, nil)); err != nil {
		c.t.Fatalf("client write: %v", err)
	}
}

func (c *client) read(n int) []byte {
	c.t.Helper()
	p := make([]byte, n)
	if _, err := io.ReadFull(c.r, p); err != nil {
		c.t.Fatalf("client read of %d bytes: %v", n, err)
	}
	return p
}

// greet reads the greeting and answers with client flags; it returns the handshake flags.
func (c *client) greet(clientFlags uint32) uint16 {
	c.t.Helper()
	g := c.read(18)
	if be.Uint64(g) != nbdMagic || be.Uint64(g[8:]) != ihaveopt {
		c.t.Fatalf("greeting %x: not NBDMAGIC IHAVEOPT", g)
	}
	c.write(be.AppendUint32(nil, clientFlags))
	return be.Uint16(g[16:])
}

func (c *client) option(opt uint32, data []byte) {
	c.t.Helper()
	h := be.AppendUint64(nil, ihaveopt)
	h = be.AppendUint32(h, opt)
	h = be.AppendUint32(h, uint32(len(data)))
	c.write(h, data)
}

type optReply struct {
	opt, typ uint32
	data     []byte
}

func (c *client) optReply() optReply {
	c.t.Helper()
	h := c.read(20)
	if m := be.Uint64(h); m != optReplyMagic {
		c.t.Fatalf("option reply magic %#x", m)
	}
	return optReply{be.Uint32(h[8:]), be.Uint32(h[12:]), c.read(int(be.Uint32(h[16:])))}
}

// infoGo sends NBD_OPT_INFO or NBD_OPT_GO and returns the NBD_REP_INFO payloads by type and the
// final reply type.
func (c *client) infoGo(opt uint32, name string, infos ...uint16) (map[uint16][]byte, uint32) {
	c.t.Helper()
	c.option(opt, infoRequest(name, infos...))
	got := map[uint16][]byte{}
	for {
		r := c.optReply()
		if r.opt != opt {
			c.t.Fatalf("reply to option %d, want %d", r.opt, opt)
		}
		if r.typ != repInfo {
			return got, r.typ
		}
		typ := be.Uint16(r.data)
		if _, dup := got[typ]; dup {
			c.t.Errorf("NBD_INFO %d sent twice", typ)
		}
		got[typ] = r.data[2:]
	}
}

// connect does a full handshake with NBD_OPT_GO and returns the export's size and flags.
func connect(t testing.TB, path, export string) (*client, uint64, uint16) {
	t.Helper()
	c := dial(t, path)
	c.greet(clientFixedNewstyle | clientNoZeroes)
	infos, typ := c.infoGo(optGo, export, infoBlockSize)
	if typ != repAck {
		t.Fatalf("NBD_OPT_GO %q: reply %#x", export, typ)
	}
	e := infos[infoExport]
	return c, be.Uint64(e), be.Uint16(e[8:])
}

func (c *client) request(typ, flags uint16, cookie, off uint64, length uint32, payload []byte) {
	c.t.Helper()
	c.write(c.encode(typ, flags, cookie, off, length, payload))
}

// encode is a request's bytes (noted as in flight, for its reply).
func (c *client) encode(typ, flags uint16, cookie, off uint64, length uint32, payload []byte) []byte {
	h := be.AppendUint32(nil, requestMagic)
	h = be.AppendUint16(h, flags)
	h = be.AppendUint16(h, typ)
	h = be.AppendUint64(h, cookie)
	h = be.AppendUint64(h, off)
	h = be.AppendUint32(h, length)
	if typ == cmdRead {
		c.reads[cookie] = int(length)
	}
	return append(h, payload...)
}

type reply struct {
	cookie uint64
	errno  uint32
	data   []byte
}

func (c *client) reply() reply {
	c.t.Helper()
	h := c.read(16)
	if m := be.Uint32(h); m != simpleReplyMagic {
		c.t.Fatalf("reply magic %#x", m)
	}
	r := reply{cookie: be.Uint64(h[8:]), errno: be.Uint32(h[4:])}
	if n, ok := c.reads[r.cookie]; ok {
		delete(c.reads, r.cookie)
		if r.errno == 0 {
			r.data = c.read(n)
		}
	}
	return r
}

// do sends one request and returns its reply.
func (c *client) do(typ, flags uint16, off uint64, length uint32, payload []byte) reply {
	c.t.Helper()
	c.request(typ, flags, 7, off, length, payload)
	r := c.reply()
	if r.cookie != 7 {
		c.t.Fatalf("reply cookie %d, want 7", r.cookie)
	}
	return r
}

// closed checks the server closed the connection, without sending anything more.
func (c *client) closed() {
	c.t.Helper()
	p, err := io.ReadAll(c.r)
	if err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		c.t.Fatalf("waiting for the server to close: %v", err)
	}
	if len(p) != 0 {
		c.t.Fatalf("server sent %d more bytes (%x...) before closing", len(p), p[:min(len(p), 32)])
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

func pattern(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = seed + byte(i*7)
	}
	return p
}
