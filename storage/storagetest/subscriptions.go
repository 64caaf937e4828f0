package storagetest

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/storage"
)

// TestSubscriptions runs the contract of the SubscriptionStore: one
// subscription per channel and stack, a fresh webhook secret on every
// subscribe, pausing per channel.
func TestSubscriptions(t *testing.T, open Opener) {
	run(t, open, []subtest{
		{"SubscribeUpsert", testSubscribeUpsert},
		{"Unsubscribe", testUnsubscribe},
		{"ForChannel", testChannelSubscriptions},
		{"PauseResumeChannel", testPauseResumeChannel},
		{"MarkWebhookSeen", testMarkWebhookSeen},
		{"Invalid", testSubscriptionInvalid},
	})
}

var (
	subscriptionIDFormat = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)
	webhookSecretFormat  = regexp.MustCompile(`^[A-Za-z0-9_-]{43,}$`)
)

func testSubscription(team, channel, stackUID, stackName string) storage.Subscription {
	return storage.Subscription{
		Team:        team,
		Channel:     channel,
		StackUID:    stackUID,
		StackName:   stackName,
		Environment: "production",
		Events:      []string{"deploy.started", "deploy.succeeded", "deploy.failed"},
		Subscriber:  storage.Identity{Team: team, User: "UALICE"},
	}
}

func mustSubscribe(t *testing.T, s Stores, sub storage.Subscription) (storage.Subscription, string) {
	t.Helper()
	saved, secret, err := s.Subscriptions.Subscribe(t.Context(), sub)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	return saved, secret
}

// stackUIDs returns the stack uids of subs, in order, with "all" for "".
func stackUIDs(subs []storage.Subscription) []string {
	var uids []string
	for _, sub := range subs {
		uid := sub.StackUID
		if uid == "" {
			uid = "all"
		}
		uids = append(uids, uid)
	}
	return uids
}

func testSubscribeUpsert(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()

	first, secret1 := mustSubscribe(t, s, testSubscription("T1", "C1", "s1", "Shop"))
	if !subscriptionIDFormat.MatchString(first.ID) {
		t.Errorf("subscription id %q is not 22 chars of base64url (128 bits)", first.ID)
	}
	if !webhookSecretFormat.MatchString(secret1) {
		t.Errorf("webhook secret %q is not >=43 chars of base64url", secret1)
	}
	if !first.CreatedAt.Equal(clock.Now()) {
		t.Errorf("CreatedAt = %v, want %v", first.CreatedAt, clock.Now())
	}

	// Someone else changes the same channel's subscription to the same stack.
	clock.Advance(time.Hour)
	change := testSubscription("T1", "C1", "s1", "")
	change.Events = []string{"deploy.failed"}
	change.EnvFilter = "production"
	change.OnlyFailures = true
	change.Subscriber = storage.Identity{Team: "T1", User: "UBOB"}
	change.ID = "caller-chosen"
	second, secret2 := mustSubscribe(t, s, change)

	if second.ID != first.ID || !second.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("re-subscribe = id %q created %v, want %q and %v kept", second.ID, second.CreatedAt, first.ID, first.CreatedAt)
	}
	if !slices.Equal(second.Events, change.Events) || second.EnvFilter != "production" || !second.OnlyFailures || second.Subscriber != change.Subscriber {
		t.Errorf("re-subscribe did not take the new settings: %+v", second)
	}
	if second.StackName != "Shop" {
		t.Errorf("StackName = %q, want the stored %q kept when the new one is empty", second.StackName, "Shop")
	}
	if secret2 == secret1 {
		t.Fatal("re-subscribe returned the same secret")
	}

	// The old secret stopped working, the new one works.
	if _, err := s.Subscriptions.BySecret(ctx, secret1); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Subscriptions.BySecret(old secret) = %v, want storage.ErrNotFound", err)
	}
	got, err := s.Subscriptions.BySecret(ctx, secret2)
	if err != nil || got.ID != first.ID || got.Team != "T1" || got.Channel != "C1" || got.StackUID != "s1" || !slices.Equal(got.Events, change.Events) {
		t.Errorf("Subscriptions.BySecret(new secret) = %+v, %v", got, err)
	}

	// Still one subscription, one id and one secret in the indexes.
	subs, err := s.Subscriptions.ForChannel(ctx, "T1", "C1")
	if err != nil || len(subs) != 1 {
		t.Fatalf("Subscriptions.ForChannel = %+v, %v; want one", subs, err)
	}

	// The caller's Events slice is not aliased.
	change.Events[0] = "mutated"
	if subs, _ := s.Subscriptions.All(ctx); subs[0].Events[0] != "deploy.failed" {
		t.Errorf("stored Events = %v after the caller changed its slice", subs[0].Events)
	}
}

func testUnsubscribe(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	ctx := t.Context()
	sub, secret := mustSubscribe(t, s, testSubscription("T1", "C1", "s1", "Shop"))
	other, otherSecret := mustSubscribe(t, s, testSubscription("T1", "C1", "", ""))

	got, err := s.Subscriptions.Unsubscribe(ctx, "T1", "C1", "s1")
	if err != nil || got.ID != sub.ID || got.StackName != "Shop" {
		t.Fatalf("Unsubscribe = %+v, %v; want the removed subscription", got, err)
	}
	if _, err := s.Subscriptions.BySecret(ctx, secret); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Subscriptions.BySecret after unsubscribe = %v, want storage.ErrNotFound", err)
	}
	if err := s.Subscriptions.MarkWebhookSeen(ctx, sub.ID, time.Now()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("MarkWebhookSeen after unsubscribe = %v, want storage.ErrNotFound", err)
	}
	if _, err := s.Subscriptions.Unsubscribe(ctx, "T1", "C1", "s1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second Unsubscribe = %v, want storage.ErrNotFound", err)
	}
	// The "all stacks" subscription of the same channel is untouched.
	if got, err := s.Subscriptions.BySecret(ctx, otherSecret); err != nil || got.ID != other.ID {
		t.Errorf("other subscription after unsubscribe = %+v, %v", got, err)
	}

	// Subscribing again starts afresh.
	again, _ := mustSubscribe(t, s, testSubscription("T1", "C1", "s1", "Shop"))
	if again.ID == sub.ID {
		t.Error("subscription after unsubscribe reused the old id")
	}
}

func testChannelSubscriptions(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	ctx := t.Context()
	for _, sub := range []storage.Subscription{
		testSubscription("T1", "C1", "s-zeta", "Zeta"),
		testSubscription("T1", "C1", "s-alpha", "Alpha"),
		testSubscription("T1", "C1", "", ""),
		testSubscription("T1", "C10", "s-alpha", "Alpha"),
		testSubscription("T1", "C2", "s-alpha", "Alpha"),
		testSubscription("T10", "C1", "s-zeta", "Zeta"),
		testSubscription("T2", "C1", "s-alpha", "Alpha"),
	} {
		mustSubscribe(t, s, sub)
	}

	tests := []struct {
		team, channel string
		want          []string
	}{
		{"T1", "C1", []string{"all", "s-alpha", "s-zeta"}},
		{"T1", "C10", []string{"s-alpha"}},
		{"T1", "C2", []string{"s-alpha"}},
		{"T10", "C1", []string{"s-zeta"}},
		{"T2", "C1", []string{"s-alpha"}},
		{"T2", "C2", nil},
		{"T3", "C1", nil},
	}
	for _, tc := range tests {
		t.Run(tc.team+"/"+tc.channel, func(t *testing.T) {
			t.Parallel()
			subs, err := s.Subscriptions.ForChannel(ctx, tc.team, tc.channel)
			if err != nil {
				t.Fatal(err)
			}
			if got := stackUIDs(subs); !slices.Equal(got, tc.want) {
				t.Errorf("stacks = %v, want %v", got, tc.want)
			}
			for _, sub := range subs {
				if sub.Team != tc.team || sub.Channel != tc.channel {
					t.Errorf("subscription of %s/%s listed for %s/%s", sub.Team, sub.Channel, tc.team, tc.channel)
				}
			}
		})
	}

	all, err := s.Subscriptions.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var where []string
	for _, sub := range all {
		where = append(where, sub.Team+"/"+sub.Channel+"/"+stackUIDs([]storage.Subscription{sub})[0])
	}
	want := []string{"T1/C1/all", "T1/C1/s-alpha", "T1/C1/s-zeta", "T1/C10/s-alpha", "T1/C2/s-alpha", "T10/C1/s-zeta", "T2/C1/s-alpha"}
	if !slices.Equal(where, want) {
		t.Errorf("Subscriptions.All = %v, want %v", where, want)
	}
}

func testPauseResumeChannel(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()
	mustSubscribe(t, s, testSubscription("T1", "C1", "s1", "One"))
	mustSubscribe(t, s, testSubscription("T1", "C1", "s2", "Two"))
	mustSubscribe(t, s, testSubscription("T1", "C2", "s1", "One"))
	mustSubscribe(t, s, testSubscription("T2", "C1", "s1", "One"))

	paused, err := s.Subscriptions.PauseChannel(ctx, "T1", "C1", "not_in_channel")
	if err != nil || !slices.Equal(stackUIDs(paused), []string{"s1", "s2"}) {
		t.Fatalf("PauseChannel = %v, %v; want s1 and s2", stackUIDs(paused), err)
	}
	for _, sub := range paused {
		if !sub.Paused || sub.PausedReason != "not_in_channel" || !sub.PausedAt.Equal(clock.Now()) {
			t.Errorf("returned %s = paused %v %q at %v", sub.StackUID, sub.Paused, sub.PausedReason, sub.PausedAt)
		}
	}

	// Pausing again pauses nothing new and keeps the first reason and time.
	clock.Advance(time.Minute)
	if again, err := s.Subscriptions.PauseChannel(ctx, "T1", "C1", "channel_not_found"); err != nil || len(again) != 0 {
		t.Errorf("second PauseChannel = %v, %v; want none", stackUIDs(again), err)
	}
	states := func() map[string]storage.Subscription {
		t.Helper()
		all, err := s.Subscriptions.All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]storage.Subscription{}
		for _, sub := range all {
			m[sub.Team+"/"+sub.Channel+"/"+sub.StackUID] = sub
		}
		return m
	}
	for where, sub := range states() {
		wantPaused := strings.HasPrefix(where, "T1/C1/")
		if sub.Paused != wantPaused {
			t.Errorf("%s paused = %v, want %v", where, sub.Paused, wantPaused)
		}
		if wantPaused && sub.PausedReason != "not_in_channel" {
			t.Errorf("%s reason = %q, want the first one kept", where, sub.PausedReason)
		}
	}

	// Re-subscribing un-pauses that one subscription.
	mustSubscribe(t, s, testSubscription("T1", "C1", "s2", "Two"))
	if sub := states()["T1/C1/s2"]; sub.Paused || sub.PausedReason != "" || !sub.PausedAt.IsZero() {
		t.Errorf("re-subscribed s2 = paused %v %q at %v; want un-paused", sub.Paused, sub.PausedReason, sub.PausedAt)
	}

	n, err := s.Subscriptions.ResumeChannel(ctx, "T1", "C1")
	if err != nil || n != 1 {
		t.Errorf("ResumeChannel = %d, %v; want 1 (s1)", n, err)
	}
	if n, err := s.Subscriptions.ResumeChannel(ctx, "T1", "C1"); err != nil || n != 0 {
		t.Errorf("second ResumeChannel = %d, %v; want 0", n, err)
	}
	for where, sub := range states() {
		if sub.Paused || sub.PausedReason != "" || !sub.PausedAt.IsZero() {
			t.Errorf("%s still paused after resume: %+v", where, sub)
		}
	}

	// A channel without subscriptions is not an error.
	if paused, err := s.Subscriptions.PauseChannel(ctx, "T9", "C9", "x"); err != nil || len(paused) != 0 {
		t.Errorf("PauseChannel of an empty channel = %v, %v", paused, err)
	}
}

func testMarkWebhookSeen(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()
	sub, secret := mustSubscribe(t, s, testSubscription("T1", "C1", "s1", "Shop"))
	seen := func() time.Time {
		t.Helper()
		got, err := s.Subscriptions.BySecret(ctx, secret)
		if err != nil {
			t.Fatal(err)
		}
		return got.WebhookSeenAt
	}
	if !seen().IsZero() {
		t.Fatalf("new subscription WebhookSeenAt = %v, want zero", seen())
	}

	t0 := clock.Now().Add(-time.Second)
	steps := []struct {
		name string
		at   time.Time
		want time.Time
	}{
		{"first", t0, t0},
		{"later", t0.Add(time.Minute), t0.Add(time.Minute)},
		{"late delivery does not go back", t0.Add(30 * time.Second), t0.Add(time.Minute)},
		{"zero means now", time.Time{}, clock.Now().Add(2 * time.Minute)},
	}
	clock.Advance(2 * time.Minute)
	// Sequential: each step builds on the previous one.
	for _, st := range steps {
		if err := s.Subscriptions.MarkWebhookSeen(ctx, sub.ID, st.at); err != nil {
			t.Fatalf("%s: MarkWebhookSeen: %v", st.name, err)
		}
		if got := seen(); !got.Equal(st.want) {
			t.Errorf("%s: WebhookSeenAt = %v, want %v", st.name, got, st.want)
		}
	}

	for _, id := range []string{"", "unknown", sub.ID + "x"} {
		if err := s.Subscriptions.MarkWebhookSeen(ctx, id, clock.Now()); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("MarkWebhookSeen(%q) = %v, want storage.ErrNotFound", id, err)
		}
	}

	// A re-subscribe rotates the secret, so webhooks seen so far no longer
	// show the new one is in use.
	again, secret := mustSubscribe(t, s, testSubscription("T1", "C1", "s1", "Shop"))
	if !again.WebhookSeenAt.IsZero() || !seen().IsZero() {
		t.Errorf("WebhookSeenAt after re-subscribe = %v, want zero", again.WebhookSeenAt)
	}
}

func testSubscriptionInvalid(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	ctx := t.Context()
	_, genuine := mustSubscribe(t, s, testSubscription("T1", "C1", "s1", "Shop"))

	t.Run("subscribe", func(t *testing.T) {
		edits := []struct {
			name string
			edit func(*storage.Subscription)
		}{
			{"no team", func(sub *storage.Subscription) { sub.Team = "" }},
			{"colon in team", func(sub *storage.Subscription) { sub.Team = "T:1" }},
			{"no channel", func(sub *storage.Subscription) { sub.Channel = "" }},
			{"colon in channel", func(sub *storage.Subscription) { sub.Channel = "C:1" }},
			{"no subscriber", func(sub *storage.Subscription) { sub.Subscriber = storage.Identity{} }},
			{"subscriber without user", func(sub *storage.Subscription) { sub.Subscriber.User = "" }},
		}
		for _, tc := range edits {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				sub := testSubscription("T1", "C9", "s1", "Shop")
				tc.edit(&sub)
				if _, secret, err := s.Subscriptions.Subscribe(ctx, sub); err == nil || secret != "" {
					t.Errorf("Subscribe = %q, %v; want an error and no secret", secret, err)
				}
			})
		}
	})
	t.Run("channel", func(t *testing.T) {
		for _, tc := range []struct{ team, channel string }{{"", "C1"}, {"T1", ""}, {"T:1", "C1"}, {"T1", "C:1"}} {
			if _, err := s.Subscriptions.ForChannel(ctx, tc.team, tc.channel); err == nil {
				t.Errorf("Subscriptions.ForChannel(%q, %q) succeeded", tc.team, tc.channel)
			}
			if _, err := s.Subscriptions.PauseChannel(ctx, tc.team, tc.channel, "x"); err == nil {
				t.Errorf("PauseChannel(%q, %q) succeeded", tc.team, tc.channel)
			}
		}
	})
	t.Run("secrets", func(t *testing.T) {
		for _, secret := range []string{"", "abc", genuine + "A", genuine[:42], "!" + genuine[1:], "+" + genuine[1:], strings.Repeat("A", 43)} {
			t.Run(secret, func(t *testing.T) {
				t.Parallel()
				if _, err := s.Subscriptions.BySecret(ctx, secret); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("Subscriptions.BySecret(%q) = %v, want storage.ErrNotFound", secret, err)
				}
			})
		}
	})
	if _, err := s.Subscriptions.BySecret(ctx, genuine); err != nil {
		t.Errorf("genuine secret after the forgeries: %v", err)
	}
}
