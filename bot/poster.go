package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/commands"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/storage"
)

// poster is how package deploy reaches Slack: chat.postMessage, chat.update,
// threads, ephemeral messages, DMs and response_url.
type poster struct {
	api     *slack.Client
	replies *replier
}

// cannotPost are the chat.postMessage errors that mean "not here": the bot
// is not in the channel, can't see it, or it is archived.
var cannotPost = []string{"not_in_channel", "channel_not_found", "is_archived", "restricted_action", "restricted_action_read_only_channel", "restricted_action_thread_only_channel", "ekm_access_denied"}

// maxRateLimitWaits bounds how often one call waits out a 429. A 429 means
// Slack did not take the message, so trying again cannot duplicate it.
const maxRateLimitWaits = 5

func (p *poster) call(ctx context.Context, fn func() error) error {
	for i := 0; ; i++ {
		err := fn()
		var rl *slack.RateLimitedError
		if !errors.As(err, &rl) || i >= maxRateLimitWaits {
			return classify(err)
		}
		wait := rl.RetryAfter
		if wait <= 0 {
			wait = time.Second
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

func classify(err error) error {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && slices.Contains(cannotPost, se.Err) {
		return fmt.Errorf("%w (%s)", deploy.ErrCannotPost, se.Err)
	}
	if err != nil {
		return fmt.Errorf("slack: %w", err)
	}
	return nil
}

func msgOptions(m deploy.Message) []slack.MsgOption {
	opts := []slack.MsgOption{slack.MsgOptionText(m.Text, false)}
	if len(m.Blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(m.Blocks...))
	}
	return opts
}

func (p *poster) Post(ctx context.Context, channel string, m deploy.Message) (string, error) {
	var ts string
	err := p.call(ctx, func() error {
		var err error
		_, ts, err = p.api.PostMessageContext(ctx, channel, msgOptions(m)...)
		return err
	})
	return ts, err
}

func (p *poster) Update(ctx context.Context, channel, ts string, m deploy.Message) error {
	return p.call(ctx, func() error {
		_, _, _, err := p.api.UpdateMessageContext(ctx, channel, ts, msgOptions(m)...)
		return err
	})
}

func (p *poster) Thread(ctx context.Context, channel, threadTS string, m deploy.Message) error {
	return p.call(ctx, func() error {
		_, _, err := p.api.PostMessageContext(ctx, channel, append(msgOptions(m), slack.MsgOptionTS(threadTS))...)
		return err
	})
}

func (p *poster) Ephemeral(ctx context.Context, channel, user string, m deploy.Message) error {
	return p.call(ctx, func() error {
		_, err := p.api.PostEphemeralContext(ctx, channel, user, msgOptions(m)...)
		return err
	})
}

func (p *poster) DM(ctx context.Context, to storage.Identity, m deploy.Message) error {
	var channel string
	err := p.call(ctx, func() error {
		ch, _, _, err := p.api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{to.User}, ReturnIM: true})
		if err == nil {
			channel = ch.ID
		}
		return err
	})
	if err != nil {
		return err
	}
	_, err = p.Post(ctx, channel, m)
	return err
}

func (p *poster) Respond(ctx context.Context, responseURL string, m deploy.Message) error {
	return p.replies.post(ctx, responseURL, commands.Reply{InChannel: m.InChannel, Text: m.Text, Blocks: m.Blocks}, false)
}
