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

	"github.com/standby-dr/standby/shared/api/apiv1"
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

// Unwrap is apiv1.ErrBadRequest for a 400, so a caller that knows only the wire types tells a request
// the API will never take from an outage worth retrying.
func (e *Error) Unwrap() error {
	if e.Status == http.StatusBadRequest {
		return apiv1.ErrBadRequest
	}
	return nil
}

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
func (c *Client) PutGroup(ctx context.Context, group string, spec apiv1.GroupSpec) (apiv1.GroupView, int, error) {
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

// DiskHashes reads a target disk's block checksums, page by page; the target must hash blocks of
// blockSize bytes, as the caller does.
func (c *Client) DiskHashes(ctx context.Context, group, disk string, blockSize int64) ([]string, error) {
	var hashes []string
	for from := int64(0); ; {
		var h apiv1.DiskHashes
		path := fmt.Sprintf("/v1/groups/%s/disks/%s/hashes?from=%d", group, disk, from)
		if _, err := c.Do(ctx, http.MethodGet, path, nil, &h); err != nil {
			return nil, err
		}
		if h.BlockSize != blockSize {
			return nil, fmt.Errorf("target hashes use %d-byte blocks, the agent %d", h.BlockSize, blockSize)
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
