package nbd

import "fmt"

// infoGo answers NBD_OPT_INFO and NBD_OPT_GO (proto.md, 'Option types', NBD_OPT_INFO and NBD_OPT_GO):
// NBD_REP_INFO replies, then NBD_REP_ACK, after which NBD_OPT_GO enters transmission.
func (c *conn) infoGo(opt uint32, data []byte) (*session, bool, error) {
	name, requests, err := parseInfoRequest(data)
	if err != nil {
		return nil, false, c.optReply(opt, repErrInvalid, fmt.Appendf(nil, "%s: %v", infoOrGo(opt), err))
	}
	e, canonical, ok := c.srv.lookup(name)
	if !ok {
		// NBD_REP_ERR_UNKNOWN, with no NBD_REP_INFO before it (SHOULD NOT).
		return nil, false, c.optReply(opt, repErrUnknown, fmt.Appendf(nil, "no export %q", name))
	}
	for _, info := range infoReplies(e, canonical, requests) {
		if err := c.optReply(opt, repInfo, info); err != nil {
			return nil, false, err
		}
	}
	// No NBD_REP_ERR_BLOCK_SIZE_REQD for a client that did not ask for NBD_INFO_BLOCK_SIZE: the Linux
	// kernel's userspace and old clients do not, and 'Size constraints' lets a server that errors
	// misaligned commands cleanly serve them.
	if err := c.optReply(opt, repAck, nil); err != nil {
		return nil, false, err
	}
	if opt == optInfo {
		return nil, false, nil
	}
	return c.session(e, canonical), true, nil
}

// infoRequest encodes the data of NBD_OPT_INFO and NBD_OPT_GO, as parseInfoRequest decodes it: the
// export's name and the information requests.
func infoRequest(name string, infos ...uint16) []byte {
	p := be.AppendUint32(nil, uint32(len(name)))
	p = append(p, name...)
	p = be.AppendUint16(p, uint16(len(infos)))
	for _, i := range infos {
		p = be.AppendUint16(p, i)
	}
	return p
}

// parseInfoRequest decodes the data of NBD_OPT_INFO and NBD_OPT_GO: a 32-bit name length ("MUST be no
// larger than the option data length - 6"), the name, a 16-bit count and that many 16-bit information
// requests. Anything else is syntactically invalid (NBD_REP_ERR_INVALID).
func parseInfoRequest(data []byte) (string, []uint16, error) {
	if len(data) < 6 {
		return "", nil, fmt.Errorf("%d bytes of data, fewer than 6", len(data))
	}
	n := be.Uint32(data)
	if uint64(n) > uint64(len(data)-6) {
		return "", nil, fmt.Errorf("name length %d in %d bytes of data", n, len(data))
	}
	name, rest := string(data[4:4+n]), data[4+n:]
	if err := validString(name); err != nil {
		return "", nil, fmt.Errorf("export name: %w", err)
	}
	count := int(be.Uint16(rest))
	if len(rest)-2 != 2*count {
		return "", nil, fmt.Errorf("%d information requests in %d bytes", count, len(rest)-2)
	}
	requests := make([]uint16, count)
	for i := range requests {
		requests[i] = be.Uint16(rest[2+2*i:])
	}
	return name, requests, nil
}

// infoReplies are the NBD_REP_INFO payloads for an export (proto.md, 'Option reply types',
// NBD_REP_INFO). NBD_INFO_EXPORT always (MUST, before NBD_REP_ACK); NBD_INFO_BLOCK_SIZE always, since
// this server enforces a minimum block size above the default of 1 (it MUST send it when asked, and MAY
// send what was not asked); the name and description when asked, each once however often asked.
// Unknown requests are ignored (MUST).
func infoReplies(e exported, name string, requests []uint16) [][]byte {
	export := be.AppendUint16(nil, infoExport)
	export = be.AppendUint64(export, uint64(e.Size()))
	export = be.AppendUint16(export, transmissionFlags(e))
	block := be.AppendUint16(nil, infoBlockSize)
	block = be.AppendUint32(block, MinBlockSize)
	block = be.AppendUint32(block, PreferredBlockSize)
	block = be.AppendUint32(block, MaxPayload)
	replies := [][]byte{export, block}
	sent := map[uint16]bool{}
	for _, r := range requests {
		if sent[r] {
			continue
		}
		sent[r] = true
		switch {
		case r == infoName:
			replies = append(replies, append(be.AppendUint16(nil, infoName), name...))
		case r == infoDescription && e.Description != "":
			replies = append(replies, append(be.AppendUint16(nil, infoDescription), e.Description...))
		}
	}
	return replies
}

func infoOrGo(opt uint32) string {
	if opt == optGo {
		return "NBD_OPT_GO"
	}
	return "NBD_OPT_INFO"
}
