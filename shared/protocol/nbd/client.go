package nbd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// ExportInfo is what a server says of an export when a client selects it.
type ExportInfo struct {
	Size  uint64
	Flags uint16 // transmission flags (proto.md, 'Transmission flags')
	// MinBlock and PreferredBlock are NBD_INFO_BLOCK_SIZE's, when the server sent it (0 otherwise).
	MinBlock, PreferredBlock uint32
}

// ReadOnly says the export takes no writes.
func (i ExportInfo) ReadOnly() bool { return i.Flags&flagReadOnly != 0 }

// maxOptionReply bounds the data of one option reply a client reads: an NBD_REP_INFO is a few bytes,
// an error's message a string.
const maxOptionReply = 64 << 10

// Negotiate is a client's side of fixed newstyle negotiation (proto.md, 'Fixed newstyle negotiation'):
// it selects export with NBD_OPT_GO and returns once the connection is in the transmission phase,
// where a client that does not speak the protocol itself (the kernel's, given the socket) takes over.
// A server that refuses says why in the error.
func Negotiate(rw io.ReadWriter, export string) (ExportInfo, error) {
	var info ExportInfo
	if err := validString(export); err != nil {
		return info, fmt.Errorf("nbd: export name: %w", err)
	}
	var greeting [18]byte
	if _, err := io.ReadFull(rw, greeting[:]); err != nil {
		return info, fmt.Errorf("nbd: greeting: %w", err)
	}
	if be.Uint64(greeting[0:]) != nbdMagic || be.Uint64(greeting[8:]) != ihaveopt {
		return info, errors.New("nbd: the server does not speak newstyle negotiation")
	}
	hflags := be.Uint16(greeting[16:])
	if hflags&flagFixedNewstyle == 0 {
		return info, errors.New("nbd: the server does not offer fixed newstyle negotiation")
	}
	cflags := clientFixedNewstyle
	if hflags&flagNoZeroes != 0 {
		cflags |= clientNoZeroes
	}
	data := infoRequest(export, infoBlockSize)
	msg := be.AppendUint32(nil, cflags)
	msg = be.AppendUint64(msg, ihaveopt)
	msg = be.AppendUint32(msg, optGo)
	msg = be.AppendUint32(msg, uint32(len(data)))
	if _, err := rw.Write(append(msg, data...)); err != nil {
		return info, fmt.Errorf("nbd: NBD_OPT_GO: %w", err)
	}
	sawExport := false
	for {
		var h [20]byte
		if _, err := io.ReadFull(rw, h[:]); err != nil {
			return info, fmt.Errorf("nbd: reply to NBD_OPT_GO: %w", err)
		}
		typ, n := be.Uint32(h[12:]), be.Uint32(h[16:])
		if be.Uint64(h[0:]) != optReplyMagic || be.Uint32(h[8:]) != optGo {
			return info, errors.New("nbd: an option reply without its magic or for another option")
		}
		if n > maxOptionReply {
			return info, fmt.Errorf("nbd: an option reply of %d bytes", n)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(rw, body); err != nil {
			return info, fmt.Errorf("nbd: reply to NBD_OPT_GO: %w", err)
		}
		switch {
		case typ == repAck:
			if !sawExport { // proto.md, NBD_OPT_GO: NBD_INFO_EXPORT MUST come before the ack
				return info, errors.New("nbd: the server acknowledged NBD_OPT_GO without the export's size")
			}
			return info, nil
		case typ == repInfo && len(body) >= 2:
			switch be.Uint16(body) {
			case infoExport:
				if len(body) != 12 {
					return info, fmt.Errorf("nbd: NBD_INFO_EXPORT of %d bytes", len(body))
				}
				info.Size, info.Flags, sawExport = be.Uint64(body[2:]), be.Uint16(body[10:]), true
			case infoBlockSize:
				if len(body) == 14 {
					info.MinBlock, info.PreferredBlock = be.Uint32(body[2:]), be.Uint32(body[6:])
				}
			}
		case typ&repErrorBit != 0:
			return info, &RefusedError{Export: export, Reply: typ, Message: sanitize(body)}
		}
	}
}

// RefusedError is a server's refusal of an export (an NBD_REP_ERR_* reply to NBD_OPT_GO): asking again
// gets the same answer.
type RefusedError struct {
	Export  string
	Reply   uint32
	Message string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("nbd: the server refused export %q: %s (%#x)", e.Export, e.Message, e.Reply)
}

// sanitize keeps a server's message printable and short for an error.
func sanitize(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// DialKernel connects to addr (as Listen names it: "unix:<path>" or "<host>:<port>"), negotiates
// export, and returns the connection as a blocking socket file for the kernel's NBD client, which
// takes its own reference to it: the caller closes the file after handing it over.
func DialKernel(ctx context.Context, addr, export string, timeout time.Duration) (*os.File, ExportInfo, error) {
	network, address := "tcp", addr
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, address = "unix", path
	}
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, ExportInfo{}, err
	}
	defer nc.Close()
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true) // proto.md, 'Protocol phases': both sides SHOULD disable Nagle
	}
	_ = nc.SetDeadline(time.Now().Add(timeout))
	info, err := Negotiate(nc, export)
	if err != nil {
		return nil, info, err
	}
	_ = nc.SetDeadline(time.Time{})
	f, err := nc.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		return nil, info, err
	}
	// The duplicate shares the connection's non-blocking mode; the kernel's client reads and writes
	// the socket itself, so make it an ordinary blocking socket, as nbd-client hands over.
	if err := syscall.SetNonblock(int(f.Fd()), false); err != nil {
		f.Close()
		return nil, info, err
	}
	return f, info, nil
}
