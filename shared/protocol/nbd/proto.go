package nbd

// The wire constants, each with its name in proto.md and the section that defines it. "proto.md" is
// doc/proto.md of github.com/NetworkBlockDevice/nbd. Values are sent big-endian (proto.md,
// 'Conventions').

// maxStringLength bounds a string: export names, descriptions (proto.md, 'Conventions': MUST be no
// longer than 4096 bytes).
const maxStringLength = 4096

// Magic numbers.
const (
	// nbdMagic opens the server's greeting: ASCII 'NBDMAGIC' (proto.md, 'Newstyle negotiation').
	nbdMagic uint64 = 0x4e42444d41474943
	// ihaveopt follows it in newstyle negotiation and opens every client option: ASCII 'IHAVEOPT'
	// (proto.md, 'Newstyle negotiation').
	ihaveopt uint64 = 0x49484156454F5054
	// optReplyMagic opens every option reply (proto.md, 'Fixed newstyle negotiation').
	optReplyMagic uint64 = 0x3e889045565a9
	// requestMagic is NBD_REQUEST_MAGIC (proto.md, 'Request message').
	requestMagic uint32 = 0x25609513
	// simpleReplyMagic is NBD_SIMPLE_REPLY_MAGIC (proto.md, 'Simple reply message').
	simpleReplyMagic uint32 = 0x67446698
)

// Handshake flags, sent by the server after IHAVEOPT (proto.md, 'Handshake flags').
const (
	flagFixedNewstyle uint16 = 1 << 0 // NBD_FLAG_FIXED_NEWSTYLE
	flagNoZeroes      uint16 = 1 << 1 // NBD_FLAG_NO_ZEROES
)

// Client flags, the client's answer (proto.md, 'Client flags'). Any other bit, or a bit the server did
// not advertise, makes the server drop the connection.
const (
	clientFixedNewstyle uint32 = 1 << 0 // NBD_FLAG_C_FIXED_NEWSTYLE
	clientNoZeroes      uint32 = 1 << 1 // NBD_FLAG_C_NO_ZEROES
	clientKnown                = clientFixedNewstyle | clientNoZeroes
)

// Transmission flags (proto.md, 'Transmission flags'). ROTATIONAL, SEND_DF (needs structured replies),
// SEND_CACHE, SEND_FAST_ZERO and the experimental bits are never set: the server supports none of them.
const (
	flagHasFlags         uint16 = 1 << 0 // NBD_FLAG_HAS_FLAGS: MUST always be 1
	flagReadOnly         uint16 = 1 << 1 // NBD_FLAG_READ_ONLY
	flagSendFlush        uint16 = 1 << 2 // NBD_FLAG_SEND_FLUSH
	flagSendFUA          uint16 = 1 << 3 // NBD_FLAG_SEND_FUA
	flagSendTrim         uint16 = 1 << 5 // NBD_FLAG_SEND_TRIM
	flagSendWriteZeroes  uint16 = 1 << 6 // NBD_FLAG_SEND_WRITE_ZEROES
	flagCanMultiConn     uint16 = 1 << 8 // NBD_FLAG_CAN_MULTI_CONN
	flagsWritableExports        = flagHasFlags | flagSendFlush | flagSendFUA | flagSendTrim | flagSendWriteZeroes | flagCanMultiConn
	flagsReadOnlyExports        = flagHasFlags | flagReadOnly | flagSendFlush | flagCanMultiConn
)

// Option types (proto.md, 'Option types').
const (
	optExportName      uint32 = 1  // NBD_OPT_EXPORT_NAME
	optAbort           uint32 = 2  // NBD_OPT_ABORT
	optList            uint32 = 3  // NBD_OPT_LIST
	optStartTLS        uint32 = 5  // NBD_OPT_STARTTLS: NOTLS mode answers NBD_REP_ERR_UNSUP
	optInfo            uint32 = 6  // NBD_OPT_INFO
	optGo              uint32 = 7  // NBD_OPT_GO
	optStructuredReply uint32 = 8  // NBD_OPT_STRUCTURED_REPLY: unsupported, simple replies only
	optListMetaContext uint32 = 9  // NBD_OPT_LIST_META_CONTEXT: unsupported (needs structured replies)
	optSetMetaContext  uint32 = 10 // NBD_OPT_SET_META_CONTEXT: unsupported (needs structured replies)
	optExtendedHeaders uint32 = 11 // NBD_OPT_EXTENDED_HEADERS: unsupported (experimental extension)
)

// Option reply types (proto.md, 'Option reply types'). Errors have bit 31 set and MAY carry a message.
const (
	repErrorBit    uint32 = 1 << 31
	repAck         uint32 = 1               // NBD_REP_ACK
	repServer      uint32 = 2               // NBD_REP_SERVER
	repInfo        uint32 = 3               // NBD_REP_INFO
	repErrUnsup    uint32 = repErrorBit | 1 // NBD_REP_ERR_UNSUP
	repErrInvalid  uint32 = repErrorBit | 3 // NBD_REP_ERR_INVALID
	repErrUnknown  uint32 = repErrorBit | 6 // NBD_REP_ERR_UNKNOWN
	repErrShutdown uint32 = repErrorBit | 7 // NBD_REP_ERR_SHUTDOWN
	repErrTooBig   uint32 = repErrorBit | 9 // NBD_REP_ERR_TOO_BIG
)

// Information types of NBD_REP_INFO (proto.md, 'Option reply types', NBD_REP_INFO).
const (
	infoExport      uint16 = 0 // NBD_INFO_EXPORT: size and transmission flags, always sent
	infoName        uint16 = 1 // NBD_INFO_NAME: the canonical name
	infoDescription uint16 = 2 // NBD_INFO_DESCRIPTION
	infoBlockSize   uint16 = 3 // NBD_INFO_BLOCK_SIZE
)

// Request types (proto.md, 'Request types').
const (
	cmdRead        uint16 = 0 // NBD_CMD_READ
	cmdWrite       uint16 = 1 // NBD_CMD_WRITE
	cmdDisc        uint16 = 2 // NBD_CMD_DISC
	cmdFlush       uint16 = 3 // NBD_CMD_FLUSH
	cmdTrim        uint16 = 4 // NBD_CMD_TRIM
	cmdCache       uint16 = 5 // NBD_CMD_CACHE: not advertised, answered with EINVAL
	cmdWriteZeroes uint16 = 6 // NBD_CMD_WRITE_ZEROES
)

// Command flags (proto.md, 'Command flags'). DF, REQ_ONE, FAST_ZERO and PAYLOAD_LEN need features
// this server does not advertise, so they are unknown flags here, answered with EINVAL.
const (
	cmdFlagFUA    uint16 = 1 << 0 // NBD_CMD_FLAG_FUA: valid on every command once SEND_FUA is advertised
	cmdFlagNoHole uint16 = 1 << 1 // NBD_CMD_FLAG_NO_HOLE: valid on NBD_CMD_WRITE_ZEROES only
)

// Error values of the reply's error field (proto.md, 'Error values'). ENOMEM is never sent (SHOULD NOT
// if at all possible) nor ENOTSUP (only for FAST_ZERO) nor EOVERFLOW (only for DF, or for a length
// above the maximum payload on a command without payload, which this server serves whole).
const (
	errPerm     uint32 = 1   // NBD_EPERM
	errIO       uint32 = 5   // NBD_EIO
	errInval    uint32 = 22  // NBD_EINVAL
	errNoSpc    uint32 = 28  // NBD_ENOSPC
	errShutdown uint32 = 108 // NBD_ESHUTDOWN
)

// Size constraints advertised in NBD_INFO_BLOCK_SIZE (proto.md, 'Size constraints').
const (
	// MinBlockSize is the advertised minimum block size: offsets and lengths of reads, writes, trims
	// and write-zeroes must be multiples of it, or they fail with EINVAL. 512 because the replicated
	// disks are Azure page blobs, written in 512-byte pages; a power of 2 no larger than 2^16, as the
	// section requires.
	MinBlockSize = 512
	// PreferredBlockSize is the advertised preferred block size: a power of 2, at least MinBlockSize
	// and 512.
	PreferredBlockSize = 4096
	// MaxPayload is the advertised maximum payload: the longest read or write served, 2^25, the size
	// every client may assume and no server should call a denial of service.
	MaxPayload = 32 << 20
	// maxDiscard is the longest write payload the server reads and throws away to answer EINVAL and
	// stay in step; a longer one is deemed a denial of service and the connection dropped, which the
	// section allows.
	maxDiscard = 2 * MaxPayload
	// maxOptionLength bounds the option data the server keeps: the largest option it parses
	// (NBD_OPT_GO with a 4096-byte name and a few information requests) is far smaller. Longer data
	// is skipped, never held.
	maxOptionLength = 64 << 10
)
