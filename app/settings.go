package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"unicode"

	"github.com/c66bot/c66bot/slackapp"
	"github.com/c66bot/c66bot/storage"
)

// Settings are DESIGN.md's settings table, as the operator gave them (flag,
// environment, NAME_FILE or default): strings, checked by Problems and read
// by New. Tests, the sandbox and the bench fill one in directly.
type Settings struct {
	SlackAppToken       string
	SlackBotToken       string
	SlackAPIURL         string
	Cloud66ClientID     string
	Cloud66ClientSecret string
	Cloud66URL          string
	// Cloud66Scopes is space separated, as in CLOUD66_SCOPES.
	Cloud66Scopes     string
	PublicURL         string
	SlackClientID     string
	SlackClientSecret string
	Listen            string
	DB                string
	// DatabaseURL is C66BOT_DATABASE_URL: PostgreSQL instead of the bbolt
	// file; every serve on the same URL is a replica.
	DatabaseURL string
	// Replica names this process among the replicas (leases, metrics,
	// logs); empty means the host name.
	Replica string
	// SecretKey is C66BOT_SECRET_KEY: base64 keys, comma separated.
	SecretKey string
	Command   string
	Policy    string
	LogLevel  string
	LogFormat string
}

// Setting is one row of the settings table: an environment variable, the
// flag that overrides it, its default and what it is for.
type Setting struct {
	Env, Flag, Default, Usage string
	// Secret settings may come from a file named by Env+"_FILE", are never
	// logged, and are masked where settings are shown.
	Secret bool
	// Help says where a required setting's value comes from.
	Help  string
	field func(*Settings) *string
}

// Table returns the settings table in the order `c66bot serve -h` lists it.
func Table() []Setting {
	return []Setting{
		{Env: "SLACK_APP_TOKEN", Flag: "slack-app-token", Secret: true, field: func(s *Settings) *string { return &s.SlackAppToken },
			Usage: "app-level token xapp-… (connections:write) for Socket Mode (required)",
			Help:  "the app-level token (xapp-…): Slack app → Basic Information → App-Level Tokens, scope connections:write"},
		{Env: "SLACK_BOT_TOKEN", Flag: "slack-bot-token", Secret: true, field: func(s *Settings) *string { return &s.SlackBotToken },
			Usage: "bot token xoxb-… for the Web API (required)",
			Help:  "the Bot User OAuth Token (xoxb-…): Slack app → Install App"},
		{Env: "SLACK_API_URL", Flag: "slack-api-url", Default: "https://slack.com/api/", field: func(s *Settings) *string { return &s.SlackAPIURL },
			Usage: "Slack Web API base"},
		{Env: "CLOUD66_CLIENT_ID", Flag: "cloud66-client-id", field: func(s *Settings) *string { return &s.Cloud66ClientID },
			Usage: "Cloud 66 OAuth application id (required)",
			Help:  "the client id of your Cloud 66 OAuth application (Account → Apps → Developers)"},
		{Env: "CLOUD66_CLIENT_SECRET", Flag: "cloud66-client-secret", Secret: true, field: func(s *Settings) *string { return &s.Cloud66ClientSecret },
			Usage: "Cloud 66 OAuth application secret (required)",
			Help:  "the secret of your Cloud 66 OAuth application (Account → Apps → Developers)"},
		{Env: "CLOUD66_URL", Flag: "cloud66-url", Default: "https://app.cloud66.com", field: func(s *Settings) *string { return &s.Cloud66URL },
			Usage: "Cloud 66 base URL (OAuth at /oauth/…, API at /api/3)"},
		{Env: "CLOUD66_SCOPES", Flag: "cloud66-scopes", Default: "public redeploy", field: func(s *Settings) *string { return &s.Cloud66Scopes },
			Usage: "Cloud 66 scopes to ask for, space (or comma) separated"},
		{Env: "C66BOT_PUBLIC_URL", Flag: "public-url", field: func(s *Settings) *string { return &s.PublicURL },
			Usage: "base URL people's browsers reach; callback is <it>/oauth/callback (unset: out-of-band login)"},
		{Env: "SLACK_CLIENT_ID", Flag: "slack-client-id", field: func(s *Settings) *string { return &s.SlackClientID },
			Usage: "the Slack app's Client ID (Basic Information → App Credentials), for Sign in with Slack (required with C66BOT_PUBLIC_URL)",
			Help:  "the Slack app's Client ID: Slack app → Basic Information → App Credentials"},
		{Env: "SLACK_CLIENT_SECRET", Flag: "slack-client-secret", Secret: true, field: func(s *Settings) *string { return &s.SlackClientSecret },
			Usage: "the Slack app's Client Secret, for Sign in with Slack (required with C66BOT_PUBLIC_URL)",
			Help:  "the Slack app's Client Secret: Slack app → Basic Information → App Credentials"},
		{Env: "C66BOT_LISTEN", Flag: "listen", Default: ":8080", field: func(s *Settings) *string { return &s.Listen },
			Usage: "HTTP listen address (OAuth callback, /healthz, /readyz)"},
		{Env: "C66BOT_DB", Flag: "db", Default: "c66bot.db", field: func(s *Settings) *string { return &s.DB },
			Usage: "bbolt database file"},
		{Env: "C66BOT_DATABASE_URL", Flag: "database-url", Secret: true, field: func(s *Settings) *string { return &s.DatabaseURL },
			Usage: "postgres://… : use PostgreSQL instead of the bbolt file; every serve on the same URL is a replica (needs C66BOT_SECRET_KEY)",
			Help:  "the PostgreSQL URL, postgres://user:password@host:5432/database"},
		{Env: "C66BOT_REPLICA", Flag: "replica", field: func(s *Settings) *string { return &s.Replica },
			Usage: "this replica's name in leases, metrics and logs (unset with C66BOT_DATABASE_URL: the host name)"},
		{Env: "C66BOT_SECRET_KEY", Flag: "secret-key", Secret: true, field: func(s *Settings) *string { return &s.SecretKey },
			Usage: "base64 of 32 bytes sealing tokens at rest (" + storage.MakeKeyCommand + "); several comma separated for rotation, the first seals (unset: generated into <db>.key)",
			Help:  "base64 of 32 random bytes (" + storage.MakeKeyCommand + "), the same on every replica"},
		{Env: "C66BOT_COMMAND", Flag: "command", Default: slackapp.DefaultCommand, field: func(s *Settings) *string { return &s.Command },
			Usage: "the slash command"},
		{Env: "C66BOT_POLICY", Flag: "policy", field: func(s *Settings) *string { return &s.Policy },
			Usage: "policy file (who may deploy what, from where)"},
		{Env: "C66BOT_LOG_LEVEL", Flag: "log-level", Default: "info", field: func(s *Settings) *string { return &s.LogLevel },
			Usage: "debug, info, warn or error"},
		{Env: "C66BOT_LOG_FORMAT", Flag: "log-format", Default: "json", field: func(s *Settings) *string { return &s.LogFormat },
			Usage: "json or text"},
	}
}

// row finds env's row of the table.
func row(env string) (Setting, bool) {
	i := slices.IndexFunc(Table(), func(st Setting) bool { return st.Env == env })
	if i < 0 {
		return Setting{}, false
	}
	return Table()[i], true
}

// Get returns the setting named by its environment variable ("" for a name
// that is not in the table).
func (s Settings) Get(env string) string {
	if st, ok := row(env); ok {
		return *st.field(&s)
	}
	return ""
}

// Set sets the setting named by its environment variable; it reports
// whether the name is in the table.
func (s *Settings) Set(env, value string) bool {
	st, ok := row(env)
	if ok {
		*st.field(s) = value
	}
	return ok
}

// FlagFor is the flag of the setting env.
func FlagFor(env string) string {
	st, _ := row(env)
	return st.Flag
}

// HelpFor says where the value of the required setting env comes from.
func HelpFor(env string) string {
	st, _ := row(env)
	return st.Help
}

// DefaultSettings are the table's defaults, what a missing setting means.
func DefaultSettings() Settings {
	var s Settings
	for _, st := range Table() {
		*st.field(&s) = st.Default
	}
	return s
}

// withDefaults fills in the default of every empty setting that has one.
func (s Settings) withDefaults() Settings {
	for _, st := range Table() {
		if f := st.field(&s); *f == "" {
			*f = st.Default
		}
	}
	return s
}

// maxSecretFile bounds how much of a *_FILE secret file is read: a secret
// is one line, so a larger file is a mistake (the wrong path).
const maxSecretFile = 64 << 10

// ParseSettings resolves every setting for the subcommand name: a flag wins
// over the environment, which wins over the default. A secret setting may
// instead come from a file named by NAME_FILE (a Docker or Kubernetes
// secret, a systemd credential), so it need not sit in the environment or,
// worse, on the command line, where every local user sees it in ps; the
// file's trailing newline is dropped, and NAME and NAME_FILE both set is an
// error. extra, when set, adds the subcommand's own flags.
func ParseSettings(name string, args []string, getenv func(string) string, stderr io.Writer, extra func(*flag.FlagSet)) (Settings, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if extra != nil {
		extra(fs)
	}
	table := Table()
	flags := map[string]*string{}
	for _, st := range table {
		where := " [" + st.Env + "]"
		if st.Secret {
			where = " [" + st.Env + ", or " + st.Env + "_FILE naming a file that holds it; a flag shows in ps]"
		}
		flags[st.Env] = fs.String(st.Flag, "", st.Usage+where)
	}
	if err := fs.Parse(args); err != nil {
		return Settings{}, err
	}
	if fs.NArg() > 0 {
		return Settings{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var s Settings
	for _, st := range table {
		file := ""
		if st.Secret {
			file = getenv(st.Env + "_FILE")
		}
		v := st.field(&s)
		switch {
		case set[st.Flag]:
			*v = *flags[st.Env]
		case file != "" && getenv(st.Env) != "":
			return Settings{}, fmt.Errorf("both %s and %s_FILE are set; set only one of them", st.Env, st.Env)
		case file != "":
			secret, err := readSecretFile(st.Env+"_FILE", file)
			if err != nil {
				return Settings{}, err
			}
			*v = secret
		case getenv(st.Env) != "":
			*v = getenv(st.Env)
		default:
			*v = st.Default
		}
	}
	return s, nil
}

// readSecretFile reads the secret in the file that variable names. Its
// errors name the variable and the file, never the content.
func readSecretFile(variable, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s: cannot read %s: %w", variable, path, UnwrapPathError(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("%s: cannot read %s: %w", variable, path, UnwrapPathError(err))
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

// UnwrapPathError drops the path an *fs.PathError repeats, for messages
// that name the file already.
func UnwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Required lists the settings that must be set for serve to start; a
// public URL means the redirect login, whose Sign in with Slack step needs
// the app's own OAuth credentials.
func (s Settings) Required() []string {
	req := []string{"SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "CLOUD66_CLIENT_ID", "CLOUD66_CLIENT_SECRET"}
	if s.PublicURL != "" {
		req = append(req, "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET")
	}
	if s.DatabaseURL != "" {
		// Replicas share the database but no key file: each must be given
		// the key that seals the tokens.
		req = append(req, "C66BOT_SECRET_KEY")
	}
	return req
}

// Problem is one missing or malformed setting.
type Problem struct {
	Env string
	// Missing: the setting is required and empty.
	Missing bool
	// Detail says what is wrong, after the setting's name ("is not a bot
	// token …"), as doctor prints it; Short says it in serve's one line.
	Detail, Short string
	// Fix says what to do.
	Fix string
}

// Problems lists every missing or malformed setting, in the order of the
// table. It is the one place settings are validated: serve stops on the
// first (or on every missing one at once), doctor prints them all.
func (s Settings) Problems() []Problem {
	s = s.withDefaults()
	var ps []Problem
	missingWhy := map[string]string{
		"SLACK_CLIENT_ID":     ", and C66BOT_PUBLIC_URL is: browsers sign in with Slack before Cloud 66 is asked",
		"SLACK_CLIENT_SECRET": ", and C66BOT_PUBLIC_URL is: browsers sign in with Slack before Cloud 66 is asked",
		"C66BOT_SECRET_KEY":   ", and C66BOT_DATABASE_URL is: replicas share no key file, so each needs the key",
	}
	for _, env := range s.Required() {
		if s.Get(env) == "" {
			ps = append(ps, Problem{Env: env, Missing: true, Detail: "not set" + missingWhy[env], Short: "is not set",
				Fix: fmt.Sprintf("set %s (or --%s) to %s", env, FlagFor(env), HelpFor(env))})
		}
	}
	if t := s.SlackAppToken; t != "" && !strings.HasPrefix(t, "xapp-") {
		ps = append(ps, Problem{Env: "SLACK_APP_TOKEN", Detail: "is not an app-level token (it does not start with xapp-)",
			Short: "must be an app-level token (xapp-…) with connections:write",
			Fix:   "use " + HelpFor("SLACK_APP_TOKEN") + "; a bot token (xoxb-…) goes in SLACK_BOT_TOKEN"})
	}
	if t := s.SlackBotToken; t != "" && !strings.HasPrefix(t, "xoxb-") {
		ps = append(ps, Problem{Env: "SLACK_BOT_TOKEN", Detail: "is not a bot token (it does not start with xoxb-)",
			Short: "must be a bot token (xoxb-…)",
			Fix:   "use " + HelpFor("SLACK_BOT_TOKEN") + "; xoxp- is a user token and xapp- the app-level token, neither works here"})
	}
	for _, env := range []string{"SLACK_API_URL", "CLOUD66_URL", "C66BOT_PUBLIC_URL"} {
		v := s.Get(env)
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			ps = append(ps, Problem{Env: env, Detail: fmt.Sprintf("%q is not an http(s) URL", v), Short: "must be an http(s) URL",
				Fix: "set " + env + " to a URL such as https://example.com, or unset it for the default"})
		}
	}
	if u := s.DatabaseURL; u != "" && !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		ps = append(ps, Problem{Env: "C66BOT_DATABASE_URL", Detail: "is not a postgres:// URL", Short: "must be a postgres:// URL",
			Fix: "set it to " + HelpFor("C66BOT_DATABASE_URL") + ", or unset it to use the bbolt file C66BOT_DB"})
	}
	if !strings.HasPrefix(s.Command, "/") {
		ps = append(ps, Problem{Env: "C66BOT_COMMAND", Detail: fmt.Sprintf("%q does not start with /", s.Command), Short: "must start with /",
			Fix: "set it to the slash command of your Slack app, e.g. /c66"})
	}
	if _, err := parseLevel(s.LogLevel); err != nil {
		ps = append(ps, Problem{Env: "C66BOT_LOG_LEVEL", Detail: err.Error(), Short: "must be debug, info, warn or error",
			Fix: "fix C66BOT_LOG_LEVEL or unset it for the default"})
	}
	if f := strings.ToLower(s.LogFormat); f != "json" && f != "text" {
		ps = append(ps, Problem{Env: "C66BOT_LOG_FORMAT", Detail: "C66BOT_LOG_FORMAT must be json or text", Short: "must be json or text",
			Fix: "fix C66BOT_LOG_FORMAT or unset it for the default"})
	}
	if s.SecretKey != "" {
		if _, err := storage.ParseKeys(s.SecretKey); err != nil {
			ps = append(ps, Problem{Env: "C66BOT_SECRET_KEY", Detail: "C66BOT_SECRET_KEY: " + err.Error(), Short: err.Error(),
				Fix: "give base64 of 32 random bytes per key (" + storage.MakeKeyCommand + "), comma separated, the newest first"})
		}
	}
	order := map[string]int{}
	for i, st := range Table() {
		order[st.Env] = i
	}
	slices.SortStableFunc(ps, func(a, b Problem) int { return order[a.Env] - order[b.Env] })
	return ps
}

// Check is Problems in one line, for serve: every missing setting is named
// at once; otherwise the first malformed one.
func (s Settings) Check() error {
	ps := s.Problems()
	var missing []string
	for _, p := range ps {
		if p.Missing {
			missing = append(missing, p.Env)
		}
	}
	why := ""
	if slices.Contains(missing, "SLACK_CLIENT_ID") || slices.Contains(missing, "SLACK_CLIENT_SECRET") {
		why = " (C66BOT_PUBLIC_URL is set, so Sign in with Slack needs the Slack app's Client ID and Secret: Basic Information → App Credentials)"
	}
	if slices.Contains(missing, "C66BOT_SECRET_KEY") {
		why += " (C66BOT_DATABASE_URL is set: replicas share no key file, so give each the same key, " + storage.MakeKeyCommand + " makes one)"
	}
	switch {
	case len(missing) == 1:
		return fmt.Errorf("missing required setting %s%s (or --%s, or %s_FILE naming a file that holds it); c66bot serve -h lists every setting", missing[0], why, FlagFor(missing[0]), missing[0])
	case len(missing) > 1:
		return fmt.Errorf("missing required settings %s%s; set each in the environment (or as a flag, or in a file named by NAME_FILE); c66bot serve -h lists every setting", strings.Join(missing, ", "), why)
	case len(ps) > 0:
		p := ps[0]
		if p.Env == "C66BOT_SECRET_KEY" {
			return fmt.Errorf("C66BOT_SECRET_KEY: %s", p.Short)
		}
		return fmt.Errorf("%s %s", p.Env, p.Short)
	}
	return nil
}

// scopes are the Cloud 66 scopes asked for. Cloud 66 wants them space
// separated, but some of its pages say comma separated, so both are read.
func (s Settings) scopes() []string {
	return strings.FieldsFunc(s.Cloud66Scopes, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

func parseLevel(v string) (slog.Level, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(v)); err != nil {
		return 0, errors.New("C66BOT_LOG_LEVEL must be debug, info, warn or error")
	}
	return level, nil
}

// NewLogger builds the structured logger C66BOT_LOG_LEVEL and
// C66BOT_LOG_FORMAT ask for, writing to w.
func (s Settings) NewLogger(w io.Writer) (*slog.Logger, error) {
	s = s.withDefaults()
	level, err := parseLevel(s.LogLevel)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(s.LogFormat) {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, errors.New("C66BOT_LOG_FORMAT must be json or text")
}

// LogValue shows the resolved settings for the start-up log line: secrets
// masked (set or not, never their value), URLs without credentials or
// query.
func (s Settings) LogValue() slog.Value {
	var attrs []slog.Attr
	for _, st := range Table() {
		v := *st.field(&s)
		switch {
		case st.Secret && v != "":
			v = "(set)"
		case st.Secret:
			v = "(unset)"
		case strings.HasSuffix(st.Env, "_URL") && v != "":
			v = RedactURL(v)
		}
		attrs = append(attrs, slog.String(strings.ToLower(st.Env), v))
	}
	return slog.GroupValue(attrs...)
}

// RedactURL drops credentials, query and fragment from a configured URL
// before it is logged: a URL pasted into the settings may carry a secret.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}
