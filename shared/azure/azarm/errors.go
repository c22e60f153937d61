// Package azarm is what the Azure Resource Manager adapters (shared/azure/azcompute for the target
// region's compute, shared/azure/azsnapshots for the source region's disk snapshots) share: ARM's
// error bodies translated to the domain's sentinels, and the checks of the ids they are given.
package azarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/standby-dr/standby/shared/replication"
)

// Error is ARM's error body: {"error": {"code", "message", "target", "details": [...]}} (the
// ErrorResponse of the Resources and Compute specifications; azure-rest-api-specs
// specification/common-types/resource-management/v5/types.json#/definitions/ErrorResponse). Some Compute
// operations answer the inner object alone, so both shapes are read.
type Error struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Target  string  `json:"target"`
	Details []Error `json:"details"`
	Error   *Error  `json:"error"`
}

// Text is "code: message (target)" and, after it, every detail's text, depth first: the details are
// where ARM names the property a validation refused.
func (e Error) Text() string {
	if e.Error != nil {
		return e.Error.Text()
	}
	var parts []string
	var walk func(e Error)
	walk = func(e Error) {
		s := strings.TrimSpace(e.Code + ": " + e.Message)
		if e.Code == "" {
			s = e.Message
		}
		if e.Target != "" {
			s += " (target " + e.Target + ")"
		}
		if s != "" {
			parts = append(parts, s)
		}
		for _, d := range e.Details {
			walk(d)
		}
	}
	walk(e)
	return strings.Join(parts, "; ")
}

// ResponseText is what ARM said in a failed response: its error body, or its status when it had none.
func ResponseText(re *azcore.ResponseError) string {
	var e Error
	if body, err := runtime.Payload(re.RawResponse); err == nil && json.Unmarshal(body, &e) == nil {
		if t := e.Text(); t != "" {
			return t
		}
	}
	if re.ErrorCode != "" {
		return re.ErrorCode
	}
	return http.StatusText(re.StatusCode)
}

// Translate maps an SDK error to the domain's sentinels: 400 → ErrInvalid (ARM or a provider refused the
// request), 404 → ErrNotFound, 409 → ErrConflict, 429 and 5xx → ErrUnavailable; others (401, 403: a role
// missing) stay plain so that a retry after the role assignment propagates can succeed. The text is
// ARM's code and message; the request's URL and headers, which the SDK's own error text carries, are
// left out, and any SAS signature is redacted.
func Translate(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return fmt.Errorf("%s: %s", what, redact(err.Error()))
	}
	text := redact(ResponseText(re))
	switch status := re.StatusCode; {
	case status == http.StatusNotFound:
		return fmt.Errorf("%s: %s: %w", what, text, replication.ErrNotFound)
	case status == http.StatusConflict:
		return fmt.Errorf("%s: %s: %w", what, text, replication.ErrConflict)
	case status == http.StatusBadRequest:
		return fmt.Errorf("%s: %s: %w", what, text, replication.ErrInvalid)
	case status == http.StatusTooManyRequests || status >= 500:
		return fmt.Errorf("%s: %s (HTTP %d): %w", what, text, status, replication.ErrUnavailable)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return fmt.Errorf("%s: %s (HTTP %d: the app's identity lacks a role there; see the README's Deploy to Azure)", what, text, status)
	default:
		return fmt.Errorf("%s: %s (HTTP %d)", what, text, status)
	}
}

// redact is the pipeline's one redaction point.
func redact(s string) string { return replication.Redact(s) }

var guid = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// CheckSubscriptionID refuses anything but a GUID.
func CheckSubscriptionID(s string) error {
	if !guid.MatchString(s) {
		return fmt.Errorf("%w: subscription id %q is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", replication.ErrInvalid, s)
	}
	return nil
}
