package storage

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// recordVersion is the "v" field of every sealed JSON record. Adding an
// optional field does not need a bump (encoding/json ignores unknown fields
// and zero-fills missing ones); changing what a field means does, together
// with a decoder for the old version.
const recordVersion = 1

// linkRecord is the JSON sealed under links/<team>:<user>. The identity is
// not repeated inside: it is the key, and the seal's associated data ties the
// record to it.
type linkRecord struct {
	V            int       `json:"v"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	Scopes       []string  `json:"scopes,omitempty"`
	Account      string    `json:"account,omitempty"`
	Email        string    `json:"email,omitempty"`
	LinkedAt     time.Time `json:"linked_at"`
}

// loginRecord is the JSON sealed under login_states/sha256(state). Unlike a
// link, it carries the identity, because the OAuth callback arrives with only
// the state and must learn from the record whom the flow belongs to.
type loginRecord struct {
	V           int       `json:"v"`
	Team        string    `json:"team"`
	User        string    `json:"user"`
	Channel     string    `json:"channel,omitempty"`
	ResponseURL string    `json:"response_url,omitempty"`
	Verifier    string    `json:"verifier,omitempty"`
	RedirectURL string    `json:"redirect_url,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// intentRecord is the JSON sealed under intents/sha256(id). The id is not
// inside: IntentStore.Get and Consume are given it, and the sweep needs
// only the expiry.
type intentRecord struct {
	V           int               `json:"v"`
	Kind        string            `json:"kind"`
	Team        string            `json:"team"`
	User        string            `json:"user"`
	Channel     string            `json:"channel,omitempty"`
	ResponseURL string            `json:"response_url,omitempty"`
	StackUID    string            `json:"stack_uid,omitempty"`
	StackName   string            `json:"stack_name,omitempty"`
	Environment string            `json:"environment,omitempty"`
	Params      map[string]string `json:"params,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	ExpiresAt   time.Time         `json:"expires_at"`
}

// lockRecord is the plain JSON under locks/<team>:<stack uid>. Team and
// stack uid are the key and not repeated.
type lockRecord struct {
	V           int       `json:"v"`
	StackName   string    `json:"stack_name,omitempty"`
	Environment string    `json:"environment,omitempty"`
	OwnerTeam   string    `json:"owner_team"`
	OwnerUser   string    `json:"owner_user"`
	Reason      string    `json:"reason,omitempty"`
	Since       time.Time `json:"since"`
	// Expires, RemindedAt and Waiters came with the lock queue; a record
	// without them is a lock that never expires, with nobody waiting.
	Expires    time.Time          `json:"expires,omitzero"`
	RemindedAt time.Time          `json:"reminded_at,omitzero"`
	Waiters    []lockWaiterRecord `json:"waiters,omitempty"`
}

// lockWaiterRecord is one LockWaiter inside its lock's record.
type lockWaiterRecord struct {
	ID          string            `json:"id"`
	Team        string            `json:"team"`
	User        string            `json:"user"`
	Kind        string            `json:"kind"`
	Channel     string            `json:"channel,omitempty"`
	ResponseURL string            `json:"response_url,omitempty"`
	Params      map[string]string `json:"params,omitempty"`
	Created     time.Time         `json:"created"`
}

// watchRecord is the JSON sealed under watches/<watch id>. The id is the key
// and not repeated.
type watchRecord struct {
	V                 int               `json:"v"`
	OwnerTeam         string            `json:"owner_team"`
	OwnerUser         string            `json:"owner_user"`
	Channel           string            `json:"channel,omitempty"`
	MessageTS         string            `json:"message_ts,omitempty"`
	ResponseURL       string            `json:"response_url,omitempty"`
	StackUID          string            `json:"stack_uid"`
	StackName         string            `json:"stack_name,omitempty"`
	Environment       string            `json:"environment,omitempty"`
	Verb              string            `json:"verb,omitempty"`
	Params            map[string]string `json:"params,omitempty"`
	UserReference     string            `json:"user_reference,omitempty"`
	ActionID          int64             `json:"action_id,omitempty"`
	DeploymentID      int64             `json:"deployment_id,omitempty"`
	Queued            bool              `json:"queued,omitempty"`
	State             string            `json:"state"`
	GitHash           string            `json:"git_hash,omitempty"`
	Message           string            `json:"message,omitempty"`
	RequestedAt       time.Time         `json:"requested_at,omitzero"`
	StartedAt         time.Time         `json:"started_at,omitzero"`
	FinishedAt        time.Time         `json:"finished_at,omitzero"`
	LastChange        time.Time         `json:"last_change,omitzero"`
	LastPolled        time.Time         `json:"last_polled,omitzero"`
	Polls             int               `json:"polls,omitempty"`
	WatchdogPosted    bool              `json:"watchdog_posted,omitempty"`
	CancelRequestedBy string            `json:"cancel_requested_by,omitempty"`
}

// auditRecord is the plain JSON under audit/<seq>. The sequence number is
// the key and not repeated.
type auditRecord struct {
	V               int               `json:"v"`
	At              time.Time         `json:"at"`
	Team            string            `json:"team,omitempty"`
	User            string            `json:"user,omitempty"`
	Channel         string            `json:"channel,omitempty"`
	Action          string            `json:"action"`
	StackUID        string            `json:"stack_uid,omitempty"`
	StackName       string            `json:"stack_name,omitempty"`
	Args            map[string]string `json:"args,omitempty"`
	Result          string            `json:"result,omitempty"`
	Cloud66ActionID int64             `json:"cloud66_action_id,omitempty"`
	Detail          string            `json:"detail,omitempty"`
}

// subscriptionRecord is the plain JSON under
// subscriptions/<team>:<channel>:<stack uid>. Team, channel and stack uid
// are the key and not repeated; the id is, since SubscriptionStore.BySecret and
// MarkWebhookSeen arrive with only the id. SecretSHA256 is the hash of the
// current webhook secret, which lets a rotation drop the old index entry and
// lets BySecret confirm the index in constant time.
type subscriptionRecord struct {
	V              int       `json:"v"`
	ID             string    `json:"id"`
	StackName      string    `json:"stack_name,omitempty"`
	Environment    string    `json:"environment,omitempty"`
	Events         []string  `json:"events,omitempty"`
	EnvFilter      string    `json:"env_filter,omitempty"`
	OnlyFailures   bool      `json:"only_failures,omitempty"`
	SubscriberTeam string    `json:"subscriber_team"`
	SubscriberUser string    `json:"subscriber_user"`
	CreatedAt      time.Time `json:"created_at"`
	Paused         bool      `json:"paused,omitempty"`
	PausedReason   string    `json:"paused_reason,omitempty"`
	PausedAt       time.Time `json:"paused_at,omitzero"`
	WebhookSeenAt  time.Time `json:"webhook_seen_at,omitzero"`
	SecretSHA256   []byte    `json:"secret_sha256"`
}

// apiTokenRecord is the plain JSON under api_tokens/<name>. The name is the
// key and not repeated. SHA256 is the hash of the token, never the token.
type apiTokenRecord struct {
	V          int       `json:"v"`
	SHA256     []byte    `json:"sha256"`
	Scopes     []string  `json:"scopes,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	Revoked    bool      `json:"revoked,omitempty"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
}

// outboxRecord is the plain JSON under outbox/<id>. The id is the key and
// not repeated; Payload is base64 in the JSON, as encoding/json does for
// []byte.
type outboxRecord struct {
	V           int       `json:"v"`
	Kind        string    `json:"kind"`
	Payload     []byte    `json:"payload,omitempty"`
	At          time.Time `json:"at"`
	Attempts    int       `json:"attempts,omitempty"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	Done        []string  `json:"done,omitempty"`
}

func encodeLink(l Link) ([]byte, error) {
	return json.Marshal(linkRecord{
		V:            recordVersion,
		AccessToken:  l.AccessToken,
		RefreshToken: l.RefreshToken,
		TokenType:    l.TokenType,
		Expiry:       l.Expiry,
		Scopes:       l.Scopes,
		Account:      l.Account,
		Email:        l.Email,
		LinkedAt:     l.LinkedAt,
	})
}

func decodeLink(id Identity, b []byte) (Link, error) {
	var r linkRecord
	if err := json.Unmarshal(b, &r); err != nil {
		// Not wrapped: a JSON syntax error could quote part of a token.
		return Link{}, fmt.Errorf("storage: link for %s: malformed record", id)
	}
	if r.V != recordVersion {
		return Link{}, fmt.Errorf("storage: link for %s: record version %d is not supported by this c66bot", id, r.V)
	}
	return Link{
		Identity:     id,
		AccessToken:  r.AccessToken,
		RefreshToken: r.RefreshToken,
		TokenType:    r.TokenType,
		Expiry:       r.Expiry,
		Scopes:       r.Scopes,
		Account:      r.Account,
		Email:        r.Email,
		LinkedAt:     r.LinkedAt,
	}, nil
}

func encodeLogin(p PendingLogin) ([]byte, error) {
	return json.Marshal(loginRecord{
		V:           recordVersion,
		Team:        p.Identity.Team,
		User:        p.Identity.User,
		Channel:     p.Channel,
		ResponseURL: p.ResponseURL,
		Verifier:    p.Verifier,
		RedirectURL: p.RedirectURL,
		CreatedAt:   p.CreatedAt,
		ExpiresAt:   p.ExpiresAt,
	})
}

func decodeLogin(b []byte) (PendingLogin, error) {
	var r loginRecord
	if err := json.Unmarshal(b, &r); err != nil {
		// Not wrapped: a JSON syntax error could quote part of the verifier.
		return PendingLogin{}, fmt.Errorf("storage: login state: malformed record")
	}
	if r.V != recordVersion {
		return PendingLogin{}, fmt.Errorf("storage: login state: record version %d is not supported by this c66bot", r.V)
	}
	return PendingLogin{
		Identity:    Identity{Team: r.Team, User: r.User},
		Channel:     r.Channel,
		ResponseURL: r.ResponseURL,
		Verifier:    r.Verifier,
		RedirectURL: r.RedirectURL,
		CreatedAt:   r.CreatedAt,
		ExpiresAt:   r.ExpiresAt,
	}, nil
}

func encodeIntent(in Intent) ([]byte, error) {
	return json.Marshal(intentRecord{
		V:           recordVersion,
		Kind:        in.Kind,
		Team:        in.Requester.Team,
		User:        in.Requester.User,
		Channel:     in.Channel,
		ResponseURL: in.ResponseURL,
		StackUID:    in.StackUID,
		StackName:   in.StackName,
		Environment: in.Environment,
		Params:      in.Params,
		CreatedAt:   in.CreatedAt,
		ExpiresAt:   in.ExpiresAt,
	})
}

func decodeIntent(id string, b []byte) (Intent, error) {
	var r intentRecord
	if err := json.Unmarshal(b, &r); err != nil {
		// Not wrapped: a JSON syntax error could quote part of the response_url.
		return Intent{}, fmt.Errorf("storage: intent: malformed record")
	}
	if r.V != recordVersion {
		return Intent{}, fmt.Errorf("storage: intent: record version %d is not supported by this c66bot", r.V)
	}
	return Intent{
		ID:          id,
		Kind:        r.Kind,
		Requester:   Identity{Team: r.Team, User: r.User},
		Channel:     r.Channel,
		ResponseURL: r.ResponseURL,
		StackUID:    r.StackUID,
		StackName:   r.StackName,
		Environment: r.Environment,
		Params:      r.Params,
		CreatedAt:   r.CreatedAt,
		ExpiresAt:   r.ExpiresAt,
	}, nil
}

func encodeLock(l Lock) ([]byte, error) {
	return json.Marshal(lockRecord{
		V:           recordVersion,
		StackName:   l.StackName,
		Environment: l.Environment,
		OwnerTeam:   l.Owner.Team,
		OwnerUser:   l.Owner.User,
		Reason:      l.Reason,
		Since:       l.Since,
		Expires:     l.Expires,
		RemindedAt:  l.RemindedAt,
		Waiters:     encodeWaiters(l.Waiters),
	})
}

func encodeWaiters(ws []LockWaiter) []lockWaiterRecord {
	var rs []lockWaiterRecord
	for _, w := range ws {
		rs = append(rs, lockWaiterRecord{ID: w.ID, Team: w.Who.Team, User: w.Who.User, Kind: string(w.Kind),
			Channel: w.Channel, ResponseURL: w.ResponseURL, Params: w.Params, Created: w.Created})
	}
	return rs
}

func decodeWaiters(rs []lockWaiterRecord) []LockWaiter {
	var ws []LockWaiter
	for _, r := range rs {
		ws = append(ws, LockWaiter{ID: r.ID, Who: Identity{Team: r.Team, User: r.User}, Kind: WaitKind(r.Kind),
			Channel: r.Channel, ResponseURL: r.ResponseURL, Params: r.Params, Created: r.Created})
	}
	return ws
}

func decodeLock(team, stackUID string, b []byte) (Lock, error) {
	var r lockRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return Lock{}, fmt.Errorf("storage: lock on %s in %s: malformed record: %w", stackUID, team, err)
	}
	if r.V != recordVersion {
		return Lock{}, fmt.Errorf("storage: lock on %s in %s: record version %d is not supported by this c66bot", stackUID, team, r.V)
	}
	return Lock{
		Team:        team,
		StackUID:    stackUID,
		StackName:   r.StackName,
		Environment: r.Environment,
		Owner:       Identity{Team: r.OwnerTeam, User: r.OwnerUser},
		Reason:      r.Reason,
		Since:       r.Since,
		Expires:     r.Expires,
		RemindedAt:  r.RemindedAt,
		Waiters:     decodeWaiters(r.Waiters),
	}, nil
}

func encodeWatch(w Watch) ([]byte, error) {
	return json.Marshal(watchRecord{
		V:                 recordVersion,
		OwnerTeam:         w.Owner.Team,
		OwnerUser:         w.Owner.User,
		Channel:           w.Channel,
		MessageTS:         w.MessageTS,
		ResponseURL:       w.ResponseURL,
		StackUID:          w.StackUID,
		StackName:         w.StackName,
		Environment:       w.Environment,
		Verb:              w.Verb,
		Params:            w.Params,
		UserReference:     w.UserReference,
		ActionID:          w.ActionID,
		DeploymentID:      w.DeploymentID,
		Queued:            w.Queued,
		State:             string(w.State),
		GitHash:           w.GitHash,
		Message:           w.Message,
		RequestedAt:       w.RequestedAt,
		StartedAt:         w.StartedAt,
		FinishedAt:        w.FinishedAt,
		LastChange:        w.LastChange,
		LastPolled:        w.LastPolled,
		Polls:             w.Polls,
		WatchdogPosted:    w.WatchdogPosted,
		CancelRequestedBy: w.CancelRequestedBy,
	})
}

func decodeWatch(id string, b []byte) (Watch, error) {
	var r watchRecord
	if err := json.Unmarshal(b, &r); err != nil {
		// Not wrapped: a JSON syntax error could quote part of the response_url.
		return Watch{}, fmt.Errorf("storage: watch %s: malformed record", id)
	}
	if r.V != recordVersion {
		return Watch{}, fmt.Errorf("storage: watch %s: record version %d is not supported by this c66bot", id, r.V)
	}
	return Watch{
		ID:                id,
		Owner:             Identity{Team: r.OwnerTeam, User: r.OwnerUser},
		Channel:           r.Channel,
		MessageTS:         r.MessageTS,
		ResponseURL:       r.ResponseURL,
		StackUID:          r.StackUID,
		StackName:         r.StackName,
		Environment:       r.Environment,
		Verb:              r.Verb,
		Params:            r.Params,
		UserReference:     r.UserReference,
		ActionID:          r.ActionID,
		DeploymentID:      r.DeploymentID,
		Queued:            r.Queued,
		State:             WatchState(r.State),
		GitHash:           r.GitHash,
		Message:           r.Message,
		RequestedAt:       r.RequestedAt,
		StartedAt:         r.StartedAt,
		FinishedAt:        r.FinishedAt,
		LastChange:        r.LastChange,
		LastPolled:        r.LastPolled,
		Polls:             r.Polls,
		WatchdogPosted:    r.WatchdogPosted,
		CancelRequestedBy: r.CancelRequestedBy,
	}, nil
}

func encodeAudit(e AuditEntry) ([]byte, error) {
	return json.Marshal(auditRecord{
		V:               recordVersion,
		At:              e.At,
		Team:            e.Team,
		User:            e.User,
		Channel:         e.Channel,
		Action:          e.Action,
		StackUID:        e.StackUID,
		StackName:       e.StackName,
		Args:            e.Args,
		Result:          e.Result,
		Cloud66ActionID: e.Cloud66ActionID,
		Detail:          e.Detail,
	})
}

func decodeAudit(seq uint64, b []byte) (AuditEntry, error) {
	var r auditRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return AuditEntry{}, fmt.Errorf("storage: audit entry %d: malformed record: %w", seq, err)
	}
	if r.V != recordVersion {
		return AuditEntry{}, fmt.Errorf("storage: audit entry %d: record version %d is not supported by this c66bot", seq, r.V)
	}
	return AuditEntry{
		Seq:             seq,
		At:              r.At,
		Team:            r.Team,
		User:            r.User,
		Channel:         r.Channel,
		Action:          r.Action,
		StackUID:        r.StackUID,
		StackName:       r.StackName,
		Args:            r.Args,
		Result:          r.Result,
		Cloud66ActionID: r.Cloud66ActionID,
		Detail:          r.Detail,
	}, nil
}

func encodeSubscription(sub Subscription, secretHash []byte) ([]byte, error) {
	return json.Marshal(subscriptionRecord{
		V:              recordVersion,
		ID:             sub.ID,
		StackName:      sub.StackName,
		Environment:    sub.Environment,
		Events:         sub.Events,
		EnvFilter:      sub.EnvFilter,
		OnlyFailures:   sub.OnlyFailures,
		SubscriberTeam: sub.Subscriber.Team,
		SubscriberUser: sub.Subscriber.User,
		CreatedAt:      sub.CreatedAt,
		Paused:         sub.Paused,
		PausedReason:   sub.PausedReason,
		PausedAt:       sub.PausedAt,
		WebhookSeenAt:  sub.WebhookSeenAt,
		SecretSHA256:   secretHash,
	})
}

// decodeSubscription decodes the value stored under key
// (<team>:<channel>:<stack uid>) and returns the hash of its webhook secret
// alongside.
func decodeSubscription(key, b []byte) (sub Subscription, secretHash []byte, err error) {
	team, channel, stackUID, ok := splitSubscriptionKey(key)
	if !ok {
		return Subscription{}, nil, fmt.Errorf("storage: subscription: malformed key %q", key)
	}
	var r subscriptionRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return Subscription{}, nil, fmt.Errorf("storage: subscription of %s in %s: malformed record: %w", channel, team, err)
	}
	if r.V != recordVersion {
		return Subscription{}, nil, fmt.Errorf("storage: subscription of %s in %s: record version %d is not supported by this c66bot", channel, team, r.V)
	}
	return Subscription{
		ID:            r.ID,
		Team:          team,
		Channel:       channel,
		StackUID:      stackUID,
		StackName:     r.StackName,
		Environment:   r.Environment,
		Events:        r.Events,
		EnvFilter:     r.EnvFilter,
		OnlyFailures:  r.OnlyFailures,
		Subscriber:    Identity{Team: r.SubscriberTeam, User: r.SubscriberUser},
		CreatedAt:     r.CreatedAt,
		Paused:        r.Paused,
		PausedReason:  r.PausedReason,
		PausedAt:      r.PausedAt,
		WebhookSeenAt: r.WebhookSeenAt,
	}, r.SecretSHA256, nil
}

func encodeAPIToken(t APIToken, hash []byte) ([]byte, error) {
	return json.Marshal(apiTokenRecord{
		V:          recordVersion,
		SHA256:     hash,
		Scopes:     t.Scopes,
		CreatedAt:  t.CreatedAt,
		LastUsedAt: t.LastUsedAt,
		Revoked:    t.Revoked,
		RevokedAt:  t.RevokedAt,
	})
}

// decodeAPIToken decodes the value stored under api_tokens/<name> and
// returns the token's hash alongside.
func decodeAPIToken(name string, b []byte) (t APIToken, hash []byte, err error) {
	var r apiTokenRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return APIToken{}, nil, fmt.Errorf("storage: API token %q: malformed record: %w", name, err)
	}
	if r.V != recordVersion {
		return APIToken{}, nil, fmt.Errorf("storage: API token %q: record version %d is not supported by this c66bot", name, r.V)
	}
	return APIToken{
		Name:       name,
		Scopes:     r.Scopes,
		CreatedAt:  r.CreatedAt,
		LastUsedAt: r.LastUsedAt,
		RevokedAt:  r.RevokedAt,
		Revoked:    r.Revoked,
	}, r.SHA256, nil
}

func encodeOutbox(it OutboxItem) ([]byte, error) {
	return json.Marshal(outboxRecord{
		V:           recordVersion,
		Kind:        it.Kind,
		Payload:     it.Payload,
		At:          it.At,
		Attempts:    it.Attempts,
		NextAttempt: it.NextAttempt,
		Done:        it.Done,
	})
}

func decodeOutbox(id uint64, b []byte) (OutboxItem, error) {
	var r outboxRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return OutboxItem{}, fmt.Errorf("storage: outbox item %d: malformed record: %w", id, err)
	}
	if r.V != recordVersion {
		return OutboxItem{}, fmt.Errorf("storage: outbox item %d: record version %d is not supported by this c66bot", id, r.V)
	}
	return OutboxItem{
		ID:          id,
		Kind:        r.Kind,
		Payload:     r.Payload,
		At:          r.At,
		Attempts:    r.Attempts,
		NextAttempt: r.NextAttempt,
		Done:        r.Done,
	}, nil
}

// stateSize is the number of random bytes in an OAuth state: 256 bits, above
// RFC 6749 §10.10's 2^-160 guessing bound.
const stateSize = 32

// intentIDSize is the number of random bytes in an intent id: 128 bits, so
// guessing a live id among the few pending at once is hopeless, and short
// enough to read in a log line next to a button click.
const intentIDSize = 16

// webhookSecretSize is the number of random bytes in a subscription's
// webhook secret: 256 bits, like an OAuth state, because it is a long-lived
// bearer credential that sits in a URL in Cloud 66's settings.
const webhookSecretSize = 32

// subscriptionIDSize is the number of random bytes in a subscription id. The
// id is not a credential (the secret is), so 128 bits only need to make
// collisions impossible.
const subscriptionIDSize = 16

// apiTokenPrefix starts every API token, so a leaked one is recognisable to
// secret scanners and to a person reading a config file.
const apiTokenPrefix = "c66bot_"

// apiTokenSize is the number of random bytes after apiTokenPrefix: 256 bits.
const apiTokenSize = 32

func newStateString(random []byte) string {
	return base64.RawURLEncoding.EncodeToString(random)
}

// stateKey returns the bbolt key for an OAuth state: its SHA-256, so someone
// who reads the database file cannot replay a pending state. ok is false for
// text that newStateString could not have produced; such input is rejected
// before touching the database.
func stateKey(state string) (key []byte, ok bool) {
	return tokenKey(state, stateSize)
}

// intentKey is stateKey for intent ids, for the same reason: an id is all a
// Slack button carries, so the file must not hold it in the clear.
func intentKey(id string) (key []byte, ok bool) {
	return tokenKey(id, intentIDSize)
}

// webhookSecretKey is stateKey for webhook secrets: the file holds only
// their hashes, so reading it does not let anyone post fake events.
func webhookSecretKey(secret string) (key []byte, ok bool) {
	return tokenKey(secret, webhookSecretSize)
}

// apiTokenKey returns SHA-256 of the whole token, prefix included, if token
// is apiTokenPrefix followed by the base64url of apiTokenSize bytes.
func apiTokenKey(token string) (key []byte, ok bool) {
	rest, found := strings.CutPrefix(token, apiTokenPrefix)
	if !found {
		return nil, false
	}
	if !wellFormed(rest, apiTokenSize) {
		return nil, false
	}
	sum := sha256.Sum256([]byte(token))
	return sum[:], true
}

// tokenKey returns SHA-256 of token if token is the unpadded base64url of
// exactly size bytes.
func tokenKey(token string, size int) (key []byte, ok bool) {
	if !wellFormed(token, size) {
		return nil, false
	}
	sum := sha256.Sum256([]byte(token))
	return sum[:], true
}

// wellFormed reports whether token is the unpadded base64url of exactly size
// bytes, as newStateString writes it.
func wellFormed(token string, size int) bool {
	if len(token) != base64.RawURLEncoding.EncodedLen(size) {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(token)
	return err == nil
}

// encodeUint64 is big-endian so that byte order equals numeric order, which
// bbolt's sorted keys and cursors rely on.
func encodeUint64(v uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, v)
}

func decodeUint64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("storage: want an 8-byte integer, got %d bytes", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// encodeTime stores t as Unix nanoseconds, which are fixed-size and compare
// without parsing; the monotonic clock reading and location are dropped on
// purpose since they mean nothing after a restart.
func encodeTime(t time.Time) []byte {
	return encodeUint64(uint64(t.UnixNano()))
}

func decodeTime(b []byte) (time.Time, error) {
	v, err := decodeUint64(b)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, int64(v)), nil
}
