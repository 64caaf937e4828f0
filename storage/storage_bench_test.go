package storage

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkGetLink measures what every Cloud 66 command pays before its API
// call: a bbolt read of one link among many, plus unsealing and decoding it.
func BenchmarkGetLink(b *testing.B) {
	s := mustOpen(b)
	ctx := b.Context()
	const people = 1000
	for i := range people {
		err := s.Links().Save(ctx, Link{
			Identity:     Identity{Team: "T0123456789", User: fmt.Sprintf("U%09d", i)},
			AccessToken:  fmt.Sprintf("c66-secret-token-%040d", i),
			RefreshToken: fmt.Sprintf("c66-secret-refresh-%040d", i),
			TokenType:    "Bearer",
			Expiry:       time.Now().Add(time.Hour),
			Scopes:       []string{"public", "redeploy", "jobs", "users"},
			Account:      "Acme",
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	id := Identity{Team: "T0123456789", User: fmt.Sprintf("U%09d", people/2)}

	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Links().Get(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendAudit measures one audit append: JSON encoding plus a
// write transaction, whose commit (and fsync) dominates.
func BenchmarkAppendAudit(b *testing.B) {
	s := mustOpen(b)
	ctx := b.Context()
	e := AuditEntry{
		Team: "T0123456789", User: "U0123456789", Channel: "C0123456789",
		Action: "deploy.confirm", StackUID: "5999b763474b0eafa5fafb64bff0ba80", StackName: "Shop",
		Args:   map[string]string{"ref": "main", "services": "web,worker"},
		Result: "ok", Cloud66ActionID: 123456,
	}

	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Audit().Append(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStartSaveWatch measures a deployment's storage cost from start to
// finish: StartWatch, one progress SaveWatch and the final SaveWatch that
// frees the stack, i.e. three sealed write transactions.
func BenchmarkStartSaveWatch(b *testing.B) {
	s := mustOpen(b)
	ctx := b.Context()
	w := Watch{
		Owner:         Identity{Team: "T0123456789", User: "U0123456789"},
		Channel:       "C0123456789",
		ResponseURL:   "https://hooks.slack.com/actions/T0123456789/1234567890/abcdefghijklmnopqrstuvwx",
		StackUID:      "5999b763474b0eafa5fafb64bff0ba80",
		StackName:     "Shop",
		Environment:   "production",
		Params:        map[string]string{"ref": "main", "services": "web"},
		UserReference: "c66bot-0123456789",
	}

	b.ReportAllocs()
	for b.Loop() {
		started, err := s.Watches().Start(ctx, w)
		if err != nil {
			b.Fatal(err)
		}
		started.State, started.ActionID = "deploying", 42
		if err := s.Watches().Save(ctx, started); err != nil {
			b.Fatal(err)
		}
		started.State = "succeeded"
		if err := s.Watches().Save(ctx, started); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckAPIToken measures what every HTTP API request pays to
// authenticate: parsing and hashing the token, then one read transaction
// for the index and the record. LastUsedAt is written at most once a
// minute, so nearly every iteration is read-only, as in production.
func BenchmarkCheckAPIToken(b *testing.B) {
	s := mustOpen(b)
	ctx := b.Context()
	const tokens = 100
	var token string
	for i := range tokens {
		tok, _, err := s.APITokens().Create(ctx, fmt.Sprintf("client-%03d", i), []string{"notify", "audit:read"})
		if err != nil {
			b.Fatal(err)
		}
		if i == tokens/2 {
			token = tok
		}
	}

	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.APITokens().Check(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
}
