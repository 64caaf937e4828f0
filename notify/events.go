package notify

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/c66bot/c66bot/cloud66"
)

// Event kinds: what a subscription can follow.
const (
	DeployStarted   = "deploy.started"
	DeploySucceeded = "deploy.succeeded"
	DeployFailed    = "deploy.failed"
	DeployCancelled = "deploy.cancelled"
	ServerStopped   = "server.stopped"
	ServerBack      = "server.back"
)

// AllEvents lists every event kind in the order they are shown to people.
// It is a constant table; callers must not modify it.
var AllEvents = []string{DeployStarted, DeploySucceeded, DeployFailed, DeployCancelled, ServerStopped, ServerBack}

// Event sources (Event.Source).
const (
	SourceWebhook = "webhook" // a Cloud 66 webhook
	SourcePoll    = "poll"    // the deployments list, polled with a subscriber's token
	SourceAPI     = "api"     // POST /api/v1/notify
)

// DefaultEvents is what `subscribe <stack>` follows without event words:
// how deployments end, which is what a channel most wants to know and the
// least noisy choice.
func DefaultEvents() []string {
	return []string{DeploySucceeded, DeployFailed}
}

// eventWords maps every word ParseEvents accepts to the kinds it stands for.
// The canonical names are accepted too, so a copied listing parses back.
var eventWords = map[string][]string{
	"started":   {DeployStarted},
	"succeeded": {DeploySucceeded},
	"success":   {DeploySucceeded},
	"ok":        {DeploySucceeded},
	"failed":    {DeployFailed},
	"failure":   {DeployFailed},
	"fail":      {DeployFailed},
	"cancelled": {DeployCancelled},
	"canceled":  {DeployCancelled},
	"stopped":   {ServerStopped},
	"back":      {ServerBack},
	"backon":    {ServerBack},
	"deploys":   {DeployStarted, DeploySucceeded, DeployFailed, DeployCancelled},
	"servers":   {ServerStopped, ServerBack},
	"all":       AllEvents,

	DeployStarted:   {DeployStarted},
	DeploySucceeded: {DeploySucceeded},
	DeployFailed:    {DeployFailed},
	DeployCancelled: {DeployCancelled},
	ServerStopped:   {ServerStopped},
	ServerBack:      {ServerBack},
}

// EventWords is the list of event words shown to a person when a word is
// not understood, short forms in brackets.
const EventWords = "started, succeeded (success, ok), failed (failure, fail), cancelled (canceled), stopped, back (backon), deploys, servers, all"

// FailureEvents are the kinds an only=failures filter lets through, in
// AllEvents order. It is a constant table; callers must not modify it.
var FailureEvents = []string{DeployFailed, ServerStopped}

// UnknownEventWord is the first of words (split as ParseEvents splits
// them) that names no event, and whether there is one: callers that show
// it to people word the refusal themselves.
func UnknownEventWord(words []string) (string, bool) {
	for _, w := range words {
		for part := range strings.SplitSeq(w, ",") {
			part = strings.ToLower(strings.TrimSpace(part))
			if _, ok := eventWords[part]; part != "" && !ok {
				return part, true
			}
		}
	}
	return "", false
}

// ParseEvents reads the words after `subscribe <stack>`: event names or their
// short forms (started, succeeded|success|ok, failed|failure|fail,
// cancelled|canceled, stopped, back|backon), the groups deploys (the four
// deploy events), servers (both server events) and all. Words are
// case-insensitive and may also be separated by commas. The result is in
// AllEvents order without repeats; no words means DefaultEvents. An unknown
// word is an error naming it and listing the valid ones.
//
// Filters such as env=… and only=failures are not events: the caller takes
// them out first.
func ParseEvents(words []string) ([]string, error) {
	if bad, ok := UnknownEventWord(words); ok {
		return nil, fmt.Errorf("notify: unknown event %q: use %s", bad, EventWords)
	}
	want := map[string]bool{}
	for _, w := range words {
		for part := range strings.SplitSeq(w, ",") {
			for _, k := range eventWords[strings.ToLower(strings.TrimSpace(part))] {
				want[k] = true
			}
		}
	}
	if len(want) == 0 {
		return DefaultEvents(), nil
	}
	out := make([]string, 0, len(want))
	for _, k := range AllEvents {
		if want[k] {
			out = append(out, k)
		}
	}
	return out, nil
}

// knownKind reports whether kind is one of AllEvents.
func knownKind(kind string) bool { return slices.Contains(AllEvents, kind) }

// isDeployKind reports whether kind is one of the four deploy events.
func isDeployKind(kind string) bool {
	switch kind {
	case DeployStarted, DeploySucceeded, DeployFailed, DeployCancelled:
		return true
	}
	return false
}

// isFailure reports whether kind passes an only=failures filter.
func isFailure(kind string) bool { return slices.Contains(FailureEvents, kind) }

// Event is one happening worth telling a channel about, whichever way it was
// learnt. It is stored in the outbox as JSON, hence the tags.
type Event struct {
	Kind        string `json:"kind"`
	StackUID    string `json:"stack_uid"`
	StackName   string `json:"stack_name,omitempty"`
	Environment string `json:"environment,omitempty"`
	// DeploymentID is Cloud 66's deployment id; 0 when unknown (webhooks
	// are not documented to carry it).
	DeploymentID int64  `json:"deployment_id,omitempty"`
	GitHash      string `json:"git_hash,omitempty"`
	GitRef       string `json:"git_ref,omitempty"`
	TriggeredBy  string `json:"triggered_by,omitempty"`
	// Server is the server's name (or its uid when the webhook gave no
	// name) for server events.
	Server string `json:"server,omitempty"`
	// Text is Cloud 66's message, or the API caller's text.
	Text string `json:"text,omitempty"`
	// At is when it happened: the webhook's timestamp, the deployment's
	// finish (or start) time, or when the API accepted it.
	At time.Time `json:"at"`
	// StartedAt is when the deployment started, for deploy events; it is
	// what ties a webhook and a polled report of the same deployment
	// together in Key. Zero when unknown.
	StartedAt time.Time `json:"started_at,omitzero"`
	Source    string    `json:"source"`
	// Team is set for webhook and API events: only that workspace's
	// subscriptions receive them. "" for polled events, which reach every
	// workspace subscribed to the stack.
	Team string `json:"team,omitempty"`
}

// serverKeyWindow is how close two reports of the same server event must be
// to count as one happening: servers have no event id, and a flapping
// server should not post every few seconds.
const serverKeyWindow = 10 * time.Minute

// Key is the identity of the happening, the same whichever source reported
// it, so a deployment announced by a webhook and seen again by polling is
// posted once per channel:
//
//   - deploy events: "deploy:<stack uid>:<started at, Unix seconds>:<kind>",
//     with the deployment id instead of the start time when that is unknown,
//     and "@<At, Unix nanoseconds>" when both are (an API event: every call
//     is its own happening);
//   - server events: "server:<stack uid>:<server>:<kind>:<At truncated to 10
//     minutes, Unix seconds>".
//
// Seconds, because Cloud 66's times have no finer precision and the webhook
// and the API may print them differently.
func (e Event) Key() string {
	if !isDeployKind(e.Kind) {
		return "server:" + e.StackUID + ":" + e.Server + ":" + e.Kind + ":" +
			strconv.FormatInt(e.At.Truncate(serverKeyWindow).Unix(), 10)
	}
	var when string
	switch {
	case !e.StartedAt.IsZero():
		when = strconv.FormatInt(e.StartedAt.Unix(), 10)
	case e.DeploymentID != 0:
		when = strconv.FormatInt(e.DeploymentID, 10)
	default:
		when = "@" + strconv.FormatInt(e.At.UnixNano(), 10)
	}
	return "deploy:" + e.StackUID + ":" + when + ":" + e.Kind
}

// validate checks what Accept needs of an event.
func (e Event) validate() error {
	if !knownKind(e.Kind) {
		return fmt.Errorf("notify: unknown event kind %q", e.Kind)
	}
	if !cloud66.ValidUID(e.StackUID) {
		return fmt.Errorf("notify: %s event: invalid stack uid %q", e.Kind, e.StackUID)
	}
	return nil
}
