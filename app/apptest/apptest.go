// Package apptest points a c66bot at the fake Slack (bot/bottest) and the
// fake Cloud 66 (cloud66/cloud66test): the settings the end-to-end tests,
// the sandbox and the bench share, so none of them writes its own copy.
package apptest

import (
	"github.com/c66bot/c66bot/app"
	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/web"
)

// Settings points a c66bot at slack and c66. A publicURL selects the
// redirect login (start page, Sign in with Slack, Cloud 66's callback) and
// is registered with both fakes as where their redirects may go; "" keeps
// the out-of-band login.
func Settings(slack *bottest.Server, c66 *cloud66test.Server, publicURL string) app.Settings {
	s := app.DefaultSettings()
	s.SlackAppToken, s.SlackBotToken, s.SlackAPIURL = slack.AppToken, slack.BotToken, slack.APIURL()
	s.Cloud66URL, s.Cloud66ClientID, s.Cloud66ClientSecret = c66.URL, c66.ClientID, c66.ClientSecret
	if publicURL != "" {
		s.PublicURL = publicURL
		s.SlackClientID, s.SlackClientSecret = slack.ClientID, slack.ClientSecret
		c66.RegisterRedirectURI(publicURL + web.CallbackPath)
		slack.RegisterRedirectURL(publicURL + web.SlackCallbackPath)
	}
	return s
}
