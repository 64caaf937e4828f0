// Package slackapp is c66bot's Slack app: the manifest a workspace creates
// the app from, and the bot scopes the code relies on. A test keeps the two
// in step, so the manifest never asks for more than the code uses, nor less.
package slackapp

import (
	_ "embed"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

//go:embed manifest.yaml
var manifestYAML string

// DefaultCommand is the slash command in the manifest as shipped.
const DefaultCommand = "/c66"

// validCommand is Slack's rule: a slash, then up to 31 lowercase letters,
// digits, dashes or underscores.
var validCommand = regexp.MustCompile(`^/[a-z0-9_-]{1,31}$`)

// Manifest returns the app manifest (YAML) with command as the slash command.
func Manifest(command string) (string, error) {
	if !validCommand.MatchString(command) {
		return "", fmt.Errorf("the slash command %q must be / followed by up to 31 lowercase letters, digits, - or _", command)
	}
	return strings.Replace(manifestYAML, "command: "+DefaultCommand+"\n", "command: "+command+"\n", 1), nil
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
	"users.info":            "users:read",
	"usergroups.users.list": "usergroups:read",
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
