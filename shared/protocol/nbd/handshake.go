package nbd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
)

var be = binary.BigEndian // proto.md, 'Conventions': network byte order

// errClientGone marks the end of a connection the client chose: EOF, a reset, a closed connection.
var errClientGone = errors.New("client closed the connection")

// read fills p from the connection.
func (c *conn) read(p []byte) error {
	if _, err := io.ReadFull(c.r, p); err != nil {
		return gone(err)
	}
	return nil
}

func gone(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrClosedPipe) {
		return fmt.Errorf("%w (%v)", errClientGone, err)
	}
	return err
}

// handshake runs fixed newstyle negotiation (proto.md, 'Newstyle negotiation' and 'Fixed newstyle
// negotiation') and returns the session the client chose, or nil if it aborted. An error means a hard
// disconnect: the client left, broke a MUST, or asked for something only a disconnect can refuse.
func (c *conn) handshake() (*session, error) {
	var greeting [18]byte
	be.PutUint64(greeting[0:], nbdMagic)
	be.PutUint64(greeting[8:], ihaveopt)
	// proto.md, 'Handshake flags': FIXED_NEWSTYLE MUST be set by a server that supports it; the
	// server MUST NOT set any other flag.
	be.PutUint16(greeting[16:], flagFixedNewstyle|flagNoZeroes)
	if err := c.send(greeting[:]); err != nil {
		return nil, fmt.Errorf("greeting: %w", gone(err))
	}
	var cf [4]byte
	if err := c.read(cf[:]); err != nil {
		return nil, fmt.Errorf("client flags: %w", err)
	}
	flags := be.Uint32(cf[:])
	if unknown := flags &^ clientKnown; unknown != 0 {
		// proto.md, 'Client flags': the server MUST drop the connection if the client sets an unknown
		// flag or one the server did not advertise (both known ones are advertised).
		return nil, fmt.Errorf("client flags %#x: unknown bits %#x", flags, unknown)
	}
	// A client without NBD_FLAG_C_FIXED_NEWSTYLE still gets fixed newstyle replies ('Client flags':
	// servers MAY honour fixed newstyle from such clients); its only option, NBD_OPT_EXPORT_NAME,
	// works the same either way.
	noZeroes := flags&clientNoZeroes != 0
	for {
		opt, data, err := c.readOption()
		if err != nil {
			return nil, err
		}
		if parsed := opt == optExportName || opt == optList || opt == optInfo || opt == optGo; parsed && data == nil {
			// Too long to be valid: NBD_REP_ERR_TOO_BIG ('Option reply types'), or for
			// NBD_OPT_EXPORT_NAME, which has no error reply, a hard disconnect.
			if opt == optExportName {
				return nil, errors.New("NBD_OPT_EXPORT_NAME with a name too long")
			}
			if err := c.optReply(opt, repErrTooBig, []byte("option data too long")); err != nil {
				return nil, err
			}
			continue
		}
		if opt != optAbort && c.shuttingDown() {
			// proto.md, 'Termination of the session during option haggling': a server being shut
			// down SHOULD error further options but NBD_OPT_ABORT with NBD_REP_ERR_SHUTDOWN, and
			// the client MUST then soft disconnect; NBD_OPT_EXPORT_NAME has no error reply, so it
			// gets the hard disconnect it would get for any export the server cannot give.
			if opt == optExportName {
				return nil, errors.New("NBD_OPT_EXPORT_NAME during a shutdown")
			}
			if err := c.optReply(opt, repErrShutdown, []byte("the server is shutting down")); err != nil {
				return nil, err
			}
			continue
		}
		s, done, err := c.option(opt, data, noZeroes)
		if err != nil || done {
			return s, err
		}
	}
}

// readOption reads one option (proto.md, 'Newstyle negotiation': IHAVEOPT, option, length, data).
// Data longer than maxOptionLength is read and dropped, and nil returned: the option can still be
// answered, and the next one found ('Baseline': the server MUST NOT fail to parse the next message).
func (c *conn) readOption() (uint32, []byte, error) {
	var h [16]byte
	if err := c.read(h[:]); err != nil {
		return 0, nil, fmt.Errorf("option header: %w", err)
	}
	if magic := be.Uint64(h[0:]); magic != ihaveopt {
		return 0, nil, fmt.Errorf("option magic %#x, not IHAVEOPT", magic)
	}
	opt, length := be.Uint32(h[8:]), be.Uint32(h[12:])
	if length > maxOptionLength {
		if _, err := io.CopyN(io.Discard, c.r, int64(length)); err != nil {
			return 0, nil, fmt.Errorf("option %d data: %w", opt, gone(err))
		}
		return opt, nil, nil
	}
	data := make([]byte, length)
	if err := c.read(data); err != nil {
		return 0, nil, fmt.Errorf("option %d data: %w", opt, err)
	}
	return opt, data, nil
}

// option answers one option; done says the negotiation is over (transmission, or an abort).
func (c *conn) option(opt uint32, data []byte, noZeroes bool) (*session, bool, error) {
	switch opt {
	case optExportName:
		s, err := c.exportName(data, noZeroes)
		return s, true, err
	case optAbort:
		// proto.md, 'Option types', NBD_OPT_ABORT: the server MUST reply with NBD_REP_ACK, ignores
		// any data, and SHOULD take a client that closes without reading the reply gracefully.
		_ = c.optReply(opt, repAck, nil)
		return nil, true, nil
	case optList:
		return nil, false, c.list(data)
	case optInfo, optGo:
		return c.infoGo(opt, data)
	default:
		// proto.md, 'Baseline': options a server does not implement MUST get NBD_REP_ERR_UNSUP, and
		// the next option MUST still parse (the length told us where it starts).
		return nil, false, c.optReply(opt, repErrUnsup, fmt.Appendf(nil, "option %d is not supported", opt))
	}
}

// optReply sends an option reply (proto.md, 'Fixed newstyle negotiation'); an error reply's data is a
// message for people ('Option reply types').
func (c *conn) optReply(opt, typ uint32, data []byte) error {
	var h [20]byte
	be.PutUint64(h[0:], optReplyMagic)
	be.PutUint32(h[8:], opt)
	be.PutUint32(h[12:], typ)
	be.PutUint32(h[16:], uint32(len(data)))
	if err := c.send(h[:], data); err != nil {
		return fmt.Errorf("reply to option %d: %w", opt, gone(err))
	}
	return nil
}

// exportName ends negotiation the old way (proto.md, 'Option types', NBD_OPT_EXPORT_NAME): the name is
// the whole data, the reply is size, transmission flags and, unless the client set
// NBD_FLAG_C_NO_ZEROES, 124 zero bytes.
func (c *conn) exportName(data []byte, noZeroes bool) (*session, error) {
	e, name, ok := c.srv.lookup(string(data))
	if !ok || validString(string(data)) != nil {
		// The option cannot carry an error: the server MUST terminate the session.
		return nil, fmt.Errorf("NBD_OPT_EXPORT_NAME %q: no such export", data)
	}
	reply := make([]byte, 10, 10+124)
	be.PutUint64(reply[0:], uint64(e.Size()))
	be.PutUint16(reply[8:], transmissionFlags(e))
	if !noZeroes {
		reply = reply[:10+124]
	}
	if err := c.send(reply); err != nil {
		return nil, fmt.Errorf("reply to NBD_OPT_EXPORT_NAME: %w", gone(err))
	}
	return c.session(e, name), nil
}

// list answers NBD_OPT_LIST: one NBD_REP_SERVER per export, its name then its description
// (proto.md, 'Option reply types', NBD_REP_SERVER), then NBD_REP_ACK.
func (c *conn) list(data []byte) error {
	if len(data) != 0 {
		// proto.md, 'Option types', NBD_OPT_LIST: data SHOULD be rejected with NBD_REP_ERR_INVALID.
		return c.optReply(optList, repErrInvalid, []byte("NBD_OPT_LIST takes no data"))
	}
	names, descriptions := c.srv.list()
	for i, name := range names {
		p := be.AppendUint32(nil, uint32(len(name)))
		p = append(append(p, name...), descriptions[i]...)
		if err := c.optReply(optList, repServer, p); err != nil {
			return err
		}
	}
	return c.optReply(optList, repAck, nil)
}

// transmissionFlags are the export's transmission flags (proto.md, 'Transmission flags'). A read-only
// export exposes neither trim, write-zeroes nor FUA: they are writes, which it refuses.
func transmissionFlags(e exported) uint16 {
	if e.ReadOnly {
		return flagsReadOnlyExports
	}
	return flagsWritableExports
}
