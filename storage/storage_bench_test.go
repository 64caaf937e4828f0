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
		err := s.SaveLink(ctx, Link{
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
		if _, err := s.GetLink(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}
