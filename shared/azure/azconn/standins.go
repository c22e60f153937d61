package azconn

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// A connection setting may name a local stand-in instead of an Azure resource. Their grammar lives
// here, beside Azure's, so that a binary built without the stand-ins (the agent's Azure build) can still
// tell such a setting from a bad one and say which build it needs.

// BrokerPrefix marks a connection setting that selects the embedded broker (shared/standin/broker), e.g.
// "UseEmbeddedBroker=true;Path=.local/broker.db".
const BrokerPrefix = "UseEmbeddedBroker=true"

// IsEmbeddedBroker reports whether a connection setting value selects the embedded broker.
func IsEmbeddedBroker(value string) bool {
	return strings.HasPrefix(strings.TrimSpace(value), BrokerPrefix)
}

// BrokerPath extracts Path=... from an embedded-broker connection setting.
func BrokerPath(value string) (string, error) {
	if !IsEmbeddedBroker(value) {
		return "", fmt.Errorf("not an embedded broker connection (want %q;Path=...)", BrokerPrefix)
	}
	for _, part := range strings.Split(value, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && strings.EqualFold(k, "Path") && v != "" {
			return v, nil
		}
	}
	return "", errors.New("embedded broker connection has no Path=")
}

// ComputePrefix marks a connection setting that selects the local compute (shared/standin/localcompute), e.g.
// "UseLocalCompute=true;Dir=.local/compute;Images=.local/vm;Types=../shared/reference/azure-types".
const ComputePrefix = "UseLocalCompute=true"

// anchoredKeys are the options of the local stand-ins' connection settings that name files.
var anchoredKeys = map[string]bool{"path": true, "dir": true, "images": true, "types": true}

// AnchorConnection makes the relative file paths of a local stand-in's connection setting (the
// embedded broker's Path, the local compute's Dir, Images and Types) absolute against dir, where the
// settings that name them live, so that every process reading the setting — devhost, the handler it
// starts in the app's folder, the agent — opens the same files. Other values pass as they are.
func AnchorConnection(value, dir string) string {
	trimmed := strings.TrimSpace(value)
	if !strings.HasPrefix(trimmed, BrokerPrefix) && !strings.HasPrefix(trimmed, ComputePrefix) {
		return value
	}
	parts := strings.Split(trimmed, ";")
	for i, part := range parts[1:] {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && anchoredKeys[strings.ToLower(k)] && v != "" && !filepath.IsAbs(v) {
			parts[i+1] = k + "=" + filepath.Join(dir, v)
		}
	}
	return strings.Join(parts, ";")
}
