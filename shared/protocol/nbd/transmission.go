package nbd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"syscall"

	"golang.org/x/sync/semaphore"
)

// session is a connection in the transmission phase (proto.md, 'Transmission'): one goroutine reads
// requests and hands each to a goroutine of its own, at most cap(slots) at once; replies go out in
// completion order, matched to requests by their cookies, which 'Transmission' allows.
type session struct {
	c     *conn
	exp   Export
	size  uint64
	flags uint16 // transmission flags
	log   *slog.Logger
	slots chan struct{}
	// buffered is the server's budget of request data held at once (Server.MaxBufferedBytes).
	buffered *semaphore.Weighted
	wg       sync.WaitGroup
	fail     sync.Once // the first reply that cannot be sent ends the connection
}

// request is a request message (proto.md, 'Request message').
type request struct {
	flags, typ     uint16
	cookie, offset uint64
	length         uint32
}

func (c *conn) session(e exported, name string) *session {
	n := c.srv.MaxInFlight
	if n <= 0 {
		n = defaultMaxInFlight
	}
	_, buffered := c.srv.limits()
	return &session{
		c: c, exp: e.Export, size: uint64(e.Size()), flags: transmissionFlags(e),
		log: c.log.With("export", name), slots: make(chan struct{}, n), buffered: buffered,
	}
}

// run serves requests until the client sends NBD_CMD_DISC or leaves, breaks the protocol, or ctx is
// cancelled, and returns once every request it took is answered (proto.md, 'Request types',
// NBD_CMD_DISC: the server MUST handle all outstanding requests; 'Terminating the transmission phase':
// on shutdown it SHOULD wait for inflight requests).
func (s *session) run(ctx context.Context) {
	defer s.wg.Wait()
	for {
		r, err := s.readRequest()
		if err != nil {
			s.log.Log(context.Background(), levelOf(ctx, err), "nbd: transmission ended", "err", err)
			return
		}
		if r.typ == cmdDisc {
			s.log.Debug("nbd: client disconnected")
			return
		}
		errno := s.check(r)
		held, skip := s.holds(r, errno), errno
		if held > 0 && s.buffered.Acquire(ctx, held) != nil {
			held, skip = 0, errShutdown // a shutdown began while it waited for room: its data is skipped
		}
		payload, err := s.payload(r, skip)
		if err != nil {
			s.buffered.Release(held)
			s.log.Log(context.Background(), levelOf(ctx, err), "nbd: transmission ended", "err", err)
			return
		}
		if errno == 0 && ctx.Err() != nil {
			s.buffered.Release(held)
			if s.c.srv.DropOnShutdown {
				s.log.Debug("nbd: transmission ended unanswered: a shutdown began", "cookie", r.cookie)
				return
			}
			errno = errShutdown // 'Terminating the transmission phase': requests after a shutdown began
		}
		if errno != 0 {
			if err := s.reply(r.cookie, errno, nil); err != nil {
				s.log.Debug("nbd: transmission ended", "err", err)
				return
			}
			continue
		}
		s.slots <- struct{}{}
		s.wg.Go(func() {
			defer func() { <-s.slots }()
			s.serve(r, payload)
			s.buffered.Release(held) // the payload is done with, the read's data sent
		})
	}
}

// holds is how many bytes of data serving r holds (its payload or its read's buffer): none for a
// refused request or one without data.
func (s *session) holds(r request, errno uint32) int64 {
	if errno != 0 || (r.typ != cmdRead && r.typ != cmdWrite) {
		return 0
	}
	return int64(r.length)
}

// readRequest reads a request header. A wrong magic is a broken stream: nothing after it can be
// trusted, so the connection ends ('Terminating the transmission phase': either side MAY initiate a
// hard disconnect on a violation of a mandatory condition).
func (s *session) readRequest() (request, error) {
	var h [28]byte
	if err := s.c.read(h[:]); err != nil {
		return request{}, fmt.Errorf("request header: %w", err)
	}
	if magic := be.Uint32(h[0:]); magic != requestMagic {
		return request{}, fmt.Errorf("request magic %#x, not NBD_REQUEST_MAGIC", magic)
	}
	return request{
		flags: be.Uint16(h[4:]), typ: be.Uint16(h[6:]), cookie: be.Uint64(h[8:]),
		offset: be.Uint64(h[16:]), length: be.Uint32(h[24:]),
	}, nil
}

// check returns the error a request gets before it reaches the export, or 0 (proto.md, 'Error
// values', unless said otherwise).
func (s *session) check(r request) uint32 {
	writes := r.typ == cmdWrite || r.typ == cmdTrim || r.typ == cmdWriteZeroes
	allowed := uint16(0)
	if s.flags&flagSendFUA != 0 {
		allowed |= cmdFlagFUA // 'Command flags': valid on every command once SEND_FUA is advertised
	}
	if r.typ == cmdWriteZeroes {
		allowed |= cmdFlagNoHole
	}
	switch {
	case r.typ != cmdRead && !writes && r.typ != cmdFlush:
		return errInval // an unknown command, or one never advertised (CACHE, BLOCK_STATUS)
	case writes && s.flags&flagReadOnly != 0:
		return errPerm // a write, trim or write-zeroes on a read-only export
	case r.flags&^allowed != 0:
		return errInval // an unknown flag, or one not documented for the command
	case r.typ == cmdFlush:
		if r.offset != 0 || r.length != 0 {
			return errInval // 'Request types', NBD_CMD_FLUSH: offset and length MUST be zero
		}
		return 0
	case (r.typ == cmdRead || r.typ == cmdWrite) && r.length > MaxPayload:
		return errInval // 'Size constraints': longer than the maximum payload
	case r.offset%MinBlockSize != 0 || r.length%MinBlockSize != 0:
		return errInval // not aligned to the advertised minimum block size
	case r.offset > s.size || uint64(r.length) > s.size-r.offset:
		if r.typ == cmdWrite || r.typ == cmdWriteZeroes {
			return errNoSpc // a write past the end
		}
		return errInval // a read or trim past the end
	}
	return 0
}

// payload reads a write's data. A refused write's data is read and dropped, so the next request
// header is found, unless it is too long to be worth it (see maxDiscard).
func (s *session) payload(r request, errno uint32) ([]byte, error) {
	if r.typ != cmdWrite {
		return nil, nil
	}
	if errno != 0 {
		if r.length > maxDiscard {
			return nil, fmt.Errorf("refused write of %d bytes: too long to skip", r.length)
		}
		if _, err := io.CopyN(io.Discard, s.c.r, int64(r.length)); err != nil {
			return nil, fmt.Errorf("refused write's data: %w", gone(err))
		}
		return nil, nil
	}
	p := make([]byte, r.length) // at most MaxPayload, checked above
	if err := s.c.read(p); err != nil {
		return nil, fmt.Errorf("write data: %w", err)
	}
	return p, nil
}

// serve runs an accepted request on the export and replies.
func (s *session) serve(r request, payload []byte) {
	data, err := s.do(r, payload)
	var errno uint32
	if err != nil {
		errno = errnoOf(err)
		s.log.Error("nbd: request failed", "cmd", cmdName(r.typ), "offset", r.offset, "length", r.length, "err", err)
	}
	if err := s.reply(r.cookie, errno, data); err != nil {
		s.fail.Do(func() {
			s.log.Debug("nbd: reply not sent, closing", "err", err)
			s.c.nc.Close() // the client cannot be answered: end the connection, and the reader with it
		})
	}
}

func (s *session) do(r request, payload []byte) ([]byte, error) {
	off, n, fua := int64(r.offset), int64(r.length), r.flags&cmdFlagFUA != 0
	switch {
	case r.typ == cmdFlush:
		// 'Request types', NBD_CMD_FLUSH: every write already answered reaches permanent storage
		// first; Export.Flush covers all writes the export completed.
		return nil, s.exp.Flush()
	case n == 0:
		return nil, nil // 'Request types': a zero length is unspecified; the server SHOULD NOT disconnect
	case r.typ == cmdRead:
		p := make([]byte, n)
		if got, err := s.exp.ReadAt(p, off); got < len(p) {
			return nil, fmt.Errorf("read %d of %d bytes: %w", got, n, cmp.Or(err, io.ErrUnexpectedEOF))
		}
		return p, nil
	case r.typ == cmdWrite:
		return nil, s.exp.WriteAt(payload, off, fua)
	case r.typ == cmdWriteZeroes:
		return nil, s.exp.WriteZeroes(off, n, fua) // NO_HOLE needs nothing more: WriteZeroes provisions
	default: // cmdTrim
		if err := s.exp.Trim(off, n); err != nil || !fua {
			return nil, err
		}
		return nil, s.exp.Flush() // 'Command flags': FUA on a trim that wrote
	}
}

// reply sends a simple reply (proto.md, 'Simple reply message'), with the data of a successful read.
func (s *session) reply(cookie uint64, errno uint32, data []byte) error {
	var h [16]byte
	be.PutUint32(h[0:], simpleReplyMagic)
	be.PutUint32(h[4:], errno)
	be.PutUint64(h[8:], cookie)
	if err := s.c.send(h[:], data); err != nil {
		return fmt.Errorf("reply: %w", gone(err))
	}
	return nil
}

// errnoOf maps an export's error to an NBD error value (proto.md, 'Error values': EDQUOT and EFBIG
// SHOULD map to NBD_ENOSPC; ENOMEM SHOULD NOT be sent; anything unmapped is an I/O error).
func errnoOf(err error) uint32 {
	is := func(errnos ...syscall.Errno) bool {
		for _, e := range errnos {
			if errors.Is(err, e) {
				return true
			}
		}
		return false
	}
	switch {
	case is(syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG):
		return errNoSpc
	case is(syscall.EPERM, syscall.EACCES, syscall.EROFS):
		return errPerm
	case is(syscall.EINVAL):
		return errInval
	}
	return errIO
}

func cmdName(typ uint16) string {
	switch typ {
	case cmdRead:
		return "read"
	case cmdWrite:
		return "write"
	case cmdFlush:
		return "flush"
	case cmdTrim:
		return "trim"
	case cmdWriteZeroes:
		return "write_zeroes"
	}
	return fmt.Sprintf("command %d", typ)
}
