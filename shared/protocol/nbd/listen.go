package nbd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ListenOptions are how Listen listens.
type ListenOptions struct {
	// AllowTCP allows a loopback TCP address. The server has no TLS, and a TCP port on loopback is open
	// to every local user (a unix socket is its owner's: SocketMode), so it is refused unless asked for,
	// and then serves only the clients of PeerUIDs.
	AllowTCP bool
	// AllowRemote allows a TCP address that is not loopback (and implies AllowTCP). Whoever reaches it
	// reads and writes the VM's disks.
	AllowRemote bool
	// SocketMode is a unix socket's permission bits; 0 means 0600 (only its owner may connect).
	SocketMode fs.FileMode
	// PeerUIDs are the users whose loopback TCP clients are served (peercred.go); nil means root and
	// this process's user, as a unix socket of mode 0600 admits. Others' connections are closed unserved.
	PeerUIDs []int
	// Refused, if set, hears about each connection closed because of its user.
	Refused func(error)
}

// Listen listens on addr: "unix:<path>" is a unix socket, "<host>:<port>" a TCP address whose host
// must be loopback (an IP address or a name all of whose addresses are) unless o.AllowRemote.
// Examples: "unix:/run/standby/nbd.sock", "127.0.0.1:10809", "[::1]:10809".
func Listen(addr string, o ListenOptions) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		return listenUnix(path, o.SocketMode)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("nbd: listen address %q: not unix:<path> nor <host>:<port>: %w", addr, err)
	}
	if !o.AllowTCP && !o.AllowRemote {
		return nil, fmt.Errorf("nbd: listen address %q: TCP is open to every local user and this server has no authentication; "+
			"serve on unix:<path> (its owner's only), or allow TCP explicitly", addr)
	}
	if !o.AllowRemote {
		if err := loopbackOnly(host); err != nil {
			return nil, fmt.Errorf("nbd: listen address %q: %w", addr, err)
		}
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("nbd: %w", err)
	}
	if ta, ok := l.Addr().(*net.TCPAddr); !o.AllowRemote && (!ok || !ta.IP.IsLoopback()) {
		l.Close() // the name resolved differently for the listen: refuse rather than serve remotely
		return nil, fmt.Errorf("nbd: listen address %q bound %s, which is not loopback", addr, l.Addr())
	}
	if o.AllowRemote {
		return l, nil // a remote client's user is not this host's to know
	}
	uids := o.PeerUIDs
	if uids == nil {
		uids = []int{0, os.Getuid()}
	}
	return peerCheckedListener{Listener: l, uids: uids, refused: o.Refused}, nil
}

// loopbackOnly refuses a host that is, or may resolve to, something other than a loopback address.
func loopbackOnly(host string) error {
	if host == "" {
		return errors.New("no host: that is every interface, not loopback only (set AllowRemote to allow it)")
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s is not a loopback address (set AllowRemote to allow it)", host)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return err
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return fmt.Errorf("%s resolves to %s, which is not loopback (set AllowRemote to allow it)", host, ip.IP)
		}
	}
	return nil
}

// listenUnix listens on a unix socket at path, creating its directory and replacing a stale socket
// (one nothing listens on any more, left by a process that died).
func listenUnix(path string, mode fs.FileMode) (net.Listener, error) {
	if path == "" {
		return nil, errors.New("nbd: listen address \"unix:\" has no path")
	}
	if mode == 0 {
		mode = 0o600
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("nbd: socket directory: %w", err)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("nbd: %w", err)
	}
	// Until the chmod the socket has the umask's mode; connecting needs write permission, which the
	// usual umasks (022, 077) give only to the owner.
	if err := os.Chmod(path, mode); err != nil {
		l.Close()
		return nil, fmt.Errorf("nbd: socket mode: %w", err)
	}
	return l, nil
}

func removeStaleSocket(path string) error {
	info, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("nbd: %w", err)
	case info.Mode().Type() != fs.ModeSocket:
		return fmt.Errorf("nbd: %s exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("nbd: %s is in use by a running server", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("nbd: stale socket: %w", err)
	}
	return nil
}

// URI is the NBD URI of an export on a listener's address (the NBD project's doc/uri.md):
// nbd+unix:///<export>?socket=<path> or nbd://<host>:<port>/<export>, as QEMU and libnbd take them.
func URI(addr net.Addr, export string) string {
	path := uriEscape(export, "/")
	switch a := addr.(type) {
	case *net.UnixAddr:
		return "nbd+unix:///" + path + "?socket=" + uriEscape(a.Name, "/")
	default:
		return "nbd://" + addr.String() + "/" + path
	}
}

// uriEscape percent-encodes every byte but RFC 3986's unreserved characters and keep.
func uriEscape(s, keep string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~"+keep, c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
