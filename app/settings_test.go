package app

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testKey is base64 of 32 bytes.
const testKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

func validSettings() Settings {
	s := DefaultSettings()
	s.SlackAppToken, s.SlackBotToken = "xapp-1", "xoxb-1"
	s.Cloud66ClientID, s.Cloud66ClientSecret = "id", "secret"
	return s
}

// Every row reaches its own field: a copied accessor would make two
// settings share one field.
func TestTableRowsReachTheirOwnField(t *testing.T) {
	t.Parallel()
	var s Settings
	seen := map[string]bool{}
	for _, st := range Table() {
		if seen[st.Env] || seen["flag "+st.Flag] {
			t.Errorf("%s or --%s appears twice", st.Env, st.Flag)
		}
		seen[st.Env], seen["flag "+st.Flag] = true, true
		if !s.Set(st.Env, "v-"+st.Env) {
			t.Fatalf("Set(%s) refused a name of the table", st.Env)
		}
	}
	for _, st := range Table() {
		if got := s.Get(st.Env); got != "v-"+st.Env {
			t.Errorf("Get(%s) = %q", st.Env, got)
		}
	}
	if s.Set("NO_SUCH_SETTING", "x") || s.Get("NO_SUCH_SETTING") != "" {
		t.Error("a name outside the table was accepted")
	}
	for _, env := range validSettings().Required() {
		if HelpFor(env) == "" {
			t.Errorf("required setting %s has no help", env)
		}
	}
}

func TestParseSettingsPrecedence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"SLACK_BOT_TOKEN":            "xoxb-env",
		"C66BOT_COMMAND":             "/env",
		"CLOUD66_CLIENT_SECRET_FILE": secretFile,
	}
	s, err := ParseSettings("serve", []string{"--command", "/flag"}, func(k string) string { return env[k] }, &bytes.Buffer{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ env, want string }{
		{"C66BOT_COMMAND", "/flag"},            // a flag wins over the environment
		{"SLACK_BOT_TOKEN", "xoxb-env"},        // the environment over the default
		{"CLOUD66_CLIENT_SECRET", "from-file"}, // NAME_FILE, newline dropped
		{"C66BOT_LISTEN", ":8080"},             // the default
		{"SLACK_API_URL", "https://slack.com/api/"},
	} {
		if got := s.Get(tt.env); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.env, got, tt.want)
		}
	}
	env["CLOUD66_CLIENT_SECRET"] = "both"
	if _, err := ParseSettings("serve", nil, func(k string) string { return env[k] }, &bytes.Buffer{}, nil); err == nil ||
		!strings.Contains(err.Error(), "both CLOUD66_CLIENT_SECRET and CLOUD66_CLIENT_SECRET_FILE") {
		t.Errorf("NAME and NAME_FILE both set: %v", err)
	}
}

func TestProblemsAndCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*Settings)
		envs   []string // the settings Problems names, in order
		check  string   // what Check's line contains; "" = no error
	}{
		{"valid", func(*Settings) {}, nil, ""},
		{"every missing one at once", func(s *Settings) { s.SlackAppToken, s.Cloud66ClientSecret = "", "" },
			[]string{"SLACK_APP_TOKEN", "CLOUD66_CLIENT_SECRET"}, "missing required settings SLACK_APP_TOKEN, CLOUD66_CLIENT_SECRET"},
		{"one missing", func(s *Settings) { s.SlackBotToken = "" },
			[]string{"SLACK_BOT_TOKEN"}, "missing required setting SLACK_BOT_TOKEN (or --slack-bot-token"},
		{"a public URL needs Sign in with Slack", func(s *Settings) { s.PublicURL = "https://bot.example.com" },
			[]string{"SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"}, "C66BOT_PUBLIC_URL is set, so Sign in with Slack needs"},
		{"app token of another kind", func(s *Settings) { s.SlackAppToken = "xoxb-2" },
			[]string{"SLACK_APP_TOKEN"}, "SLACK_APP_TOKEN must be an app-level token"},
		{"bot token of another kind", func(s *Settings) { s.SlackBotToken = "xoxp-2" },
			[]string{"SLACK_BOT_TOKEN"}, "SLACK_BOT_TOKEN must be a bot token"},
		{"no URL", func(s *Settings) { s.Cloud66URL = "ftp://x" }, []string{"CLOUD66_URL"}, "CLOUD66_URL must be an http(s) URL"},
		{"command", func(s *Settings) { s.Command = "c66" }, []string{"C66BOT_COMMAND"}, "C66BOT_COMMAND must start with /"},
		{"log level", func(s *Settings) { s.LogLevel = "loud" }, []string{"C66BOT_LOG_LEVEL"}, "C66BOT_LOG_LEVEL must be"},
		{"log format", func(s *Settings) { s.LogFormat = "xml" }, []string{"C66BOT_LOG_FORMAT"}, "C66BOT_LOG_FORMAT must be json or text"},
		{"key", func(s *Settings) { s.SecretKey = "not-base64!" }, []string{"C66BOT_SECRET_KEY"}, "C66BOT_SECRET_KEY: "},
		{"a database URL needs the key", func(s *Settings) { s.DatabaseURL = "postgres://c66bot@db/c66bot" },
			[]string{"C66BOT_SECRET_KEY"}, "missing required setting C66BOT_SECRET_KEY"},
		{"a database URL is postgres://", func(s *Settings) { s.DatabaseURL, s.SecretKey = "mysql://db/x", testKey },
			[]string{"C66BOT_DATABASE_URL"}, "C66BOT_DATABASE_URL must be a postgres:// URL"},
		{"in table order", func(s *Settings) { s.LogFormat, s.SlackAppToken = "xml", "" },
			[]string{"SLACK_APP_TOKEN", "C66BOT_LOG_FORMAT"}, "missing required setting SLACK_APP_TOKEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := validSettings()
			tt.change(&s)
			var envs []string
			for _, p := range s.Problems() {
				envs = append(envs, p.Env)
				if p.Detail == "" || p.Fix == "" || p.Short == "" {
					t.Errorf("incomplete problem %+v", p)
				}
			}
			if strings.Join(envs, " ") != strings.Join(tt.envs, " ") {
				t.Errorf("Problems name %v, want %v", envs, tt.envs)
			}
			err := s.Check()
			switch {
			case tt.check == "" && err != nil:
				t.Errorf("Check: %v", err)
			case tt.check != "" && (err == nil || !strings.Contains(err.Error(), tt.check)):
				t.Errorf("Check: %v, want it to say %q", err, tt.check)
			}
		})
	}
}

// The resolved settings are logged once at start: secrets only as set or
// unset, URLs without what may hide a secret.
func TestSettingsLogValueMasksSecrets(t *testing.T) {
	t.Parallel()
	s := validSettings()
	s.SlackAppToken, s.SlackBotToken, s.SecretKey = "xapp-SECRET-A", "xoxb-SECRET-B", "SECRET-C"
	s.PublicURL = "https://user:SECRET-D@bot.example.com/?token=SECRET-E"
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("c66bot starting", "settings", s)
	out := buf.String()
	if strings.Contains(out, "SECRET") {
		t.Errorf("a secret reached the log line: %s", out)
	}
	for _, want := range []string{`"slack_app_token":"(set)"`, `"slack_client_secret":"(unset)"`, `"c66bot_public_url":"https://bot.example.com/"`, `"c66bot_command":"/c66"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log line lacks %s: %s", want, out)
		}
	}
}

// A safe setup starts without warnings: a loopback or https public URL (or
// none), a database only its owner may read, a key not just made.
func TestNoWarningsForASafeSetup(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "c66bot.db")
	if err := os.WriteFile(db, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, public := range []string{"http://localhost:8080", "http://127.0.0.1:8080", "https://c66bot.example.com", ""} {
		var buf bytes.Buffer
		s := validSettings()
		s.DB, s.PublicURL = db, public
		a := &App{cfg: Config{Settings: s}, log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
		a.warnings()
		if buf.String() != "" {
			t.Errorf("warnings for public URL %q:\n%s", public, buf.String())
		}
	}
}

func TestScopesAcceptCommasAndSpaces(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"public redeploy", "public,redeploy", " public ,  redeploy ", "public\tredeploy,"} {
		s := validSettings()
		s.Cloud66Scopes = in
		if got := strings.Join(s.scopes(), " "); got != "public redeploy" {
			t.Errorf("scopes(%q) = %q", in, got)
		}
	}
}
