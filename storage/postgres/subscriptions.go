package postgres

import (
	"cmp"
	"context"
	"crypto/subtle"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/c66bot/c66bot/storage"
)

// SubscriptionStore holds the channels following stacks' events, plain
// records keyed by team, channel and stack uid ("" for all stacks); the
// webhook secret is kept only as its SHA-256. Get it from
// [DB.Subscriptions]. It behaves as storage.SubscriptionStore does.
type SubscriptionStore struct{ db *DB }

// subscriptionColumns are what scanSubscription reads.
const subscriptionColumns = `team, channel, stack_uid, record`

// Subscribe stores sub, replacing the subscription of the same Team,
// Channel and StackUID (keeping its ID and CreatedAt, and its StackName and
// Environment when sub's are empty), and returns it with a new webhook
// secret; the previous one stops working. The result is not paused and has
// not seen a webhook. The audit entries, if any, commit with it.
func (s *SubscriptionStore) Subscribe(ctx context.Context, sub storage.Subscription, audit ...storage.AuditEntry) (saved storage.Subscription, webhookSecret string, err error) {
	if sub, err = storage.NewSubscription(sub); err != nil {
		return storage.Subscription{}, "", err
	}
	secret, hash, err := storage.NewWebhookSecret()
	if err != nil {
		return storage.Subscription{}, "", fmt.Errorf("postgres: subscribe %s in %s: %w", sub.Channel, sub.Team, err)
	}
	newID, err := storage.NewSubscriptionID()
	if err != nil {
		return storage.Subscription{}, "", fmt.Errorf("postgres: subscribe %s in %s: %w", sub.Channel, sub.Team, err)
	}
	now := s.db.now()
	err = s.db.update(ctx, audit, func(tx pgx.Tx) error {
		saved = storage.Subscription{}
		next := sub
		next.ID, next.CreatedAt = newID, now
		v, err := storage.EncodeSubscription(next, hash)
		if err != nil {
			return err
		}
		var rec []byte
		found, err := insertOrLock(ctx, tx,
			`INSERT INTO subscriptions (team, channel, stack_uid, id, secret_sha256, record) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (team, channel, stack_uid) DO NOTHING`, []any{sub.Team, sub.Channel, sub.StackUID, next.ID, hash, v},
			`SELECT record FROM subscriptions WHERE team = $1 AND channel = $2 AND stack_uid = $3 FOR UPDATE`, []any{sub.Team, sub.Channel, sub.StackUID}, &rec)
		if err != nil {
			return err
		}
		if found {
			cur, _, err := storage.DecodeSubscription(sub.Team, sub.Channel, sub.StackUID, rec)
			if err != nil {
				return err
			}
			next = storage.Resubscribe(cur, next)
			if err := putSubscription(ctx, tx, next, hash); err != nil {
				return err
			}
		}
		saved = next
		return nil
	})
	if err != nil {
		return storage.Subscription{}, "", fmt.Errorf("postgres: subscribe %s in %s to %q: %w", sub.Channel, sub.Team, sub.StackUID, err)
	}
	return saved, secret, nil
}

// putSubscription rewrites the stored subscription of sub's key with sub
// and the hash of its current secret.
func putSubscription(ctx context.Context, tx pgx.Tx, sub storage.Subscription, hash []byte) error {
	v, err := storage.EncodeSubscription(sub, hash)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE subscriptions SET id = $4, secret_sha256 = $5, record = $6
		WHERE team = $1 AND channel = $2 AND stack_uid = $3`, sub.Team, sub.Channel, sub.StackUID, sub.ID, hash, v)
	return err
}

// Unsubscribe removes the subscription of channel to stackUID ("" for all
// stacks) in team, and its secret, and returns it; storage.ErrNotFound
// means there was none. A record this build cannot decode is removed all
// the same, and only Team, Channel and StackUID are returned. The audit
// entries, if any, commit with a subscription removed.
func (s *SubscriptionStore) Unsubscribe(ctx context.Context, team, channel, stackUID string, audit ...storage.AuditEntry) (storage.Subscription, error) {
	if err := storage.CheckSubscriptionChannel(team, channel); err != nil {
		return storage.Subscription{}, err
	}
	var rec []byte
	err := s.db.write(ctx, audit, func(q querier) error {
		return noRows(q.QueryRow(ctx, `DELETE FROM subscriptions WHERE team = $1 AND channel = $2 AND stack_uid = $3 RETURNING record`,
			team, channel, stackUID).Scan(&rec))
	})
	if err != nil {
		return storage.Subscription{}, fmt.Errorf("postgres: unsubscribe %s in %s from %q: %w", channel, team, stackUID, err)
	}
	sub, _, err := storage.DecodeSubscription(team, channel, stackUID, rec)
	if err != nil {
		return storage.Subscription{Team: team, Channel: channel, StackUID: stackUID}, nil
	}
	return sub, nil
}

// ForChannel returns the subscriptions of channel in team, sorted by
// StackName, then StackUID.
func (s *SubscriptionStore) ForChannel(ctx context.Context, team, channel string) ([]storage.Subscription, error) {
	if err := storage.CheckSubscriptionChannel(team, channel); err != nil {
		return nil, err
	}
	subs, err := s.list(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions WHERE team = $1 AND channel = $2`, team, channel)
	if err != nil {
		return nil, fmt.Errorf("postgres: subscriptions of %s in %s: %w", channel, team, err)
	}
	slices.SortFunc(subs, func(a, b storage.Subscription) int {
		return cmp.Or(strings.Compare(a.StackName, b.StackName), strings.Compare(a.StackUID, b.StackUID))
	})
	return subs, nil
}

// All returns every subscription of every team, ordered by team, channel
// and stack uid.
func (s *SubscriptionStore) All(ctx context.Context) ([]storage.Subscription, error) {
	subs, err := s.list(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions ORDER BY team, channel, stack_uid`)
	if err != nil {
		return nil, fmt.Errorf("postgres: all subscriptions: %w", err)
	}
	return subs, nil
}

func (s *SubscriptionStore) list(ctx context.Context, sql string, args ...any) ([]storage.Subscription, error) {
	var subs []storage.Subscription
	err := s.db.view(ctx, func(q querier) error {
		rows, err := q.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		subs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Subscription, error) {
			sub, _, err := scanSubscription(r)
			return sub, err
		})
		return err
	})
	return subs, err
}

// scanSubscription reads subscriptionColumns.
func scanSubscription(r pgx.Row) (storage.Subscription, []byte, error) {
	var (
		team, channel, stack string
		rec                  []byte
	)
	if err := r.Scan(&team, &channel, &stack, &rec); err != nil {
		return storage.Subscription{}, nil, err
	}
	return storage.DecodeSubscription(team, channel, stack, rec)
}

// BySecret returns the subscription whose current webhook secret is
// secret, or an error wrapping storage.ErrNotFound. Errors never include
// the secret.
func (s *SubscriptionStore) BySecret(ctx context.Context, secret string) (storage.Subscription, error) {
	hash, ok := storage.WebhookSecretHash(secret)
	if !ok {
		return storage.Subscription{}, fmt.Errorf("postgres: subscription by secret: %w", storage.ErrNotFound)
	}
	var (
		sub    storage.Subscription
		stored []byte
	)
	err := s.db.view(ctx, func(q querier) error {
		var err error
		sub, stored, err = scanSubscription(q.QueryRow(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions WHERE secret_sha256 = $1`, hash))
		return noRows(err)
	})
	// The lookup was by hash, so its timing says nothing about the secret;
	// the record must vouch for the column, compared in constant time as
	// defence in depth.
	if err == nil && subtle.ConstantTimeCompare(stored, hash) != 1 {
		err = storage.ErrNotFound
	}
	if err != nil {
		return storage.Subscription{}, fmt.Errorf("postgres: subscription by secret: %w", err)
	}
	return sub, nil
}

// PauseChannel pauses every subscription of channel in team and returns
// those it paused, in stack uid order; those already paused keep their
// reason and time and are not returned.
func (s *SubscriptionStore) PauseChannel(ctx context.Context, team, channel, reason string) ([]storage.Subscription, error) {
	now := s.db.now()
	var paused []storage.Subscription
	err := s.editChannel(ctx, team, channel, func(sub *storage.Subscription) bool {
		if sub.Paused {
			return false
		}
		sub.Paused, sub.PausedReason, sub.PausedAt = true, reason, now
		paused = append(paused, *sub)
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: pause subscriptions of %s in %s: %w", channel, team, err)
	}
	return paused, nil
}

// ResumeChannel un-pauses every subscription of channel in team and
// returns how many were paused.
func (s *SubscriptionStore) ResumeChannel(ctx context.Context, team, channel string) (int, error) {
	var n int
	err := s.editChannel(ctx, team, channel, func(sub *storage.Subscription) bool {
		if !sub.Paused {
			return false
		}
		sub.Paused, sub.PausedReason, sub.PausedAt = false, "", time.Time{}
		n++
		return true
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: resume subscriptions of %s in %s: %w", channel, team, err)
	}
	return n, nil
}

// editChannel applies edit to each subscription of channel in team, in
// stack uid order, in one transaction, and saves those it reports
// changed.
func (s *SubscriptionStore) editChannel(ctx context.Context, team, channel string, edit func(*storage.Subscription) bool) error {
	if err := storage.CheckSubscriptionChannel(team, channel); err != nil {
		return err
	}
	return s.db.update(ctx, nil, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions WHERE team = $1 AND channel = $2
			ORDER BY stack_uid FOR UPDATE`, team, channel)
		if err != nil {
			return err
		}
		type stored struct {
			sub  storage.Subscription
			hash []byte
		}
		subs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (stored, error) {
			sub, hash, err := scanSubscription(r)
			return stored{sub, hash}, err
		})
		if err != nil {
			return err
		}
		for _, st := range subs {
			if edit(&st.sub) {
				if err := putSubscription(ctx, tx, st.sub, st.hash); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// MarkWebhookSeen records that a webhook for subscription id arrived at at
// (the store's clock when zero); WebhookSeenAt only moves forward. An
// error wrapping storage.ErrNotFound means there is no such subscription.
func (s *SubscriptionStore) MarkWebhookSeen(ctx context.Context, id string, at time.Time) error {
	if id == "" {
		return fmt.Errorf("postgres: mark webhook seen: empty id: %w", storage.ErrNotFound)
	}
	if at.IsZero() {
		at = s.db.now()
	}
	err := s.db.update(ctx, nil, func(tx pgx.Tx) error {
		sub, hash, err := scanSubscription(tx.QueryRow(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return noRows(err)
		}
		if sub.ID != id {
			return storage.ErrNotFound
		}
		if !at.After(sub.WebhookSeenAt) {
			return nil
		}
		sub.WebhookSeenAt = at
		return putSubscription(ctx, tx, sub, hash)
	})
	if err != nil {
		return fmt.Errorf("postgres: mark webhook seen for subscription %s: %w", id, err)
	}
	return nil
}
