// Package apiclient talks to Standby's REST API (the agent's heartbeats and checksum reads, the operator
// CLI). Problem responses become errors that carry the title and detail.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/standby-dr/standby/shared/apiv1"
	"github.com/standby-dr/standby/shared/failover"
	"github.com/standby-dr/standby/shared/replication"
)

// Client is an API client. Base is the API root, e.g. http://127.0.0.1:7071/api.
type Client struct {
	Base string
	Key  string
	// AgentKey, when set, is a group's agent credential: the client then calls the agent routes
	// (/agent/v1/...), which take it instead of a function key.
	AgentKey string
	// Door, when set ("/peer", "/read"), is put before every path: the door of a role whose key opens
	// only its own routes (apiv1.Doors).
	Door string
	HTTP *http.Client
}

// New returns a client with a sane timeout.
func New(base, key string) *Client {
	return &Client{Base: strings.TrimSuffix(base, "/"), Key: key, HTTP: &http.Client{Timeout: 60 * time.Second, CheckRedirect: sameHost}}
}

// Error is a problem+json answer.
type Error struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Title, e.Detail) }

// Do sends a request and decodes a JSON answer into out (when not nil); it returns the status.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(data)
	}
	if c.AgentKey != "" { // an agent's credential: its group's routes only
		path = "/agent" + path
	} else {
		path = c.Door + path
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Key != "" {
		req.Header.Set("x-functions-key", c.Key)
	}
	if c.AgentKey != "" {
		req.Header.Set(apiv1.AgentKeyHeader, c.AgentKey)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 400 {
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Title == "" {
			e.Title, e.Detail = http.StatusText(resp.StatusCode), strings.TrimSpace(string(data))
		}
		return resp.StatusCode, e
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decoding the answer to %s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// PutGroup enables replication of a group.
func (c *Client) PutGroup(ctx context.Context, group string, spec replication.GroupSpec) (apiv1.GroupView, int, error) {
	var v apiv1.GroupView
	status, err := c.Do(ctx, http.MethodPut, "/v1/groups/"+group, spec, &v)
	return v, status, err
}

// Group reads a group.
func (c *Client) Group(ctx context.Context, group string) (apiv1.GroupView, error) {
	var v apiv1.GroupView
	_, err := c.Do(ctx, http.MethodGet, "/v1/groups/"+group, nil, &v)
	return v, err
}

// sameHost follows a redirect only within the API's host: the function key is never sent elsewhere.
func sameHost(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("stopped after 5 redirects")
	}
	if req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
		return fmt.Errorf("the API redirected to %s://%s: refused, the key is only for %s", req.URL.Scheme, req.URL.Host, via[0].URL.Host)
	}
	return nil
}

// StreamKey reads the group's change-stream key (an agent's).
func (c *Client) StreamKey(ctx context.Context, group string) (string, error) {
	var v apiv1.StreamKeyView
	_, err := c.Do(ctx, http.MethodGet, "/v1/groups/"+group+"/stream-key", nil, &v)
	return v.StreamKey, err
}

// Heartbeat reports the agent's progress and returns its instructions.
func (c *Client) Heartbeat(ctx context.Context, group string, rep apiv1.AgentReport) (apiv1.AgentInstructions, error) {
	var in apiv1.AgentInstructions
	_, err := c.Do(ctx, http.MethodPost, "/v1/groups/"+group+"/agent", rep, &in)
	return in, err
}

// DiskHashes reads a target disk's block checksums, page by page.
func (c *Client) DiskHashes(ctx context.Context, group, disk string) ([]string, error) {
	var hashes []string
	for from := int64(0); ; {
		var h apiv1.DiskHashes
		path := fmt.Sprintf("/v1/groups/%s/disks/%s/hashes?from=%d", group, disk, from)
		if _, err := c.Do(ctx, http.MethodGet, path, nil, &h); err != nil {
			return nil, err
		}
		if h.BlockSize != replication.BlockSize {
			return nil, fmt.Errorf("target hashes use %d-byte blocks, the agent %d", h.BlockSize, replication.BlockSize)
		}
		if h.From != from || (h.Next != nil && *h.Next <= from) {
			return nil, fmt.Errorf("target hashes: asked from block %d, got a page from %d continuing at %v", from, h.From, h.Next)
		}
		hashes = append(hashes, h.Hashes...)
		if h.Next == nil {
			return hashes, nil
		}
		from = *h.Next
	}
}

// Event reports an event into the group's history.
func (c *Client) Event(ctx context.Context, group, kind, message string) error {
	_, err := c.Do(ctx, http.MethodPost, "/v1/groups/"+group+"/events", apiv1.EventReport{Kind: kind, Message: message}, nil)
	return err
}

// Job reads a job.
func (c *Client) Job(ctx context.Context, id string) (apiv1.JobView, error) {
	var j apiv1.JobView
	_, err := c.Do(ctx, http.MethodGet, "/v1/jobs/"+id, nil, &j)
	return j, err
}

// Peer is the other region's Standby deployment as reprotect and failback see it.
type Peer struct{ Client *Client }

// NewPeer is the peer site at base, called through its peer door with key (a function key of its peer
// function, which opens nothing else).
func NewPeer(base, key string) Peer {
	c := New(base, key)
	c.Door = "/peer"
	return Peer{Client: c}
}

var _ failover.PeerSite = Peer{}

// peerError carries the peer's refusals as the domain's errors (which jobs do not retry).
func peerError(err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Status {
	case http.StatusConflict:
		return fmt.Errorf("%w: peer site: %v", replication.ErrConflict, e)
	case http.StatusBadRequest:
		return fmt.Errorf("%w: peer site: %v", replication.ErrInvalid, e)
	case http.StatusNotFound:
		return fmt.Errorf("%w: peer site: %v", replication.ErrNotFound, e)
	}
	return fmt.Errorf("peer site: %w", e)
}

// EnableGroup PUTs the group's spec on the peer.
func (p Peer) EnableGroup(ctx context.Context, group string, spec replication.GroupSpec) error {
	_, _, err := p.Client.PutGroup(ctx, group, spec)
	return peerError(err)
}

// GroupStatus reads the group's state and first-sync counts on the peer.
func (p Peer) GroupStatus(ctx context.Context, group string) (failover.PeerGroup, error) {
	v, err := p.Client.Group(ctx, group)
	if err != nil {
		return failover.PeerGroup{}, peerError(err)
	}
	pg := failover.PeerGroup{State: v.State, Reason: v.Reason}
	if b := v.InitialReplication; b != nil {
		pg.SyncDoneBytes, pg.SyncTotalBytes, pg.BlocksCompared, pg.BlocksSent = b.DoneBytes, b.TotalBytes, b.BlocksCompared, b.BlocksSent
	}
	return pg, nil
}

// StartFailover queues a failover with the given job id on the peer (idempotent for the same id).
func (p Peer) StartFailover(ctx context.Context, group, failoverType, jobID string) error {
	_, err := p.Client.Do(ctx, http.MethodPost, "/v1/groups/"+group+"/failover", apiv1.FailoverRequest{Type: failoverType, JobID: jobID}, nil)
	return peerError(err)
}

// RemoveGroup disables the group on the peer, removing its data (a group already gone is fine).
func (p Peer) RemoveGroup(ctx context.Context, group string) error {
	_, err := p.Client.Do(ctx, http.MethodDelete, "/v1/groups/"+group+"?keepData=false", nil, nil)
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusNotFound {
		return nil
	}
	return peerError(err)
}

// Job reads a job on the peer.
func (p Peer) Job(ctx context.Context, id string) (failover.PeerJob, error) {
	j, err := p.Client.Job(ctx, id)
	if err != nil {
		return failover.PeerJob{}, peerError(err)
	}
	pj := failover.PeerJob{State: j.State, Error: j.Error, Point: j.Point, Result: j.Result}
	for _, s := range j.Steps {
		if s.State != "done" {
			pj.Current = s.Name + ": " + s.Outcome
			break
		}
	}
	return pj, nil
}

// SeedDisks asks the peer to seed disks from managed disks, and reports their copies.
func (p Peer) SeedDisks(ctx context.Context, group string, req replication.SeedRequest) (replication.SeedStatus, error) {
	var st replication.SeedStatus
	_, err := p.Client.Do(ctx, http.MethodPost, "/v1/groups/"+group+"/seed", req, &st)
	return st, peerError(err)
}
