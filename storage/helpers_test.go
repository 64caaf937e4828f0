package storage

import (
	"testing"
	"time"
)

// The helpers below set up what the bbolt-specific tests of this package
// need. The behaviour of each kind is tested by the contract suites in
// storage/storagetest (see contract_test.go), which have their own.

func testPending(id Identity, tag string) PendingLogin {
	return PendingLogin{Identity: id, Channel: "C-" + tag, ResponseURL: "https://hooks.slack.com/commands/" + tag,
		Verifier: "verifier-" + tag + "-0123456789012345678901234567890123", RedirectURL: "https://bot.example.com/oauth/callback"}
}

func mustCreateState(t *testing.T, s *DB, p PendingLogin) string {
	t.Helper()
	state, err := s.Logins().Create(t.Context(), p)
	if err != nil {
		t.Fatalf("create login state: %v", err)
	}
	return state
}

func testIntent(requester Identity, tag string) Intent {
	return Intent{Kind: "deploy", Requester: requester, Channel: "C-" + tag, ResponseURL: "https://hooks.slack.com/actions/T1/" + tag,
		StackUID: "stack-" + tag, StackName: "Shop " + tag, Environment: "production", Params: map[string]string{"ref": "main"}}
}

func mustCreateIntent(t *testing.T, s *DB, in Intent) Intent {
	t.Helper()
	got, err := s.Intents().Create(t.Context(), in)
	if err != nil {
		t.Fatalf("create intent: %v", err)
	}
	return got
}

func testWatch(owner Identity, stack string) Watch {
	return Watch{Owner: owner, Channel: "C1", ResponseURL: "https://hooks.slack.com/actions/T1/" + stack, StackUID: stack,
		StackName: "Shop " + stack, Environment: "production", Params: map[string]string{"ref": "main"}, UserReference: "c66bot-" + stack}
}

func mustStartWatch(t *testing.T, s *DB, w Watch) Watch {
	t.Helper()
	got, err := s.Watches().Start(t.Context(), w)
	if err != nil {
		t.Fatalf("start watch on %s: %v", w.StackUID, err)
	}
	return got
}

func mustSaveWatch(t *testing.T, s *DB, w Watch) {
	t.Helper()
	if err := s.Watches().Save(t.Context(), w); err != nil {
		t.Fatalf("save watch %s: %v", w.ID, err)
	}
}

// activeIDs returns the ids of the unfinished watches, in order.
func activeIDs(t *testing.T, s *DB) []string {
	t.Helper()
	ws, err := s.Watches().Active(t.Context())
	if err != nil {
		t.Fatalf("active watches: %v", err)
	}
	ids := []string{}
	for _, w := range ws {
		ids = append(ids, w.ID)
	}
	return ids
}

func testSubscription(team, channel, stackUID, stackName string) Subscription {
	return Subscription{Team: team, Channel: channel, StackUID: stackUID, StackName: stackName, Environment: "production",
		Events: []string{"deploy.succeeded", "deploy.failed"}, Subscriber: Identity{team, "UALICE"}}
}

func mustSubscribe(t *testing.T, s *DB, sub Subscription) (Subscription, string) {
	t.Helper()
	saved, secret, err := s.Subscriptions().Subscribe(t.Context(), sub)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	return saved, secret
}

func mustCreateAPIToken(t *testing.T, s *DB, name string, scopes ...string) (string, APIToken) {
	t.Helper()
	token, rec, err := s.APITokens().Create(t.Context(), name, scopes)
	if err != nil {
		t.Fatalf("create API token %q: %v", name, err)
	}
	return token, rec
}

func mustFirstTime(t *testing.T, s *DB, key string, ttl time.Duration, want bool) {
	t.Helper()
	got, err := s.Dedup().FirstTime(t.Context(), key, ttl)
	if err != nil || got != want {
		t.Errorf("FirstTime(%q) = %v, %v; want %v", key, got, err, want)
	}
}

// scanAll collects the whole audit log.
func scanAll(t *testing.T, s *DB) []AuditEntry {
	t.Helper()
	var got []AuditEntry
	if err := s.Audit().Scan(t.Context(), time.Time{}, func(e AuditEntry) error {
		got = append(got, e)
		return nil
	}); err != nil {
		t.Fatalf("scan audit: %v", err)
	}
	return got
}
