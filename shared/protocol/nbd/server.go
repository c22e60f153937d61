package nbd

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/semaphore"
)

const (
	defaultMaxInFlight      = 16
	defaultMaxConns         = 64
	defaultMaxBuffered      = 256 << 20
	defaultReplyTimeout     = 60 * time.Second
	defaultHandshakeTimeout = 30 * time.Second
	// shutdownWriteTimeout bounds how long a shutdown waits for a client to take its last replies.
	shutdownWriteTimeout = 10 * time.Second
	// shutdownOptionGrace is how long a shutdown lets a negotiating client abort cleanly.
	shutdownOptionGrace = time.Second
)

// Server serves NBD exports: fixed newstyle negotiation, simple replies, no TLS (proto.md,
// 'Baseline'; the listener is a unix socket or loopback TCP, see Listen). Set its fields before Serve;
// Add and Remove may be called at any time.
type Server struct {
	// Logger receives connection events, with the keys conn, export and err; nil logs nothing.
	Logger *slog.Logger
	// DefaultExport is the export a client gets by asking for the empty name (proto.md, 'Option types',
	// NBD_OPT_EXPORT_NAME); when it is "", the empty name is an unknown export.
	DefaultExport string
	// MaxInFlight bounds the requests one connection has in service at once (0 means 16): a
	// connection holds at most MaxInFlight+1 payloads of at most MaxPayload bytes.
	MaxInFlight int
	// HandshakeTimeout bounds option haggling, so a silent client does not hold a connection (0 means
	// 30s). The transmission phase has no timeout: a kernel client may be idle for days.
	HandshakeTimeout time.Duration
	// DropOnShutdown leaves the requests read after a shutdown began unanswered: the connection closes
	// with them, so a client that reconnects sends them again. The kernel's client does (with a dead
	// connection timeout it requeues them on its new socket after its I/O timeout, nbd_xmit_timeout in
	// drivers/block/nbd.c), while NBD_ESHUTDOWN, which proto.md's 'Terminating the transmission phase'
	// suggests, is an I/O error to it (nbd_handle_reply, nbd.c:797 in Linux 6.1): the filesystem above
	// would see a restart of the server as a failed disk.
	DropOnShutdown bool
	// MaxConns bounds the connections served at once (0 means 64: the kernel's client uses at most 16);
	// one more is closed as soon as it is accepted, so idle connections cannot pile up.
	MaxConns int
	// MaxBufferedBytes bounds the request data held across every connection at once (0 means 256 MiB):
	// a write's payload from before it is read until it is done, a read's buffer until it is answered.
	// A request waits for room, so clients that ask for whole-disk reads on many connections slow down
	// instead of taking the agent's memory.
	MaxBufferedBytes int64
	// ReplyTimeout bounds how long one reply may wait for the client to take it (0 means 60 s): a
	// client that stops reading loses its connection instead of holding its requests' memory.
	ReplyTimeout time.Duration

	limitsOnce sync.Once
	conns      chan struct{}
	buffered   *semaphore.Weighted

	mu       sync.RWMutex
	exports  map[string]exported
	lastConn atomic.Uint64
}

type exported struct {
	Export
	ExportOptions
}

// Add offers e under name, replacing an export of that name for the connections made from now on
// (connections already using the old one keep it). The name is a protocol string: valid UTF-8, no
// NUL, at most 4096 bytes (proto.md, 'Conventions'), and not empty (see DefaultExport).
func (s *Server) Add(name string, e Export, o ExportOptions) error {
	if name == "" {
		return errors.New("nbd: empty export name (the empty name selects DefaultExport)")
	}
	if err := validString(name); err != nil {
		return fmt.Errorf("nbd: export name %q: %w", name, err)
	}
	if err := validString(o.Description); err != nil {
		return fmt.Errorf("nbd: description of export %q: %w", name, err)
	}
	if size := e.Size(); size < 0 || size%MinBlockSize != 0 {
		// proto.md, 'Size constraints': the size SHOULD be a multiple of the minimum block size, or
		// the client cannot reach the last bytes.
		return fmt.Errorf("nbd: export %q has %d bytes, not a multiple of %d", name, size, MinBlockSize)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exports == nil {
		s.exports = map[string]exported{}
	}
	s.exports[name] = exported{e, o}
	return nil
}

// Remove withdraws an export from new connections; connections using it keep it until they end.
func (s *Server) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.exports, name)
}

// lookup resolves the name a client asked for into the export and its canonical name.
func (s *Server) lookup(name string) (exported, string, bool) {
	if name == "" {
		name = s.DefaultExport
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.exports[name] // never "": Add refuses it
	return e, name, ok
}

// list returns the exports' names, sorted, with their descriptions.
func (s *Server) list() (names, descriptions []string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for name := range s.exports {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		descriptions = append(descriptions, s.exports[name].Description)
	}
	return names, descriptions
}

// limits are the server-wide bounds, made on first use with their defaults.
func (s *Server) limits() (conns chan struct{}, buffered *semaphore.Weighted) {
	s.limitsOnce.Do(func() {
		s.conns = make(chan struct{}, cmp.Or(max(s.MaxConns, 0), defaultMaxConns))
		s.buffered = semaphore.NewWeighted(cmp.Or(max(s.MaxBufferedBytes, 0), defaultMaxBuffered))
	})
	return s.conns, s.buffered
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// Serve accepts connections on l until ctx is cancelled or accepting fails for good, then stops every
// connection (each finishes the requests it has in service, see ServeConn), closes l and returns: nil
// after a cancellation, the accept error otherwise.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(ctx, func() { l.Close() }) // unblocks Accept
	defer stop()
	var wg sync.WaitGroup
	err := s.accept(ctx, l, &wg)
	cancel()
	l.Close()
	wg.Wait()
	return err
}

func (s *Server) accept(ctx context.Context, l net.Listener, wg *sync.WaitGroup) error {
	backoff := 5 * time.Millisecond
	for {
		nc, err := l.Accept()
		switch {
		case err == nil:
			backoff = 5 * time.Millisecond
			conns, _ := s.limits()
			select {
			case conns <- struct{}{}:
				wg.Go(func() {
					defer func() { <-conns }()
					s.ServeConn(ctx, nc)
				})
			default:
				s.logger().Warn("nbd: connection refused: the server serves its most connections", "max", cap(conns))
				nc.Close()
			}
		case ctx.Err() != nil:
			return nil
		case transientAccept(err):
			// Out of descriptors or a connection reset before it was taken: the listener still
			// works, so wait and retry, as net/http does.
			s.logger().Warn("nbd: accept failed, retrying", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
		default:
			return fmt.Errorf("nbd: accept on %s: %w", l.Addr(), err)
		}
	}
}

func transientAccept(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.ECONNRESET} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// ServeConn serves one client connection and closes it. It returns after the client leaves, breaks
// the protocol (a hard disconnect, proto.md 'Termination of the session during option haggling' and
// 'Terminating the transmission phase'), or ctx is cancelled; in that last case the requests in
// service finish and are answered first (proto.md, 'Terminating the transmission phase': the server
// SHOULD wait for inflight requests), those read after it are answered NBD_ESHUTDOWN.
func (s *Server) ServeConn(ctx context.Context, nc net.Conn) {
	defer nc.Close()
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true) // proto.md, 'Protocol phases': both sides SHOULD disable Nagle
	}
	c := &conn{srv: s, nc: nc, r: bufio.NewReaderSize(nc, 64<<10)}
	c.log = s.logger().With("conn", s.lastConn.Add(1))
	timeout := s.HandshakeTimeout
	if timeout <= 0 {
		timeout = defaultHandshakeTimeout
	}
	c.setDeadline(time.Now().Add(timeout))
	defer context.AfterFunc(ctx, c.interrupt)()
	t, err := c.handshake()
	if err != nil {
		c.log.Log(context.Background(), levelOf(ctx, err), "nbd: handshake ended", "err", err)
		return
	}
	if t == nil {
		return // the client aborted
	}
	c.transmit()
	t.run(ctx)
}

// levelOf logs a client that left or a shutdown at Debug, and anything else (a protocol violation, a
// timeout) at Warn.
func levelOf(ctx context.Context, err error) slog.Level {
	if ctx.Err() != nil || errors.Is(err, errClientGone) {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

// conn is one client connection.
type conn struct {
	srv *Server
	nc  net.Conn
	r   *bufio.Reader
	log *slog.Logger

	wmu sync.Mutex // serializes writes: replies to requests in flight come from several goroutines

	dmu          sync.Mutex // guards the two flags below and the deadlines
	closing      bool       // a shutdown began
	transmitting bool       // negotiation is over
}

// send writes one message, whole, so that messages from concurrent requests never interleave, within
// the reply timeout (or the shutdown's, which is shorter).
func (c *conn) send(parts ...[]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.dmu.Lock()
	if !c.closing {
		_ = c.nc.SetWriteDeadline(time.Now().Add(cmp.Or(c.srv.ReplyTimeout, defaultReplyTimeout)))
	}
	c.dmu.Unlock()
	bufs := net.Buffers(parts)
	_, err := bufs.WriteTo(c.nc)
	return err
}

// setDeadline sets both deadlines, unless a shutdown already set its own.
func (c *conn) setDeadline(t time.Time) {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if !c.closing {
		_ = c.nc.SetDeadline(t)
	}
}

// transmit ends the handshake's deadlines: the transmission phase has none.
func (c *conn) transmit() {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.transmitting = true
	if !c.closing {
		_ = c.nc.SetDeadline(time.Time{})
	}
}

// interrupt starts a shutdown. In transmission the blocked read returns at once; in negotiation the
// client gets a moment to take its NBD_REP_ERR_SHUTDOWN and abort (see handshake). Replies get a bounded
// time to go out.
func (c *conn) interrupt() {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.closing = true
	readBy := time.Now()
	if !c.transmitting {
		readBy = readBy.Add(shutdownOptionGrace)
	}
	_ = c.nc.SetReadDeadline(readBy)
	_ = c.nc.SetWriteDeadline(time.Now().Add(shutdownWriteTimeout))
}

func (c *conn) shuttingDown() bool {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	return c.closing
}

// validString checks the rules of a protocol string (proto.md, 'Conventions').
func validString(s string) error {
	switch {
	case len(s) > maxStringLength:
		return fmt.Errorf("%d bytes, more than %d", len(s), maxStringLength)
	case !utf8.ValidString(s):
		return errors.New("not UTF-8")
	case slices.Contains([]byte(s), 0):
		return errors.New("contains NUL")
	}
	return nil
}
