// Package notify tells subscribed Slack channels about Cloud 66 deployments
// and servers (DESIGN.md, path 4): deployments started from the Cloud 66
// dashboard, a git hook or the API, not just the bot's own. It sits beside
// package deploy, below commands and bot, and posts chat.Messages (failing
// with chat.ErrCannotPost) through the same Slack queue as deploy.
//
// # Where events come from
//
// Three sources produce an [Event]:
//
//   - Cloud 66 webhooks, decoded by [DecodeWebhook] (the handler in package
//     bot authenticates the secret URL and sets Event.Team);
//   - POST /api/v1/notify, whose handler resolves the stack with
//     [Service.ResolveStack];
//   - polling: when a stack's webhooks are not arriving, one poller per
//     stack reads the first page of its deployments with a subscriber's own
//     token and turns rows into deploy events.
//
// Server events (stopped, back) come only from webhooks. Cloud 66 has no
// server event history, and polling every server of every subscribed stack
// would cost far more of the subscriber's 3,000 requests an hour than one
// deployments page per stack does.
//
// # Delivery
//
// [Service.Accept] writes the event to the storage outbox before returning,
// because Cloud 66 never retries a webhook: once the handler has answered
// 202, a crash must not lose the event. [Service.Run] drains the outbox
// oldest first. For each event it finds the matching subscriptions (same
// workspace for webhook and API events; the stack itself, or an "all"
// subscription whose subscriber can see the stack in Cloud 66; the kind in
// its events; its environment filter; only=failures), then per channel:
//
//   - skips it when the bot itself started the deployment from that channel
//     (the deployment message there already tells it);
//   - claims "notify:<team>:<channel>:<Event.Key>" for seven days, so the
//     same happening reported by a webhook and by polling, or delivered
//     twice, is posted once per channel;
//   - queues the post ([Message]) on the bot's per-channel Slack queue.
//
// A post that fails transiently gives its claim back and the outbox item is
// retried with backoff (up to ten attempts). A channel the bot may not post
// in has its subscriptions paused and each subscriber is told once, by DM,
// how to fix it; it is never retried.
//
// With several replicas on one database one of them at a time delivers the
// outbox and runs the pollers: the one holding the "notify" lease
// (Config.Leases). The others only accept events into the shared outbox,
// which the deliverer reads every Config.DeliverEvery (1 s); so notices
// reach a channel in the order they were accepted whichever replica took
// them, and a stack is polled once per interval, not once per replica.
// Within that, an item is delivered under its own lease ("outbox:<id>")
// and a happening is posted in a channel under "post:<dedup key>", kept
// renewed while the posts wait in their queues. A deliverer that dies
// leaves "notify" and its claims to expire within Config.LeaseTTL (20 s);
// the next one starts at the oldest item still undelivered and waits for
// its claim rather than post a later item first. Delivery stays at least
// once (the one post in flight per channel when a replica dies may be
// made again) and shown once (the done marks and dedup keys).
//
// # Polling budget
//
// A stack is polled every Config.PollEvery (60 s), slower when its poller's
// subscriber follows many stacks: the interval is at least stacks × 1 h ÷
// Config.PollBudgetPerHour (600), so polling never spends more than that
// many of a person's requests an hour. A stack whose every following
// workspace received one of its webhooks within Config.WebhookFresh (2 h)
// is not polled at all. Only deployments that started after the oldest
// covering subscription and within the last hour are announced, so neither
// a new subscription nor a restart replays history. Throttling (503) is
// waited out until Cloud 66's retry time and transient failures back off;
// neither stops a poller.
package notify
