package replication

import (
	"context"
	"errors"
	"fmt"
)

// The peer site (the other region's deployment, for reprotect and failback) holds a credential for the
// peer calls only (the peer door, apiv1.RolePeer), and reaches through it only the groups it made
// there: a group remembers who enabled it.

// origin is who enabled a group.
type origin string

const (
	originOperator origin = ""     // the operator (or automation with the operator's key)
	originPeer     origin = "peer" // the peer site, reversing one of its groups
)

// ErrForbidden: the credential is valid but does not reach this resource.
var ErrForbidden = errors.New("forbidden")

// EnableForPeer is Enable for the peer site: it makes a group the peer may then act on, and changes no
// group an operator made.
func (s *Groups) EnableForPeer(ctx context.Context, group string, spec GroupSpec) (*Group, enableOutcome, error) {
	return s.enable(ctx, group, spec, originPeer)
}

// enableExistingFrom answers an enable of a group that exists, from origin: the peer site changes only
// groups it made.
func (s *Groups) enableExistingFrom(ctx context.Context, existing *Group, spec GroupSpec, origin origin) (*Group, enableOutcome, error) {
	if origin == originPeer && existing.Record.Origin != originPeer {
		return nil, 0, notThePeers(existing.Record.Group())
	}
	return s.enableExisting(ctx, existing, spec)
}

func notThePeers(group string) error {
	return fmt.Errorf("%w: group %s was not made by the peer site: the peer's credential reaches only the groups it made", ErrForbidden, group)
}

// PeerMay says whether the peer site may act on group: one it made, or one that does not exist (which
// the call itself then answers).
func (s *Groups) PeerMay(ctx context.Context, group string) error {
	if err := s.admissible(group); err != nil {
		return err
	}
	g, err := LoadGroup(ctx, s.State, group)
	switch {
	case errors.Is(err, ErrNoGroup):
		return nil
	case err != nil:
		return err
	case g.Record.Origin != originPeer:
		return notThePeers(group)
	}
	return nil
}
