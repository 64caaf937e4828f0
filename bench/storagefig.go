package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/storage"
)

// runStorage measures target 5: one token lookup and unseal
// (storage.LinkStore.Get, what every Cloud 66 command pays first) among -linked
// people, with testing.Benchmark, and the database size for that many.
func runStorage(ctx context.Context, o *options, r *scenarioResult) error {
	dir, err := tempDir(o.tmp)
	if err != nil {
		return err
	}
	c66 := cloud66test.New()
	defer c66.Close()
	key := newKey()
	db := filepath.Join(dir, "c66bot.db")
	start := time.Now()
	size, err := seed(db, key, c66, seedSpec{people: o.linked})
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	seeding := time.Since(start)
	used, err := dbUsed(db)
	if err != nil {
		return err
	}
	st, err := storage.Open(storage.Options{Path: db, Keys: [][]byte{key}})
	if err != nil {
		return err
	}
	defer st.Close()

	ids := make([]storage.Identity, o.linked)
	for i := range ids {
		ids[i] = storage.Identity{Team: benchTeam, User: person(i)}
	}
	var failed error
	res, err := benchmark(o.benchtime, func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			// A different person each time, spread over the whole file,
			// rather than one hot key.
			if _, err := st.Links().Get(ctx, ids[(i*7919)%len(ids)]); err != nil {
				failed = err
				b.FailNow()
			}
			i++
		}
	})
	if err != nil {
		return err
	}
	if failed != nil {
		return fmt.Errorf("GetLink: %w", failed)
	}
	perOp := float64(res.NsPerOp()) / 1000
	r.add(atMost("storage.getlink", fmt.Sprintf("Token lookup and unseal (GetLink), %d people", o.linked), perOp, 20, "µs", fmtUs))
	r.add(info("storage.db", fmt.Sprintf("Database file, %d people", o.linked), float64(size), "bytes", fmtBytes))
	r.add(info("storage.db.used", "…of which pages in use (bbolt high-water mark)", float64(used), "bytes", fmtBytes))
	r.add(info("storage.db.per-person", "…in use per person", float64(used)/float64(max(o.linked, 1)), "bytes", fmtBytes))
	r.note("GetLink: %s; %d B/op, %d allocs/op", res.String(), res.AllocedBytesPerOp(), res.AllocsPerOp())
	r.note("bbolt grows its file in power-of-two steps up to 1 GiB, so the file size is a step above what the pages need")
	r.note("seeding %d links (one SaveLink, so one fsync'd bbolt transaction, each) took %s", o.linked, seeding.Round(time.Millisecond))
	return nil
}

// benchmark runs testing.Benchmark with -test.benchtime set to benchtime
// for the call (and put back after, so a surrounding `go test -bench` run
// is not affected).
func benchmark(benchtime string, f func(b *testing.B)) (testing.BenchmarkResult, error) {
	fl := flag.Lookup("test.benchtime")
	if fl == nil {
		testing.Init()
		fl = flag.Lookup("test.benchtime")
	}
	old := fl.Value.String()
	if err := fl.Value.Set(benchtime); err != nil {
		return testing.BenchmarkResult{}, fmt.Errorf("-benchtime: %w", err)
	}
	defer fl.Value.Set(old)
	return testing.Benchmark(f), nil
}
