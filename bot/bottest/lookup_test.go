package bottest_test

import (
	"context"
	"testing"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/bot/bottest"
)

func TestLookups(t *testing.T) {
	t.Parallel()
	srv := bottest.Start(t)
	srv.AddUser(bottest.User{ID: "U0ANA", Name: "ana", Email: "ana@example.com"})

	if u, ok := srv.LookupUser("U0ANA"); !ok || u.Name != "ana" || u.Email != "ana@example.com" {
		t.Errorf("LookupUser(U0ANA) = %+v, %v", u, ok)
	}
	// Like users.info, any plausible user ID is someone.
	if u, ok := srv.LookupUser("U0ZED"); !ok || u.Name != "u0zed" {
		t.Errorf("LookupUser(U0ZED) = %+v, %v", u, ok)
	}
	if _, ok := srv.LookupUser("C0GENERAL"); ok {
		t.Error("a channel ID looked up as a user")
	}

	if c, ok := srv.LookupChannel(bottest.ChannelPrivBot); !ok || c.Name != "ops" || !c.Private || !c.BotMember || c.IM {
		t.Errorf("LookupChannel(C0PRIVBOT) = %+v, %v", c, ok)
	}
	if _, ok := srv.LookupChannel("C0NOPE"); ok {
		t.Error("an unknown channel was found")
	}

	// A DM the bot opens is listed, with its person.
	api := slack.New(srv.BotToken, slack.OptionAPIURL(srv.APIURL()))
	ch, _, _, err := api.OpenConversationContext(context.Background(), &slack.OpenConversationParameters{Users: []string{"U0ANA"}})
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := srv.LookupChannel(ch.ID); !ok || !c.IM || c.User != "U0ANA" {
		t.Errorf("LookupChannel(%s) = %+v, %v", ch.ID, c, ok)
	}
	var ids []string
	for _, c := range srv.Channels() {
		ids = append(ids, c.ID)
	}
	want := []string{"C0GENERAL", "C0PRIVBOT", "C0PUBLIC", ch.ID, "G0PRIVATE"}
	if len(ids) != len(want) {
		t.Fatalf("Channels() = %v, want %v", ids, want)
	}
	for i := range want {
		if ids[i] != want[i] {
			t.Errorf("Channels() = %v, want %v (by ID)", ids, want)
			break
		}
	}
}
