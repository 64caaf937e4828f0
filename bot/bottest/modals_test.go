package bottest_test

import (
	"errors"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/c66bot/c66bot/bot/bottest"
)

func testModal(picked bool) slack.ModalViewRequest {
	sel := slack.NewOptionsSelectBlockElement(slack.OptTypeExternal, slack.NewTextBlockObject("plain_text", "Stack", false, false), "pick")
	stack := slack.NewInputBlock("stack", slack.NewTextBlockObject("plain_text", "Stack", false, false), nil, sel)
	stack.DispatchAction = true
	blocks := []slack.Block{stack}
	if picked {
		ref := slack.NewInputBlock("ref", slack.NewTextBlockObject("plain_text", "Ref", false, false), nil,
			slack.NewPlainTextInputBlockElement(nil, "ref"))
		ref.Optional = true
		blocks = append(blocks, ref)
	}
	return slack.ModalViewRequest{Type: slack.VTModal, CallbackID: "form", PrivateMetadata: `{"channel":"C1"}`,
		Title: slack.NewTextBlockObject("plain_text", "Form", false, false), Blocks: slack.Blocks{BlockSet: blocks}}
}

// A trigger id is the fake's own, for one views.open within 3 s; the view
// is the person's, updated against its hash.
func TestViewsOpenTakesAFreshTriggerOnce(t *testing.T) {
	clk := newClock()
	srv, b := startConnected(t, bottest.WithNow(clk.Now))
	ctx := ctxT(t)
	if _, err := srv.SendSlashCommand(ctx, bottest.SlashCommand{UserID: "U0ANA", Text: "deploy"}); err != nil {
		t.Fatal(err)
	}
	cmd := b.next(t, socketmode.EventTypeSlashCommand).Data.(slack.SlashCommand)
	if cmd.TriggerID == "" {
		t.Fatal("the slash command carries no trigger_id")
	}
	if _, err := b.api.OpenViewContext(ctx, "1.2.nottheirs", testModal(false)); err == nil || err.Error() != "invalid_trigger_id" {
		t.Errorf("a made-up trigger: %v", err)
	}
	v, err := b.api.OpenViewContext(ctx, cmd.TriggerID, testModal(false))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.api.OpenViewContext(ctx, cmd.TriggerID, testModal(false)); err == nil || err.Error() != "exchanged_trigger_id" {
		t.Errorf("a used trigger: %v", err)
	}
	open := srv.OpenViews("U0ANA")
	if len(open) != 1 || open[0].ID != v.ID || open[0].CallbackID != "form" || open[0].Title != "Form" || open[0].PrivateMetadata != `{"channel":"C1"}` {
		t.Fatalf("open views %+v", open)
	}
	if _, err := b.api.UpdateViewContext(ctx, testModal(true), "", "stale", v.ID); err == nil || err.Error() != "hash_conflict" {
		t.Errorf("a stale hash: %v", err)
	}
	if _, err := b.api.UpdateViewContext(ctx, testModal(true), "", v.Hash, v.ID); err != nil {
		t.Fatal(err)
	}
	if got := srv.OpenViews("U0ANA")[0]; got.Updates != 1 || got.Hash == v.Hash {
		t.Errorf("after the update: %+v", got)
	}

	if _, err := srv.SendSlashCommand(ctx, bottest.SlashCommand{UserID: "U0ANA", Text: "deploy"}); err != nil {
		t.Fatal(err)
	}
	late := b.next(t, socketmode.EventTypeSlashCommand).Data.(slack.SlashCommand)
	clk.Add(3*time.Second + time.Millisecond)
	if _, err := b.api.OpenViewContext(ctx, late.TriggerID, testModal(false)); err == nil || err.Error() != "expired_trigger_id" {
		t.Errorf("a trigger older than 3 s: %v", err)
	}
}

// The envelopes a person's hands make with a modal decode in slack-go as
// Slack's do.
func TestModalEnvelopes(t *testing.T) {
	srv, b := startConnected(t)
	ctx := ctxT(t)
	if _, err := srv.SendShortcut(ctx, bottest.Shortcut{UserID: "U0ANA", CallbackID: "c66_deploy"}); err != nil {
		t.Fatal(err)
	}
	sc := b.next(t, socketmode.EventTypeInteractive).Data.(slack.InteractionCallback)
	if sc.Type != slack.InteractionTypeShortcut || sc.CallbackID != "c66_deploy" || sc.User.ID != "U0ANA" || sc.TriggerID == "" {
		t.Fatalf("shortcut %+v", sc)
	}
	v, err := b.api.OpenViewContext(ctx, sc.TriggerID, testModal(false))
	if err != nil {
		t.Fatal(err)
	}

	if _, err := srv.ChooseInView(ctx, "U0ANA", v.ID, "stack", "uid-1", nil); err != nil {
		t.Fatal(err)
	}
	act := b.next(t, socketmode.EventTypeInteractive).Data.(slack.InteractionCallback)
	if act.Type != slack.InteractionTypeBlockActions || act.View.ID != v.ID || act.View.PrivateMetadata != `{"channel":"C1"}` ||
		len(act.ActionCallback.BlockActions) != 1 || act.ActionCallback.BlockActions[0].SelectedOption.Value != "uid-1" ||
		act.ActionCallback.BlockActions[0].ActionID != "pick" {
		t.Fatalf("block action in a view %+v", act)
	}
	if _, err := srv.ChooseInView(ctx, "U0BEN", v.ID, "stack", "uid-1", nil); err == nil {
		t.Error("someone else chose in ana's modal")
	}

	// This bot acks with no payload: no options is an error to the test.
	if _, err := srv.Suggest(ctx, "U0ANA", v.ID, "stack", "sh"); err == nil {
		t.Error("an ack without options passed for suggestions")
	}
	sug := b.next(t, socketmode.EventTypeInteractive).Data.(slack.InteractionCallback)
	if sug.Type != slack.InteractionTypeBlockSuggestion || sug.Value != "sh" || sug.ActionID != "pick" || sug.View.CallbackID != "form" {
		t.Fatalf("suggestion %+v", sug)
	}

	if _, err := srv.SubmitView(ctx, "U0ANA", v.ID, map[string]string{}); !errors.Is(err, bottest.ErrRequiredEmpty) {
		t.Errorf("an empty required field was submitted: %v", err)
	}
	got, err := srv.SubmitView(ctx, "U0ANA", v.ID, map[string]string{"stack": "uid-1"})
	if err != nil || got.ResponseAction != "" {
		t.Fatalf("submission %+v, %v", got, err)
	}
	sub := b.next(t, socketmode.EventTypeInteractive).Data.(slack.InteractionCallback)
	if sub.Type != slack.InteractionTypeViewSubmission || sub.View.State == nil || sub.View.State.Values["stack"]["pick"].SelectedOption.Value != "uid-1" {
		t.Fatalf("submission %+v", sub)
	}
	if len(srv.OpenViews("U0ANA")) != 0 {
		t.Error("a submission answered without errors left the modal open")
	}
}
