// Package deploy runs Cloud 66 deployments from Slack (DESIGN.md, path 3):
// policy and lock checks, the confirmation of protected environments, the
// redeploy call made with the requester's own token, one channel message per
// deployment edited in place until it ends, and resuming all of that after a
// restart. It sits below package commands and above cloud66, storage and
// policy.
//
// # A deployment
//
// [Service.Deploy] asks the policy first (Config.Policy; without one,
// policy.Default with Config.Protected): a rule or default that does not
// let the person deploy that stack from that channel refuses it
// ([PolicyError], naming the rule), and so does a freeze ([FrozenError]);
// an admin's freeze refusal carries an override intent for
// [Service.Override]. Then it refuses a stack locked by someone else
// ([LockedError]) or one the bot is already deploying ([BusyError]). A rule
// wanting approvals posts an approval request in the channel (see below).
// When confirmation is wanted (a protected environment, or the rule's
// confirm) it parks the request as a storage intent and returns a
// [Confirmation]; only the requester can press Confirm ([Service.Confirm]),
// and the intent is spent in one bbolt transaction, so a double click or a
// duplicate delivery never deploys twice. Otherwise it starts at once.
// Whatever starts a parked deploy (Confirm, the last approval, an override)
// checks the policy, the lock and the stack again first, because time has
// passed: a freeze may have begun, someone may have locked or deployed it.
//
// # Approvals
//
// An approval request is an intent of 30 minutes (storage may shorten it)
// and a channel message with Approve and Reject buttons. [Service.Approve]
// records approvals in the intent (storage.IntentStore.Update), never the
// requester's ([ErrOwnApproval]) and only from people the rule lets approve
// ([PolicyError] otherwise); the approval that completes the request spends
// the intent instead, in one transaction, so concurrent clicks start one
// deploy. It starts as the requester, with their own token: approvers lend
// only their judgement. [Service.Reject] closes a request, for the
// requester or anyone who could approve it. The message is edited in place
// after every click.
//
// Starting claims the stack (storage.WatchStore.Start), posts the card, then asks
// Cloud 66 to redeploy with a user_reference naming the Slack request
// ([UserReference]). From then on a watcher goroutine follows the deployment;
// its state is stored after every change, so [Service.Run] picks every
// unfinished deployment up again after a restart and edits the same message.
//
// # Several replicas
//
// With several replicas on one database each followed action has one owner:
// the replica holding its lease ("watch:<id>", Config.Leases, owner
// Config.Replica). The replica that starts a change takes the lease before
// anything is sent and hands it to its watcher, which renews it at every
// poll, before every save and in the background every third of
// Config.LeaseTTL (15 s), stops at once when it is lost and gives it up when
// the watch ends. Every Config.ClaimEvery (5 s) Run takes over the active
// watches nobody holds: a replica that dies loses its leases within the TTL,
// and another finishes its cards within TTL+ClaimEvery = 20 s. The
// per-person budget is a shared store too (Config.Budgets), so a person's
// requests are counted once whichever replica makes them.
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
// bucket (PollConfig.BudgetPerHour), shared by all of that person's watches
// on every replica, so many parallel deployments cannot exhaust their Cloud
// 66 allowance.
//
// Transient failures never end a watch; throttling waits for Cloud 66's
// retry time; a revoked token or a vanished stack ends it as "unknown" and
// tells the owner; PollConfig.Timeout bounds it; PollConfig.Watchdog posts
// once in the thread when nothing has moved for a long time.
package deploy
