// Package netlink drives the Linux kernel's NBD client (drivers/block/nbd.c) through its generic
// netlink family "nbd": attach a /dev/nbdN to sockets the caller negotiated (NBD_CMD_CONNECT), hand it
// new sockets when the old ones died (NBD_CMD_RECONFIGURE), ask whether it is attached (NBD_CMD_STATUS),
// detach it (NBD_CMD_DISCONNECT), and hear the kernel say a socket died (NBD_CMD_LINK_DEAD, multicast).
//
// Everything here is read off Debian's linux-source-6.1 (6.1.170-3), the kernel of the test guests:
// include/uapi/linux/nbd-netlink.h for the numbers, drivers/block/nbd.c for what each command does
// with them (line numbers below are that file's). The socket itself is in conn_linux.go; this file
// only encodes and decodes messages, so it is fuzzed on every platform.
package netlink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
)

// The family, its version and its multicast group (nbd-netlink.h).
const (
	FamilyName     = "nbd"
	familyVersion  = 1
	mcastGroupName = "nbd_mc_group"
)

// Commands (nbd-netlink.h, enum NBD_CMD_*).
const (
	cmdConnect     = 1
	cmdDisconnect  = 2
	cmdReconfigure = 3
	cmdLinkDead    = 4
	cmdStatus      = 5
)

// Attributes (nbd-netlink.h, enum NBD_ATTR_*; types from nbd_attr_policy, nbd.c:1908).
const (
	attrIndex           = 1  // u32
	attrSizeBytes       = 2  // u64
	attrBlockSizeBytes  = 3  // u64
	attrTimeout         = 4  // u64, seconds
	attrServerFlags     = 5  // u64: the export's transmission flags
	attrClientFlags     = 6  // u64: NBD_CFLAG_*
	attrSockets         = 7  // nested NBD_SOCK_ITEM { NBD_SOCK_FD u32 }
	attrDeadConnTimeout = 8  // u64, seconds
	attrDeviceList      = 9  // nested NBD_DEVICE_ITEM { NBD_DEVICE_INDEX u32, NBD_DEVICE_CONNECTED u8 }
	attrBackend         = 10 // string

	sockItem = 1 // NBD_SOCK_ITEM
	sockFD   = 1 // NBD_SOCK_FD

	deviceItem      = 1 // NBD_DEVICE_ITEM
	deviceIndex     = 1 // NBD_DEVICE_INDEX
	deviceConnected = 2 // NBD_DEVICE_CONNECTED
)

// The generic netlink controller (linux/genetlink.h): it resolves a family's name to its id.
const (
	genlIDCtrl          = 0x10 // GENL_ID_CTRL
	ctrlCmdGetFamily    = 3    // CTRL_CMD_GETFAMILY
	ctrlAttrFamilyID    = 1    // u16
	ctrlAttrFamilyName  = 2    // string
	ctrlAttrMcastGroups = 7    // nested array of { CTRL_ATTR_MCAST_GRP_NAME, CTRL_ATTR_MCAST_GRP_ID }
	ctrlAttrMcastName   = 1
	ctrlAttrMcastID     = 2
)

// netlink(7) message framing.
const (
	nlmsgHdrLen  = 16
	genlHdrLen   = 4
	nlaHdrLen    = 4
	nlmsgError   = 2 // NLMSG_ERROR: an int32 errno (0: the ack) and the request's header
	nlmsgDone    = 3
	flagRequest  = 0x1
	flagAck      = 0x4
	nlaFNested   = 0x8000
	nlaTypeMask  = 0x3fff
	maxMessage   = 1 << 16
	maxAttrDepth = 4
)

var ne = binary.NativeEndian // netlink is host byte order

// Device is how the kernel is to run /dev/nbd<Index> (nbd_genl_connect, nbd.c:1951).
type Device struct {
	Index int
	// Size and BlockSize are the device's bytes and logical block size.
	Size, BlockSize uint64
	// Flags are the export's transmission flags, as its server sent them (NBD_ATTR_SERVER_FLAGS).
	Flags uint16
	// IOTimeoutSeconds is how long a request may wait for its reply before the kernel requeues it on a
	// live socket, or waits for one (nbd_xmit_timeout, nbd.c:410: with a timeout set, even one
	// connection requeues instead of failing the request).
	IOTimeoutSeconds uint64
	// DeadConnTimeoutSeconds is how long a request waits for a new socket when every socket is dead,
	// before it fails (wait_for_reconnect, nbd.c:969): the time an agent has to come back.
	DeadConnTimeoutSeconds uint64
	// Backend names what serves the device; a reconfigure must name the same (nbd_genl_reconfigure,
	// nbd.c:2211), so sockets to another export are never handed to this device.
	Backend string
}

// Errno is the kernel's answer to a request.
type Errno struct {
	Command string
	Errno   int32 // positive
}

func (e *Errno) Error() string {
	return fmt.Sprintf("nbd netlink %s: %s (errno %d)", e.Command, syscall.Errno(e.Errno).Error(), e.Errno)
}

// message builds one generic netlink request.
type message struct{ b []byte }

func newMessage(family uint16, flags uint16, cmd, version uint8) *message {
	m := &message{b: make([]byte, nlmsgHdrLen+genlHdrLen, 256)}
	ne.PutUint16(m.b[4:], family)
	ne.PutUint16(m.b[6:], flags)
	m.b[nlmsgHdrLen] = cmd
	m.b[nlmsgHdrLen+1] = version
	return m
}

func (m *message) attr(typ uint16, payload []byte) {
	start := len(m.b)
	m.b = ne.AppendUint16(m.b, uint16(nlaHdrLen+len(payload)))
	m.b = ne.AppendUint16(m.b, typ)
	m.b = append(m.b, payload...)
	for (len(m.b)-start)%4 != 0 {
		m.b = append(m.b, 0)
	}
}

func (m *message) u32(typ uint16, v uint32) { m.attr(typ, ne.AppendUint32(nil, v)) }
func (m *message) u64(typ uint16, v uint64) { m.attr(typ, ne.AppendUint64(nil, v)) }
func (m *message) str(typ uint16, s string) { m.attr(typ, append([]byte(s), 0)) }

// nest starts a nested attribute; end closes it.
func (m *message) nest(typ uint16) (end func()) {
	start := len(m.b)
	m.attr(typ|nlaFNested, nil)
	return func() { ne.PutUint16(m.b[start:], uint16(len(m.b)-start)) }
}

// finish sets the message's length and sequence number and returns its bytes.
func (m *message) finish(seq uint32) []byte {
	ne.PutUint32(m.b[0:], uint32(len(m.b)))
	ne.PutUint32(m.b[8:], seq)
	return m.b
}

// sockets adds NBD_ATTR_SOCKETS: one NBD_SOCK_ITEM { NBD_SOCK_FD } per descriptor (nbd.c:2071).
func (m *message) sockets(fds []int) {
	end := m.nest(attrSockets)
	for _, fd := range fds {
		item := m.nest(sockItem)
		m.u32(sockFD, uint32(fd))
		item()
	}
	end()
}

func connectRequest(family uint16, d Device, fds []int) *message {
	m := newMessage(family, flagRequest|flagAck, cmdConnect, familyVersion)
	m.u32(attrIndex, uint32(d.Index))
	m.u64(attrSizeBytes, d.Size)
	m.u64(attrBlockSizeBytes, d.BlockSize)
	m.u64(attrServerFlags, uint64(d.Flags))
	m.u64(attrTimeout, d.IOTimeoutSeconds)
	m.u64(attrDeadConnTimeout, d.DeadConnTimeoutSeconds)
	// No NBD_CFLAG_DESTROY_ON_DISCONNECT, no NBD_CFLAG_DISCONNECT_ON_CLOSE: the device outlives every
	// process, its server's among them; only a detach ends it.
	m.u64(attrClientFlags, 0)
	m.str(attrBackend, d.Backend)
	m.sockets(fds)
	return m
}

func reconfigureRequest(family uint16, d Device, fds []int) *message {
	m := newMessage(family, flagRequest|flagAck, cmdReconfigure, familyVersion)
	m.u32(attrIndex, uint32(d.Index))
	m.str(attrBackend, d.Backend)
	// Set again, so an agent's new timeouts take effect on a device an older one attached
	// (nbd_genl_reconfigure reads both, nbd.c:2257).
	m.u64(attrTimeout, d.IOTimeoutSeconds)
	m.u64(attrDeadConnTimeout, d.DeadConnTimeoutSeconds)
	m.sockets(fds)
	return m
}

func indexRequest(family uint16, cmd uint8, index int) *message {
	m := newMessage(family, flagRequest|flagAck, cmd, familyVersion)
	m.u32(attrIndex, uint32(index))
	return m
}

func familyRequest() *message {
	m := newMessage(genlIDCtrl, flagRequest|flagAck, ctrlCmdGetFamily, 1)
	m.str(ctrlAttrFamilyName, FamilyName)
	return m
}

// reply is one message the kernel sent.
type reply struct {
	typ   uint16
	seq   uint32
	errno int32 // of an NLMSG_ERROR (positive; 0 is an ack)
	cmd   uint8 // of a generic netlink message
	attrs map[uint16][]byte
}

// parseMessages splits a datagram into messages.
func parseMessages(b []byte) ([]reply, error) {
	var out []reply
	for len(b) > 0 {
		if len(b) < nlmsgHdrLen {
			return nil, fmt.Errorf("netlink: %d bytes left, less than a header", len(b))
		}
		n := int(ne.Uint32(b[0:]))
		if n < nlmsgHdrLen || n > len(b) {
			return nil, fmt.Errorf("netlink: message length %d with %d bytes left", n, len(b))
		}
		r := reply{typ: ne.Uint16(b[4:]), seq: ne.Uint32(b[8:])}
		body := b[nlmsgHdrLen:n]
		switch r.typ {
		case nlmsgError:
			if len(body) < 4 {
				return nil, errors.New("netlink: error message without its code")
			}
			r.errno = -int32(ne.Uint32(body))
		case nlmsgDone:
		default:
			if len(body) < genlHdrLen {
				return nil, errors.New("netlink: message without its generic header")
			}
			r.cmd = body[0]
			attrs, err := parseAttrs(body[genlHdrLen:])
			if err != nil {
				return nil, err
			}
			r.attrs = attrs
		}
		out = append(out, r)
		b = b[min(len(b), align4(n)):]
	}
	return out, nil
}

func align4(n int) int { return (n + 3) &^ 3 }

// parseAttrs reads a run of attributes; a repeated type keeps its last value.
func parseAttrs(b []byte) (map[uint16][]byte, error) {
	attrs := map[uint16][]byte{}
	err := each(b, func(typ uint16, payload []byte) error {
		attrs[typ] = payload
		return nil
	})
	return attrs, err
}

// each calls f for every attribute of a run, in order (for arrays, whose types are positions).
func each(b []byte, f func(typ uint16, payload []byte) error) error {
	for len(b) > 0 {
		if len(b) < nlaHdrLen {
			return fmt.Errorf("netlink: %d bytes left, less than an attribute", len(b))
		}
		n := int(ne.Uint16(b[0:]))
		if n < nlaHdrLen || n > len(b) {
			return fmt.Errorf("netlink: attribute length %d with %d bytes left", n, len(b))
		}
		if err := f(ne.Uint16(b[2:])&nlaTypeMask, b[nlaHdrLen:n]); err != nil {
			return err
		}
		b = b[min(len(b), align4(n)):]
	}
	return nil
}

func u32Of(attrs map[uint16][]byte, typ uint16) (uint32, bool) {
	v, ok := attrs[typ]
	if !ok || len(v) < 4 {
		return 0, false
	}
	return ne.Uint32(v), true
}

// family is what CTRL_CMD_GETFAMILY says of "nbd": its id and its multicast group's.
type family struct {
	id    uint16
	mcast uint32
}

func parseFamily(r reply) (family, error) {
	var f family
	id, ok := r.attrs[ctrlAttrFamilyID]
	if !ok || len(id) < 2 {
		return f, errors.New("netlink: the controller's answer has no family id")
	}
	f.id = ne.Uint16(id)
	err := each(r.attrs[ctrlAttrMcastGroups], func(_ uint16, grp []byte) error {
		attrs, err := parseAttrs(grp)
		if err != nil {
			return err
		}
		if name := attrs[ctrlAttrMcastName]; string(trimNUL(name)) == mcastGroupName {
			f.mcast, _ = u32Of(attrs, ctrlAttrMcastID)
		}
		return nil
	})
	return f, err
}

func trimNUL(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

// parseStatus reads NBD_CMD_STATUS's answer (populate_nbd_status, nbd.c:2368): whether the device at
// index has a configuration (a connected device, or one whose sockets died and wait for new ones).
func parseStatus(r reply, index int) (connected, found bool, err error) {
	err = each(r.attrs[attrDeviceList], func(_ uint16, item []byte) error {
		attrs, err := parseAttrs(item)
		if err != nil {
			return err
		}
		if i, ok := u32Of(attrs, deviceIndex); ok && int(i) == index {
			found = true
			c := attrs[deviceConnected]
			connected = len(c) > 0 && c[0] != 0
		}
		return nil
	})
	return connected, found, err
}

// linkDead reads an NBD_CMD_LINK_DEAD event (nbd_mcast_index, nbd.c:2487): the device whose socket died.
func linkDead(r reply) (index int, ok bool) {
	if r.typ < genlIDCtrl || r.cmd != cmdLinkDead {
		return 0, false
	}
	i, ok := u32Of(r.attrs, attrIndex)
	return int(i), ok
}
