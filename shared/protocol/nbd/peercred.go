package nbd

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
)

// A loopback TCP client is another process of this host; which user owns its socket is in the
// kernel's socket tables (proc(5), /proc/net/tcp and tcp6: local and remote address as hex
// address:port — the address as 32-bit words in the host's byte order — then state, queues, timers,
// retransmits, uid, timeout, inode). The client's socket is the established entry whose local end is
// the connection's remote end and whose remote end is the server's: whole addresses, since a client
// may bind another loopback address with the server's port, and established only, since a closed
// connection's TIME_WAIT entry with the same ends has no owner (uid 0).

// peerCheckedListener accepts only connections whose client socket a permitted user owns.
type peerCheckedListener struct {
	net.Listener
	uids    []int
	refused func(error)
}

func (l peerCheckedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uid, err := peerUID(c.LocalAddr(), c.RemoteAddr())
		if err == nil && slices.Contains(l.uids, uid) {
			return c, nil
		}
		if err == nil {
			err = fmt.Errorf("nbd: a client from %s belongs to uid %d, which may not use the disks (allowed: %v)", c.RemoteAddr(), uid, l.uids)
		}
		c.Close()
		if l.refused != nil {
			l.refused(err)
		}
	}
}

// peerUID is the uid owning the loopback client socket of the connection server↔client.
func peerUID(server, client net.Addr) (int, error) {
	s, ok1 := server.(*net.TCPAddr)
	c, ok2 := client.(*net.TCPAddr)
	if !ok1 || !ok2 || !c.IP.IsLoopback() {
		return 0, fmt.Errorf("nbd: a client from %s is not a local TCP peer: its user cannot be known", client)
	}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		uid, err := socketOwner(table, c, s)
		if err == nil {
			return uid, nil
		}
		if !errors.Is(err, errNoSocket) {
			return 0, err
		}
	}
	return 0, fmt.Errorf("nbd: the client socket from %s is not in the kernel's tables (gone already?)", client)
}

var errNoSocket = errors.New("no such socket")

// socketOwner finds the uid of the established socket from local to remote in a table.
func socketOwner(table string, local, remote *net.TCPAddr) (int, error) {
	f, err := os.Open(table)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, errNoSocket
		}
		return 0, fmt.Errorf("nbd: reading %s: %w", table, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 || fields[3] != tcpEstablished || !sameEnd(fields[1], local) || !sameEnd(fields[2], remote) {
			continue
		}
		uid, err := strconv.Atoi(fields[7])
		if err != nil {
			return 0, fmt.Errorf("nbd: %s: uid column %q", table, fields[7])
		}
		return uid, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("nbd: reading %s: %w", table, err)
	}
	return 0, errNoSocket
}

// tcpEstablished is TCP_ESTABLISHED in the tables' state column (include/net/tcp_states.h).
const tcpEstablished = "01"

// sameEnd reports whether a table's "ADDRESS:PORT" field (hex) is the end a.
func sameEnd(field string, a *net.TCPAddr) bool {
	hexAddr, hexPort, ok := strings.Cut(field, ":")
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if !ok || err != nil || int(port) != a.Port || (len(hexAddr) != 8 && len(hexAddr) != 32) {
		return false
	}
	ip := make(net.IP, 0, 16)
	for i := 0; i < len(hexAddr); i += 8 {
		word, err := strconv.ParseUint(hexAddr[i:i+8], 16, 32)
		if err != nil {
			return false
		}
		ip = binary.NativeEndian.AppendUint32(ip, uint32(word))
	}
	return ip.Equal(a.IP)
}
