package replication

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
)

// An agent credential is bound to one group: it may report for that group (heartbeat, events), read
// its own group's view, target hashes and stream key — nothing else, and nothing of another group. The
// operator issues it (IssueAgentKey: shown once, kept only as a SHA-256); issuing again rotates it.

// ErrUnauthorized: the request's credential does not allow it.
var ErrUnauthorized = errors.New("unauthorized")

// IssueAgentKey makes the group's agent key, replacing any before it, and returns it (the only time it
// is seen).
func (s *Agents) IssueAgentKey(ctx context.Context, group string) (string, error) {
	if err := s.admissible(group); err != nil {
		return "", err
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	key := base64.RawURLEncoding.EncodeToString(raw)
	if _, err := UpdateGroup(ctx, s.State, group, StateRow, func(r *GroupRecord) error {
		r.AgentKeyHash = hashKey(key)
		// The stream key goes with it: a holder of the old agent key may have read the stream key, and
		// must not sign what comes next. The old key keeps opening what is stored already (the
		// sequences the group knows of); an old agent's batches past them are refused, and the group
		// resyncs once its agent runs with the new key.
		if r.StreamKey != "" {
			r.PrevStreamKey, r.PrevStreamKeyThrough = r.StreamKey, max(r.AgentSeq, r.Watermark)
			r.StreamKey = newStreamKey()
		}
		return nil
	}); err != nil {
		return "", err
	}
	s.Log.Info("agent key issued", "group", group)
	return key, nil
}

// AuthenticateAgent checks an agent's key against its group's (ErrUnauthorized otherwise, the same for
// a group that does not exist, so that keys cannot probe names).
func (s *Agents) AuthenticateAgent(ctx context.Context, group, key string) error {
	if err := s.admissible(group); err != nil {
		return err
	}
	g, err := LoadGroup(ctx, s.State, group)
	if errors.Is(err, ErrNoGroup) || (err == nil && (g.Record.AgentKeyHash == "" ||
		subtle.ConstantTimeCompare([]byte(hashKey(key)), []byte(g.Record.AgentKeyHash)) != 1)) {
		return fmt.Errorf("%w: this agent key is not group %s's", ErrUnauthorized, group)
	}
	return err
}

func hashKey(key string) string {
	sum := sha256.Sum256([]byte("standby-agent-key\x00" + key))
	return hex.EncodeToString(sum[:])
}
