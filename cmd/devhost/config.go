package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/standby-dr/standby/shared/azure/azconn"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// App is a function app as devhost loads it: host.json, every functions/*/function.json and
// local.settings.json. Every validation error names the file and the field.
type App struct {
	Root      string
	Host      HostConfig
	Functions []*Function
	Values    map[string]string
	HTTPPort  int
}

// HostConfig is the part of host.json devhost honours.
type HostConfig struct {
	Version       string `json:"version"`
	CustomHandler *struct {
		Description struct {
			DefaultExecutablePath string   `json:"defaultExecutablePath"`
			WorkingDirectory      string   `json:"workingDirectory"`
			Arguments             []string `json:"arguments"`
		} `json:"description"`
		EnableForwardingHttpRequest bool `json:"enableForwardingHttpRequest"`
	} `json:"customHandler"`
	ExtensionBundle *struct {
		ID      string `json:"id"`
		Version string `json:"version"`
	} `json:"extensionBundle"`
	FunctionTimeout string `json:"functionTimeout"`
	Extensions      struct {
		EventHubs struct {
			MaxEventBatchSize        int `json:"maxEventBatchSize"`
			BatchCheckpointFrequency int `json:"batchCheckpointFrequency"`
			PrefetchCount            int `json:"prefetchCount"`
		} `json:"eventHubs"`
		ServiceBus struct {
			MaxConcurrentSessions       int    `json:"maxConcurrentSessions"`
			MaxAutoLockRenewalDuration  string `json:"maxAutoLockRenewalDuration"`
			SessionIdleTimeout          string `json:"sessionIdleTimeout"`
			MaxConcurrentCalls          int    `json:"maxConcurrentCalls"`
			AutoCompleteMessages        *bool  `json:"autoCompleteMessages"`
			PrefetchCount               int    `json:"prefetchCount"`
			MaxMessageBatchSize         int    `json:"maxMessageBatchSize"`
			MaxConcurrentCallsPerWorker int    `json:"maxConcurrentCallsPerWorker"`
		} `json:"serviceBus"`
		HTTP struct {
			RoutePrefix *string `json:"routePrefix"`
		} `json:"http"`
	} `json:"extensions"`

	functionTimeout time.Duration
	lockRenewal     time.Duration
	sessionIdle     time.Duration
}

// LocalSettings is local.settings.json.
type LocalSettings struct {
	IsEncrypted bool                       `json:"IsEncrypted"`
	Values      map[string]json.RawMessage `json:"Values"`
	Host        struct {
		LocalHTTPPort int `json:"LocalHttpPort"`
	} `json:"Host"`
	ConnectionStrings map[string]json.RawMessage `json:"ConnectionStrings"`
}

type fieldError struct{ file, field, msg string }

func (e *fieldError) Error() string { return fmt.Sprintf("%s: %s: %s", e.file, e.field, e.msg) }

func errField(file, field, format string, args ...any) error {
	return &fieldError{file: file, field: field, msg: fmt.Sprintf(format, args...)}
}

func decodeStrict(file string, data []byte, into any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(into); err != nil {
		var te *json.UnmarshalTypeError
		if ok := asType(err, &te); ok {
			return errField(file, te.Field, "wrong type: %s where %s is expected", te.Value, te.Type)
		}
		var se *json.SyntaxError
		if asType(err, &se) {
			line := bytes.Count(data[:se.Offset], []byte("\n")) + 1
			return errField(file, fmt.Sprintf("line %d", line), "invalid JSON: %v", err)
		}
		return fmt.Errorf("%s: invalid JSON: %w", file, err)
	}
	return nil
}

func asType[T error](err error, target *T) bool {
	t, ok := err.(T)
	if ok {
		*target = t
	}
	return ok
}

// LoadApp loads and validates the app at root. Process environment values override local settings,
// as in the real host.
// settingsFile is the local.settings.json to read ("": the one at the app's root, as Core Tools reads it).
func LoadApp(root, settingsFile string, environ []string) (*App, error) {
	app := &App{Root: root, Values: map[string]string{}}
	if settingsFile == "" {
		settingsFile = filepath.Join(root, "local.settings.json")
	}
	// local.settings.json first: function.json expansion needs its Values.
	if err := app.loadSettings(settingsFile, environ); err != nil {
		return nil, err
	}

	data, err := os.ReadFile(filepath.Join(root, "host.json"))
	if err != nil {
		return nil, fmt.Errorf("host.json: %w", err)
	}
	if err := decodeStrict("host.json", data, &app.Host); err != nil {
		return nil, err
	}
	if err := app.Host.validate(); err != nil {
		return nil, err
	}

	files, err := functionFiles(root)
	if err != nil {
		return nil, err
	}
	for _, file := range files {
		rel, _ := filepath.Rel(root, file)
		fn := &Function{Name: filepath.Base(filepath.Dir(file)), File: rel}
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		if err := decodeStrict(rel, data, fn); err != nil {
			return nil, err
		}
		if err := fn.validate(app); err != nil {
			return nil, err
		}
		app.Functions = append(app.Functions, fn)
	}
	return app, nil
}

// functionNameRule is the host's rule for function names (folder names): Utility.FunctionNameValidationRegex,
// Azure/azure-functions-host@89dc438d4 src/WebJobs.Script/Utility.cs:59.
var functionNameRule = regexp.MustCompile(`(?i)^[a-z][a-z0-9_\-]{0,127}$`)

// functionFiles finds the app's functions as the host does: every direct child folder of the script
// root that holds a function.json is a function named after the folder
// (HostFunctionMetadataProvider.ReadFunctionsMetadata/ReadFunctionMetadata, Azure/azure-functions-host@89dc438d4
// src/WebJobs.Script/Host/HostFunctionMetadataProvider.cs:73-107). Nothing deeper is looked at: a
// functions/<name>/function.json below the root is not a function.
func functionFiles(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		file := filepath.Join(root, e.Name(), "function.json")
		if _, err := os.Stat(file); !e.IsDir() || err != nil {
			continue // not a function directory
		}
		if !functionNameRule.MatchString(e.Name()) || strings.EqualFold(e.Name(), "host") {
			return nil, fmt.Errorf("'%s' is not a valid function name.", e.Name())
		}
		files = append(files, file)
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("no <name>/function.json under %s: the host loads a function from each folder at the app's root (make package stages them in dist/app)", root)
	}
	return files, nil
}

// loadSettings reads local.settings.json (optional), then the process environment's Standby* values.
func (app *App) loadSettings(settingsFile string, environ []string) error {
	settingsDir, err := filepath.Abs(filepath.Dir(settingsFile))
	if err != nil {
		return err
	}
	if data, err := os.ReadFile(settingsFile); err == nil {
		var ls LocalSettings
		if err := decodeStrict("local.settings.json", data, &ls); err != nil {
			return err
		}
		if ls.IsEncrypted {
			return errField("local.settings.json", "IsEncrypted", "encrypted settings are not supported locally; set it to false")
		}
		for k, raw := range ls.Values {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return errField("local.settings.json", "Values."+k, "must be a string, got %s", raw)
			}
			// A relative embedded-broker path is the settings file's: the handler runs in the app's
			// folder and the agent elsewhere, and all must open the same broker.
			app.Values[k] = azconn.AnchorConnection(s, settingsDir)
		}
		app.HTTPPort = ls.Host.LocalHTTPPort
	} else if !os.IsNotExist(err) {
		return err
	}
	cwd, _ := os.Getwd()
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "Standby") {
			app.Values[k] = azconn.AnchorConnection(v, cwd)
		}
	}
	if app.HTTPPort == 0 {
		app.HTTPPort = 7071
	}
	return nil
}

func parseDuration(file, field, s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := ParseTimeSpan(s)
	if err != nil {
		return 0, errField(file, field, "%v", err)
	}
	return d, nil
}

func (h *HostConfig) validate() error {
	const f = "host.json"
	if h.Version != "2.0" {
		return errField(f, "version", "%q, want \"2.0\"", h.Version)
	}
	if h.CustomHandler == nil || h.CustomHandler.Description.DefaultExecutablePath == "" {
		return errField(f, "customHandler.description.defaultExecutablePath", "missing: the handler binary to start")
	}
	if h.ExtensionBundle == nil || h.ExtensionBundle.ID == "" || h.ExtensionBundle.Version == "" {
		return errField(f, "extensionBundle", "missing id or version (trigger bindings of a custom handler come from the bundle)")
	}
	eh := &h.Extensions.EventHubs
	if eh.MaxEventBatchSize == 0 {
		eh.MaxEventBatchSize = 100
	}
	if eh.MaxEventBatchSize < 1 || eh.MaxEventBatchSize > 1000 {
		return errField(f, "extensions.eventHubs.maxEventBatchSize", "%d is outside 1..1000", eh.MaxEventBatchSize)
	}
	if eh.BatchCheckpointFrequency == 0 {
		eh.BatchCheckpointFrequency = 1
	}
	if eh.BatchCheckpointFrequency < 1 {
		return errField(f, "extensions.eventHubs.batchCheckpointFrequency", "%d must be at least 1", eh.BatchCheckpointFrequency)
	}
	if eh.PrefetchCount < 0 {
		return errField(f, "extensions.eventHubs.prefetchCount", "%d must not be negative", eh.PrefetchCount)
	}
	sb := &h.Extensions.ServiceBus
	if sb.MaxConcurrentSessions == 0 {
		sb.MaxConcurrentSessions = 8
	}
	if sb.MaxConcurrentSessions < 1 {
		return errField(f, "extensions.serviceBus.maxConcurrentSessions", "%d must be at least 1", sb.MaxConcurrentSessions)
	}
	var err error
	if h.lockRenewal, err = parseDuration(f, "extensions.serviceBus.maxAutoLockRenewalDuration", sb.MaxAutoLockRenewalDuration, 5*time.Minute); err != nil {
		return err
	}
	if h.sessionIdle, err = parseDuration(f, "extensions.serviceBus.sessionIdleTimeout", sb.SessionIdleTimeout, time.Second); err != nil {
		return err
	}
	if h.functionTimeout, err = parseDuration(f, "functionTimeout", h.FunctionTimeout, 5*time.Minute); err != nil {
		return err
	}
	return nil
}

var settingRef = regexp.MustCompile(`%([^%]+)%`)

// expand replaces %Setting% references with app settings; a missing setting is an error.
func (a *App) expand(file, field, s string) (string, error) {
	var missing string
	out := settingRef.ReplaceAllStringFunc(s, func(m string) string {
		name := strings.Trim(m, "%")
		v, ok := a.Values[name]
		if !ok {
			missing = name
		}
		return v
	})
	if missing != "" {
		return "", errField(file, field, "refers to app setting %%%s%%, which local.settings.json Values does not define", missing)
	}
	return out, nil
}

// ParseTimeSpan parses a .NET TimeSpan as host.json and function.json write them: [d.]hh:mm:ss[.fff].
func ParseTimeSpan(s string) (time.Duration, error) {
	days := 0
	rest := s
	if d, r, ok := strings.Cut(s, "."); ok && strings.Count(d, ":") == 0 {
		n, err := strconv.Atoi(d)
		if err != nil {
			return 0, fmt.Errorf("%q is not a time span ([d.]hh:mm:ss)", s)
		}
		days, rest = n, r
	}
	parts := strings.Split(rest, ":")
	if len(parts) != 3 {
		return 0, fmt.Errorf("%q is not a time span ([d.]hh:mm:ss)", s)
	}
	h, err1 := strconv.Atoi(parts[0])
	m, err2 := strconv.Atoi(parts[1])
	sec, err3 := strconv.ParseFloat(parts[2], 64)
	if err1 != nil || err2 != nil || err3 != nil || h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec >= 60 {
		return 0, fmt.Errorf("%q is not a time span ([d.]hh:mm:ss)", s)
	}
	return time.Duration(days)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(sec*float64(time.Second)), nil
}
