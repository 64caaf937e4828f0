package bot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/metrics"
	"github.com/c66bot/c66bot/storage"
)

// Poster is how deploy and notify reach Slack: chat.postMessage,
// chat.update, threads, ephemeral messages, DMs and response_url, with
// chat.postMessage paced per channel.
type Poster struct {
	api     *slack.Client
	replies *Replier
	// queue paces chat.postMessage per channel (Post, Thread, DM). When nil
	// (a Poster built without NewPoster) posts go straight to Slack.
	// chat.update, chat.postEphemeral and response_url bypass it: they
	// have their own, per-method limits, not the per-channel one.
	queue *postQueue
	// metrics counts every Slack call, 429s and errors; nil counts nothing.
	metrics *metrics.Metrics
}

// NewPoster returns a Poster whose chat.postMessage calls go through a
// per-channel queue shaped by opts, counting every call in m (nil counts
// nothing). Close it on shutdown to drain the queue.
func NewPoster(api *slack.Client, replies *Replier, m *metrics.Metrics, opts PostOptions) *Poster {
	p := &Poster{api: api, replies: replies, metrics: m}
	p.queue = newPostQueue(p.postMessage, opts)
	return p
}

// Close stops queueing posts and drains those already queued until ctx is
// done (see postQueue.Close).
func (p *Poster) Close(ctx context.Context) error {
	if p.queue == nil {
		return nil
	}
	return p.queue.Close(ctx)
}

// isCannotPost reports whether a chat.postMessage error code means "not
// here": the bot is not in the channel, can't see it, or it is archived.
func isCannotPost(code string) bool {
	switch code {
	case "not_in_channel", "channel_not_found", "is_archived", "restricted_action", "restricted_action_read_only_channel",
		"restricted_action_thread_only_channel", "ekm_access_denied":
		return true
	}
	return false
}

// maxRateLimitPatience bounds how long one call outside the queue keeps
// waiting out 429s. A 429 means Slack did not take the request, so trying
// again cannot duplicate it; and a lost chat.update would leave a
// deployment message showing the wrong state for good, so it is worth
// waiting a while for.
const maxRateLimitPatience = 3 * time.Minute

// call runs fn, waiting out 429s for up to maxRateLimitPatience (or until
// ctx is done), and classifies its error. It serves the calls that bypass
// the per-channel queue.
func (p *Poster) call(ctx context.Context, fn func() error) error {
	var waited time.Duration
	for {
		err := fn()
		var rl *slack.RateLimitedError
		if !errors.As(err, &rl) || waited >= maxRateLimitPatience {
			return classify(err)
		}
		wait := rl.RetryAfter
		if wait <= 0 {
			wait = time.Second
		}
		waited += wait
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// classify maps Slack's channel errors to chat.ErrCannotPost and marks
// the rest as Slack's. It leaves an error that already is ErrCannotPost
// alone, so classifying twice is harmless.
func classify(err error) error {
	if err == nil || errors.Is(err, chat.ErrCannotPost) {
		return err
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && isCannotPost(se.Err) {
		return fmt.Errorf("%w (%s)", chat.ErrCannotPost, se.Err)
	}
	return fmt.Errorf("slack: %w", err)
}

// trackSlack records one Slack Web API call of method and returns err as
// is. Every attempt is recorded, so a message that waited out two 429s
// counts three calls and two 429s.
func trackSlack(m *metrics.Metrics, method string, err error) error {
	code, limited := slackErrorCode(err)
	m.SlackCall(method, code, limited)
	return err
}

// trackReply records one response_url post.
func trackReply(m *metrics.Metrics, err error) {
	code := ""
	switch {
	case err == nil:
	case errors.Is(err, errResponseURLRefused):
		code = metrics.SlackErrURLRefused
	default:
		code, _ = slackErrorCode(err)
	}
	m.SlackCall(metrics.SlackResponseURL, code, false)
}

// slackErrorCode says what went wrong with a Slack call: "" for success,
// rateLimited for a 429, else Slack's error code or a class for errors
// without one (metrics bounds the codes it keeps).
func slackErrorCode(err error) (code string, rateLimited bool) {
	var (
		rl *slack.RateLimitedError
		se slack.SlackErrorResponse
		sc slack.StatusCodeError
	)
	switch {
	case err == nil:
		return "", false
	case errors.As(err, &rl):
		return "", true
	case errors.As(err, &se):
		return se.Err, false
	case errors.As(err, &sc) && sc.Code >= 500:
		return metrics.SlackErrHTTP5xx, false
	case errors.As(err, &sc):
		return metrics.SlackErrHTTP4xx, false
	case errors.Is(err, context.DeadlineExceeded):
		return metrics.SlackErrTimeout, false
	case errors.Is(err, context.Canceled):
		return metrics.SlackErrCanceled, false
	}
	return metrics.SlackErrRequestFailed, false
}

// msgOptions turns m into chat.* options; Text is the notification fallback.
func msgOptions(m chat.Message) []slack.MsgOption {
	opts := []slack.MsgOption{slack.MsgOptionText(m.Text, false)}
	if len(m.Blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(m.Blocks...))
	}
	return opts
}

// asPlainText is m as Slack will take it after refusing its form (see
// refusedLayout): the plain-text fallback, no blocks.
func asPlainText(m chat.Message) chat.Message {
	return chat.Message{Text: plainFallback(m.Text, m.Blocks), InChannel: m.InChannel}
}

// withPlainFallback runs send with m and, when Slack refuses m's form
// (invalid_blocks, msg_too_long), once more with m as plain text, so a
// message is never dropped for its layout. Slack took nothing the first
// time, so nothing is posted twice. Other errors are returned as they are.
// send's plain argument says which of the two it is sending.
func withPlainFallback(m chat.Message, send func(m chat.Message, plain bool) error) error {
	err := send(m, false)
	if !isRefusedLayout(err) {
		return err
	}
	if ferr := send(asPlainText(m), true); ferr != nil {
		return fmt.Errorf("%w; and as plain text: %w", err, ferr)
	}
	return nil
}

// postMessage is one chat.postMessage, a thread reply when threadTS is
// set, falling back to plain text when Slack refuses the message's form.
// It returns slack-go's error as is; callers classify it.
func (p *Poster) postMessage(ctx context.Context, channel string, m chat.Message, threadTS string) (string, error) {
	var ts string
	err := withPlainFallback(m, func(m chat.Message, _ bool) error {
		opts := msgOptions(m)
		if threadTS != "" {
			opts = append(opts, slack.MsgOptionTS(threadTS))
		}
		var err error
		_, ts, err = p.api.PostMessageContext(ctx, channel, opts...)
		return trackSlack(p.metrics, metrics.SlackPostMessage, err)
	})
	return ts, err
}

// send posts through the queue, or straight to Slack without one.
func (p *Poster) send(ctx context.Context, channel, threadTS string, m chat.Message) (string, error) {
	if p.queue != nil {
		return p.queue.Post(ctx, channel, threadTS, m)
	}
	var ts string
	err := p.call(ctx, func() error {
		var err error
		ts, err = p.postMessage(ctx, channel, m, threadTS)
		return err
	})
	return ts, err
}

// Post posts m in channel and returns its ts; chat.ErrCannotPost means
// the bot may not post there.
func (p *Poster) Post(ctx context.Context, channel string, m chat.Message) (string, error) {
	return p.send(ctx, channel, "", m)
}

// Update edits the bot's own message ts (chat.update, Tier 3, not queued).
func (p *Poster) Update(ctx context.Context, channel, ts string, m chat.Message) error {
	return p.call(ctx, func() error {
		return withPlainFallback(m, func(m chat.Message, plain bool) error {
			opts := msgOptions(m)
			if plain {
				// chat.update keeps the old blocks unless told to drop
				// them, and they would hide the text.
				opts = append(opts, slack.MsgOptionBlocks())
			}
			_, _, _, err := p.api.UpdateMessageContext(ctx, channel, ts, opts...)
			return trackSlack(p.metrics, metrics.SlackUpdate, err)
		})
	})
}

// Enqueue queues m for channel (a reply in threadTS when set) without
// waiting, for notifications; done, when not nil, gets the outcome from the
// channel's worker and must not block for long (see postQueue.Enqueue).
// Without a queue it posts before returning.
func (p *Poster) Enqueue(channel, threadTS string, m chat.Message, done func(ts string, err error)) {
	if p.queue != nil {
		p.queue.Enqueue(channel, threadTS, m, done)
		return
	}
	ts, err := p.send(context.Background(), channel, threadTS, m)
	if done != nil {
		done(ts, err)
	}
}

// Thread replies to threadTS; replies share their channel's queue.
func (p *Poster) Thread(ctx context.Context, channel, threadTS string, m chat.Message) error {
	_, err := p.send(ctx, channel, threadTS, m)
	return err
}

// Ephemeral shows m to user only (chat.postEphemeral, Tier 4, not queued).
func (p *Poster) Ephemeral(ctx context.Context, channel, user string, m chat.Message) error {
	return p.call(ctx, func() error {
		return withPlainFallback(m, func(m chat.Message, _ bool) error {
			_, err := p.api.PostEphemeralContext(ctx, channel, user, msgOptions(m)...)
			return trackSlack(p.metrics, metrics.SlackPostEphemeral, err)
		})
	})
}

// DM opens the bot's DM with the person and posts m there through Post.
func (p *Poster) DM(ctx context.Context, to storage.Identity, m chat.Message) error {
	var channel string
	err := p.call(ctx, func() error {
		ch, _, _, err := p.api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{to.User}, ReturnIM: true})
		if err == nil {
			channel = ch.ID
		}
		return trackSlack(p.metrics, metrics.SlackConversationOpen, err)
	})
	if err != nil {
		return err
	}
	_, err = p.Post(ctx, channel, m)
	return err
}

// Respond posts through a response_url, which has its own limit of five
// uses in 30 minutes rather than a per-channel pace.
func (p *Poster) Respond(ctx context.Context, responseURL string, m chat.Message) error {
	return p.replies.Respond(ctx, responseURL, m, false)
}
