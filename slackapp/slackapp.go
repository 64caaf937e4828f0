// Package slackapp is c66bot's Slack app: the manifest a workspace creates
// the app from, and the bot scopes the code relies on. A test keeps the two
// in step, so the manifest never asks for more than the code uses, nor less.
package slackapp

import (
	_ "embed"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

//go:embed manifest.yaml
var manifestYAML string

// DefaultCommand is the slash command in the manifest as shipped.
const DefaultCommand = "/c66"

// DeployShortcut is the callback id of the manifest's global shortcut
// "Deploy with c66bot", which opens the deploy form.
const DeployShortcut = "c66_deploy"

// SignInCallbackPath is where Slack sends browsers back after Sign in with
// Slack, under C66BOT_PUBLIC_URL.
const SignInCallbackPath = "/oauth/slack/callback"

// placeholderRedirect is the manifest's redirect URL as shipped.
const placeholderRedirect = "https://c66bot.example.com" + SignInCallbackPath

// validCommand is Slack's rule: a slash, then up to 31 lowercase letters,
// digits, dashes or underscores.
var validCommand = regexp.MustCompile(`^/[a-z0-9_-]{1,31}$`)

// Manifest returns the app manifest (YAML) with command as the slash command.
func Manifest(command string) (string, error) {
	return ManifestFor(command, "")
}

// ManifestFor is Manifest with Sign in with Slack's redirect URL under
// publicURL (C66BOT_PUBLIC_URL); an empty publicURL keeps the placeholder.
func ManifestFor(command, publicURL string) (string, error) {
	if !validCommand.MatchString(command) {
		return "", fmt.Errorf("the slash command %q must be / followed by up to 31 lowercase letters, digits, - or _", command)
	}
	out := strings.Replace(manifestYAML, "command: "+DefaultCommand+"\n", "command: "+command+"\n", 1)
	if publicURL != "" {
		u, err := url.Parse(publicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(publicURL, " \n#\"'") {
			return "", fmt.Errorf("the public URL %q must be an http(s) URL", publicURL)
		}
		out = strings.Replace(out, placeholderRedirect, strings.TrimRight(publicURL, "/")+SignInCallbackPath, 1)
	}
	return out, nil
}

// scopeOf maps each Slack Web API method the bot calls with its bot token
// to the bot scope it needs ("" when none is needed).
var scopeOf = map[string]string{
	"auth.test":             "",
	"chat.postMessage":      "chat:write",
	"chat.update":           "chat:write",
	"chat.postEphemeral":    "chat:write",
	"chat.getPermalink":     "",
	"conversations.open":    "im:write",
	"usergroups.users.list": "usergroups:read",
	"views.publish":         "",
	// The deploy form: a modal needs only the trigger id of an interaction.
	"views.open":   "",
	"views.update": "",
}

// userScopeOf maps each Web API method of Sign in with Slack to the user
// scope it needs: openid.connect.token is called with the app's own client
// id and secret, userInfo with the person's token.
var userScopeOf = map[string]string{
	"openid.connect.token":    "",
	"openid.connect.userInfo": "openid",
}

// UserScopes are the user token scopes the manifest asks for: openid,
// which Sign in with Slack needs to say who a person is.
func UserScopes() []string { return []string{"openid"} }

// UserScopeFor is the user scope a Sign in with Slack method needs; ok is
// false for any other method.
func UserScopeFor(method string) (scope string, ok bool) {
	scope, ok = userScopeOf[method]
	return scope, ok
}

// BotScopes are the bot token scopes c66bot uses: the slash command, the
// scopes of the methods it calls, and chat:write.public so the deployment
// message can go in public channels the bot was never invited to.
func BotScopes() []string {
	scopes := []string{"commands", "chat:write.public"}
	for _, s := range scopeOf {
		if s != "" && !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	slices.Sort(scopes)
	return scopes
}

// ScopeFor is the bot scope a Web API method needs; ok is false for a
// method the bot is not expected to call.
func ScopeFor(method string) (scope string, ok bool) {
	scope, ok = scopeOf[method]
	return scope, ok
}
