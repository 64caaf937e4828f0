package bottest_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/c66bot/c66bot/bot/bottest"
)

func TestViewsPublish(t *testing.T) {
	t.Parallel()
	srv := bottest.Start(t)
	api := slack.New(srv.BotToken, slack.OptionAPIURL(srv.APIURL()))
	ctx := context.Background()
	section := slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "hello", false, false), nil, nil)
	home := slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: []slack.Block{section}}}

	if _, err := api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "U0ANA", View: home}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	modal := home
	modal.Type = slack.VTModal
	for name, req := range map[string]slack.PublishViewContextRequest{
		"not a user": {UserID: "C0GENERAL", View: home},
		"a modal":    {UserID: "U0ANA", View: modal},
	} {
		if _, err := api.PublishViewContext(ctx, req); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	v, ok := srv.HomeView("U0ANA")
	if !ok || v.Type != "home" || !strings.Contains(string(v.Blocks), "hello") || len(srv.HomeViews("U0ANA")) != 1 {
		t.Errorf("last view %+v (%v), views %d", v, ok, len(srv.HomeViews("U0ANA")))
	}
	if _, ok := srv.HomeView("U0BEN"); ok {
		t.Error("a Home nobody published")
	}
}

func TestSendAppHomeOpenedIsAnEventsAPIEnvelope(t *testing.T) {
	t.Parallel()
	srv := bottest.Start(t)
	api := slack.New(srv.BotToken, slack.OptionAppLevelToken(srv.AppToken), slack.OptionAPIURL(srv.APIURL()))
	client := socketmode.New(api)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	go func() { _ = client.RunContext(ctx) }()
	if err := srv.WaitConnected(ctx, 1); err != nil {
		t.Fatal(err)
	}
	id, err := srv.SendAppHomeOpened(ctx, "U0ANA")
	if err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case <-ctx.Done():
			t.Fatal("no events_api envelope")
		case evt := <-client.Events:
			if evt.Type != socketmode.EventTypeEventsAPI {
				continue
			}
			ev, ok := evt.Data.(slackevents.EventsAPIEvent)
			opened, isHome := ev.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent)
			if !ok || !isHome || ev.Type != slackevents.CallbackEvent || ev.TeamID != srv.TeamID || opened.User != "U0ANA" || opened.Tab != "home" || opened.Channel == "" {
				raw, _ := json.Marshal(evt.Data)
				t.Fatalf("event %s", raw)
			}
			if evt.Request.EnvelopeID != id || evt.Request.AcceptsResponsePayload {
				t.Errorf("envelope %+v", evt.Request)
			}
			return
		}
	}
}
