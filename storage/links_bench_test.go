package storage

import (
	"fmt"
	"os"
	"testing"
)

// BenchmarkGetLinkAmong10000 is docs/benchmarks.md's token lookup figure
// (target ≤ 20 µs): GetLink, a bbolt read plus unsealing and decoding, for
// a different person each time among 10,000, so the lookup walks a real
// B+tree rather than one hot page. It also reports the file's size per
// person. `go run ./bench -scenario storage` measures the same through
// testing.Benchmark.
func BenchmarkGetLinkAmong10000(b *testing.B) {
	s := mustOpen(b)
	ctx := b.Context()
	const people = 10000
	ids := make([]Identity, people)
	for i := range people {
		ids[i] = Identity{Team: "T0123456789", User: fmt.Sprintf("U%09d", i)}
		err := s.Links().Save(ctx, Link{
			Identity:    ids[i],
			AccessToken: fmt.Sprintf("c66-token-%033d", i), // 43 characters, as Cloud 66's
			TokenType:   "Bearer",
			Scopes:      []string{"public", "redeploy"},
			Account:     "Acme",
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if fi, err := os.Stat(s.Path()); err == nil {
		b.ReportMetric(float64(fi.Size())/people, "file-B/person")
	}

	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Links().Get(ctx, ids[(i*7919)%people]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
