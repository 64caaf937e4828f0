package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/c66bot/c66bot/bot"
	"github.com/c66bot/c66bot/policy"
	"github.com/c66bot/c66bot/storage"
)

// setting is one row of DESIGN.md's settings table: an environment variable
// and the flag that overrides it.
type setting struct {
	env, flag, def, usage string
	secret                bool
}

var settings = []setting{
	{env: "SLACK_APP_TOKEN", flag: "slack-app-token", usage: "app-level token xapp-… (connections:write) for Socket Mode (required)", secret: true},
	{env: "SLACK_BOT_TOKEN", flag: "slack-bot-token", usage: "bot token xoxb-… for the Web API (required)", secret: true},
	{env: "SLACK_API_URL", flag: "slack-api-url", def: "https://slack.com/api/", usage: "Slack Web API base"},
	{env: "CLOUD66_CLIENT_ID", flag: "cloud66-client-id", usage: "Cloud 66 OAuth application id (required)"},
	{env: "CLOUD66_CLIENT_SECRET", flag: "cloud66-client-secret", usage: "Cloud 66 OAuth application secret (required)", secret: true},
	{env: "CLOUD66_URL", flag: "cloud66-url", def: "https://app.cloud66.com", usage: "Cloud 66 base URL (OAuth at /oauth/…, API at /api/3)"},
	{env: "CLOUD66_SCOPES", flag: "cloud66-scopes", def: "public redeploy", usage: "Cloud 66 scopes to ask for, space separated"},
	{env: "C66BOT_PUBLIC_URL", flag: "public-url", usage: "base URL people's browsers reach; callback is <it>/oauth/callback (unset: out-of-band login)"},
	{env: "SLACK_CLIENT_ID", flag: "slack-client-id", usage: "the Slack app's Client ID (Basic Information → App Credentials), for Sign in with Slack (required with C66BOT_PUBLIC_URL)"},
	{env: "SLACK_CLIENT_SECRET", flag: "slack-client-secret", usage: "the Slack app's Client Secret, for Sign in with Slack (required with C66BOT_PUBLIC_URL)", secret: true},
	{env: "C66BOT_LISTEN", flag: "listen", def: ":8080", usage: "HTTP listen address (OAuth callback, /healthz, /readyz)"},
	{env: "C66BOT_DB", flag: "db", def: "c66bot.db", usage: "bbolt database file"},
	{env: "C66BOT_SECRET_KEY", flag: "secret-key", usage: "base64 of 32 bytes sealing tokens at rest; several comma separated for rotation, the first seals (unset: generated into <db>.key)", secret: true},
	{env: "C66BOT_COMMAND", flag: "command", def: "/c66", usage: "the slash command"},
	{env: "C66BOT_POLICY", flag: "policy", usage: "policy file (who may deploy what, from where)"},
	{env: "C66BOT_LOG_LEVEL", flag: "log-level", def: "info", usage: "debug, info, warn or error"},
	{env: "C66BOT_LOG_FORMAT", flag: "log-format", def: "json", usage: "json or text"},
}

// values holds resolved settings by environment name.
type values map[string]string

// parseSettings resolves every setting: a flag wins over the environment,
// which wins over the default.
func parseSettings(name string, args []string, getenv func(string) string, stderr io.Writer) (values, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	flags := map[string]*string{}
	for _, s := range settings {
		flags[s.env] = fs.String(s.flag, "", s.usage+" ["+s.env+"]")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	v := values{}
	for _, s := range settings {
		switch {
		case set[s.flag]:
			v[s.env] = *flags[s.env]
		case getenv(s.env) != "":
			v[s.env] = getenv(s.env)
		default:
			v[s.env] = s.def
		}
	}
	return v, nil
}

// botConfig turns settings into bot.Config, loading or creating the sealing
// key. generatedKey reports a key file it had to create.
func botConfig(v values, logger *slog.Logger, version string) (cfg bot.Config, generatedKey string, err error) {
	for _, req := range []string{"SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "CLOUD66_CLIENT_ID", "CLOUD66_CLIENT_SECRET"} {
		if v[req] == "" {
			return cfg, "", fmt.Errorf("missing required setting %s (or --%s)", req, flagFor(req))
		}
	}
	cfg = bot.Config{
		SlackAppToken:       v["SLACK_APP_TOKEN"],
		SlackBotToken:       v["SLACK_BOT_TOKEN"],
		SlackAPIURL:         v["SLACK_API_URL"],
		Cloud66URL:          v["CLOUD66_URL"],
		Cloud66ClientID:     v["CLOUD66_CLIENT_ID"],
		Cloud66ClientSecret: v["CLOUD66_CLIENT_SECRET"],
		Cloud66Scopes:       strings.Fields(v["CLOUD66_SCOPES"]),
		PublicURL:           v["C66BOT_PUBLIC_URL"],
		SlackClientID:       v["SLACK_CLIENT_ID"],
		SlackClientSecret:   v["SLACK_CLIENT_SECRET"],
		Listen:              v["C66BOT_LISTEN"],
		DBPath:              v["C66BOT_DB"],
		Command:             v["C66BOT_COMMAND"],
		Logger:              logger,
		Version:             version,
	}
	if !strings.HasPrefix(cfg.Command, "/") {
		return cfg, "", errors.New("C66BOT_COMMAND must start with /")
	}
	if spec := v["C66BOT_SECRET_KEY"]; spec != "" {
		keys, err := storage.ParseKeys(spec)
		if err != nil {
			return cfg, "", fmt.Errorf("C66BOT_SECRET_KEY: %w", err)
		}
		cfg.SecretKeys = keys
	} else {
		path := cfg.DBPath + ".key"
		key, created, err := storage.LoadOrCreateKeyFile(path)
		if err != nil {
			return cfg, "", fmt.Errorf("C66BOT_SECRET_KEY is unset and the key file failed: %w", err)
		}
		cfg.SecretKeys = [][]byte{key}
		if created {
			generatedKey = path
		}
	}
	if path := v["C66BOT_POLICY"]; path != "" {
		pol, err := policy.Load(path)
		if err != nil {
			// policy errors read "<file>:<line>: <problem>" already.
			return cfg, "", fmt.Errorf("C66BOT_POLICY: %w", err)
		}
		cfg.Policy = pol
	}
	if err := cfg.Validate(); err != nil {
		return cfg, "", err
	}
	return cfg, generatedKey, nil
}

func flagFor(env string) string {
	for _, s := range settings {
		if s.env == env {
			return s.flag
		}
	}
	return ""
}

// newLogger builds the structured logger from C66BOT_LOG_LEVEL/FORMAT.
func newLogger(v values, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(v["C66BOT_LOG_LEVEL"])); err != nil {
		return nil, fmt.Errorf("C66BOT_LOG_LEVEL must be debug, info, warn or error")
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(v["C66BOT_LOG_FORMAT"]) {
	case "json", "":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("C66BOT_LOG_FORMAT must be json or text")
}
