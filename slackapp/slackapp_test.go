package slackapp

import (
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

type manifestDoc struct {
	Features struct {
		SlashCommands []struct {
			Command      string `yaml:"command"`
			UsageHint    string `yaml:"usage_hint"`
			Description  string `yaml:"description"`
			ShouldEscape bool   `yaml:"should_escape"`
			URL          string `yaml:"url"`
		} `yaml:"slash_commands"`
		Shortcuts []struct {
			Name        string `yaml:"name"`
			Type        string `yaml:"type"`
			CallbackID  string `yaml:"callback_id"`
			Description string `yaml:"description"`
		} `yaml:"shortcuts"`
		BotUser struct {
			DisplayName string `yaml:"display_name"`
		} `yaml:"bot_user"`
		AppHome struct {
			HomeTabEnabled     bool `yaml:"home_tab_enabled"`
			MessagesTabEnabled bool `yaml:"messages_tab_enabled"`
		} `yaml:"app_home"`
	} `yaml:"features"`
	OAuthConfig struct {
		RedirectURLs []string `yaml:"redirect_urls"`
		Scopes       struct {
			Bot  []string `yaml:"bot"`
			User []string `yaml:"user"`
		} `yaml:"scopes"`
	} `yaml:"oauth_config"`
	Settings struct {
		SocketModeEnabled  bool `yaml:"socket_mode_enabled"`
		EventSubscriptions struct {
			RequestURL string   `yaml:"request_url"`
			BotEvents  []string `yaml:"bot_events"`
		} `yaml:"event_subscriptions"`
		Interactivity struct {
			IsEnabled  bool   `yaml:"is_enabled"`
			RequestURL string `yaml:"request_url"`
		} `yaml:"interactivity"`
	} `yaml:"settings"`
}

func parse(t *testing.T, s string) manifestDoc {
	t.Helper()
	var m manifestDoc
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("manifest is not YAML: %v", err)
	}
	return m
}

func TestManifestMatchesTheCode(t *testing.T) {
	t.Parallel()
	m := parse(t, manifestYAML)
	if !m.Settings.SocketModeEnabled || !m.Settings.Interactivity.IsEnabled || m.Settings.Interactivity.RequestURL != "" {
		t.Error("the manifest must turn on Socket Mode and interactivity, with no request URL")
	}
	if len(m.Features.SlashCommands) != 1 {
		t.Fatalf("%d slash commands, want 1", len(m.Features.SlashCommands))
	}
	c := m.Features.SlashCommands[0]
	if c.Command != DefaultCommand || c.UsageHint == "" || c.Description == "" || c.URL != "" {
		t.Errorf("slash command = %+v", c)
	}
	got := slices.Clone(m.OAuthConfig.Scopes.Bot)
	slices.Sort(got)
	if !slices.Equal(got, BotScopes()) {
		t.Errorf("manifest bot scopes %v, the code uses %v", got, BotScopes())
	}
	if !slices.Equal(m.OAuthConfig.Scopes.User, UserScopes()) {
		t.Errorf("user scopes %v, want %v: Sign in with Slack's openid and nothing that acts as the person", m.OAuthConfig.Scopes.User, UserScopes())
	}
	if len(m.OAuthConfig.RedirectURLs) != 1 || !strings.HasSuffix(m.OAuthConfig.RedirectURLs[0], SignInCallbackPath) {
		t.Errorf("redirect_urls %v, want the Sign in with Slack callback", m.OAuthConfig.RedirectURLs)
	}
	for method := range userScopeOf {
		if _, ok := ScopeFor(method); ok {
			t.Errorf("%s is listed as a bot token method and a Sign in with Slack one", method)
		}
	}
}

// The deploy form's global shortcut: the callback id the bot answers, over
// Socket Mode's interactivity (no request URL).
func TestManifestHasTheDeployShortcut(t *testing.T) {
	t.Parallel()
	m := parse(t, manifestYAML)
	if len(m.Features.Shortcuts) != 1 {
		t.Fatalf("%d shortcuts, want the deploy form's", len(m.Features.Shortcuts))
	}
	sc := m.Features.Shortcuts[0]
	if sc.CallbackID != DeployShortcut || sc.Type != "global" || sc.Name != "Deploy with c66bot" || sc.Description == "" || len(sc.Description) > 80 {
		t.Errorf("shortcut = %+v", sc)
	}
	for _, method := range []string{"views.open", "views.update"} {
		if scope, ok := ScopeFor(method); !ok || scope != "" {
			t.Errorf("%s: scope %q, listed %v; a modal needs no scope", method, scope, ok)
		}
	}
}

func TestManifestForPublicURL(t *testing.T) {
	t.Parallel()
	out, err := ManifestFor("/c66", "https://bot.example.org/")
	if err != nil {
		t.Fatal(err)
	}
	if got := parse(t, out).OAuthConfig.RedirectURLs; !slices.Equal(got, []string{"https://bot.example.org/oauth/slack/callback"}) {
		t.Errorf("redirect_urls = %v", got)
	}
	for _, bad := range []string{"bot.example.org", "ftp://x", "https://x/\n  evil: 1"} {
		if _, err := ManifestFor("/c66", bad); err == nil {
			t.Errorf("ManifestFor accepted the public URL %q", bad)
		}
	}
}

func TestManifestCommand(t *testing.T) {
	t.Parallel()
	out, err := Manifest("/deploybot")
	if err != nil {
		t.Fatal(err)
	}
	if m := parse(t, out); m.Features.SlashCommands[0].Command != "/deploybot" {
		t.Errorf("command = %q", m.Features.SlashCommands[0].Command)
	}
	for _, bad := range []string{"c66", "/C66", "/has space", "/" + strings.Repeat("a", 32), ""} {
		if _, err := Manifest(bad); err == nil {
			t.Errorf("Manifest(%q) accepted", bad)
		}
	}
}

func TestManifestHasTheAppHome(t *testing.T) {
	t.Parallel()
	m := parse(t, manifestYAML)
	if !m.Features.AppHome.HomeTabEnabled || !m.Features.AppHome.MessagesTabEnabled {
		t.Errorf("app_home = %+v, want the Home tab and the Messages tab on", m.Features.AppHome)
	}
	ev := m.Settings.EventSubscriptions
	if !slices.Equal(ev.BotEvents, []string{"app_home_opened"}) || ev.RequestURL != "" {
		t.Errorf("event_subscriptions = %+v, want app_home_opened over Socket Mode (no request URL)", ev)
	}
}
