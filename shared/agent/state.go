package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// state is what the agent persists: the next sequence number, the last one published, and whether it
// stopped cleanly (if not, writes in flight may be lost and a resync compares the disks).
type state struct {
	NextSeq   int64 `json:"nextSeq"`
	Published int64 `json:"published"`
	Clean     bool  `json:"clean"`
}

// statePath is where the group's state lives in the state directory.
func statePath(dir, group string) string { return filepath.Join(dir, group+".state.json") }

func (a *Agent) statePath() string { return statePath(a.cfg.StateDir, a.cfg.Group) }

func (a *Agent) saveState(s state) error {
	data, _ := json.Marshal(s)
	path := a.statePath()
	if err := os.WriteFile(path+".tmp", data, 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// loadState reads the agent's state; fresh says there was none.
func (a *Agent) loadState() (st state, fresh bool, err error) {
	data, err := os.ReadFile(a.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return st, true, nil
	}
	if err != nil {
		return st, false, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, false, fmt.Errorf("agent state %s: %w", a.statePath(), err)
	}
	return st, false, nil
}

// PublishedSeq is the last sequence the agent's state in stateDir says it published for the group.
func PublishedSeq(stateDir, group string) (int64, error) {
	data, err := os.ReadFile(statePath(stateDir, group))
	if err != nil {
		return 0, err
	}
	var st state
	json.Unmarshal(data, &st)
	return st.Published, nil
}
