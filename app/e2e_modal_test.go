package app_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/bot/bottest"
)

// viewBlockIDs are the block ids of a modal's input blocks.
func viewBlockIDs(t *testing.T, v bottest.View) []string {
	t.Helper()
	var blocks []struct {
		Type    string `json:"type"`
		BlockID string `json:"block_id"`
	}
	if err := json.Unmarshal(v.Blocks, &blocks); err != nil {
		t.Fatalf("view blocks: %v", err)
	}
	var ids []string
	for _, b := range blocks {
		if b.Type == "input" {
			ids = append(ids, b.BlockID)
		}
	}
	return ids
}

// openForm sends `/c66 deploy` as user and waits for the modal it opens.
func (h *harness) openForm(ctx context.Context, user string) (envelopeID string, v bottest.View) {
	h.t.Helper()
	seen := map[string]bool{}
	for _, v := range h.slack.OpenViews(user) {
		seen[v.ID] = true
	}
	id, err := h.slack.SendSlashCommand(ctx, bottest.SlashCommand{UserID: user, ChannelID: "C0GENERAL", Command: "/c66", Text: "deploy"})
	if err != nil {
		h.t.Fatal(err)
	}
	if ack, err := h.slack.WaitAck(ctx, id); err != nil || ack.Latency > ackDeadline {
		h.t.Fatalf("ack %+v, %v", ack, err)
	}
	v, err = h.slack.WaitView(ctx, user, func(v bottest.View) bool { return !v.Closed && !seen[v.ID] })
	if err != nil {
		h.t.Fatalf("`/c66 deploy` opened no modal: %v", err)
	}
	return id, v
}

// The deploy form, driven as a person: it opens from `/c66 deploy`, offers
// only the stacks the person's Cloud 66 account sees, redraws for the
// stack's type, shows bad values on their field, and a valid submission
// leads to the typed command's own confirmation, Confirm and card.
func TestE2EDeployForm(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	h.loginAs("U0BEN", "ben@example.com")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var apiProd, apiStaging string
	production := map[string]bool{}
	for _, st := range h.c66.Stacks() {
		if st.Environment == "production" {
			production[st.UID] = true
		}
		if st.Name == "api" && st.Environment == "production" {
			apiProd = st.UID
		}
		if st.Name == "api" && st.Environment == "staging" {
			apiStaging = st.UID
		}
	}

	// Ben sees only some staging stacks; the picker offers those alone.
	_, benForm := h.openForm(ctx, "U0BEN")
	if got := viewBlockIDs(t, benForm); !slices.Equal(got, []string{"stack"}) {
		t.Errorf("before a stack is picked the form has %v", got)
	}
	benSees, err := h.slack.Suggest(ctx, "U0BEN", benForm.ID, "stack", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(benSees) == 0 {
		t.Fatal("ben is offered no stacks")
	}
	for _, uid := range benSees {
		if production[uid] {
			t.Errorf("ben is offered the production stack %s he cannot see", uid)
		}
	}

	// Ana's form: typing filters; a Docker stack's form has services, no ref.
	formEnv, form := h.openForm(ctx, "U0ANA")
	apis, err := h.slack.Suggest(ctx, "U0ANA", form.ID, "stack", "API")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(apis, apiProd) || !slices.Contains(apis, apiStaging) {
		t.Errorf("typing api offers %v, want api:production %s and api:staging %s", apis, apiProd, apiStaging)
	}
	if _, err := h.slack.ChooseInView(ctx, "U0ANA", form.ID, "stack", apiProd, nil); err != nil {
		t.Fatal(err)
	}
	form, err = h.slack.WaitView(ctx, "U0ANA", func(v bottest.View) bool { return v.ID == form.ID && v.Updates == 1 })
	if err != nil {
		t.Fatalf("picking a stack did not redraw the form: %v", err)
	}
	fields := viewBlockIDs(t, form)
	if !slices.Contains(fields, "services") || slices.Contains(fields, "ref") {
		t.Errorf("a Docker stack's form has %v: want services and no ref", fields)
	}

	// A bad value is shown on its field, and nothing is sent.
	bad, err := h.slack.SubmitView(ctx, "U0ANA", form.ID, map[string]string{"stack": apiProd, "services": "web:!!"})
	if err != nil {
		t.Fatal(err)
	}
	if bad.ResponseAction != "errors" || !strings.Contains(bad.Errors["services"], "name:tag") {
		t.Errorf("a bad service answered %+v", bad)
	}
	if len(h.slack.OpenViews("U0ANA")) != 1 {
		t.Error("a refused submission closed the form")
	}

	// The typed command's confirmation, for comparison; then cancelled.
	_, typed := h.run("U0ANA", "C0GENERAL", "deploy api:production services=web")
	h.click("U0ANA", typed, "intent_abort")

	ok, err := h.slack.SubmitView(ctx, "U0ANA", form.ID, map[string]string{"stack": apiProd, "services": "web"})
	if err != nil || ok.ResponseAction != "" {
		t.Fatalf("a valid submission answered %+v, %v", ok, err)
	}
	confirm, err := h.slack.WaitMessage(ctx, func(m bottest.Message) bool {
		return m.Kind == bottest.KindEphemeral && m.User == "U0ANA" && m.Channel == "C0GENERAL" && strings.Contains(text(m), "needs your confirmation")
	})
	if err != nil {
		t.Fatalf("no confirmation after the form: %v", err)
	}
	if confirm.Text != typed.Text {
		t.Errorf("the form's confirmation reads %q, the typed one %q", confirm.Text, typed.Text)
	}
	mustContain(t, text(confirm), "Live now", "web")
	if n := h.c66.ActionCount(); n != 0 {
		t.Fatalf("a protected deploy was sent before confirmation (%d)", n)
	}
	_, confirmed := h.click("U0ANA", confirm, "deploy_confirm")
	mustContain(t, text(confirmed), "Confirmed")
	card := h.card("C0GENERAL", "api")
	mustContain(t, text(card), "<@U0ANA>", "web")
	if n := h.c66.ActionCount(); n != 1 {
		t.Errorf("Cloud 66 got %d deployments, want 1", n)
	}
	// Opening the form posted no reply of its own.
	for _, m := range h.slack.Messages() {
		if m.EnvelopeID == formEnv {
			t.Errorf("`/c66 deploy` also replied %q", m.Text)
		}
	}
	assertManifestCovers(t, h)
}

// The global shortcut opens the same form, asking where to post.
func TestE2EDeployShortcut(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := h.slack.SendShortcut(ctx, bottest.Shortcut{UserID: "U0ANA", CallbackID: "c66_deploy"}); err != nil {
		t.Fatal(err)
	}
	v, err := h.slack.WaitView(ctx, "U0ANA", func(v bottest.View) bool { return v.CallbackID == "deploy_form" })
	if err != nil {
		t.Fatalf("the shortcut opened no modal: %v", err)
	}
	if got := viewBlockIDs(t, v); !slices.Equal(got, []string{"stack", "channel"}) {
		t.Errorf("the shortcut's form has %v", got)
	}
	var staging string
	for _, st := range h.c66.Stacks() {
		if st.Name == "shop" && st.Environment == "staging" {
			staging = st.UID
		}
	}
	if sub, err := h.slack.SubmitView(ctx, "U0ANA", v.ID, map[string]string{"stack": staging, "channel": "C0GENERAL"}); err != nil || sub.ResponseAction != "" {
		t.Fatalf("submission %+v, %v", sub, err)
	}
	card := h.card("C0GENERAL", "shop")
	mustContain(t, text(card), "<@U0ANA>")

	// Picked where the bot can't reach the person ephemerally (a private
	// channel it is not in): the reply comes as a DM instead of being lost.
	if _, err := h.slack.SendShortcut(ctx, bottest.Shortcut{UserID: "U0ANA", CallbackID: "c66_deploy"}); err != nil {
		t.Fatal(err)
	}
	v, err = h.slack.WaitView(ctx, "U0ANA", func(w bottest.View) bool { return w.ID != v.ID && !w.Closed })
	if err != nil {
		t.Fatal(err)
	}
	var api string
	for _, st := range h.c66.Stacks() {
		if st.Name == "api" && st.Environment == "staging" {
			api = st.UID
		}
	}
	if sub, err := h.slack.SubmitView(ctx, "U0ANA", v.ID, map[string]string{"stack": api, "channel": "G0PRIVATE"}); err != nil || sub.ResponseAction != "" {
		t.Fatalf("submission %+v, %v", sub, err)
	}
	if _, err := h.slack.WaitMessage(ctx, func(m bottest.Message) bool {
		return m.Kind == bottest.KindPost && strings.HasPrefix(m.Channel, "D") && strings.Contains(text(m), "Deployment started")
	}); err != nil {
		t.Errorf("the form's reply did not reach the person: %v", err)
	}
}
