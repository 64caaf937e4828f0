package deploy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/internal/testenv"
	"github.com/c66bot/c66bot/storage"
)

const hash = "abc1234def5678abc1234def5678abc1234def56"

func baseWatch() storage.Watch {
	return storage.Watch{
		ID:          "00000000000000000001",
		Owner:       ana,
		Channel:     "C1",
		MessageTS:   "1741082400.000001",
		StackUID:    "uid1",
		StackName:   "shop",
		Environment: "production",
		Params:      deploy.Params{Ref: "v2.1"}.Map(),
		State:       "deploying",
		ActionID:    70001,
		RequestedAt: t0,
		StartedAt:   t0.Add(5 * time.Second),
	}
}

func TestCardStates(t *testing.T) {
	t.Parallel()
	now := t0.Add(10 * time.Minute)
	tests := []struct {
		name     string
		edit     func(*storage.Watch)
		wantText string   // the fallback, exactly
		want     []string // in the blocks
		notWant  []string
	}{
		{
			name:     "starting",
			edit:     func(w *storage.Watch) { w.State, w.ActionID, w.StartedAt = "starting", 0, time.Time{} },
			wantText: "⏳ shop · production: starting a deployment of v2.1",
			want:     []string{"⏳ *Starting* — *shop* · production", "*Requested by*\\n<@UANA>", "*Ref*\\n`v2.1`", "<https://app.cloud66.com/stacks/uid1|Open in Cloud 66>"},
			notWant:  []string{"Duration", "Cloud 66 action"},
		},
		{
			name:     "queued",
			edit:     func(w *storage.Watch) { w.State, w.ActionID, w.Queued, w.StartedAt = "queued", 0, true, time.Time{} },
			wantText: "⏳ shop · production: deployment of v2.1 queued behind the running deployment",
			want:     []string{"⏳ *Queued behind the running deployment*", "queued this deployment behind the deployment already running", "*Duration*\\n10 min 00 s"},
		},
		{
			name:     "deploying",
			edit:     func(*storage.Watch) {},
			wantText: "🚀 shop · production deploying v2.1",
			want:     []string{"🚀 *Deploying* — *shop* · production", "*Duration*\\n9 min 55 s", "Cloud 66 action 70001 · <https://app.cloud66.com/stacks/uid1|Open in Cloud 66>"},
		},
		{
			name: "succeeded",
			edit: func(w *storage.Watch) {
				w.State, w.GitHash, w.FinishedAt, w.Message = "succeeded", hash, w.StartedAt.Add(3*time.Minute+5*time.Second), "Completed successfully"
			},
			wantText: "✅ shop · production deployed v2.1 (abc1234) in 3 min 05 s",
			want:     []string{"✅ *Deployed*", "*Git hash*\\n`abc1234`", "*Duration*\\n3 min 05 s"},
		},
		{
			// On GitHub the hash is a link to its commit, and the card
			// links what changed since the hash live when it was asked for.
			name: "succeeded on GitHub",
			edit: func(w *storage.Watch) {
				w.State, w.GitHash, w.FinishedAt, w.Message = "succeeded", hash, w.StartedAt.Add(3*time.Minute+5*time.Second), "Completed successfully"
				w.Params = map[string]string{"ref": "v2.1", "git_repo": "https://github.com/acme/shop", "live_hash": "0123456789abcdef0123456789abcdef01234567"}
			},
			wantText: "✅ shop · production deployed v2.1 (abc1234) in 3 min 05 s",
			want: []string{"*Git hash*\\n<https://github.com/acme/shop/commit/" + hash + "|abc1234>",
				"*Changes*\\n<https://github.com/acme/shop/compare/0123456789abcdef0123456789abcdef01234567..." + hash + "|0123456…abc1234>"},
		},
		{
			// A repository value that is not a known host's never becomes
			// a link.
			name: "succeeded, repository not linkable",
			edit: func(w *storage.Watch) {
				w.State, w.GitHash, w.FinishedAt = "succeeded", hash, w.StartedAt.Add(time.Minute)
				w.Params = map[string]string{"git_repo": "https://evil.example/<!channel>", "live_hash": "0123456789abcdef0123456789abcdef01234567"}
			},
			wantText: "✅ shop · production deployed the default branch (abc1234) in 1 min 00 s",
			want:     []string{"*Git hash*\\n`abc1234`"},
		},
		{
			name: "failed",
			edit: func(w *storage.Watch) {
				w.State, w.FinishedAt, w.Message = "failed", w.StartedAt.Add(time.Minute), "Build failed: tests"
			},
			wantText: "❌ shop · production deployment of v2.1 failed after 1 min 00 s",
			want:     []string{"❌ *Deployment failed*", "Cloud 66: Build failed: tests"},
		},
		{
			name: "refused",
			edit: func(w *storage.Watch) {
				w.State, w.ActionID, w.FinishedAt, w.Message = "failed", 0, t0, "Stack is busy (HTTP 409)"
			},
			wantText: "❌ shop · production: Cloud 66 refused the deployment of v2.1",
			want:     []string{"❌ *Deployment failed*", "Cloud 66 refused the deployment: Stack is busy (HTTP 409)"},
			notWant:  []string{"Cloud 66 action"},
		},
		{
			name: "cancelled",
			edit: func(w *storage.Watch) {
				w.State, w.FinishedAt, w.CancelRequestedBy, w.Message = "cancelled", w.StartedAt.Add(time.Minute), "UBEN", "Deployment cancelled"
			},
			wantText: "⏹ shop · production deployment of v2.1 cancelled",
			want:     []string{"⏹ *Cancelled*", "Cancelled by <@UBEN>. Cloud 66: Deployment cancelled"},
		},
		{
			name: "unknown",
			edit: func(w *storage.Watch) {
				w.State, w.FinishedAt, w.Message = "unknown", now, "No result from Cloud 66 after 2 h 00 min."
			},
			wantText: "⚠️ shop · production: state of the deployment of v2.1 unknown",
			want:     []string{"⚠️ *State unknown*", "No result from Cloud 66 after 2 h 00 min. <https://app.cloud66.com/stacks/uid1|Check it in Cloud 66>."},
		},
		{
			name: "all params",
			edit: func(w *storage.Watch) {
				w.Params = deploy.Params{Services: []string{"web:1.2", "worker"}, Profile: "fast-lane", Strategy: "rolling"}.Map()
			},
			wantText: "🚀 shop · production deploying the default branch",
			want:     []string{"*Ref*\\n_branch default_", "*Services*\\n`web:1.2`, `worker`", "*Profile*\\n`fast-lane`", "*Strategy*\\n`rolling`"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := baseWatch()
			tc.edit(&w)
			m := deploy.Card(w, now, "https://app.cloud66.com/")
			if m.Text != tc.wantText {
				t.Errorf("Text = %q\nwant   %q", m.Text, tc.wantText)
			}
			if !m.InChannel {
				t.Error("card is not in channel")
			}
			if len(m.Blocks) == 0 || len(m.Blocks) > 50 {
				t.Fatalf("%d blocks", len(m.Blocks))
			}
			js := testenv.BlocksJSON(m.Blocks)
			for _, want := range tc.want {
				if !strings.Contains(js, want) {
					t.Errorf("blocks lack %q:\n%s", want, js)
				}
			}
			for _, nw := range tc.notWant {
				if strings.Contains(js, nw) {
					t.Errorf("blocks contain %q:\n%s", nw, js)
				}
			}
		})
	}
}

func TestCardEscapesEverything(t *testing.T) {
	t.Parallel()
	for _, state := range []storage.WatchState{"starting", "queued", "deploying", "succeeded", "failed", "cancelled", "unknown"} {
		w := baseWatch()
		w.State = state
		w.StackName = "<!channel>"
		w.Environment = "<@U999>"
		w.Params = deploy.Params{Ref: "<https://evil.example|click>", Services: []string{"<!here>"}, Profile: "a&b", Strategy: "`<!everyone>`"}.Map()
		w.Message = "<!subteam^S1> failed & <https://evil.example|see>"
		w.GitHash = "<!channel>"
		w.CancelRequestedBy = "U1><!channel"
		m := deploy.Card(w, t0.Add(time.Hour), "https://app.cloud66.com")
		all := m.Text + testenv.BlocksJSON(m.Blocks)
		for _, bad := range []string{"<!channel>", "<!here>", "<!everyone>", "<!subteam", "<@U999>", "<https://evil", "<@U1><!channel"} {
			if strings.Contains(all, bad) {
				t.Errorf("%s card contains raw %q:\n%s", state, bad, all)
			}
		}
		if !strings.Contains(all, "&lt;!channel&gt;") {
			t.Errorf("%s card does not show the escaped name", state)
		}
	}
}

// A uid that is not a Cloud 66 uid (a record older than the check at
// decode) costs the card its dashboard links and adds none of its own; names
// and messages with new lines stay on their line.
func TestCardHostileUIDAndLines(t *testing.T) {
	t.Parallel()
	for _, state := range []storage.WatchState{"starting", "queued", "deploying", "succeeded", "failed", "cancelled", "unknown"} {
		w := baseWatch()
		w.State = state
		w.StackUID = "x|<!channel> <https://evil.example|Open in Cloud 66>"
		w.StackName = "shop\n:white_check_mark: *Deployed* — *shop*"
		w.Environment = "production\r\n*Requested by*"
		w.Message = "boom\n*Approved by* the boss"
		if state == "failed" {
			w.Message = ""
		}
		m := deploy.Card(w, t0.Add(time.Hour), "https://app.cloud66.com")
		all := m.Text + testenv.BlocksJSON(m.Blocks)
		for _, bad := range []string{"<!channel>", "<https://evil", "<https://app.cloud66.com", `\n:white_check_mark:`, `\n*Approved`, `\r`, `production\n`} {
			if strings.Contains(all, bad) {
				t.Errorf("%s card contains %q:\n%s", state, bad, all)
			}
		}
		if !strings.Contains(all, "shop :white_check_mark: *Deployed*") {
			t.Errorf("%s card does not show the name on one line:\n%s", state, all)
		}
	}
}

func TestCardOfRealDeployIsEscaped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st := e.stack("shop", "staging")
	st.Name = "<!channel>"
	res, err := e.svc.Deploy(t.Context(), origin(ana, "C1", "r1"), st, deploy.Params{Ref: "<!here>"})
	if err != nil {
		t.Fatal(err)
	}
	e.waitPolls(res.Watch.ID, 1)
	e.Clock.Advance(4 * time.Minute)
	e.waitState(res.Watch.ID, "succeeded")
	e.waitCard(res.Watch.MessageTS, "✅")
	for _, c := range e.Slack.Calls("") {
		text := c.Text()
		if strings.Contains(text, "<!channel>") || strings.Contains(text, "<!here>") {
			t.Errorf("%s message contains a raw broadcast: %s", c.Kind, text)
		}
	}
}

func TestCardInProgress(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for state, want := range map[storage.WatchState]bool{
		"starting": true, "queued": true, "deploying": true,
		"succeeded": false, "failed": false, "cancelled": false, "unknown": false,
	} {
		w := storage.Watch{State: state, StackName: "shop", Environment: "staging", RequestedAt: now, Owner: storage.Identity{Team: "T", User: "U"}}
		if got := deploy.CardInProgress(deploy.Card(w, now, "https://app.cloud66.com").Text); got != want {
			t.Errorf("CardInProgress(card in %s) = %v, want %v", state, got, want)
		}
	}
}

// Deploy parameters are rendered by Params.Fields wherever they are shown,
// so the card and the approval request escape them alike, every value as
// inline code that cannot close early.
func TestParamsAreShownAlikeOnTheCardAndTheApprovalRequest(t *testing.T) {
	t.Parallel()
	p := deploy.Params{Ref: "v`2", Services: []string{"web:1.2", "<!here>"}, Profile: "a&b", Strategy: "`<!everyone>`"}
	fields := p.Fields()
	want := []string{"*Services*\n`web:1.2`, `&lt;!here&gt;`", "*Profile*\n`a&amp;b`", "*Strategy*\n`'&lt;!everyone&gt;'`"}
	if strings.Join(fields, "|") != strings.Join(want, "|") {
		t.Fatalf("Fields() = %q\nwant       %q", fields, want)
	}
	if got := p.RefCode("none"); got != "`v'2`" {
		t.Errorf("RefCode = %q, want the ref as code", got)
	}
	if got := (deploy.Params{}).RefCode("_branch default_"); got != "_branch default_" {
		t.Errorf("RefCode without a ref = %q", got)
	}
	w := baseWatch()
	w.Params = p.Map()
	card := testenv.BlocksJSON(deploy.Card(w, t0, "https://app.cloud66.com").Blocks)
	approval := testenv.BlocksJSON(deploy.ApprovalMessage(storage.Intent{ID: "i1", Requester: ana, StackName: "shop", Environment: "production",
		Params: p.Map(), ExpiresAt: t0.Add(time.Hour)}, "", true).Blocks)
	for _, f := range fields {
		js := strings.Trim(testenv.BlocksJSON(f), `"`)
		if !strings.Contains(card, js) {
			t.Errorf("the card lacks %q:\n%s", js, card)
		}
		if !strings.Contains(approval, js) {
			t.Errorf("the approval request lacks %q:\n%s", js, approval)
		}
	}
	if !strings.Contains(approval, "asks to deploy `v'2` to") {
		t.Errorf("the approval request does not name the ref as code:\n%s", approval)
	}
}
