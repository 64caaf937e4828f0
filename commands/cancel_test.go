package commands

import (
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/deploy"
)

// cancelNow is newTestRouter's clock.
var cancelNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// The cancel prompt names the deployment as its card does (ref and short
// git hash, no Cloud 66 deployment id), its stack, who started it and when,
// in one sentence.
func TestCancelPromptNamesTheDeploymentAsItsCardDoes(t *testing.T) {
	t.Parallel()
	started := cloud66.Time{Time: cancelNow.Add(-3 * time.Minute)}
	for _, tt := range []struct {
		name    string
		running *cloud66.Deployment
		owner   string
		want    string
		text    string
	}{
		{name: "started through the bot",
			running: &cloud66.Deployment{ID: 10148, GitRef: "main", GitHash: "abc1234def567", TriggeredBy: "ana@example.com", StartedAt: started},
			owner:   "U0ANA",
			want:    ":octagonal_sign: Cancel the deployment of `main` (`abc1234`) to *shop* · production, started by <@U0ANA> 3 min ago?",
			text:    "Cancel the deployment of main (abc1234) to shop:production?"},
		{name: "started in Cloud 66",
			running: &cloud66.Deployment{ID: 10148, GitRef: "main", GitHash: "abc1234def567", TriggeredBy: "ben@example.com", StartedAt: started},
			want:    "Cancel the deployment of `main` (`abc1234`) to *shop* · production, started by ben@example.com 3 min ago?"},
		{name: "hash only, nobody named",
			running: &cloud66.Deployment{ID: 10148, GitHash: "abc1234def567", StartedAt: started},
			want:    "Cancel the deployment of `abc1234` to *shop* · production, started 3 min ago?"},
		{name: "a Docker stack's services",
			running: &cloud66.Deployment{ID: 10148, Services: cloud66.ServiceTags{"web:1.4.2"}, TriggeredBy: "ben@example.com"},
			want:    "Cancel the deployment of `web:1.4.2` to *shop* · production, started by ben@example.com?"},
		{name: "nothing known",
			running: &cloud66.Deployment{ID: 10148},
			want:    "Cancel the running deployment on *shop* · production?",
			text:    "Cancel the running deployment of shop:production?"},
		{name: "escaped",
			running: &cloud66.Deployment{ID: 10148, GitRef: "x`<!channel>", TriggeredBy: "<!here>"},
			want:    "Cancel the deployment of `x'&lt;!channel&gt;` to *shop* · production, started by &lt;!here&gt;?"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stacks := testStacks()
			d := &fakeDeployer{cancel: &deploy.Confirmation{IntentID: "i3", Kind: "cancel", Stack: stacks[0], Running: tt.running,
				RunningOwner: tt.owner, ExpiresAt: cancelNow.Add(5 * time.Minute)}}
			r, _ := newTestRouter(t, true, &fakeCloud66{stacks: stacks}, func(deps *Deps) { deps.Deploy = d })
			req := ana
			req.Text = "cancel shop:production"
			reply := r.Dispatch(t.Context(), req)
			got := replyText(t, reply)
			if !strings.Contains(got, tt.want) {
				t.Errorf("prompt lacks %q:\n%s", tt.want, got)
			}
			if tt.text != "" && reply.Text != tt.text {
				t.Errorf("fallback text %q, want %q", reply.Text, tt.text)
			}
			if strings.Contains(got, "10148") || strings.Contains(got, "#") {
				t.Errorf("the prompt names the deployment by a second id:\n%s", got)
			}
			if reply.InChannel {
				t.Error("the prompt went to the channel")
			}
		})
	}
}

// A Confirm pressed after the deployment ended says how it ended, in the
// card's words, replaces the prompt (its buttons go), and is ephemeral.
func TestCancelPressedAfterTheDeploymentFinished(t *testing.T) {
	t.Parallel()
	shop := testStacks()[0]
	ended := cloud66.Time{Time: cancelNow.Add(-2 * time.Minute)}
	dep := func(outcome string) cloud66.Deployment {
		return cloud66.Deployment{ID: 10148, GitRef: "main", GitHash: "abc1234def567", Outcome: cloud66.CodeMeaning{Meaning: outcome}, FinishedAt: ended}
	}
	for _, tt := range []struct {
		name string
		err  *deploy.FinishedError
		want []string
	}{
		{name: "deployed", err: &deploy.FinishedError{Stack: shop, Deployment: dep("success")},
			want: []string{"✅ Too late to cancel: the deployment of `main` (`abc1234`) to *shop* · production already finished — it deployed 2 min ago. Nothing was changed."}},
		{name: "failed", err: &deploy.FinishedError{Stack: shop, Deployment: dep("failed")},
			want: []string{"❌ Too late to cancel: the deployment of `main` (`abc1234`) to *shop* · production already finished — it failed 2 min ago. Nothing was changed."}},
		{name: "cancelled", err: &deploy.FinishedError{Stack: shop, Deployment: dep("canceled by user")},
			want: []string{"⏹ Too late to cancel: the deployment of `main` (`abc1234`) to *shop* · production was already cancelled 2 min ago. Nothing was changed."}},
		{name: "could not be read back", err: &deploy.FinishedError{Stack: shop, Deployment: cloud66.Deployment{ID: 10148, GitRef: "main", GitHash: "abc1234def567"}},
			want: []string{":information_source: The deployment of `main` (`abc1234`) to *shop* · production is no longer running, so there is nothing to cancel. Nothing was changed."}},
		{name: "another one runs now", err: &deploy.FinishedError{Stack: shop, Deployment: dep("success"),
			Running:      &cloud66.Deployment{ID: 10149, GitRef: "v2", GitHash: "fedcba9876", StartedAt: cloud66.Time{Time: cancelNow.Add(-time.Minute)}},
			RunningOwner: "U0BEN"},
			want: []string{"it deployed 2 min ago. Nothing was changed.",
				"Another deployment is running now: the deployment of `v2` (`fedcba9`) to *shop* · production, started by <@U0BEN> 1 min ago. I left it alone; `/c66 cancel shop:production` to stop that one."}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &fakeDeployer{err: tt.err}
			r, _ := newTestRouter(t, true, &fakeCloud66{}, func(deps *Deps) { deps.Deploy = d })
			reply, handled := r.HandleAction(t.Context(), press(ActionCancelConfirm))
			if !handled {
				t.Fatal("not handled")
			}
			got := replyText(t, reply.Message)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("reply lacks %q:\n%s", w, got)
				}
			}
			for _, bad := range []string{"busy", "Cancelling", "10148", "button"} {
				if strings.Contains(got, bad) {
					t.Errorf("reply says %q:\n%s", bad, got)
				}
			}
			if !reply.Replace || reply.InChannel {
				t.Errorf("Replace %v, InChannel %v; want the prompt replaced, ephemerally", reply.Replace, reply.InChannel)
			}
			if len(buttonIDs(reply.Message)) != 0 {
				t.Errorf("the reply has buttons: %v", buttonIDs(reply.Message))
			}
		})
	}
}
