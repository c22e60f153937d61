package netlink

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// kernelReply builds a message the way the kernel's genlmsg_put_reply and nla_put_* do.
func kernelReply(family uint16, seq uint32, cmd uint8, build func(m *message)) []byte {
	m := newMessage(family, 0, cmd, familyVersion)
	build(m)
	return m.finish(seq)
}

func ack(seq uint32, errno int32) []byte {
	b := make([]byte, nlmsgHdrLen+4+nlmsgHdrLen)
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], nlmsgError)
	ne.PutUint32(b[8:], seq)
	ne.PutUint32(b[nlmsgHdrLen:], uint32(-errno))
	return b
}

func TestStatusReplyIsRead(t *testing.T) {
	const family = 0x1c
	status := kernelReply(family, 7, cmdStatus, func(m *message) {
		// populate_nbd_status (nbd.c:2368) inside NBD_ATTR_DEVICE_LIST, as nla_nest_start_noflag writes it.
		list := len(m.b)
		m.attr(attrDeviceList, nil)
		item := len(m.b)
		m.attr(deviceItem, nil)
		m.u32(deviceIndex, 3)
		m.attr(deviceConnected, []byte{1})
		ne.PutUint16(m.b[item:], uint16(len(m.b)-item))
		ne.PutUint16(m.b[list:], uint16(len(m.b)-list))
	})
	msgs, err := parseMessages(append(status, ack(7, 0)...))
	if err != nil || len(msgs) != 2 {
		t.Fatalf("%d messages, %v", len(msgs), err)
	}
	connected, found, err := parseStatus(msgs[0], 3)
	if err != nil || !found || !connected {
		t.Fatalf("connected %v found %v err %v\n%s", connected, found, err, hex.Dump(status))
	}
	if _, found, _ := parseStatus(msgs[0], 4); found {
		t.Fatal("found a device the answer does not list")
	}
	if msgs[1].typ != nlmsgError || msgs[1].errno != 0 || msgs[1].seq != 7 {
		t.Fatalf("the ack reads as %+v", msgs[1])
	}
}

// The connect request carries every attribute nbd_genl_connect reads (nbd.c:1951), the sockets nested
// as NBD_SOCK_ITEM { NBD_SOCK_FD } (nbd.c:2071).
func TestConnectRequestLayout(t *testing.T) {
	d := Device{Index: 2, Size: 64 << 20, BlockSize: 4096, Flags: 0x12d, IOTimeoutSeconds: 30, DeadConnTimeoutSeconds: 300, Backend: "standby:db/data"}
	b := connectRequest(0x1c, d, []int{5, 9}).finish(1)
	msgs, err := parseMessages(b)
	if err != nil || len(msgs) != 1 {
		t.Fatal(err)
	}
	r := msgs[0]
	if r.typ != 0x1c || r.cmd != cmdConnect || ne.Uint16(b[6:]) != flagRequest|flagAck {
		t.Fatalf("header %+v", r)
	}
	u64 := func(typ uint16) uint64 { return ne.Uint64(r.attrs[typ]) }
	if i, _ := u32Of(r.attrs, attrIndex); i != 2 || u64(attrSizeBytes) != 64<<20 || u64(attrBlockSizeBytes) != 4096 ||
		u64(attrServerFlags) != 0x12d || u64(attrTimeout) != 30 || u64(attrDeadConnTimeout) != 300 || u64(attrClientFlags) != 0 {
		t.Fatalf("attributes %v", r.attrs)
	}
	if !bytes.Equal(r.attrs[attrBackend], []byte("standby:db/data\x00")) {
		t.Fatalf("backend %q", r.attrs[attrBackend])
	}
	var got []uint32
	err = each(r.attrs[attrSockets], func(typ uint16, item []byte) error {
		if typ != sockItem {
			t.Fatalf("socket item of type %d", typ)
		}
		attrs, err := parseAttrs(item)
		fd, _ := u32Of(attrs, sockFD)
		got = append(got, fd)
		return err
	})
	if err != nil || len(got) != 2 || got[0] != 5 || got[1] != 9 {
		t.Fatalf("sockets %v (%v)", got, err)
	}
}

func TestFamilyAndLinkDead(t *testing.T) {
	ctrl := kernelReply(genlIDCtrl, 1, 1, func(m *message) {
		m.attr(ctrlAttrFamilyID, ne.AppendUint16(nil, 0x1c))
		m.str(ctrlAttrFamilyName, FamilyName)
		groups := m.nest(ctrlAttrMcastGroups)
		grp := m.nest(1)
		m.str(ctrlAttrMcastName, mcastGroupName)
		m.u32(ctrlAttrMcastID, 9)
		grp()
		groups()
	})
	msgs, err := parseMessages(ctrl)
	if err != nil {
		t.Fatal(err)
	}
	f, err := parseFamily(msgs[0])
	if err != nil || f.id != 0x1c || f.mcast != 9 {
		t.Fatalf("%+v %v", f, err)
	}
	dead := kernelReply(0x1c, 0, cmdLinkDead, func(m *message) { m.u32(attrIndex, 4) })
	msgs, _ = parseMessages(dead)
	if i, ok := linkDead(msgs[0]); !ok || i != 4 {
		t.Fatalf("link dead: %d %v", i, ok)
	}
}

// FuzzParseMessages: whatever a netlink socket delivers, parsing returns an error or messages, never
// panics, and every reader of a message copes.
func FuzzParseMessages(f *testing.F) {
	f.Add(ack(1, 0))
	f.Add(kernelReply(0x1c, 0, cmdLinkDead, func(m *message) { m.u32(attrIndex, 4) }))
	f.Add(connectRequest(0x1c, Device{Index: 1, Backend: "x"}, []int{3}).finish(2))
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := parseMessages(b)
		if err != nil {
			return
		}
		for _, r := range msgs {
			parseStatus(r, 0)
			parseFamily(r)
			linkDead(r)
		}
	})
}
