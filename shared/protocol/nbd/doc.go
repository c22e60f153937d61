// Package nbd is a Network Block Device server: the replication agent exports each protected disk as
// an export named <vm>/<disk>, the Linux kernel's NBD client or QEMU puts the VM's disk behind it, and
// every write reaches the agent, in order, through an [Export].
//
// The protocol is the NBD project's doc/proto.md (github.com/NetworkBlockDevice/nbd); comments cite
// its sections by heading. What is served, and what is not:
//
//   - Fixed newstyle negotiation only, without TLS ('NOTLS mode'): no oldstyle, which 'Oldstyle
//     negotiation' retired, and no TLS, because [Listen] serves a unix socket or loopback only.
//   - Options NBD_OPT_EXPORT_NAME, NBD_OPT_ABORT, NBD_OPT_LIST, NBD_OPT_INFO and NBD_OPT_GO, with
//     NBD_INFO_EXPORT, NBD_INFO_BLOCK_SIZE, NBD_INFO_NAME and NBD_INFO_DESCRIPTION. Every other option
//     gets NBD_REP_ERR_UNSUP: structured replies, metadata contexts (block status) and extended headers
//     are optional ('Compatibility and interoperability'), and simple replies are all the kernel speaks.
//   - Commands READ, WRITE (with FUA), FLUSH, TRIM, WRITE_ZEROES (with NO_HOLE) and DISC, with at
//     most [Server.MaxInFlight] in service per connection and replies in completion order.
//   - Size constraints: [MinBlockSize] (requests must be aligned to it), [PreferredBlockSize],
//     [MaxPayload].
//   - Several connections per export, with NBD_FLAG_CAN_MULTI_CONN, which the [Export] contract
//     makes true.
package nbd
