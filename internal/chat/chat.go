// Package chat holds what every part hands to Slack: a Message, and
// ErrCannotPost for a channel the bot may not post in. Package commands
// answers with a Message, deploy posts and edits its cards as Messages,
// notify posts its notices as Messages, and bot sends them; they share the
// type here so that none of them imports another only to borrow it. It is
// a leaf: it imports nothing of the bot's own. The Block Kit helpers that
// build a Message's blocks live in internal/blockkit.
package chat

import (
	"errors"

	"github.com/slack-go/slack"
)

// Message is one Slack message: a command's reply, a deployment card, a
// notice.
type Message struct {
	// Text is the notification fallback (mrkdwn, escaped); always set.
	Text   string
	Blocks []slack.Block
	// InChannel makes a reply through a response_url visible to the whole
	// channel; otherwise only the person who asked sees it.
	InChannel bool
	// Private, on a command's reply, is sent after it through the same
	// response_url to the person who asked only: what they alone may see
	// (a webhook secret) beside a reply announced in the channel.
	Private *Message
}

// ErrCannotPost is what a Slack implementation returns, possibly wrapped
// with Slack's reason ("… (not_in_channel)"), when the bot may not post in
// a channel: it is not in it, the channel is gone or archived. Callers
// then reach the person another way (the response_url, a DM).
var ErrCannotPost = errors.New("chat: the bot cannot post in that channel")
