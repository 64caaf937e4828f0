package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/commands"
)

// errResponseURLRefused: the response_url is not on a host we trust. A
// response_url is a bearer capability supplied in a payload, so we only
// post to Slack's own hooks host, or to the Slack API host we were
// configured with (a proxy or a test Slack), never anywhere else.
var errResponseURLRefused = errors.New("response_url host not allowed")

type replier struct {
	client  *http.Client
	apiHost string
	apiTLS  bool
}

func newReplier(client *http.Client, slackAPIURL string) *replier {
	r := &replier{client: client}
	if u, err := url.Parse(slackAPIURL); err == nil {
		r.apiHost = strings.ToLower(u.Host)
		r.apiTLS = u.Scheme == "https"
	}
	return r
}

// allowed reports whether raw is a response_url we may post to.
func (r *replier) allowed(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Host == "" {
		return false
	}
	host := strings.ToLower(u.Host)
	if u.Scheme == "https" && host == "hooks.slack.com" {
		return true
	}
	if host == r.apiHost && host != "" {
		return u.Scheme == "https" || (u.Scheme == "http" && !r.apiTLS)
	}
	return false
}

// post sends reply to a response_url. Errors never include the URL: it is a
// credential for that conversation.
func (r *replier) post(ctx context.Context, responseURL string, reply commands.Reply, replaceOriginal bool) error {
	if !r.allowed(responseURL) {
		return errResponseURLRefused
	}
	msg := &slack.WebhookMessage{
		Text:            reply.Text,
		ResponseType:    slack.ResponseTypeEphemeral,
		ReplaceOriginal: replaceOriginal,
	}
	if reply.InChannel {
		msg.ResponseType = slack.ResponseTypeInChannel
	}
	if len(reply.Blocks) > 0 {
		msg.Blocks = &slack.Blocks{BlockSet: reply.Blocks}
	}
	if err := slack.PostWebhookCustomHTTPContext(ctx, responseURL, r.client, msg); err != nil {
		return fmt.Errorf("post to response_url: %s", redactURLError(err))
	}
	return nil
}

// redactURLError drops a URL that net/http puts into its errors.
func redactURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + " response_url: " + ue.Err.Error()
	}
	return err.Error()
}
