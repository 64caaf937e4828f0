package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/storage"
	"github.com/c66bot/c66bot/storage/postgres"
	"github.com/c66bot/c66bot/storage/postgres/pgtest"
)

// fleet is several `c66bot serve` processes on one PostgreSQL database and
// one fake Slack, each with its own socket, as a deployment of replicas
// runs: what the issue's end-to-end tests drive.
type fleet struct {
	t     *testing.T
	bin   string
	slack *bottest.Server
	c66   *cloud66test.Server
	clock *cloud66test.Clock
	url   string
	key   []byte
	env   map[string]string

	replicas []*replica
}

// replica is one serve of the fleet.
type replica struct {
	name string
	addr string
	conn int // its Socket Mode connection in the fake Slack
	proc *serveProcess
}

var (
	ana = storage.Identity{Team: bottest.DefaultTeamID, User: "U0ANA"}
	ben = storage.Identity{Team: bottest.DefaultTeamID, User: "U0BEN"}
)

// startFleet starts n replicas one after the other, each waited for (its
// /readyz and its socket), so replica i holds connection i+1... of the
// fake Slack; before is run on the database first (links, subscriptions).
func startFleet(t *testing.T, n int, c66opts []cloud66test.Option, before func(f *fleet, db *postgres.DB)) *fleet {
	t.Helper()
	url := pgtest.URL(t)
	f := &fleet{t: t, bin: buildC66bot(t), slack: bottest.Start(t), clock: cloud66test.NewClock(time.Now()), url: url, key: opsKey("fleet")}
	f.c66 = cloud66test.Start(t, append([]cloud66test.Option{cloud66test.WithClock(f.clock)}, c66opts...)...)
	f.env = map[string]string{
		"SLACK_APP_TOKEN": f.slack.AppToken, "SLACK_BOT_TOKEN": f.slack.BotToken, "SLACK_API_URL": f.slack.APIURL(),
		"CLOUD66_URL": f.c66.URL, "CLOUD66_CLIENT_ID": f.c66.ClientID, "CLOUD66_CLIENT_SECRET": f.c66.ClientSecret,
		"C66BOT_DATABASE_URL": url, "C66BOT_SECRET_KEY": b64(f.key), "C66BOT_LOG_FORMAT": "text",
	}
	db := f.open()
	for _, who := range []struct {
		id    storage.Identity
		email string
	}{{ana, "ana@example.com"}, {ben, "ben@example.com"}} {
		if err := db.Links().Save(t.Context(), storage.Link{Identity: who.id, AccessToken: f.c66.IssueToken(who.email, "public", "redeploy"),
			Scopes: []string{"public", "redeploy"}}); err != nil {
			t.Fatal(err)
		}
	}
	if before != nil {
		before(f, db)
	}
	db.Close()
	for i := range n {
		f.start(fmt.Sprintf("r%d", i+1))
	}
	return f
}

// open opens the fleet's database as the test's own client.
func (f *fleet) open() *postgres.DB {
	f.t.Helper()
	db, err := postgres.Open(f.t.Context(), postgres.Options{URL: f.url, Keys: [][]byte{f.key}, Replica: "test"})
	if err != nil {
		f.t.Fatal(err)
	}
	return db
}

// start starts a replica and waits until it is ready and its socket is the
// fake Slack's newest.
func (f *fleet) start(name string) *replica {
	f.t.Helper()
	env := maps.Clone(f.env)
	env["C66BOT_REPLICA"] = name
	env["C66BOT_LISTEN"] = freeAddr(f.t)
	before := f.slack.ConnectionIDs()
	r := &replica{name: name, addr: env["C66BOT_LISTEN"], proc: startServe(f.t, f.bin, env)}
	ctx, cancel := context.WithTimeout(f.t.Context(), time.Minute)
	defer cancel()
	waitReady(f.t, ctx, r.addr, r.proc)
	waitFor(f.t, ctx, name+"'s socket", r.proc, func() bool {
		for _, id := range f.slack.ConnectionIDs() {
			if !slices.Contains(before, id) {
				r.conn = id
				return true
			}
		}
		return false
	})
	f.replicas = append(f.replicas, r)
	return r
}

// logs is every replica's output, for failures.
func (f *fleet) logs() string {
	var b strings.Builder
	for _, r := range f.replicas {
		fmt.Fprintf(&b, "--- %s\n%s\n", r.name, r.proc.logs.String())
	}
	return b.String()
}

// waitFleet polls cond until it holds or ctx ends.
func (f *fleet) wait(ctx context.Context, what string, cond func() bool) {
	f.t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			f.t.Fatalf("timed out waiting for %s\n%s", what, f.logs())
		case <-tick.C:
		}
	}
}

// leaseOwner is the replica holding a live lease whose key starts with
// prefix, read from the database.
func (f *fleet) leaseOwner(prefix string) string {
	f.t.Helper()
	var owner string
	err := pgtest.Conn(f.t, f.url).QueryRow(f.t.Context(),
		`SELECT owner FROM leases WHERE key LIKE $1 AND owner <> '' AND expires_at > now() ORDER BY expires_at DESC LIMIT 1`,
		prefix+"%").Scan(&owner)
	if err != nil {
		return ""
	}
	return owner
}

func (f *fleet) replica(name string) *replica {
	for _, r := range f.replicas {
		if r.name == name {
			return r
		}
	}
	f.t.Fatalf("no replica %q", name)
	return nil
}

// metric sums a counter's samples on a replica's /metrics.
func (r *replica) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + r.addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

func requireFleet(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds c66bot and runs three of it on PostgreSQL")
	}
	pgtest.ServerURL(t)
}

// 300 slash commands, spread by Slack over three replicas' sockets and a
// tenth of them delivered again (as Slack does around a reconnect) on
// another socket, are each answered exactly once.
func TestFleetAnswersEachCommandOnce(t *testing.T) {
	requireFleet(t)
	t.Parallel()
	f := startFleet(t, 3, nil, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	const commands, again = 300, 30
	texts := []string{"help", "whoami", "stacks", "help deploy"}
	ids := make([]string, commands)
	var wg sync.WaitGroup
	errs := make(chan error, commands)
	for w := range 10 {
		wg.Go(func() {
			for i := w; i < commands; i += 10 {
				user := []string{ana.User, ben.User}[i%2]
				id, err := f.slack.SendSlashCommand(ctx, bottest.SlashCommand{UserID: user, Text: texts[i%len(texts)]})
				if err != nil {
					errs <- err
					return
				}
				ids[i] = id
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	answered := func() map[string]int {
		n := map[string]int{}
		for _, m := range f.slack.Messages() {
			if m.Kind == bottest.MessageKind("response_url") {
				n[m.EnvelopeID]++
			}
		}
		return n
	}
	f.wait(ctx, "an answer to every command", func() bool { return len(answered()) >= commands })

	// Redelivered now, after their answers: whichever replica gets them
	// must ack them and do nothing more.
	for i := range again {
		if err := f.slack.Redeliver(ctx, ids[i*commands/again]); err != nil {
			t.Fatal(err)
		}
	}
	// Every envelope was either run (commands_total) or recognised as a
	// delivery already handled (envelopes_duplicate_total): from then on
	// no replica has anything left that could answer.
	sum := func(name string) float64 {
		var s float64
		for _, r := range f.replicas {
			s += r.metric(t, name)
		}
		return s
	}
	f.wait(ctx, "every envelope handled or ignored as a duplicate", func() bool {
		return sum("c66bot_commands_total") >= commands && sum("c66bot_envelopes_duplicate_total") >= again
	})
	if got := sum("c66bot_commands_total"); got != commands {
		t.Errorf("the replicas ran %v commands, want %d", got, commands)
	}

	perConn := map[int]int{}
	acks := map[string]int{}
	for _, a := range f.slack.Acks() {
		acks[a.EnvelopeID]++
		perConn[a.Connection]++
	}
	got := answered()
	for i, id := range ids {
		if got[id] != 1 {
			t.Errorf("command %d (%s) was answered %d times, want once", i, texts[i%len(texts)], got[id])
		}
		if want := 1 + btoi(slices.Contains(redelivered(ids, again), id)); acks[id] != want {
			t.Errorf("command %d was acked %d times, want %d", i, acks[id], want)
		}
	}
	for _, r := range f.replicas {
		if perConn[r.conn] == 0 {
			t.Errorf("replica %s (connection %d) answered nothing; acks per connection %v", r.name, r.conn, perConn)
		}
	}
	t.Logf("acks per connection: %v", perConn)
}

func redelivered(ids []string, again int) []string {
	out := make([]string, again)
	for i := range again {
		out[i] = ids[i*len(ids)/again]
	}
	return out
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// One Confirm of a production deploy, delivered to two replicas at once (a
// double click that Slack hands to two sockets), deploys once: one press
// starts it, the other is told it was already confirmed.
func TestFleetDeploysOnceForAConfirmationPressedOnTwoReplicas(t *testing.T) {
	requireFleet(t)
	t.Parallel()
	f := startFleet(t, 3, []cloud66test.Option{cloud66test.WithDeployDuration(time.Hour)}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	id, err := f.slack.SendSlashCommand(ctx, bottest.SlashCommand{UserID: ana.User, Text: "deploy shop:production", Connection: f.replicas[0].conn})
	if err != nil {
		t.Fatal(err)
	}
	confirm, err := f.slack.WaitMessage(ctx, func(m bottest.Message) bool {
		return m.Kind == bottest.MessageKind("response_url") && m.EnvelopeID == id
	})
	if err != nil {
		t.Fatalf("no confirmation: %v\n%s", err, f.logs())
	}
	blockID, value := buttonIn(t, confirm, "deploy_confirm")
	press := func(r *replica) (string, error) {
		return f.slack.SendBlockAction(ctx, bottest.BlockAction{UserID: ana.User, ChannelID: bottest.ChannelGeneral,
			ActionID: "deploy_confirm", BlockID: blockID, Value: value, Ephemeral: true, Connection: r.conn})
	}
	var presses [2]string
	var wg sync.WaitGroup
	for i, r := range []*replica{f.replicas[1], f.replicas[2]} {
		wg.Go(func() {
			id, err := press(r)
			if err != nil {
				t.Error(err)
			}
			presses[i] = id
		})
	}
	wg.Wait()
	replies := func(envelope string) []bottest.Message { return f.slack.MessagesFor(envelope) }
	f.wait(ctx, "an answer to both presses", func() bool { return len(replies(presses[0])) > 0 && len(replies(presses[1])) > 0 })
	already := 0
	for _, p := range presses {
		for _, m := range replies(p) {
			if strings.Contains(m.Text+string(m.Blocks), "already confirmed") {
				already++
			}
		}
	}
	if already != 1 {
		t.Errorf("%d presses were told the deploy was already confirmed, want 1", already)
	}
	f.wait(ctx, "the deploy card", func() bool { return len(cards(f.slack)) > 0 })
	if n := f.c66.RequestCount("POST", "/api/3/stacks/"+f.c66.StackUID("shop", "production")+"/deployments.json"); n != 1 {
		t.Errorf("%d deploys reached Cloud 66, want 1", n)
	}
	if n := len(cards(f.slack)); n != 1 {
		t.Errorf("%d deploy cards, want 1", n)
	}
}

// buttonIn finds the block id and value of the button actionID.
func buttonIn(t *testing.T, m bottest.Message, actionID string) (blockID, value string) {
	t.Helper()
	var blocks []struct {
		BlockID  string `json:"block_id"`
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(m.Blocks, &blocks); err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		for _, e := range b.Elements {
			if e.ActionID == actionID {
				return b.BlockID, e.Value
			}
		}
	}
	t.Fatalf("no %s button in %s", actionID, m.Blocks)
	return "", ""
}

// cards are the top-level posts in the general channel: each followed
// change's one message.
func cards(s *bottest.Server) []bottest.Message {
	var out []bottest.Message
	for _, m := range s.PostsIn(bottest.ChannelGeneral) {
		if m.ThreadTS == "" && !isNotice(m) {
			out = append(out, m)
		}
	}
	return out
}

// The replica following a deploy is SIGKILLed while it runs; another one
// takes the watch over within the lease's 30 s and edits the same card to
// its end.
func TestFleetFinishesTheCardOfAKilledReplica(t *testing.T) {
	requireFleet(t)
	t.Parallel()
	f := startFleet(t, 3, []cloud66test.Option{cloud66test.WithDeployDuration(10 * time.Minute)}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	if _, err := f.slack.SendSlashCommand(ctx, bottest.SlashCommand{UserID: ana.User, Text: "deploy shop:staging"}); err != nil {
		t.Fatal(err)
	}
	var card bottest.Message
	f.wait(ctx, "the deploy card", func() bool {
		cs := cards(f.slack)
		if len(cs) == 0 {
			return false
		}
		card = cs[0]
		return true
	})
	// The kill comes once the deploy is in Cloud 66 and the watch knows
	// both its action and its card. Earlier, the story is another one: a
	// kill before the POST leaves nothing in Cloud 66 to finish, and one
	// between posting the card and storing its ts leaves a card no other
	// replica can find (see the closing note on orphan cards).
	db := f.open()
	defer db.Close()
	f.wait(ctx, "the deploy sent and its card stored", func() bool {
		ws, err := db.Watches().Active(ctx)
		return err == nil && len(ws) == 1 && ws[0].ActionID != 0 && ws[0].MessageTS == card.TS
	})
	var owner string
	f.wait(ctx, "the watch's lease", func() bool { owner = f.leaseOwner("watch:"); return owner != "" })
	f.replica(owner).proc.kill(t)
	killed := time.Now()

	// Cloud 66 finishes the deploy while its follower is dead.
	f.clock.Advance(15 * time.Minute)
	f.wait(ctx, "the same card to say deployed", func() bool {
		m, ok := f.slack.Message(bottest.ChannelGeneral, card.TS)
		return ok && strings.HasPrefix(m.Text, "✅")
	})
	failover := time.Since(killed)
	t.Logf("failover: the card moved %v after its replica was killed", failover.Round(100*time.Millisecond))
	if failover > 30*time.Second {
		t.Errorf("the card moved %v after the kill, want within 30 s", failover)
	}
	if taker := f.leaseOwner("watch:"); taker == owner {
		t.Errorf("the watch is still leased to the killed replica %s", owner)
	}
	if n := len(cards(f.slack)); n != 1 {
		t.Errorf("%d cards, want the one edited in place", n)
	}
	if n := f.c66.RequestCount("POST", "/api/3/stacks/"+f.c66.StackUID("shop", "staging")+"/deployments.json"); n != 1 {
		t.Errorf("%d deploys reached Cloud 66, want 1", n)
	}
}

// noticeFleet subscribes the general channel to shop:production and makes
// an API token allowed to notify.
func noticeFleet(t *testing.T) (*fleet, string) {
	var token string
	f := startFleet(t, 3, nil, func(f *fleet, db *postgres.DB) {
		if _, _, err := db.Subscriptions().Subscribe(t.Context(), storage.Subscription{
			Team: bottest.DefaultTeamID, Channel: bottest.ChannelGeneral,
			StackUID: f.c66.StackUID("shop", "production"), StackName: "shop", Environment: "production",
			Events: []string{"deploy.succeeded", "deploy.failed"}, Subscriber: ana,
		}); err != nil {
			t.Fatal(err)
		}
		var err error
		if token, _, err = db.APITokens().Create(t.Context(), "fleet", []string{"notify"}); err != nil {
			t.Fatal(err)
		}
	})
	return f, token
}

// noticeCounts checks that the notices reached the channel each once, and
// in the order they were accepted.
func checkNotices(t *testing.T, s *bottest.Server, n int) {
	t.Helper()
	var order []int
	for _, m := range postedNotices(s) {
		for i := range n {
			if strings.Contains(string(m.Blocks), fmt.Sprintf("crash-notice-%02d", i)) {
				order = append(order, i)
			}
		}
	}
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	if !slices.Equal(order, want) {
		t.Errorf("notices reached the channel in the order %v, want each once in %v", order, want)
	}
}

// With Slack answering 429 for a while, notices accepted by all three
// replicas in turn reach the channel in the order they were accepted, none
// lost or doubled.
func TestFleetPostsNoticesInOrderThrough429(t *testing.T) {
	requireFleet(t)
	t.Parallel()
	f, token := noticeFleet(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const notices = 12
	f.slack.RateLimitNext("chat.postMessage", 4, 2*time.Second)
	for i := range notices {
		r := f.replicas[i%len(f.replicas)]
		postNotice(t, r.addr, token, fmt.Sprintf("crash-notice-%02d", i), r.proc)
	}
	f.wait(ctx, "every notice in the channel", func() bool { return len(postedNotices(f.slack)) >= notices })
	checkNotices(t, f.slack, notices)
}

// The replica posting a channel's notices is SIGKILLed while they wait out
// a 429; the others post the rest, each once, in order.
func TestFleetLosesNoNoticeOfAKilledReplica(t *testing.T) {
	requireFleet(t)
	t.Parallel()
	f, token := noticeFleet(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const notices = 12
	for i := range notices {
		r := f.replicas[i%len(f.replicas)]
		postNotice(t, r.addr, token, fmt.Sprintf("crash-notice-%02d", i), r.proc)
		if i == 0 {
			// The first goes out; from then on Slack refuses every post
			// with a long Retry-After, and the kill comes once the poster
			// is waiting one out (see TestKilledServeDeliversEveryAcceptedNoticeOnce).
			f.wait(ctx, "the first notice", func() bool { return len(postedNotices(f.slack)) == 1 })
			f.slack.RateLimitNext("chat.postMessage", 1000, time.Minute)
		}
	}
	f.wait(ctx, "a post refused with 429", func() bool {
		for _, c := range f.slack.Calls() {
			if c.Method == "chat.postMessage" && c.Status == http.StatusTooManyRequests {
				return true
			}
		}
		return false
	})
	var owner string
	f.wait(ctx, "the channel's lease", func() bool { owner = f.leaseOwner("channel:"); return owner != "" })
	f.replica(owner).proc.kill(t)
	f.slack.RateLimitNext("chat.postMessage", 0, 0)
	f.wait(ctx, "every notice in the channel", func() bool { return len(postedNotices(f.slack)) >= notices })
	checkNotices(t, f.slack, notices)
}
