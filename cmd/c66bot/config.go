package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
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
	{env: "C66BOT_SECRET_KEY", flag: "secret-key", usage: "base64 of 32 bytes sealing tokens at rest (" + storage.MakeKeyCommand + "); several comma separated for rotation, the first seals (unset: generated into <db>.key)", secret: true},
	{env: "C66BOT_COMMAND", flag: "command", def: "/c66", usage: "the slash command"},
	{env: "C66BOT_POLICY", flag: "policy", usage: "policy file (who may deploy what, from where)"},
	{env: "C66BOT_LOG_LEVEL", flag: "log-level", def: "info", usage: "debug, info, warn or error"},
	{env: "C66BOT_LOG_FORMAT", flag: "log-format", def: "json", usage: "json or text"},
}

// values holds resolved settings by environment name.
type values map[string]string

// maxSecretFile bounds how much of a *_FILE secret file is read: a secret
// is one line, so a larger file is a mistake (the wrong path).
const maxSecretFile = 64 << 10

// parseSettings resolves every setting: a flag wins over the environment,
// which wins over the default. A secret setting may instead come from a
// file named by NAME_FILE (a Docker or Kubernetes secret, a systemd
// credential), so it need not sit in the environment or, worse, on the
// command line, where every local user sees it in ps; the file's trailing
// newline is dropped, and NAME and NAME_FILE both set is an error.
func parseSettings(name string, args []string, getenv func(string) string, stderr io.Writer) (values, error) {
	return parseSettingsWith(name, args, getenv, stderr, nil)
}

// parseSettingsWith is parseSettings for a command with flags of its own,
// which extra adds.
func parseSettingsWith(name string, args []string, getenv func(string) string, stderr io.Writer, extra func(*flag.FlagSet)) (values, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if extra != nil {
		extra(fs)
	}
	flags := map[string]*string{}
	for _, s := range settings {
		where := " [" + s.env + "]"
		if s.secret {
			where = " [" + s.env + ", or " + s.env + "_FILE naming a file that holds it; a flag shows in ps]"
		}
		flags[s.env] = fs.String(s.flag, "", s.usage+where)
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
		file := ""
		if s.secret {
			file = getenv(s.env + "_FILE")
		}
		switch {
		case set[s.flag]:
			v[s.env] = *flags[s.env]
		case file != "" && getenv(s.env) != "":
			return nil, fmt.Errorf("both %s and %s_FILE are set; set only one of them", s.env, s.env)
		case file != "":
			secret, err := readSecretFile(s.env+"_FILE", file)
			if err != nil {
				return nil, err
			}
			v[s.env] = secret
		case getenv(s.env) != "":
			v[s.env] = getenv(s.env)
		default:
			v[s.env] = s.def
		}
	}
	return v, nil
}

// readSecretFile reads the secret in the file that variable names. Its
// errors name the variable and the file, never the content.
func readSecretFile(variable, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s: cannot read %s: %w", variable, path, unwrapPathError(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("%s: cannot read %s: %w", variable, path, unwrapPathError(err))
	}
	if len(data) > maxSecretFile {
		return "", fmt.Errorf("%s: %s is larger than %d KiB, too large for a secret; is it the right file?", variable, path, maxSecretFile>>10)
	}
	secret := strings.TrimRight(string(data), "\r\n")
	if secret == "" {
		return "", fmt.Errorf("%s: %s is empty; put the secret in it, or unset %s", variable, path, variable)
	}
	return secret, nil
}

// unwrapPathError drops the path an *fs.PathError repeats, for messages
// that name the file already.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// requiredSettings must be set for serve to start; a public URL means the
// redirect login, whose Sign in with Slack step needs the app's own OAuth
// credentials.
func requiredSettings(v values) []string {
	req := []string{"SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "CLOUD66_CLIENT_ID", "CLOUD66_CLIENT_SECRET"}
	if v["C66BOT_PUBLIC_URL"] != "" {
		req = append(req, "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET")
	}
	return req
}

// keySource says where serve's sealing keys came from, for messages about
// them.
type keySource struct {
	// fromEnv: C66BOT_SECRET_KEY; otherwise the key file at file.
	fromEnv bool
	file    string
	// generated: the key file was created just now.
	generated bool
}

// name is how messages name the key.
func (k keySource) name() string {
	if k.fromEnv {
		return "C66BOT_SECRET_KEY"
	}
	return "the key file " + k.file
}

// botConfig turns settings into bot.Config, loading or creating the sealing
// key. Every missing required setting is named at once, and the database
// path is checked before any key file is made for it.
func botConfig(v values, logger *slog.Logger, version string) (cfg bot.Config, keys keySource, err error) {
	var missing []string
	for _, req := range requiredSettings(v) {
		if v[req] == "" {
			missing = append(missing, req)
		}
	}
	why := ""
	if slices.Contains(missing, "SLACK_CLIENT_ID") || slices.Contains(missing, "SLACK_CLIENT_SECRET") {
		why = " (C66BOT_PUBLIC_URL is set, so Sign in with Slack needs the Slack app's Client ID and Secret: Basic Information → App Credentials)"
	}
	switch len(missing) {
	case 0:
	case 1:
		return cfg, keys, fmt.Errorf("missing required setting %s%s (or --%s, or %s_FILE naming a file that holds it); c66bot serve -h lists every setting", missing[0], why, flagFor(missing[0]), missing[0])
	default:
		return cfg, keys, fmt.Errorf("missing required settings %s%s; set each in the environment (or as a flag, or in a file named by NAME_FILE); c66bot serve -h lists every setting", strings.Join(missing, ", "), why)
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
		return cfg, keys, errors.New("C66BOT_COMMAND must start with /")
	}
	// Checked before the key, so that a bad C66BOT_DB gets its own clear
	// message and leaves no key file behind.
	if err := checkDatabasePath(cfg.DBPath); err != nil {
		return cfg, keys, err
	}
	if spec := v["C66BOT_SECRET_KEY"]; spec != "" {
		parsed, err := storage.ParseKeys(spec)
		if err != nil {
			return cfg, keys, fmt.Errorf("C66BOT_SECRET_KEY: %w", err)
		}
		cfg.SecretKeys, keys.fromEnv = parsed, true
	} else {
		key, path, created, err := storage.DatabaseKey(cfg.DBPath)
		keys.file = path
		if err != nil {
			return cfg, keys, explainStartError(err, cfg.DBPath, keys)
		}
		cfg.SecretKeys, keys.generated = [][]byte{key}, created
	}
	if path := v["C66BOT_POLICY"]; path != "" {
		pol, err := policy.Load(path)
		if err != nil {
			// policy errors read "<file>:<line>: <problem>" already.
			return cfg, keys, fmt.Errorf("C66BOT_POLICY: %w", err)
		}
		cfg.Policy = pol
	}
	if err := cfg.Validate(); err != nil {
		return cfg, keys, err
	}
	return cfg, keys, nil
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
