package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
)

// memReading is one look at the bot process's memory.
type memReading struct {
	rss, hwm, anon, file int64 // kB
	threads              int64
}

func (m memReading) String() string {
	return fmt.Sprintf("VmRSS %s (anon %s, file %s), VmHWM %s, %d threads",
		fmtMB(kbToMB(m.rss)), fmtMB(kbToMB(m.anon)), fmtMB(kbToMB(m.file)), fmtMB(kbToMB(m.hwm)), m.threads)
}

// kbToMB converts /proc's kB (which are KiB) to decimal megabytes, the
// unit of the targets.
func kbToMB(kb int64) float64 { return float64(kb) * 1024 / 1e6 }

// runMemory measures target 4: the resident memory of a process that runs
// only the bot (the built cmd/c66bot, configured by environment as in
// production), idle on an empty database, then idle on a database with
// -linked people, -watches active watches and -subscriptions subscriptions.
// The fakes stay in this process.
func runMemory(ctx context.Context, o *options, r *scenarioResult) error {
	bin, err := o.botBinary(ctx)
	if err != nil {
		return err
	}
	idle, _, err := memoryRun(o, bin, seedSpec{})
	if err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	o.logf("memory: idle: %s", idle.reading)
	sp := seedSpec{people: o.linked, watches: o.watches, subscriptions: o.subscriptions}
	loaded, size, err := memoryRun(o, bin, sp)
	if err != nil {
		return fmt.Errorf("loaded: %w", err)
	}
	o.logf("memory: loaded: %s", loaded.reading)

	r.add(atMost("memory.idle.rss", "RSS, idle, empty database", kbToMB(idle.reading.rss), 20, "MB", fmtMB))
	r.add(info("memory.idle.hwm", "Peak RSS (VmHWM), idle", kbToMB(idle.reading.hwm), "MB", fmtMB))
	name := fmt.Sprintf("RSS, %d people, %d active watches, %d subscriptions", o.linked, o.watches, o.subscriptions)
	r.add(atMost("memory.loaded.rss", name, kbToMB(loaded.reading.rss), 40, "MB", fmtMB))
	r.add(info("memory.loaded.hwm", "Peak RSS (VmHWM), loaded", kbToMB(loaded.reading.hwm), "MB", fmtMB))
	r.add(info("memory.loaded.db", "Database file, loaded", float64(size), "bytes", fmtBytes))
	r.add(info("memory.loaded.db.used", "…of which pages in use", float64(loaded.dbUsed), "bytes", fmtBytes))

	r.note("idle: %s (settled %s)", idle.reading, o.settle)
	r.note("loaded: %s (settled %s); %d of %d watches polled Cloud 66 (so were resumed), %d Cloud 66 requests in all", loaded.reading, o.settle, loaded.watchesPolled, o.watches, loaded.c66Requests)
	r.note("RSS is read from /proc/<pid>/status without forcing a GC in the bot (it has no way to be asked), so it includes garbage not yet collected")
	if idle.warn+idle.errs+loaded.warn+loaded.errs > 0 {
		r.note("the bot logged %d warnings and %d errors idle, %d and %d loaded (the loaded watches' polls fail on purpose)", idle.warn, idle.errs, loaded.warn, loaded.errs)
	}
	return nil
}

type memResult struct {
	reading       memReading
	watchesPolled int
	c66Requests   int
	warn, errs    int
	dbUsed        int64
}

func memoryRun(o *options, bin string, sp seedSpec) (memResult, int64, error) {
	var res memResult
	dir, err := tempDir(o.tmp)
	if err != nil {
		return res, 0, err
	}
	sl := bottest.New()
	defer sl.Close()
	c66 := cloud66test.New()
	defer c66.Close()
	// The watches are on stacks the fake does not have; Cloud 66 answering
	// their polls with a 500 keeps them active (a transient failure never
	// ends a watch) while costing the bot what a sleeping watcher costs.
	c66.InjectFault(cloud66test.Fault{PathPrefix: "/api/3/stacks/" + watchStackPrefix, Status: 500})
	key := newKey()
	db := filepath.Join(dir, "c66bot.db")
	start := time.Now()
	size, err := seed(db, key, c66, sp)
	if err != nil {
		return res, 0, fmt.Errorf("seed: %w", err)
	}
	if res.dbUsed, err = dbUsed(db); err != nil {
		return res, 0, err
	}
	if sp.people > 0 {
		o.logf("memory: seeded %d people, %d watches, %d subscriptions in %s (%s)", sp.people, sp.watches, sp.subscriptions, time.Since(start).Round(time.Millisecond), fmtBytes(float64(size)))
	}
	ch, err := startChild(bin, sl, c66, db, key)
	if err != nil {
		return res, 0, err
	}
	defer ch.stop()
	if err := ch.waitConnected(sl, 30*time.Second); err != nil {
		return res, 0, err
	}
	// The bot spreads the first polls of the watches it resumes over one
	// poll interval; the reading is taken once every watch has polled.
	for deadline := time.Now().Add(30 * time.Second); watchesPolled(c66) < sp.watches && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(o.settle)
	st, err := procStatus(ch.pid())
	if err != nil {
		return res, 0, err
	}
	res.reading = memReading{rss: st["VmRSS"], hwm: st["VmHWM"], anon: st["RssAnon"], file: st["RssFile"], threads: st["Threads"]}
	res.watchesPolled = watchesPolled(c66)
	res.c66Requests = c66.RequestCount("", "/api/3")
	if err := ch.stop(); err != nil {
		o.logf("memory: the bot stopped with: %v", err)
	}
	res.warn, res.errs = ch.logCounts()
	return res, size, nil
}

// watchesPolled counts the seeded watches whose stack Cloud 66 was asked
// about.
func watchesPolled(c66 *cloud66test.Server) int {
	polled := map[string]bool{}
	for _, req := range c66.Requests() {
		if rest, ok := strings.CutPrefix(req.Path, "/api/3/stacks/"+watchStackPrefix); ok {
			polled[strings.SplitN(rest, "/", 2)[0]] = true
		}
	}
	return len(polled)
}
