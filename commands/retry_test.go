package commands

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/storage"
)

// Retry on a failed card runs the same deploy again as whoever pressed it:
// the answer is their own confirmation, and the card stays as it is.
func TestRetryButton(t *testing.T) {
	t.Parallel()
	stack := testStacks()[0]
	cf := &deploy.Confirmation{IntentID: "c9", Verb: deploy.VerbDeploy, Stack: stack, ExpiresAt: time.Date(2026, 11, 23, 12, 5, 0, 0, time.UTC),
		Params: deploy.Params{Ref: "v2.1"}}
	d := &fakeDeployer{result: deploy.Result{Confirm: cf}}
	r, _ := opsRouter(t, d)
	a := Action{TeamID: "T1", EnterpriseID: "E1", UserID: "U7", ChannelID: "C5", ActionID: deploy.ActionRetry, Value: "retry-1",
		ResponseURL: "https://hooks.slack.com/y", RequestID: "req8"}
	reply, handled := r.HandleAction(t.Context(), a)
	if !handled {
		t.Fatal("not handled")
	}
	want := deployCall{Method: "RetryFromOffer", IntentID: "retry-1",
		Origin: deploy.Origin{Identity: storage.Identity{Team: "E1", User: "U7"}, Channel: "C5", ResponseURL: "https://hooks.slack.com/y", RequestID: "req8"}}
	if got := d.verbCalls(); len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Fatalf("calls %+v\nwant [%+v]", got, want)
	}
	if reply.Replace || reply.InChannel {
		t.Errorf("Replace %v, InChannel %v: the card must stay, and the confirmation is the presser's", reply.Replace, reply.InChannel)
	}
	if got := replyText(t, reply.Message); !strings.Contains(got, "This stack needs your confirmation.") {
		t.Errorf("reply is not the deploy's confirmation:\n%s", got)
	}
	checkConfirmButtons(t, reply.Message, "c9")
}
