package storage

import (
	"bytes"
	"cmp"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// SubscriptionStore holds the channels following stacks' events; get it
// from [DB.Subscriptions].
type SubscriptionStore struct{ db *DB }

// Subscription is a Slack channel following one stack's events, or every
// stack's its subscriber can see. Events reach it two ways: Cloud 66
// webhooks, which carry the subscription's secret in their URL, and polling
// with the subscriber's Cloud 66 token when no webhook arrives.
//
// Subscriptions are not secret and are stored as plain JSON. The webhook
// secret is not part of a Subscription: Subscribe returns it once and the
// file holds only its SHA-256.
type Subscription struct {
	ID            string   // 128 random bits, base64url without padding; set by Subscribe, kept when the same channel and stack re-subscribe
	Team          string   // workspace (or enterprise) id; no ':'
	Channel       string   // no ':'
	StackUID      string   // "" = every stack the subscriber can see ("all")
	StackName     string   // for display
	Environment   string   // for display
	Events        []string // e.g. "deploy.started", "deploy.succeeded", "deploy.failed", "deploy.cancelled", "server.stopped", "server.back"
	EnvFilter     string   // only events of this environment ("" = any)
	OnlyFailures  bool
	Subscriber    Identity  // who subscribed; their Cloud 66 token is used to poll
	CreatedAt     time.Time // set by Subscribe from the store's clock; kept on re-subscribe
	Paused        bool      // the bot could not post in the channel
	PausedReason  string
	PausedAt      time.Time
	WebhookSeenAt time.Time // last time a webhook for this subscription arrived (polling is skipped while webhooks flow)
}

// Subscribe stores sub, replacing the subscription of the same Team,
// Channel and StackUID if there is one, and returns it with a new webhook
// secret.
//
//   - new: sub gets an ID and CreatedAt (the store's clock);
//   - existing: its ID and CreatedAt are kept, and it takes sub's Events,
//     EnvFilter, OnlyFailures and Subscriber (and StackName and Environment
//     when non-empty, in case the stack was renamed).
//
// Either way the result is not paused and its WebhookSeenAt is zero: the
// person re-subscribing is in the channel, and webhooks signed with the old
// secret no longer count, so polling takes over until the new one is used.
//
// Every call issues a fresh secret (32 random bytes, base64url without
// padding) and the previous secret of the subscription stops working. The
// secret is returned only here; the file holds its SHA-256 (see
// BySecret). Subscribe requires a Team and Channel without ':'
// and a valid Subscriber.
//
// The audit entries, if any, are appended in the same transaction when the
// change is made (see updateAudited): a change whose entry cannot be written
// is not made, and the error wraps ErrNotAudited.
func (s *SubscriptionStore) Subscribe(ctx context.Context, sub Subscription, audit ...AuditEntry) (saved Subscription, webhookSecret string, err error) {
	if sub, err = NewSubscription(sub); err != nil {
		return Subscription{}, "", err
	}
	key, _ := subscriptionKey(sub.Team, sub.Channel, sub.StackUID)
	secret, hash, err := NewWebhookSecret()
	if err != nil {
		return Subscription{}, "", fmt.Errorf("storage: subscribe %s in %s: %w", sub.Channel, sub.Team, err)
	}
	newID, err := NewSubscriptionID()
	if err != nil {
		return Subscription{}, "", fmt.Errorf("storage: subscribe %s in %s: %w", sub.Channel, sub.Team, err)
	}
	now := s.db.now()
	err = s.db.updateAudited(ctx, audit, func(tx *bbolt.Tx) error {
		saved = Subscription{}
		sb, err := openSubscriptionBuckets(tx)
		if err != nil {
			return err
		}
		next := sub
		next.ID, next.CreatedAt = newID, now
		if v := sb.subs.Get(key); v != nil {
			cur, oldHash, err := decodeSubscription(key, v)
			if err != nil {
				return err
			}
			next = Resubscribe(cur, next)
			if err := sb.dropSecret(oldHash, cur.ID); err != nil {
				return err
			}
		}
		if err := sb.put(key, next, hash); err != nil {
			return err
		}
		saved = next
		return nil
	})
	if err != nil {
		return Subscription{}, "", fmt.Errorf("storage: subscribe %s in %s to %q: %w", sub.Channel, sub.Team, sub.StackUID, err)
	}
	return saved, secret, nil
}

// Unsubscribe removes the subscription of channel to stackUID ("" for all
// stacks) in team, and its webhook secret, and returns what was removed; an
// error wrapping ErrNotFound means there was none. A record this build
// cannot decode is removed all the same, since unsubscribing is how an
// operator gets rid of it; the returned Subscription then has only Team,
// Channel and StackUID set.
//
// The audit entries, if any, are appended in the same transaction when a
// subscription is removed (see updateAudited): a change whose entry cannot be written
// is not made, and the error wraps ErrNotAudited.
func (s *SubscriptionStore) Unsubscribe(ctx context.Context, team, channel, stackUID string, audit ...AuditEntry) (Subscription, error) {
	key, err := subscriptionKey(team, channel, stackUID)
	if err != nil {
		return Subscription{}, err
	}
	var sub Subscription
	err = s.db.updateAudited(ctx, audit, func(tx *bbolt.Tx) error {
		sub = Subscription{}
		sb, err := openSubscriptionBuckets(tx)
		if err != nil {
			return err
		}
		v := sb.subs.Get(key)
		if v == nil {
			return ErrNotFound
		}
		cur, hash, err := decodeSubscription(key, v)
		if err != nil {
			sub = Subscription{Team: team, Channel: channel, StackUID: stackUID}
			return sb.forgetUnreadable(key)
		}
		if err := sb.dropSecret(hash, cur.ID); err != nil {
			return err
		}
		if bytes.Equal(sb.ids.Get([]byte(cur.ID)), key) {
			if err := sb.ids.Delete([]byte(cur.ID)); err != nil {
				return err
			}
		}
		if err := sb.subs.Delete(key); err != nil {
			return err
		}
		sub = cur
		return nil
	})
	if err != nil {
		return Subscription{}, fmt.Errorf("storage: unsubscribe %s in %s from %q: %w", channel, team, stackUID, err)
	}
	return sub, nil
}

// ForChannel returns the subscriptions of channel in team, sorted
// by StackName (then StackUID, so "all" with its empty name comes first).
// Other channels' and other workspaces' subscriptions are never included.
func (s *SubscriptionStore) ForChannel(ctx context.Context, team, channel string) ([]Subscription, error) {
	prefix, err := subscriptionPrefix(team, channel)
	if err != nil {
		return nil, err
	}
	subs, err := s.list(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("storage: subscriptions of %s in %s: %w", channel, team, err)
	}
	slices.SortFunc(subs, func(a, b Subscription) int {
		return cmp.Or(strings.Compare(a.StackName, b.StackName), strings.Compare(a.StackUID, b.StackUID))
	})
	return subs, nil
}

// All returns every subscription of every team, ordered by
// team, channel and stack uid, for fanning events out and for the pollers.
func (s *SubscriptionStore) All(ctx context.Context) ([]Subscription, error) {
	subs, err := s.list(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("storage: all subscriptions: %w", err)
	}
	// Sorted here because key order is not quite this order: ':' sorts
	// after digits, so "T1:" comes after "T10:".
	slices.SortFunc(subs, func(a, b Subscription) int {
		return cmp.Or(strings.Compare(a.Team, b.Team), strings.Compare(a.Channel, b.Channel), strings.Compare(a.StackUID, b.StackUID))
	})
	return subs, nil
}

// list returns the subscriptions whose keys start with prefix, in key
// order; a nil prefix means all of them.
func (s *SubscriptionStore) list(ctx context.Context, prefix []byte) ([]Subscription, error) {
	var subs []Subscription
	err := s.db.view(ctx, func(tx *bbolt.Tx) error {
		subs = nil
		b, err := bucket(tx, bucketSubscriptions)
		if err != nil {
			return err
		}
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			// Decoding copies everything out of bbolt's memory map.
			sub, _, err := decodeSubscription(k, v)
			if err != nil {
				return err
			}
			subs = append(subs, sub)
		}
		return nil
	})
	return subs, err
}

// BySecret returns the subscription whose current webhook
// secret is secret. It returns an error wrapping ErrNotFound for a secret
// that is malformed, unknown or replaced by a re-subscribe, and for one
// whose subscription is gone. Errors never include the secret.
func (s *SubscriptionStore) BySecret(ctx context.Context, secret string) (Subscription, error) {
	hash, ok := webhookSecretKey(secret)
	if !ok {
		return Subscription{}, fmt.Errorf("storage: subscription by secret: %w", ErrNotFound)
	}
	var sub Subscription
	err := s.db.view(ctx, func(tx *bbolt.Tx) error {
		sb, err := openSubscriptionBuckets(tx)
		if err != nil {
			return err
		}
		key, v, err := follow(hash, sb.secrets, sb.ids, sb.subs)
		if err != nil {
			return err
		}
		got, stored, err := decodeSubscription(key, v)
		if err != nil {
			return err
		}
		// The lookup above was by hash, so its timing says nothing about
		// the secret; comparing against the record's own hash catches an
		// index entry the record does not vouch for, and doing it in
		// constant time is defence in depth.
		if got.ID != string(sb.secrets.Get(hash)) || subtle.ConstantTimeCompare(stored, hash) != 1 {
			return ErrNotFound
		}
		sub = got
		return nil
	})
	if err != nil {
		return Subscription{}, fmt.Errorf("storage: subscription by secret: %w", err)
	}
	return sub, nil
}

// PauseChannel pauses every subscription of channel in team, for when the
// bot can no longer post there (removed from the channel, channel archived),
// and returns the ones it paused, so the caller can tell their subscribers.
// Subscriptions already paused keep their reason and time and are not
// returned. A re-subscribe or ResumeChannel un-pauses them.
func (s *SubscriptionStore) PauseChannel(ctx context.Context, team, channel, reason string) ([]Subscription, error) {
	prefix, err := subscriptionPrefix(team, channel)
	if err != nil {
		return nil, err
	}
	now := s.db.now()
	var paused []Subscription
	err = s.db.update(ctx, func(tx *bbolt.Tx) error {
		paused = nil
		sb, err := openSubscriptionBuckets(tx)
		if err != nil {
			return err
		}
		return sb.editChannel(prefix, func(sub *Subscription) bool {
			if sub.Paused {
				return false
			}
			sub.Paused, sub.PausedReason, sub.PausedAt = true, reason, now
			paused = append(paused, *sub)
			return true
		})
	})
	if errors.Is(err, errNoChanges) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("storage: pause subscriptions of %s in %s: %w", channel, team, err)
	}
	return paused, nil
}

// ResumeChannel un-pauses every subscription of channel in team and
// returns how many were paused.
func (s *SubscriptionStore) ResumeChannel(ctx context.Context, team, channel string) (int, error) {
	prefix, err := subscriptionPrefix(team, channel)
	if err != nil {
		return 0, err
	}
	var n int
	err = s.db.update(ctx, func(tx *bbolt.Tx) error {
		n = 0
		sb, err := openSubscriptionBuckets(tx)
		if err != nil {
			return err
		}
		return sb.editChannel(prefix, func(sub *Subscription) bool {
			if !sub.Paused {
				return false
			}
			sub.Paused, sub.PausedReason, sub.PausedAt = false, "", time.Time{}
			n++
			return true
		})
	})
	if errors.Is(err, errNoChanges) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("storage: resume subscriptions of %s in %s: %w", channel, team, err)
	}
	return n, nil
}

// MarkWebhookSeen records that a webhook for subscription id arrived at at
// (the store's clock when zero), so the poller can leave that subscription
// to the webhooks. WebhookSeenAt only moves forward: a delivery that arrives
// late does not make the webhooks look stale. An error wrapping ErrNotFound
// means there is no such subscription.
func (s *SubscriptionStore) MarkWebhookSeen(ctx context.Context, id string, at time.Time) error {
	if id == "" {
		return fmt.Errorf("storage: mark webhook seen: empty id: %w", ErrNotFound)
	}
	if at.IsZero() {
		at = s.db.now()
	}
	err := s.db.update(ctx, func(tx *bbolt.Tx) error {
		sb, err := openSubscriptionBuckets(tx)
		if err != nil {
			return err
		}
		k, v, err := follow([]byte(id), sb.ids, sb.subs)
		if err != nil {
			return err
		}
		// Cloned because the Put below may reuse the page k points into.
		key := bytes.Clone(k)
		sub, hash, err := decodeSubscription(key, v)
		if err != nil {
			return err
		}
		if sub.ID != id {
			return ErrNotFound
		}
		if !at.After(sub.WebhookSeenAt) {
			return errNoChanges
		}
		sub.WebhookSeenAt = at
		nv, err := encodeSubscription(sub, hash)
		if err != nil {
			return err
		}
		return sb.subs.Put(key, nv)
	})
	if errors.Is(err, errNoChanges) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("storage: mark webhook seen for subscription %s: %w", id, err)
	}
	return nil
}

// subscriptionBuckets are the three buckets behind subscriptions, which
// every write keeps in step: subs (<team>:<channel>:<stack uid> -> record),
// ids (id -> subs key) and secrets (sha256(secret) -> id).
type subscriptionBuckets struct {
	subs, ids, secrets *bbolt.Bucket
}

func openSubscriptionBuckets(tx *bbolt.Tx) (subscriptionBuckets, error) {
	var (
		sb  subscriptionBuckets
		err error
	)
	if sb.subs, err = bucket(tx, bucketSubscriptions); err != nil {
		return subscriptionBuckets{}, err
	}
	if sb.ids, err = bucket(tx, bucketSubscriptionIDs); err != nil {
		return subscriptionBuckets{}, err
	}
	if sb.secrets, err = bucket(tx, bucketSubSecrets); err != nil {
		return subscriptionBuckets{}, err
	}
	return sb, nil
}

// put writes sub under key with the hash of its current secret and indexes
// both.
func (sb subscriptionBuckets) put(key []byte, sub Subscription, hash []byte) error {
	v, err := encodeSubscription(sub, hash)
	if err != nil {
		return err
	}
	if err := sb.subs.Put(key, v); err != nil {
		return err
	}
	if err := sb.ids.Put([]byte(sub.ID), key); err != nil {
		return err
	}
	return sb.secrets.Put(hash, []byte(sub.ID))
}

// dropSecret removes the secret index entry hash, unless it now belongs to
// another subscription (which only a damaged file could arrange).
func (sb subscriptionBuckets) dropSecret(hash []byte, id string) error {
	if len(hash) == 0 || !bytes.Equal(sb.secrets.Get(hash), []byte(id)) {
		return nil
	}
	return sb.secrets.Delete(hash)
}

// forgetUnreadable removes the record under key and every index entry that
// leads to it, found by scanning since the record cannot say its id or hash.
// Subscriptions number in the tens, so the scan is cheap.
func (sb subscriptionBuckets) forgetUnreadable(key []byte) error {
	var ids [][]byte
	if err := sb.ids.ForEach(func(id, k []byte) error {
		if bytes.Equal(k, key) {
			ids = append(ids, bytes.Clone(id))
		}
		return nil
	}); err != nil {
		return err
	}
	var hashes [][]byte
	if err := sb.secrets.ForEach(func(h, id []byte) error {
		if slices.ContainsFunc(ids, func(x []byte) bool { return bytes.Equal(x, id) }) {
			hashes = append(hashes, bytes.Clone(h))
		}
		return nil
	}); err != nil {
		return err
	}
	if err := deleteAll(sb.secrets, hashes); err != nil {
		return err
	}
	if err := deleteAll(sb.ids, ids); err != nil {
		return err
	}
	return sb.subs.Delete(key)
}

// editChannel applies edit to each subscription under prefix and saves
// those for which it reports a change. It returns errNoChanges when there
// were none, so the caller's Update rolls back instead of committing.
func (sb subscriptionBuckets) editChannel(prefix []byte, edit func(*Subscription) bool) error {
	type change struct {
		key, value []byte
	}
	var changes []change
	c := sb.subs.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		sub, hash, err := decodeSubscription(k, v)
		if err != nil {
			return err
		}
		if !edit(&sub) {
			continue
		}
		nv, err := encodeSubscription(sub, hash)
		if err != nil {
			return err
		}
		changes = append(changes, change{bytes.Clone(k), nv})
	}
	if len(changes) == 0 {
		return errNoChanges
	}
	// Written after the loop because writing under a bbolt cursor can make
	// it skip keys.
	for _, ch := range changes {
		if err := sb.subs.Put(ch.key, ch.value); err != nil {
			return err
		}
	}
	return nil
}

// subscriptionKey returns "team:channel:stackUID". Refusing ':' in team and
// channel keeps the key unambiguous and makes "team:channel:" a prefix of
// that channel's subscriptions only; the stack uid, after the second ':',
// may contain anything, or be empty for "all stacks".
func subscriptionKey(team, channel, stackUID string) ([]byte, error) {
	prefix, err := subscriptionPrefix(team, channel)
	if err != nil {
		return nil, err
	}
	return append(prefix, stackUID...), nil
}

// subscriptionPrefix returns "team:channel:".
func subscriptionPrefix(team, channel string) ([]byte, error) {
	if team == "" || strings.Contains(team, ":") {
		return nil, fmt.Errorf("storage: invalid subscription team %q: want a non-empty id without ':'", team)
	}
	if channel == "" || strings.Contains(channel, ":") {
		return nil, fmt.Errorf("storage: invalid subscription channel %q: want a non-empty id without ':'", channel)
	}
	return []byte(team + ":" + channel + ":"), nil
}

// splitSubscriptionKey reverses subscriptionKey.
func splitSubscriptionKey(key []byte) (team, channel, stackUID string, ok bool) {
	team, rest, ok := strings.Cut(string(key), ":")
	if !ok || team == "" {
		return "", "", "", false
	}
	channel, stackUID, ok = strings.Cut(rest, ":")
	if !ok || channel == "" {
		return "", "", "", false
	}
	return team, channel, stackUID, true
}
