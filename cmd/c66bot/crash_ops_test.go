package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/storage"
)

// A restart asked for in Slack, accepted by Cloud 66, and the bot SIGKILLed
// while it runs: after the restart of the bot, the same card is edited to
// its end, and the audit log has the request and its outcome.
func TestKilledServeFinishesARestartCard(t *testing.T) {
	if testing.Short() {
		t.Skip("builds c66bot and runs it twice")
	}
	t.Parallel()
	bin := buildC66bot(t)
	slack := bottest.Start(t)
	// Cloud 66's time is the test's to move: the restart runs until the
	// clock is advanced, so the kill surely comes while it runs.
	clock := cloud66test.NewClock(time.Now())
	c66 := cloud66test.Start(t, cloud66test.WithClock(clock), cloud66test.WithActionDuration(cloud66test.ActionRestart, 10*time.Minute))
	dir, err := os.MkdirTemp("", "c66kill")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	key := opsKey("kill")
	db := filepath.Join(dir, "c66bot.db")
	ana := storage.Identity{Team: bottest.DefaultTeamID, User: "U0ANA"}
	func() {
		s, err := storage.Open(storage.Options{Path: db, Keys: [][]byte{key}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Links().Save(t.Context(), storage.Link{Identity: ana, AccessToken: c66.IssueToken("ana@example.com", "public", "redeploy"),
			Scopes: []string{"public", "redeploy"}}); err != nil {
			t.Fatal(err)
		}
	}()
	env := map[string]string{
		"SLACK_APP_TOKEN": slack.AppToken, "SLACK_BOT_TOKEN": slack.BotToken, "SLACK_API_URL": slack.APIURL(),
		"CLOUD66_URL": c66.URL, "CLOUD66_CLIENT_ID": c66.ClientID, "CLOUD66_CLIENT_SECRET": c66.ClientSecret,
		"C66BOT_DB": db, "C66BOT_LISTEN": freeAddr(t), "C66BOT_LOG_FORMAT": "text", "C66BOT_SECRET_KEY": b64(key),
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	first := startServe(t, bin, env)
	waitReady(t, ctx, env["C66BOT_LISTEN"], first)
	if _, err := slack.SendSlashCommand(ctx, bottest.SlashCommand{UserID: ana.User, ChannelID: bottest.ChannelGeneral, Text: "restart shop:staging"}); err != nil {
		t.Fatal(err)
	}
	card, err := slack.WaitMessage(ctx, func(m bottest.Message) bool {
		return m.Kind == bottest.KindPost && m.Channel == bottest.ChannelGeneral && m.ThreadTS == ""
	})
	if err != nil {
		t.Fatalf("no card: %v\n%s", err, first.logs.String())
	}
	waitFor(t, ctx, "the card to say Restarting", first, func() bool {
		m, ok := slack.Message(bottest.ChannelGeneral, card.TS)
		return ok && strings.Contains(m.Text, "restarting")
	})
	first.kill(t)

	// Cloud 66 finishes the restart while the bot is down.
	clock.Advance(15 * time.Minute)
	second := startServe(t, bin, env)
	waitFor(t, ctx, "the same card to say restarted", second, func() bool {
		m, ok := slack.Message(bottest.ChannelGeneral, card.TS)
		return ok && strings.HasPrefix(m.Text, "✅") && strings.Contains(m.Text, "restarted")
	})
	second.stop(t)

	if n := c66.RequestCount("POST", "/api/3/stacks/"+c66.StackUID("shop", "staging")+"/actions.json"); n != 1 {
		t.Errorf("%d restart requests reached Cloud 66, want 1", n)
	}
	posts := 0
	for _, m := range slack.PostsIn(bottest.ChannelGeneral) {
		if m.ThreadTS == "" {
			posts++
		}
	}
	if posts != 1 {
		t.Errorf("%d cards in the channel, want the one edited in place", posts)
	}
	s, err := storage.Open(storage.Options{Path: db, Keys: [][]byte{key}, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var actions []string
	if err := s.Audit().Scan(t.Context(), time.Time{}, func(e storage.AuditEntry) error {
		actions = append(actions, e.Action+" "+e.Result)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(actions, "\n")
	for _, want := range []string{"restart requested", "restart.finished succeeded"} {
		if !strings.Contains(joined, want) {
			t.Errorf("audit lacks %q:\n%s", want, joined)
		}
	}
}
