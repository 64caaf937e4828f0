package deploy_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/storage"
)

// A failed deploy's card offers Retry beside Roll back, and tells the
// requester once, in its thread (an edit of the card notifies nobody).
// Retry runs the same deploy again as whoever presses it, through the
// normal path: the confirmation, then someone else's lock.
func TestFailedDeployOffersRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	crm, _, _, _ := e.failingStack()

	dep, err := e.svc.Deploy(ctx, origin(ana, "C1", "d1"), crm, deploy.Params{Ref: "main", Strategy: "serial"})
	if err != nil || dep.Confirm == nil {
		t.Fatalf("Deploy = %+v, %v", dep, err)
	}
	w, err := e.svc.Confirm(ctx, dep.Confirm.IntentID, ana)
	if err != nil {
		t.Fatal(err)
	}
	e.runOut(w.ID, storage.WatchFailed)
	card := e.waitCard(w.MessageTS, "❌ *Deployment failed*", `"text":"Retry"`, `"text":"Roll back"`)
	stored, err := e.Store.Watches().Get(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	offer := stored.Params["retry_offer"]
	both := `"action_id":"` + deploy.ActionRetry + `","value":"` + offer + `"`
	if offer == "" || !strings.Contains(card.Text(), both) {
		t.Fatalf("failed card's Retry does not carry the offer %q:\n%s", offer, card.Text())
	}
	if i, j := strings.Index(card.Text(), `"text":"Retry"`), strings.Index(card.Text(), `"text":"Roll back"`); strings.Count(card.Text(), `"type":"actions"`) != 1 || i > j {
		t.Errorf("Retry and Roll back are not one row, Retry first:\n%s", card.Text())
	}
	mentions := 0
	for _, c := range e.Slack.Calls("thread") {
		if c.TS == w.MessageTS {
			mentions += strings.Count(c.Text(), "<@UANA>") / 2 // the fallback and the block
		}
	}
	if mentions != 1 {
		t.Errorf("the requester is mentioned %d times in the card's thread, want once", mentions)
	}
	e.C66.ResetRequests()

	// Dan presses Retry: the same options, his own confirmation, nothing
	// sent yet.
	res, err := e.svc.RetryFromOffer(ctx, offer, origin(dan, "C1", "retry-1"))
	if err != nil || res.Confirm == nil {
		t.Fatalf("Dan's Retry = %+v, %v; want a confirmation", res, err)
	}
	if p := res.Confirm.Params; p.Ref != "main" || p.Strategy != "serial" {
		t.Errorf("retried params = %+v, want ref main, strategy serial", p)
	}
	e.noChanges("pressing Retry")
	if _, err := e.svc.Confirm(ctx, res.Confirm.IntentID, ana); !errors.Is(err, deploy.ErrNotYours) {
		t.Fatalf("Confirm of Dan's retry by ana: %v, want ErrNotYours", err)
	}
	rw, err := e.svc.Confirm(ctx, res.Confirm.IntentID, dan)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.changes(); len(got) != 1 || got[0].Token != e.Tokens[dan] || rw.Owner != dan {
		t.Fatalf("Cloud 66 got %d changes (owner %v); want one, with Dan's token", len(got), rw.Owner)
	}
	e.runOut(rw.ID, storage.WatchFailed)

	// Someone else's lock refuses a retry as it refuses a deploy.
	if _, err := e.svc.Lock(ctx, origin(ana, "C1", "l1"), crm, "investigating"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RetryFromOffer(ctx, offer, origin(dan, "C1", "retry-2")); !errors.As(err, new(*deploy.LockedError)) {
		t.Errorf("Retry on a stack ana locked: %v, want LockedError", err)
	}

	// Only Retry offers answer.
	for _, id := range []string{"no-such-offer", stored.Params["rollback_offer"]} {
		if _, err := e.svc.RetryFromOffer(ctx, id, origin(dan, "C1", "p")); !errors.Is(err, deploy.ErrIntentGone) {
			t.Errorf("RetryFromOffer(%s): %v, want ErrIntentGone", id, err)
		}
	}
}

// An expired confirmation says which command to run again.
func TestExpiredConfirmationNamesTheCommand(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	res, err := e.svc.Deploy(ctx, origin(ana, "C1", "d1"), e.stack("shop", "production"), deploy.Params{Ref: "v2.1", Strategy: "serial"})
	if err != nil || res.Confirm == nil {
		t.Fatalf("Deploy = %+v, %v", res, err)
	}
	e.Clock.Advance(storage.IntentTTL + time.Second)
	_, err = e.svc.Confirm(ctx, res.Confirm.IntentID, ana)
	var ex *deploy.ExpiredError
	if !errors.As(err, &ex) || !errors.Is(err, storage.ErrIntentExpired) || ex.Words != "deploy shop:production@v2.1 strategy=serial" {
		t.Fatalf("Confirm after expiry: %v (%+v), want an ExpiredError naming the deploy", err, ex)
	}

	for _, tt := range []struct {
		in   storage.Intent
		want string
	}{
		{storage.Intent{Kind: "cancel", StackName: "shop", Environment: "production"}, "cancel shop:production"},
		{storage.Intent{Kind: "unlock", StackName: "shop"}, "unlock shop"},
		{storage.Intent{Kind: "deploy", StackName: "api", Environment: "staging", Params: map[string]string{"verb": "restart", "service": "web"}}, "restart api:staging service=web"},
		{storage.Intent{Kind: "deploy", StackName: "shop", Environment: "production", Params: map[string]string{"verb": "maintenance", "maintenance": "on"}}, "maintenance shop:production on"},
		{storage.Intent{Kind: "deploy", StackName: "shop", Environment: "production", Params: map[string]string{"verb": "rollback", "ref": "abc1234", "lock_after": "no"}}, "rollback shop:production to=abc1234 lock=no"},
		{storage.Intent{Kind: "deploy", StackName: "shop", Environment: "staging", Params: map[string]string{"verb": "reboot", "server_name": "Falcon"}}, "reboot shop:staging Falcon"},
		{storage.Intent{Kind: "deploy", StackName: "shop", Environment: "staging", Params: map[string]string{"verb": "reboot", "group": "web", "reboot_strategy": "serial"}}, "reboot shop:staging group=web strategy=serial"},
		{storage.Intent{Kind: "approval", StackName: "shop"}, ""},
		{storage.Intent{Kind: "deploy"}, ""},
	} {
		if got := deploy.ExpiredWords(tt.in); got != tt.want {
			t.Errorf("ExpiredWords(%+v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A deploy without a ref says what it ships (the stack's branch, named),
// and its card shows the deployed hash once, short and linked.
func TestCardOfADeployWithoutARef(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.fullStack("shop", "staging")
	res, err := e.svc.Deploy(ctx, origin(ana, "C1", "d1"), shop, deploy.Params{})
	if err != nil || res.Watch == nil {
		t.Fatalf("Deploy = %+v, %v; want it started", res, err)
	}
	w := e.runOut(res.Watch.ID, storage.WatchSucceeded)
	card := e.waitCard(w.MessageTS, "✅ *Deployed*")
	if want := "*Ref*\\n`staging` (the stack's branch)"; !strings.Contains(card.Text(), want) {
		t.Errorf("card lacks %s:\n%s", want, card.Text())
	}
	short := w.GitHash[:7]
	if n := strings.Count(card.Text(), "/commit/"+w.GitHash+"|"+short+">"); w.GitHash == "" || n != 1 {
		t.Errorf("the hash %s is linked %d times on the card, want once:\n%s", short, n, card.Text())
	}
}
