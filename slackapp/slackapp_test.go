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
		BotUser struct {
			DisplayName string `yaml:"display_name"`
		} `yaml:"bot_user"`
	} `yaml:"features"`
	OAuthConfig struct {
		Scopes struct {
			Bot  []string `yaml:"bot"`
			User []string `yaml:"user"`
		} `yaml:"scopes"`
	} `yaml:"oauth_config"`
	Settings struct {
		SocketModeEnabled bool `yaml:"socket_mode_enabled"`
		Interactivity     struct {
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
	if len(m.OAuthConfig.Scopes.User) != 0 {
		t.Errorf("user scopes %v: the bot acts with its own token only", m.OAuthConfig.Scopes.User)
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
