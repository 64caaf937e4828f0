// Package deploy runs Cloud 66 deployments from Slack (DESIGN.md, path 3):
// policy and lock checks, the confirmation of protected environments, the
// redeploy call made with the requester's own token, one channel message per
// deployment edited in place until it ends, and resuming all of that after a
// restart. It sits below package commands and above cloud66 and storage.
//
// # A deployment
//
// [Service.Deploy] refuses a stack locked by someone else ([LockedError]) or
// one the bot is already deploying ([BusyError]). For a protected
// environment it parks the request as a storage intent and returns a
// [Confirmation]; only the requester can press Confirm ([Service.Confirm]),
// and the intent is spent in one bbolt transaction, so a double click or a
// duplicate delivery never deploys twice. Otherwise it starts at once.
//
// Starting claims the stack (storage.StartWatch), posts the card, then asks
// Cloud 66 to redeploy with a user_reference naming the Slack request
// ([UserReference]). From then on a watcher goroutine follows the deployment;
// its state lives in bbolt after every change, so [Service.Run] picks every
// unfinished deployment up again after a restart and edits the same message.
//
// # Following a deployment
//
// A watcher polls the async action (GET /stacks/{uid}/actions/{id}), or, for
// a deploy Cloud 66 queued behind another one, looks its action up by
// user_reference until it starts. The interval starts at PollConfig.Initial
// (5 s) and grows ×1.5 per poll that shows no change, up to PollConfig.Max
// (30 s); a change resets it. With the defaults a 30-minute deployment costs
// about 63 polls (5, 7.5, 11.3, 16.9, 25.3 s, then every 30 s) plus one read
// of the deployments list at the end, far inside Cloud 66's 3,000 requests
// per person per hour. Every request is also taken from a per-person token
// bucket (PollConfig.BudgetPerHour), shared by all of that person's watches,
// so many parallel deployments cannot exhaust their Cloud 66 allowance.
//
// Transient failures never end a watch; throttling waits for Cloud 66's
// retry time; a revoked token or a vanished stack ends it as "unknown" and
// tells the owner; PollConfig.Timeout bounds it; PollConfig.Watchdog posts
// once in the thread when nothing has moved for a long time.
package deploy
