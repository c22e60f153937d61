package agent

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
)

// Flags are the command-line options the agent and its proof tool (verify) share: the group, where the
// API is, a settings file and the agent's state directory.
type Flags struct {
	Group, API, Key, AgentKey, Settings, State string
}

// FlagSet is a flag set for the named command with the flags registered (more can be added).
func (c *Flags) FlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&c.Group, "group", "", "consistency group")
	fs.StringVar(&c.API, "api", envOr("STANDBY_API", "http://127.0.0.1:7071/api"), "API root")
	fs.StringVar(&c.Key, "key", os.Getenv("STANDBY_API_KEY"), "operator API key (x-functions-key); needed only to enable with -spec")
	fs.StringVar(&c.AgentKey, "agent-key", os.Getenv("STANDBY_AGENT_KEY"), "the group's agent key (POST /api/v1/groups/<g>/agent-key): reports and reads for this group only")
	fs.StringVar(&c.Settings, "settings", "", "a local.settings.json whose Values fill unset settings")
	fs.StringVar(&c.State, "state", ".local/agent", "agent state directory")
	return fs
}

// Load checks the flags and puts the settings file's Values into the environment where unset (the API
// key too, from DevhostFunctionKey, when -key and STANDBY_API_KEY are not given).
func (c *Flags) Load() error {
	if c.Group == "" {
		return errors.New("-group is required")
	}
	if c.Settings == "" {
		return nil
	}
	data, err := os.ReadFile(c.Settings)
	if err != nil {
		return err
	}
	var ls struct{ Values map[string]string }
	if err := json.Unmarshal(data, &ls); err != nil {
		return fmt.Errorf("%s: %w", c.Settings, err)
	}
	for k, v := range ls.Values {
		if os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
	if c.Key == "" && c.AgentKey == "" {
		c.Key = ls.Values["DevhostFunctionKey"]
	}
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
