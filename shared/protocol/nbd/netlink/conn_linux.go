//go:build linux

package netlink

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"
)

// replyTimeout bounds the wait for the kernel's answer to one request: the kernel answers each before
// its doit returns, so only a lost datagram would be waited for longer.
const replyTimeout = 30 * time.Second

// Conn is a generic netlink socket bound to the kernel's "nbd" family. Its commands need
// CAP_SYS_ADMIN (netlink_capable in each doit, nbd.c:1960, 2159, 2197); STATUS does not.
type Conn struct {
	mu     sync.Mutex // one request at a time: answers are matched by sequence number
	fd     int
	seq    uint32
	family family
}

// ErrNoFamily means the kernel has no "nbd" family: the nbd module is not loaded (the family has no
// module alias, so asking for it does not load it).
var ErrNoFamily = errors.New("the kernel has no nbd netlink family: load the nbd module (modprobe nbd)")

// Open opens a socket and resolves the family.
func Open() (*Conn, error) {
	fd, err := openSocket()
	if err != nil {
		return nil, err
	}
	c := &Conn{fd: fd}
	replies, err := c.roundtrip(familyRequest(), "resolve family")
	var errno *Errno
	if errors.As(err, &errno) && errno.Errno == int32(syscall.ENOENT) {
		c.Close()
		return nil, ErrNoFamily
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	for _, r := range replies {
		if r.typ == genlIDCtrl {
			if c.family, err = parseFamily(r); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		}
	}
	c.Close()
	return nil, errors.New("netlink: the controller did not describe the nbd family")
}

func openSocket() (int, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.NETLINK_GENERIC)
	if err != nil {
		return -1, fmt.Errorf("netlink: socket: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		syscall.Close(fd)
		return -1, fmt.Errorf("netlink: bind: %w", err)
	}
	tv := syscall.NsecToTimeval(int64(replyTimeout))
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		syscall.Close(fd)
		return -1, fmt.Errorf("netlink: receive timeout: %w", err)
	}
	return fd, nil
}

// Close closes the socket.
func (c *Conn) Close() error { return syscall.Close(c.fd) }

// roundtrip sends one request and collects the messages answering it, up to its acknowledgement.
func (c *Conn) roundtrip(m *message, name string) ([]reply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	seq := c.seq
	if err := syscall.Sendto(c.fd, m.finish(seq), 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("netlink %s: send: %w", name, err)
	}
	buf := make([]byte, maxMessage)
	var answers []reply
	for {
		n, _, err := syscall.Recvfrom(c.fd, buf, 0)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("netlink %s: receive: %w", name, err)
		}
		// A copy: the answers' attributes point into it, and buf takes the next datagram.
		msgs, err := parseMessages(bytes.Clone(buf[:n]))
		if err != nil {
			return nil, fmt.Errorf("netlink %s: %w", name, err)
		}
		for _, r := range msgs {
			if r.seq != seq {
				continue // an answer to an earlier request that timed out
			}
			switch r.typ {
			case nlmsgError:
				if r.errno != 0 {
					return nil, &Errno{Command: name, Errno: r.errno}
				}
				return answers, nil
			case nlmsgDone:
				return answers, nil
			default:
				answers = append(answers, r)
			}
		}
	}
}

// Connect attaches /dev/nbd<d.Index> to the sockets fds (each negotiated to the transmission phase of
// the export d describes). The kernel takes its own reference to each socket: the caller closes its
// descriptors after.
func (c *Conn) Connect(d Device, fds []int) error {
	_, err := c.roundtrip(connectRequest(c.family.id, d, fds), "connect")
	return err
}

// Reconfigure hands the device new sockets for its dead ones (nbd_reconnect_socket, nbd.c:1198). The
// kernel takes a socket only while one of the device's sockets is dead, and says nothing when it takes
// none (-ENOSPC becomes 0, nbd.c:2316): a socket it did not take is closed when the caller closes its
// descriptor, so its server sees the connection end.
func (c *Conn) Reconfigure(d Device, fds []int) error {
	_, err := c.roundtrip(reconfigureRequest(c.family.id, d, fds), "reconfigure")
	return err
}

// Status says whether the device has a configuration: attached, or with its sockets dead and waiting
// for new ones. A device the kernel does not have is an error.
func (c *Conn) Status(index int) (connected bool, err error) {
	replies, err := c.roundtrip(indexRequest(c.family.id, cmdStatus, index), "status")
	if err != nil {
		return false, err
	}
	for _, r := range replies {
		connected, found, err := parseStatus(r, index)
		if err != nil {
			return false, fmt.Errorf("netlink status: %w", err)
		}
		if found {
			return connected, nil
		}
	}
	return false, fmt.Errorf("netlink status: the kernel has no /dev/nbd%d", index)
}

// Disconnect detaches the device: queued requests fail, the sockets are shut down
// (nbd_disconnect_and_put, nbd.c:2132).
func (c *Conn) Disconnect(index int) error {
	_, err := c.roundtrip(indexRequest(c.family.id, cmdDisconnect, index), "disconnect")
	return err
}

// Watch opens a socket that hears the family's multicast group: NBD_CMD_LINK_DEAD, sent whenever a
// live socket of a device is marked dead (nbd_mark_nsock_dead, nbd.c:301).
func (c *Conn) Watch() (*Watcher, error) {
	if c.family.mcast == 0 {
		return nil, errors.New("netlink: the nbd family has no multicast group")
	}
	fd, err := openSocket()
	if err != nil {
		return nil, err
	}
	const solNetlink, addMembership = 270, 1 // SOL_NETLINK, NETLINK_ADD_MEMBERSHIP (linux/netlink.h)
	if err := syscall.SetsockoptInt(fd, solNetlink, addMembership, int(c.family.mcast)); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("netlink: joining %s: %w", mcastGroupName, err)
	}
	return &Watcher{fd: fd, family: c.family.id}, nil
}

// Watcher hears LINK_DEAD events.
type Watcher struct {
	fd     int
	family uint16
}

// Next waits up to wait for events and returns the devices whose sockets died (none after the wait).
func (w *Watcher) Next(wait time.Duration) ([]int, error) {
	tv := syscall.NsecToTimeval(int64(wait))
	if err := syscall.SetsockoptTimeval(w.fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		return nil, err
	}
	buf := make([]byte, maxMessage)
	n, _, err := syscall.Recvfrom(w.fd, buf, 0)
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
		return nil, nil
	}
	if errors.Is(err, syscall.ENOBUFS) {
		return nil, ErrEventsLost
	}
	if err != nil {
		return nil, fmt.Errorf("netlink events: %w", err)
	}
	msgs, err := parseMessages(buf[:n])
	if err != nil {
		return nil, fmt.Errorf("netlink events: %w", err)
	}
	var dead []int
	for _, r := range msgs {
		if r.typ != w.family {
			continue
		}
		if index, ok := linkDead(r); ok {
			dead = append(dead, index)
		}
	}
	return dead, nil
}

// ErrEventsLost means the socket's buffer overflowed: events were dropped, so the caller must look
// again for itself.
var ErrEventsLost = errors.New("netlink events: the receive buffer overflowed, events were lost")

// Close closes the watcher's socket.
func (w *Watcher) Close() error { return syscall.Close(w.fd) }
