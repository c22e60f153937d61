// Package azconn reads connection settings the way Azure Functions does and turns them into SDK clients:
// a connection string in the setting <Name>, or identity-based settings <Name>__serviceUri,
// <Name>__blobServiceUri, <Name>__tableServiceUri, <Name>__fullyQualifiedNamespace used with
// DefaultAzureCredential. It also translates storage SDK errors into the domain's sentinel errors.
package azconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/standby-dr/standby/shared/replication"
)

// Setting is a resolved connection setting.
type Setting struct {
	Name             string
	ConnectionString string // set for connection-string settings
	ServiceURI       string // identity-based: <Name>__serviceUri / __blobServiceUri / __tableServiceUri
	Namespace        string // identity-based messaging: <Name>__fullyQualifiedNamespace
}

// Lookup resolves the setting name with the environment getter (os.Getenv in production). Which
// identity-based key applies depends on the service ("blob", "table", or "" for messaging).
func Lookup(getenv func(string) string, name, service string) (Setting, error) {
	s := Setting{Name: name}
	if v := strings.TrimSpace(getenv(name)); v != "" {
		s.ConnectionString = v
		return s, nil
	}
	keys := []string{name + "__serviceUri"}
	switch service {
	case "blob":
		keys = append([]string{name + "__blobServiceUri"}, keys...)
	case "table":
		keys = append([]string{name + "__tableServiceUri"}, keys...)
	default:
		keys = []string{name + "__fullyQualifiedNamespace"}
	}
	for _, k := range keys {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			if service == "" {
				s.Namespace = v
			} else {
				s.ServiceURI = v
			}
			return s, nil
		}
	}
	return s, fmt.Errorf("connection setting %s is not set (want %s or %s)", name, name, strings.Join(keys, " or "))
}

// Credential is the identity used for identity-based settings.
func Credential() (azcore.TokenCredential, error) {
	return azidentity.NewDefaultAzureCredential(nil)
}

// ClientOptions are the retry settings shared by the storage clients: a few quick retries, so a
// transient 503 or throttle is absorbed here and a longer outage surfaces as ErrUnavailable.
func ClientOptions() policy.ClientOptions {
	return policy.ClientOptions{Retry: policy.RetryOptions{MaxRetries: 4, RetryDelay: 200 * time.Millisecond, MaxRetryDelay: 5 * time.Second}}
}

// Translate maps a storage SDK error to the domain's sentinel errors, keeping the original text.
func Translate(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		kind := replication.ErrUnavailable
		switch {
		case re.StatusCode == http.StatusNotFound:
			kind = replication.ErrNotFound
		case re.StatusCode == http.StatusConflict || re.StatusCode == http.StatusPreconditionFailed:
			kind = replication.ErrConflict
		case re.StatusCode == http.StatusRequestEntityTooLarge:
			kind = replication.ErrTooLarge
		case re.StatusCode == http.StatusTooManyRequests || re.StatusCode >= 500:
			kind = replication.ErrUnavailable
		case re.StatusCode >= 400:
			kind = replication.ErrInvalid
		}
		return fmt.Errorf("%s: %s (HTTP %d): %w", what, re.ErrorCode, re.StatusCode, kind)
	}
	var ne net.Error
	if errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused") {
		return fmt.Errorf("%s: %v: %w", what, err, replication.ErrUnavailable)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Connect builds an SDK client from a resolved setting: from its connection string when it has one,
// else with the default Azure credential (identity-based settings). Errors name the setting.
func Connect[T any](s Setting, fromConnectionString func(string) (T, error), withCredential func(azcore.TokenCredential) (T, error)) (T, error) {
	var c T
	var err error
	if s.ConnectionString != "" {
		c, err = fromConnectionString(s.ConnectionString)
	} else {
		var cred azcore.TokenCredential
		if cred, err = Credential(); err == nil {
			c, err = withCredential(cred)
		}
	}
	if err != nil {
		return c, fmt.Errorf("%s: %w", s.Name, err)
	}
	return c, nil
}
