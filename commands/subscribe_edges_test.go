package commands

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/c66bot/c66bot/notify"
	"github.com/c66bot/c66bot/storage"
)

// fakeSubscriptions keeps subscriptions in memory, by channel and stack.
type fakeSubscriptions struct {
	mu    sync.Mutex
	subs  []storage.Subscription
	saved int // Subscribe calls
}

func (f *fakeSubscriptions) Subscribe(_ context.Context, sub storage.Subscription, _ ...storage.AuditEntry) (storage.Subscription, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.saved++
	f.subs = slices.DeleteFunc(f.subs, func(s storage.Subscription) bool {
		return s.Team == sub.Team && s.Channel == sub.Channel && s.StackUID == sub.StackUID
	})
	f.subs = append(f.subs, sub)
	return sub, "s3cret-webhook", nil
}

func (f *fakeSubscriptions) Unsubscribe(_ context.Context, team, channel, stackUID string, _ ...storage.AuditEntry) (storage.Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, s := range f.subs {
		if s.Team == team && s.Channel == channel && s.StackUID == stackUID {
			f.subs = slices.Delete(f.subs, i, i+1)
			return s, nil
		}
	}
	return storage.Subscription{}, storage.ErrNotFound
}

func (f *fakeSubscriptions) ForChannel(_ context.Context, team, channel string) ([]storage.Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []storage.Subscription
	for _, s := range f.subs {
		if s.Team == team && s.Channel == channel {
			out = append(out, s)
		}
	}
	return out, nil
}

func (f *fakeSubscriptions) only(t *testing.T) storage.Subscription {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.subs) != 1 {
		t.Fatalf("%d subscriptions, want 1: %+v", len(f.subs), f.subs)
	}
	return f.subs[0]
}

// subscribeRouter is a router over the test stacks and subs; hookBase ""
// is a bot without a public URL.
func subscribeRouter(t *testing.T, subs *fakeSubscriptions, hookBase string) (*Router, *outcomes) {
	t.Helper()
	heard := &outcomes{}
	r, _ := newTestRouter(t, true, &fakeCloud66{stacks: testStacks()}, func(d *Deps) {
		d.Subscriptions = subs
		d.Observe = heard.add
		if hookBase != "" {
			d.WebhookURL = func(secret string) string { return hookBase + "/hooks/cloud66/" + secret }
		}
	})
	return r, heard
}

// A subscribe that cannot be right is refused, privately, before anything
// is saved, with the reason in the person's words.
func TestSubscribeRefusals(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		text    string
		want    []string
		notWant []string
	}{
		{"subscribe shop:production exploded",
			[]string{"I don't know the event `exploded`.", "Events: started, succeeded (success, ok), failed", "deploys, servers, all", "Usage: `/c66 subscribe"},
			[]string{"notify:", "notify: unknown"}},
		{"subscribe shop:production failed,Statred",
			[]string{"I don't know the event `statred`."}, []string{"notify:"}},
		{"subscribe shop:production started succeeded only=failures",
			[]string{"`only=failures` keeps deploy.failed and server.stopped", "deploy.started, deploy.succeeded has none of them", "nothing would ever be posted", "Add `failed` or `stopped`"},
			nil},
		{"subscribe all back only=failures",
			[]string{"server.back has none of them"}, nil},
		{"subscribe shop:staging env=production",
			[]string{"*shop* · staging is in `staging`, so `env=production` would let nothing through.", "Subscribe to `shop:production` instead, or leave out `env=`."},
			nil},
		{"subscribe api env=staging failed",
			[]string{"*api* · production is in `production`, so `env=staging`", "`api:staging`"}, nil},
	} {
		t.Run(tt.text, func(t *testing.T) {
			t.Parallel()
			subs := &fakeSubscriptions{}
			r, heard := subscribeRouter(t, subs, "https://bot.example")
			reply := send(t, r, tt.text)
			hasAll(t, replyText(t, reply), tt.want, tt.notWant)
			if reply.InChannel || reply.Private != nil {
				t.Errorf("a refusal went to the channel or carried more: %+v", reply)
			}
			if subs.saved != 0 {
				t.Errorf("%d subscriptions saved by a refusal", subs.saved)
			}
			if got := heard.last(); got != "subscribe usage" {
				t.Errorf("outcome %q, want subscribe usage", got)
			}
		})
	}
}

// What a subscription posts is what its reply says, in the channel; its
// webhook URL, a secret, goes to the subscriber alone, with advice that
// fits a stack or every stack.
func TestSubscribeAnnouncesWhatWillBePosted(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, text, hookBase string
		events               []string
		announce, notAnnoun  []string
		private, notPrivate  []string
	}{
		{name: "all failures", text: "subscribe all only=failures", hookBase: "https://bot.example",
			events:    []string{notify.DeployFailed},
			announce:  []string{"<#C1> now follows *every stack* <@U1> can see: deploy.failed."},
			notAnnoun: []string{"deploy.started", "deploy.succeeded", "deploy.cancelled", "server.back", "failures only", "s3cret", "/hooks/"},
			private: []string{"https://bot.example/hooks/cloud66/s3cret-webhook", "on each stack you want instant notices from", "the one URL serves them all",
				"Webhook or not, I check your stacks"},
			notPrivate: []string{"the stack →", "Until it is called"}},
		{name: "all events, failures", text: "subscribe all all only=failures", hookBase: "https://bot.example",
			events:    notify.FailureEvents,
			announce:  []string{"<#C1> now follows *every stack* <@U1> can see: deploy.failed, server.stopped."},
			notAnnoun: []string{"deploy.started", "deploy.succeeded", "server.back", "failures only"}},
		{name: "one stack", text: "subscribe shop:production deploys only=failures env=PRODUCTION", hookBase: "https://bot.example",
			events:     []string{notify.DeployFailed},
			announce:   []string{"now follows *shop* · production: deploy.failed in PRODUCTION."},
			notAnnoun:  []string{"deploy.started", "s3cret"},
			private:    []string{"https://bot.example/hooks/cloud66/s3cret-webhook", "In Cloud 66: the stack → *Settings & Information*", "Until it is called"},
			notPrivate: []string{"each stack"}},
		{name: "all in one environment", text: "subscribe all env=production", hookBase: "https://bot.example",
			events:   notify.DefaultEvents(),
			announce: []string{"*every stack* <@U1> can see: deploy.succeeded, deploy.failed in production."}},
		{name: "no public URL", text: "subscribe shop:production",
			events:    notify.DefaultEvents(),
			announce:  []string{"now follows *shop* · production: deploy.succeeded, deploy.failed.", "Cloud 66 can't call this bot (it has no public URL), so I check Cloud 66 with <@U1>'s token"},
			notAnnoun: []string{"/hooks/"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			subs := &fakeSubscriptions{}
			r, heard := subscribeRouter(t, subs, tt.hookBase)
			reply := send(t, r, tt.text)
			if !reply.InChannel {
				t.Error("the subscription was not announced in the channel")
			}
			hasAll(t, replyText(t, reply), tt.announce, tt.notAnnoun)
			if got := heard.last(); got != "subscribe ok" {
				t.Errorf("outcome %q, want subscribe ok", got)
			}
			if got := subs.only(t).Events; !slices.Equal(got, tt.events) {
				t.Errorf("saved events %v, want %v", got, tt.events)
			}
			switch {
			case tt.hookBase == "" && reply.Private != nil:
				t.Errorf("webhook advice without a webhook: %+v", reply.Private)
			case tt.hookBase != "" && reply.Private == nil:
				t.Fatal("no private part with the webhook URL")
			case tt.hookBase != "":
				if reply.Private.InChannel {
					t.Error("the webhook URL went to the channel")
				}
				hasAll(t, replyText(t, *reply.Private), tt.private, tt.notPrivate)
			}
		})
	}
}

// Subscribing and unsubscribing change the channel, so both are announced
// there; what changes nothing stays private.
func TestSubscribeAndUnsubscribeBothAnnounced(t *testing.T) {
	t.Parallel()
	subs := &fakeSubscriptions{}
	r, _ := subscribeRouter(t, subs, "https://bot.example")
	for _, step := range []struct {
		text      string
		inChannel bool
		want      string
	}{
		{"subscribe shop:production", true, "now follows *shop* · production"},
		{"unsubscribe api", false, "This channel doesn't follow `api`."},
		{"unsubscribe shop:production", true, "no longer follows *shop* · production"},
		{"unsubscribe shop:production", false, "This channel doesn't follow"},
	} {
		reply := send(t, r, step.text)
		if reply.InChannel != step.inChannel {
			t.Errorf("%q: in channel = %v, want %v", step.text, reply.InChannel, step.inChannel)
		}
		hasAll(t, replyText(t, reply), []string{step.want}, nil)
	}
}

// A subscription stored before only=failures narrowed its events is
// listed with what it really posts.
func TestSubscriptionsListWhatPasses(t *testing.T) {
	t.Parallel()
	subs := &fakeSubscriptions{subs: []storage.Subscription{{
		Team: "T1", Channel: "C1", StackName: allStacks, Subscriber: ana.Identity(),
		Events: notify.AllEvents, OnlyFailures: true, EnvFilter: "production",
	}}}
	r, _ := subscribeRouter(t, subs, "")
	got := replyText(t, send(t, r, "subscriptions"))
	hasAll(t, got, []string{"deploy.failed, server.stopped in production"}, []string{"deploy.started", "server.back", "failures only"})
}

var _ Subscriptions = (*fakeSubscriptions)(nil)
