package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/deploy"
)

// Default poll schedule of package deploy (deploy.PollConfig's defaults),
// scaled down by -speedup for the accelerated deployment.
const (
	defaultPollInitial = 5 * time.Second
	defaultPollMax     = 30 * time.Second
)

// runRequests measures target 3: Cloud 66 requests for a cold and a warm
// `servers shop:production` by one person, and for following a deployment
// of -deploy-duration to its end.
//
// The deployment runs on an accelerated clock: the fake Cloud 66's clock
// (which the bot also reads, as Config.Now) advances -speedup times faster
// than real time, and the bot's poll intervals are the defaults divided by
// -speedup, so on the fake clock the bot polls exactly as with the
// defaults while the run takes deploy-duration ÷ speedup.
func runRequests(ctx context.Context, o *options, r *scenarioResult) error {
	clock := cloud66test.NewClock(time.Now().UTC().Truncate(time.Second))
	e, err := startInproc(inprocOptions{
		parentDir: o.tmp,
		people:    1 + len(verbCommands),
		clock:     clock,
		c66Opts: []cloud66test.Option{cloud66test.WithDeployDuration(o.deployDuration),
			cloud66test.WithActionDuration(cloud66test.ActionRestart, restartDuration)},
		poll: deploy.PollConfig{Initial: scaleDur(defaultPollInitial, o.speedup), Max: scaleDur(defaultPollMax, o.speedup)},
	})
	if err != nil {
		return err
	}
	defer e.close()
	user := person(0)

	servers := func() (int, string, error) {
		e.c66.ResetRequests()
		reply, err := runCommand(ctx, e.slack, user, "servers shop:production")
		if err != nil {
			return 0, "", err
		}
		return e.c66.RequestCount("", "/api/3"), reply, nil
	}
	cold, reply, err := servers()
	if err != nil {
		return fmt.Errorf("cold servers: %w", err)
	}
	if !strings.Contains(reply, "Servers of shop:production") {
		r.note("unexpected reply to the cold servers command: %s", oneLine(reply))
	}
	warm, reply, err := servers()
	if err != nil {
		return fmt.Errorf("warm servers: %w", err)
	}
	if !strings.Contains(reply, "Servers of shop:production") {
		r.note("unexpected reply to the warm servers command: %s", oneLine(reply))
	}
	r.add(atMost("requests.servers.cold", "Cloud 66 requests, cold `servers shop:production`", float64(cold), 2, "requests", fmtCount))
	r.add(atMost("requests.servers.warm", "Cloud 66 requests, warm `servers shop:production`", float64(warm), 1, "requests", fmtCount))

	d, err := followChange(ctx, o, e, clock, user, "deploy shop:staging", o.deployDuration)
	if err != nil {
		return fmt.Errorf("deployment: %w", err)
	}
	r.add(atMost("requests.deploy.total", fmt.Sprintf("Cloud 66 requests, `deploy shop:staging` followed to the end (%s)", o.deployDuration), float64(d.total), 120, "requests", fmtCount))
	r.add(info("requests.deploy.polls", "…of which polls of the action", float64(d.actionGets), "requests", fmtCount))
	r.note("deployment: %d requests in all, %d of them up to and including the redeploy POST; %d GET (%d of the async action, %d of the deployments list), %d POST; %s on the fake clock (%s real, ×%.0f); final card: %s",
		d.total, d.starting, d.gets, d.actionGets, d.deploymentGets, d.posts, d.fakeElapsed.Round(time.Second), d.realElapsed.Round(time.Millisecond), o.speedup, oneLine(d.card))
	r.note("with the default poll schedule the deploy package's own test (deploy/schedule_test.go, exact fake-clock steps) expects 64 GETs for a 30-minute deployment: 63 action polls and one deployments read")
	// Each verb, cold (the person's first command: the stack is looked up)
	// and warm (the same command again once the first change has ended,
	// right after another command about the stack, so the person's stack
	// cache answers), counting the command's own requests up to its reply
	// (the card, or the confirmation).
	for i, v := range verbCommands {
		p := person(1 + i)
		for _, temp := range []string{"cold", "warm"} {
			if temp == "warm" {
				if _, err := runCommand(ctx, e.slack, p, "servers "+strings.Fields(v.command)[1]); err != nil {
					return err
				}
			}
			e.c66.ResetRequests()
			reply, err := runCommand(ctx, e.slack, p, v.command)
			if err != nil {
				return fmt.Errorf("%s: %w", v.command, err)
			}
			if !strings.Contains(reply, v.reply) {
				r.note("unexpected reply to %s (%s): %s", v.command, temp, oneLine(reply))
			}
			n := stackRequests(e.c66, v.command)
			r.add(info("requests."+v.verb+"."+temp, fmt.Sprintf("Cloud 66 requests, %s `%s`", temp, v.command), float64(n), "requests", fmtCount))
			if err := waitIdle(ctx, e, clock, v.command); err != nil {
				return err
			}
		}
	}
	rs, err := followChange(ctx, o, e, clock, user, "restart shop:staging", restartDuration)
	if err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	r.add(info("requests.restart.total", fmt.Sprintf("Cloud 66 requests, `restart shop:staging` followed to the end (%s)", restartDuration), float64(rs.total), "requests", fmtCount))
	r.note("restart: %d requests in all, %d of them up to and including the POST; %d GET (%d of the async action, %d of the deployments list); %s on the fake clock; final card: %s",
		rs.total, rs.starting, rs.gets, rs.actionGets, rs.deploymentGets, rs.fakeElapsed.Round(time.Second), oneLine(rs.card))
	if lines, first := e.logs.summary(); lines > 0 {
		r.note("the bot logged %d warnings/errors; first: %s", lines, oneLine(strings.Join(first, " / ")))
	}
	return nil
}

// restartDuration is how long the measured restart takes in Cloud 66.
const restartDuration = 10 * time.Minute

// verbCommands are the new verbs measured cold and warm, each on stacks in
// no protected environment (so the reply is the card), but the rollback,
// which always asks for confirmation.
var verbCommands = []struct{ verb, command, reply string }{
	{"restart", "restart blog:staging", "Restart started"},
	{"maintenance", "maintenance inventory:staging on", "started"},
	{"reboot", "reboot worker:development group=all", "Reboot started"},
	{"rollback", "rollback " + cloud66test.FailingStack + ":" + cloud66test.FailingStackEnvironment, "needs your confirmation"},
}

// waitIdle moves the fake clock until no change runs on the command's
// stack any more (a rollback only asked for confirmation: nothing runs).
func waitIdle(ctx context.Context, e *inproc, clock *cloud66test.Clock, command string) error {
	name, env, _ := strings.Cut(strings.Fields(command)[1], ":")
	label := name + " · " + env
	deadline := time.Now().Add(30 * time.Second)
	for {
		running := false
		for _, m := range e.slack.PostsIn(bottest.ChannelGeneral) {
			if cur, ok := e.slack.Message(m.Channel, m.TS); ok && m.ThreadTS == "" && strings.Contains(cur.Text, label) && deploy.CardInProgress(cur.Text) {
				running = true
			}
		}
		if !running {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s still runs after 30 s", command)
		}
		clock.Advance(time.Minute)
		time.Sleep(10 * time.Millisecond)
	}
}

// runCommand sends one slash command and waits for its response_url reply.
func runCommand(ctx context.Context, s *bottest.Server, user, text string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	id, err := s.SendSlashCommand(ctx, bottest.SlashCommand{UserID: user, ChannelID: bottest.ChannelGeneral, Text: text})
	if err != nil {
		return "", err
	}
	m, err := s.WaitMessage(ctx, func(m bottest.Message) bool {
		return m.Kind == bottest.KindResponseURL && m.EnvelopeID == id
	})
	if err != nil {
		return "", fmt.Errorf("no reply to %q: %w", text, err)
	}
	return m.Text + " " + string(m.Blocks), nil
}

type deployCount struct {
	total, gets, posts, actionGets, deploymentGets int
	starting                                       int // requests up to and including the redeploy POST
	fakeElapsed, realElapsed                       time.Duration
	card                                           string
}

// followChange sends command and follows its card to the end, on the
// accelerated clock; lasts is how long the change takes in Cloud 66.
func followChange(ctx context.Context, o *options, e *inproc, clock *cloud66test.Clock, user, command string, lasts time.Duration) (deployCount, error) {
	var dc deployCount
	e.c66.ResetRequests()
	fakeStart, realStart := clock.Now(), time.Now()

	// The accelerated clock.
	tctx, stopClock := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-tctx.Done():
				return
			case now := <-t.C:
				clock.Advance(time.Duration(float64(now.Sub(last)) * o.speedup))
				last = now
			}
		}
	})
	defer func() { stopClock(); wg.Wait() }()

	// Cards already in the channel (an earlier change of the same stack)
	// are not this command's.
	earlier := map[string]bool{}
	for _, m := range e.slack.PostsIn(bottest.ChannelGeneral) {
		earlier[m.TS] = true
	}
	reply, err := runCommand(ctx, e.slack, user, command)
	if err != nil {
		return dc, err
	}
	name, env, _ := strings.Cut(strings.Fields(command)[1], ":")
	stack := name + " · " + env
	uid := e.c66.StackUID(name, env)
	// The bot posts one card in the channel and edits it until the end.
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	card, err := e.slack.WaitMessage(cctx, func(m bottest.Message) bool {
		return m.Kind == bottest.KindPost && m.Channel == bottest.ChannelGeneral && m.ThreadTS == "" && !earlier[m.TS] && strings.Contains(m.Text, stack)
	})
	cancel()
	if err != nil {
		return dc, fmt.Errorf("no deployment card (the command replied %q): %w", oneLine(reply), err)
	}
	realLimit := time.Duration(float64(lasts+30*time.Minute)/o.speedup) + 30*time.Second
	deadline := time.Now().Add(realLimit)
	for {
		m, ok := e.slack.Message(card.Channel, card.TS)
		text := m.Text
		if ok && (strings.Contains(text, "deployed") || strings.Contains(text, "restarted") || strings.Contains(text, "failed") || strings.Contains(text, "cancelled") || strings.Contains(text, "unknown") || strings.Contains(text, "No result")) {
			dc.card = text
			break
		}
		if time.Now().After(deadline) {
			return dc, fmt.Errorf("the card never showed an end within %s; it reads %q", realLimit, oneLine(text))
		}
		time.Sleep(5 * time.Millisecond)
	}
	dc.fakeElapsed, dc.realElapsed = clock.Now().Sub(fakeStart), time.Since(realStart)
	// Let a final read that follows the card edit land before counting.
	time.Sleep(max(scaleDur(defaultPollInitial, o.speedup), 50*time.Millisecond))
	posted := false
	for _, req := range e.c66.Requests() {
		// This change's requests only: others may still be running.
		if !strings.HasPrefix(req.Path, "/api/3/stacks/"+uid) && req.Path != "/api/3/stacks.json" {
			continue
		}
		dc.total++
		if !posted {
			dc.starting++
			posted = req.Method == "POST"
		}
		switch req.Method {
		case "GET":
			dc.gets++
			switch {
			case strings.Contains(req.Path, "/actions/"):
				dc.actionGets++
			case strings.HasSuffix(req.Path, "/deployments.json"):
				dc.deploymentGets++
			}
		case "POST":
			dc.posts++
		}
	}
	return dc, nil
}

func scaleDur(d time.Duration, speedup float64) time.Duration {
	return time.Duration(float64(d) / speedup)
}

// stackRequests counts the Cloud 66 API requests a command on one stack
// made itself: its stack list reads and what concerns that stack, leaving
// out the polls of the change it started (they run apart, and are counted
// for a whole restart below) and those of changes on other stacks.
func stackRequests(c66 *cloud66test.Server, command string) int {
	name, env, _ := strings.Cut(strings.Fields(command)[1], ":")
	uid := c66.StackUID(name, env)
	n := 0
	for _, req := range c66.Requests() {
		poll := req.Method == "GET" && strings.Contains(req.Path, "/actions/")
		if !poll && (req.Path == "/api/3/stacks.json" || strings.HasPrefix(req.Path, "/api/3/stacks/"+uid)) {
			n++
		}
	}
	return n
}
