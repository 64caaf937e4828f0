package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/slack-go/slack"

	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/notify"
	"github.com/c66bot/c66bot/storage"
)

// Subscriptions is where channel subscriptions live;
// *storage.SubscriptionStore satisfies it. Subscribe and
// Unsubscribe write the audit entries they are given in the same
// transaction, and fail with storage.ErrNotAudited, changing nothing, when
// they cannot.
type Subscriptions interface {
	Subscribe(ctx context.Context, sub storage.Subscription, audit ...storage.AuditEntry) (storage.Subscription, string, error)
	Unsubscribe(ctx context.Context, team, channel, stackUID string, audit ...storage.AuditEntry) (storage.Subscription, error)
	ForChannel(ctx context.Context, team, channel string) ([]storage.Subscription, error)
}

// allStacks is how a person says "every stack I can see".
const allStacks = "all"

func subscribeCommand(subs Subscriptions, res *resolver, webhookURL func(secret string) string) *Command {
	return &Command{
		Name:    "subscribe",
		Args:    "<stack|all> [events…] [env=…] [only=failures]",
		Summary: "Post a stack's deploys in this channel, whoever starts them.",
		Description: "This channel gets a message when a stack (or every stack you can see) is deployed, whoever started it. " +
			"Events: `started`, `succeeded`, `failed`, `cancelled` (or `deploys` for all four), `stopped`, `back` (servers), `all`; " +
			"the default is succeeded and failed. `env=production` keeps one environment, `only=failures` keeps failures (failed deploys, stopped servers); " +
			"a filter that would let nothing through is refused. The channel sees the subscription; only you see the webhook URL to paste into Cloud 66's " +
			"notification settings, and until Cloud 66 calls it I poll Cloud 66 with your token.",
		Examples: []string{"subscribe shop:production", "subscribe all failed env=production", "subscribe api:staging deploys"},
		MinArgs:  1, MaxArgs: 10,
		Change: "subscribe this channel",
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			return runSubscribe(ctx, c, subs, res, webhookURL)
		},
	}
}

func runSubscribe(ctx context.Context, c *Call, subs Subscriptions, res *resolver, webhookURL func(secret string) string) (chat.Message, error) {
	target := c.Args[0]
	var words []string
	sub := storage.Subscription{Team: c.Request.Identity().Team, Channel: c.Request.ChannelID, Subscriber: c.Request.Identity()}
	for _, a := range c.Args[1:] {
		key, val, ok := strings.Cut(a, "=")
		if !ok {
			words = append(words, a)
			continue
		}
		switch strings.ToLower(key) {
		case "env":
			if val == "" {
				return chat.Message{}, &UsageError{Problem: "`env` is empty."}
			}
			sub.EnvFilter = val
		case "only":
			if !strings.EqualFold(val, "failures") {
				return chat.Message{}, &UsageError{Problem: fmt.Sprintf("`only` takes `failures`, not %s.", quoteArg(val))}
			}
			sub.OnlyFailures = true
		default:
			return chat.Message{}, &UsageError{Problem: fmt.Sprintf("Unknown option %s; the options are `env=` and `only=failures`.", quoteArg(key))}
		}
	}
	if bad, ok := notify.UnknownEventWord(words); ok {
		return chat.Message{}, &UsageError{Problem: fmt.Sprintf("I don't know the event %s. Events: %s.", quoteArg(bad), bk.Esc(notify.EventWords))}
	}
	events, err := notify.ParseEvents(words)
	if err != nil {
		return chat.Message{}, fmt.Errorf("subscribe: %w", err)
	}
	if sub.OnlyFailures {
		// Stored as what passes the filter, so every echo of the
		// subscription says what will be posted.
		failures := slices.DeleteFunc(slices.Clone(events), func(k string) bool { return !slices.Contains(notify.FailureEvents, k) })
		if len(failures) == 0 {
			return chat.Message{}, &UsageError{Problem: fmt.Sprintf("`only=failures` keeps %s, and %s has none of them, so nothing would ever be posted. "+
				"Add `failed` or `stopped`, or leave out `only=failures`.", bk.Esc(strings.Join(notify.FailureEvents, " and ")), bk.Esc(strings.Join(events, ", ")))}
		}
		events = failures
	}
	sub.Events = events
	// Polling uses the subscriber's own token, and resolving the stack
	// proves they can see it: both need a linked account.
	api, err := res.client(ctx, c.Request.Identity())
	if err != nil {
		return chat.Message{}, err
	}
	if strings.EqualFold(target, allStacks) {
		sub.StackName = allStacks
		if _, err := api.ListStacks(ctx); err != nil {
			return chat.Message{}, err
		}
	} else {
		st, err := res.resolveStack(ctx, api, c.Request.Identity(), target)
		if err != nil {
			return chat.Message{}, err
		}
		if sub.EnvFilter != "" && !strings.EqualFold(sub.EnvFilter, st.Environment) {
			return chat.Message{}, &UsageError{Problem: fmt.Sprintf("%s is in %s, so `env=%s` would let nothing through. "+
				"Subscribe to %s instead, or leave out `env=`.", bk.StackLabel(st), bk.Code(st.Environment), bk.Esc(sub.EnvFilter),
				bk.Code(bk.StackRef(st.Name, sub.EnvFilter)))}
		}
		sub.StackUID, sub.StackName, sub.Environment = st.UID, st.Name, st.Environment
	}
	e := subscriptionAudit(c.Request, "subscribe", "subscribed", sub)
	e.Args = map[string]string{"events": strings.Join(sub.Events, ",")}
	if sub.EnvFilter != "" {
		e.Args["env"] = sub.EnvFilter
	}
	if sub.OnlyFailures {
		e.Args["only"] = "failures"
	}
	// The webhook secret is made inside Subscribe and never reaches the log.
	saved, secret, err := subs.Subscribe(ctx, sub, e)
	if err != nil {
		return chat.Message{}, err
	}
	return subscribedReply(saved, webhookURL(secret)), nil
}

// subscribedReply announces a new subscription in the channel, which it
// changes; the webhook URL, a secret, goes to the subscriber alone.
func subscribedReply(saved storage.Subscription, hookURL string) chat.Message {
	msg := fmt.Sprintf(":bell: <#%s> now follows %s: %s.", bk.Esc(saved.Channel), subscriptionTarget(saved), subscriptionFilter(saved))
	reply := chat.Message{InChannel: true, Text: bk.Fallback(msg), Blocks: []slack.Block{bk.Section(msg)}}
	if hookURL == "" {
		reply.Blocks = append(reply.Blocks, bk.Context(fmt.Sprintf("Cloud 66 can't call this bot (it has no public URL), so I check Cloud 66 with <@%s>'s token about once a minute.",
			bk.Esc(saved.Subscriber.User))))
		return reply
	}
	where := "In Cloud 66: the stack → *Settings & Information* → *Notifications* → *Webhook*: paste the URL and tick the deploy events. " +
		"Until it is called, I check Cloud 66 with your token about once a minute."
	if saved.StackUID == "" {
		where = "In Cloud 66, on each stack you want instant notices from: *Settings & Information* → *Notifications* → *Webhook*: paste the URL and tick the deploy events; " +
			"the one URL serves them all. Webhook or not, I check your stacks with your token about once a minute."
	}
	hint := "*For instant notices, give Cloud 66 this webhook* (only you see it; it works for this subscription only, and subscribing again replaces it):\n" + "```" + bk.Esc(hookURL) + "```"
	reply.Private = &chat.Message{Text: "The webhook URL for this subscription (only you see it).", Blocks: []slack.Block{bk.Section(hint), bk.Context(where)}}
	return reply
}

// subscriptionAudit is the audit entry of a change to sub, by req's person.
func subscriptionAudit(req Request, action, result string, sub storage.Subscription) storage.AuditEntry {
	id := req.Identity()
	name := sub.StackName
	if sub.Environment != "" {
		name = bk.StackRef(sub.StackName, sub.Environment)
	}
	return storage.AuditEntry{
		Team: id.Team, User: id.User, Channel: req.ChannelID, Action: action,
		StackUID: sub.StackUID, StackName: name, Result: result,
	}
}

func subscriptionTarget(s storage.Subscription) string {
	if s.StackUID == "" {
		return "*every stack* <@" + bk.Esc(s.Subscriber.User) + "> can see"
	}
	return "*" + bk.Esc(s.StackName) + "* · " + bk.Esc(s.Environment)
}

// subscriptionFilter is what a subscription posts: the events that pass
// its filters, and the environment it keeps.
func subscriptionFilter(s storage.Subscription) string {
	events := s.Events
	if s.OnlyFailures {
		// Subscriptions made before their events were stored narrowed.
		events = slices.DeleteFunc(slices.Clone(events), func(k string) bool { return !slices.Contains(notify.FailureEvents, k) })
	}
	f := strings.Join(events, ", ")
	if s.EnvFilter != "" {
		f += " in " + s.EnvFilter
	}
	return bk.Esc(f)
}

func unsubscribeCommand(subs Subscriptions, slash string) *Command {
	return &Command{
		Name:        "unsubscribe",
		Args:        "<stack|all>",
		Summary:     "Stop posting a stack's deploys in this channel.",
		Description: "Removes this channel's subscription to a stack (or to all stacks). Its webhook URL stops working.",
		Examples:    []string{"unsubscribe shop:production", "unsubscribe all"},
		MinArgs:     1, MaxArgs: 1,
		Change: "unsubscribe this channel",
		Run:    func(ctx context.Context, c *Call) (chat.Message, error) { return runUnsubscribe(ctx, c, subs, slash) },
	}
}

func runUnsubscribe(ctx context.Context, c *Call, subscriptions Subscriptions, slash string) (chat.Message, error) {
	team, channel := c.Request.Identity().Team, c.Request.ChannelID
	uid := ""
	target := storage.Subscription{StackName: allStacks}
	if !strings.EqualFold(c.Args[0], allStacks) {
		// Match this channel's own subscriptions first, so unsubscribing
		// works even for a stack the person can no longer see.
		subs, err := subscriptions.ForChannel(ctx, team, channel)
		if err != nil {
			return chat.Message{}, err
		}
		ref := ParseStackRef(c.Args[0])
		var matches []storage.Subscription
		for _, s := range subs {
			if s.StackUID != "" && (s.StackUID == c.Args[0] || strings.EqualFold(s.StackName, ref.Name) && (ref.Environment == "" || strings.EqualFold(s.Environment, ref.Environment))) {
				matches = append(matches, s)
			}
		}
		switch len(matches) {
		case 0:
			return ephemeral(fmt.Sprintf(":mag: This channel doesn't follow %s. `%s subscriptions` lists what it follows.", bk.Code(c.Args[0]), slash)), nil
		case 1:
			uid, target = matches[0].StackUID, matches[0]
		default:
			var names []string
			for _, m := range matches {
				names = append(names, bk.Code(bk.StackRef(m.StackName, m.Environment)))
			}
			return ephemeral(fmt.Sprintf(":twisted_rightwards_arrows: %s matches %s; say which one.", bk.Code(c.Args[0]), strings.Join(names, " and "))), nil
		}
	}
	removed, err := subscriptions.Unsubscribe(ctx, team, channel, uid, subscriptionAudit(c.Request, "unsubscribe", "unsubscribed", target))
	if errors.Is(err, storage.ErrNotFound) {
		return ephemeral(fmt.Sprintf(":mag: This channel doesn't follow %s.", bk.Code(c.Args[0]))), nil
	}
	if err != nil {
		return chat.Message{}, err
	}
	msg := fmt.Sprintf(":no_bell: <#%s> no longer follows %s.", bk.Esc(channel), subscriptionTarget(removed))
	return chat.Message{InChannel: true, Text: bk.Fallback(msg), Blocks: []slack.Block{bk.Section(msg)}}, nil
}

func subscriptionsCommand(subscriptions Subscriptions, slash string) *Command {
	return &Command{
		Name:        "subscriptions",
		Summary:     "What this channel follows.",
		Description: "Lists this channel's subscriptions: which stacks, which events, who subscribed, and whether any is paused.",
		Examples:    []string{"subscriptions"},
		MinArgs:     0, MaxArgs: 0,
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			subs, err := subscriptions.ForChannel(ctx, c.Request.Identity().Team, c.Request.ChannelID)
			if err != nil {
				return chat.Message{}, err
			}
			if len(subs) == 0 {
				return ephemeral(fmt.Sprintf(":no_bell: This channel follows no stack. `%s subscribe <stack>` starts.", slash)), nil
			}
			var lines []string
			for _, s := range subs {
				line := fmt.Sprintf(":bell: %s — %s (by <@%s>)", subscriptionTarget(s), subscriptionFilter(s), bk.Esc(s.Subscriber.User))
				if s.Paused {
					line += " — :double_vertical_bar: *paused*: " + bk.Esc(s.PausedReason)
				}
				lines = append(lines, line)
			}
			title := fmt.Sprintf("This channel follows (%d)", len(subs))
			blocks := []slack.Block{bk.Header(title)}
			blocks = append(blocks, listSections(lines, bk.MaxBlocks-1, func(n int) string { return fmt.Sprintf("…and %d more.", n) })...)
			return chat.Message{Text: title, Blocks: blocks}, nil
		},
	}
}
