package main

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// A function.json: its bindings (the trigger's own checks live with the trigger kind, in timer.go,
// eventhubs.go, servicebus.go and http.go), output bindings and retry policy.

// Binding is one binding of a function.json, with the properties devhost uses (after %Setting% expansion).
type Binding struct {
	Type              string `json:"type"`
	Direction         string `json:"direction"`
	Name              string `json:"name"`
	Schedule          string `json:"schedule"`
	RunOnStartup      bool   `json:"runOnStartup"`
	UseMonitor        *bool  `json:"useMonitor"`
	EventHubName      string `json:"eventHubName"`
	Connection        string `json:"connection"`
	ConsumerGroup     string `json:"consumerGroup"`
	Cardinality       string `json:"cardinality"`
	DataType          string `json:"dataType"`
	QueueName         string `json:"queueName"`
	IsSessionsEnabled bool   `json:"isSessionsEnabled"`
	// AutoCompleteMessages is the v5 extension's per-function setting (ServiceBusTriggerAttribute
	// .AutoCompleteMessages); AutoComplete, the v4 name, is only read to refuse it (v5 ignores it).
	AutoCompleteMessages *bool    `json:"autoCompleteMessages"`
	AutoComplete         *bool    `json:"autoComplete"`
	AuthLevel            string   `json:"authLevel"`
	Route                string   `json:"route"`
	Methods              []string `json:"methods"`
}

// Retry is a function.json retry policy.
type Retry struct {
	Strategy        string `json:"strategy"`
	MaxRetryCount   int    `json:"maxRetryCount"`
	DelayInterval   string `json:"delayInterval"`
	MinimumInterval string `json:"minimumInterval"`
	MaximumInterval string `json:"maximumInterval"`

	delay, min, max time.Duration
}

// Delay is the wait before retry number attempt (1-based).
func (r *Retry) Delay(attempt int) time.Duration {
	if r.Strategy == "fixedDelay" {
		return r.delay
	}
	d := r.min
	for i := 1; i < attempt && d < r.max; i++ {
		d *= 2
	}
	if d > r.max {
		d = r.max
	}
	return d
}

// Allows reports whether retry number attempt (1-based) is allowed; -1 means retry forever.
func (r *Retry) Allows(attempt int) bool {
	return r != nil && (r.MaxRetryCount == -1 || attempt <= r.MaxRetryCount)
}

// Function is one function of the app.
type Function struct {
	Name     string
	File     string
	Bindings []Binding `json:"bindings"`
	Retry    *Retry    `json:"retry"`
	Disabled bool      `json:"disabled"`

	Trigger  *Binding
	schedule *Schedule
	route    *regexp.Regexp
}

func (fn *Function) validate(app *App) error {
	f := fn.File
	triggers := 0
	for i := range fn.Bindings {
		b := &fn.Bindings[i]
		at := fmt.Sprintf("bindings[%d]", i)
		if err := fn.validateBinding(app, b, at); err != nil {
			return err
		}
		if strings.HasSuffix(b.Type, "Trigger") {
			triggers++
			fn.Trigger = b
		}
	}
	if triggers != 1 {
		return errField(f, "bindings", "%d triggers, want exactly one", triggers)
	}
	if fn.Retry != nil {
		return fn.Retry.validate(f)
	}
	return nil
}

// validateBinding checks the binding at bindings[i] and expands its %Setting% references.
func (fn *Function) validateBinding(app *App, b *Binding, at string) error {
	f := fn.File
	if b.Type == "" {
		return errField(f, at+".type", "missing")
	}
	if b.Name == "" {
		return errField(f, at+".name", "missing")
	}
	if b.Direction != "in" && b.Direction != "out" && b.Direction != "inout" {
		return errField(f, at+".direction", "%q, want in or out", b.Direction)
	}
	for field, p := range map[string]*string{"schedule": &b.Schedule, "eventHubName": &b.EventHubName, "consumerGroup": &b.ConsumerGroup,
		"queueName": &b.QueueName, "route": &b.Route} {
		v, err := app.expand(f, at+"."+field, *p)
		if err != nil {
			return err
		}
		*p = v
	}
	switch b.Type {
	case "timerTrigger":
		return validateTimer(fn, b, at)
	case "eventHubTrigger":
		return validateEventHub(fn, b, at)
	case "serviceBusTrigger":
		return validateServiceBus(fn, b, at)
	case "httpTrigger":
		return validateHTTP(fn, b, at)
	case "http", "serviceBus", "eventHub":
		if b.Direction != "out" {
			return errField(f, at+".direction", "a %s binding must be out", b.Type)
		}
		if b.Type == "serviceBus" && b.QueueName == "" {
			return errField(f, at+".queueName", "missing")
		}
		if b.Type == "eventHub" && b.EventHubName == "" {
			return errField(f, at+".eventHubName", "missing")
		}
		return nil
	default:
		return errField(f, at+".type", "%q is not supported by devhost", b.Type)
	}
}

func (r *Retry) validate(f string) error {
	var err error
	switch r.Strategy {
	case "fixedDelay":
		if r.delay, err = parseDuration(f, "retry.delayInterval", r.DelayInterval, 0); err != nil {
			return err
		}
		if r.DelayInterval == "" {
			return errField(f, "retry.delayInterval", "missing for fixedDelay")
		}
	case "exponentialBackoff":
		if r.min, err = parseDuration(f, "retry.minimumInterval", r.MinimumInterval, 0); err != nil {
			return err
		}
		if r.max, err = parseDuration(f, "retry.maximumInterval", r.MaximumInterval, 0); err != nil {
			return err
		}
		if r.min <= 0 || r.max < r.min {
			return errField(f, "retry", "exponentialBackoff needs 0 < minimumInterval <= maximumInterval")
		}
	default:
		return errField(f, "retry.strategy", "%q, want fixedDelay or exponentialBackoff", r.Strategy)
	}
	if r.MaxRetryCount < -1 {
		return errField(f, "retry.maxRetryCount", "%d, want -1 (forever) or more", r.MaxRetryCount)
	}
	return nil
}
