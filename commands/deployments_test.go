package commands

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/deploy"
)

// dep is a finished deployment of the test: its id, outcome and git hash,
// and the ref "r<id>", by which its line is found.
func dep(id int64, outcome, hash string) cloud66.Deployment {
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(id) * time.Minute)
	return cloud66.Deployment{ID: id, Outcome: cloud66.CodeMeaning{Meaning: outcome}, GitHash: hash, GitRef: fmt.Sprintf("r%d", id),
		TriggeredBy: "ana", StartedAt: cloud66.Time{Time: at}, FinishedAt: cloud66.Time{Time: at.Add(time.Minute)}}
}

func live(d cloud66.Deployment) cloud66.Deployment {
	d.IsLive = true
	return d
}

// Earlier successful deployments with another git hash than the live one
// carry a "Roll back to this" button, each with its own stored offer, at
// most rollbackOffersShown of them; the live one, newer ones, failed and
// cancelled ones, and the ones without a hash or whose offer could not be
// stored are listed without.
func TestDeploymentsOfferRollbacks(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		deps   []cloud66.Deployment
		fails  string // the offer that cannot be stored
		noFlow bool   // no deploy workflow
		// offers are the deployments offered, by id, in order; the others
		// shown have no button.
		offers []string
	}{
		{name: "which are offered", fails: "1002", deps: []cloud66.Deployment{
			dep(1010, "failed", "aaaa010"),
			dep(1009, "success", "aaaa009"), // newer than the live one
			live(dep(1008, "success", "aaaa008")),
			dep(1007, "success", "aaaa008"), // what is live already
			dep(1006, "failed", "aaaa006"),
			dep(1005, "cancelled", "aaaa005"),
			dep(1004, "success", "aaaa004"),
			dep(1003, "success", ""),
			dep(1002, "success", "aaaa002"),
			dep(1001, "success", "aaaa001"),
			dep(1000, "success", "aaaa000"), // past the ten shown
		}, offers: []string{"1004", "1001"}},
		{name: "at most five", deps: []cloud66.Deployment{
			live(dep(1010, "success", "bbbb010")),
			dep(1009, "success", "bbbb009"), dep(1008, "success", "bbbb008"), dep(1007, "success", "bbbb007"),
			dep(1006, "success", "bbbb006"), dep(1005, "success", "bbbb005"), dep(1004, "success", "bbbb004"),
			dep(1003, "success", "bbbb003"),
		}, offers: []string{"1009", "1008", "1007", "1006", "1005"}},
		{name: "live is the newest successful when none says", deps: []cloud66.Deployment{
			dep(1003, "failed", "cccc003"), dep(1002, "success", "cccc002"), dep(1001, "success", "cccc001"),
		}, offers: []string{"1001"}},
		{name: "nothing succeeded", deps: []cloud66.Deployment{dep(1002, "failed", "dddd002"), dep(1001, "error", "dddd001")}},
		{name: "without a deploy workflow", noFlow: true, deps: []cloud66.Deployment{
			live(dep(1002, "success", "eeee002")), dep(1001, "success", "eeee001"),
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &fakeDeployer{offerFails: tt.fails}
			c66 := &fakeCloud66{stacks: testStacks(), deployments: map[string][]cloud66.Deployment{"uid-shop-p": tt.deps}}
			r, _ := newTestRouter(t, true, c66, func(deps *Deps) {
				if !tt.noFlow {
					deps.Deploy = d
				}
			})
			reply := send(t, r, "deployments shop:production")

			offered := map[string]string{} // id → the button's value
			listed := map[string]bool{}
			for _, b := range reply.Blocks {
				s, ok := b.(*slack.SectionBlock)
				if !ok || s.Text == nil {
					continue
				}
				for _, dp := range tt.deps {
					id := fmt.Sprint(dp.ID)
					if !strings.Contains(s.Text.Text, "`r"+id+"`") {
						continue
					}
					listed[id] = true
					if s.Accessory != nil && s.Accessory.ButtonElement != nil {
						btn := s.Accessory.ButtonElement
						if btn.ActionID != deploy.ActionRollback || btn.Text.Text != "Roll back to this" {
							t.Errorf("deployment %s: button %s %q", id, btn.ActionID, btn.Text.Text)
						}
						if strings.Count(s.Text.Text, "\n") != 0 {
							t.Errorf("deployment %s: its button's section holds other lines too:\n%s", id, s.Text.Text)
						}
						offered[id] = btn.Value
					}
				}
			}
			want := map[string]string{}
			for _, id := range tt.offers {
				want[id] = "offer-" + id
			}
			if !reflect.DeepEqual(offered, want) {
				t.Errorf("buttons (id → offer) %v, want %v", offered, want)
			}
			if shown := min(len(tt.deps), deploymentsShown); len(listed) != shown {
				t.Errorf("%d deployments listed, want %d:\n%s", len(listed), shown, replyText(t, reply))
			}
			if len(reply.Blocks) > maxBlocksForTest {
				t.Errorf("%d blocks", len(reply.Blocks))
			}

			// An offer is stored for each button (and the one that
			// failed), as the person listing, and for nothing else.
			var asked []string
			for _, c := range d.verbCalls() {
				if c.Method != "OfferRollback" || c.Origin != anaOrigin || c.Stack != "shop:production" {
					t.Errorf("call %+v", c)
				}
				asked = append(asked, c.To)
			}
			wantAsked := append([]string(nil), tt.offers...)
			if tt.fails != "" {
				wantAsked = nil
				for _, dp := range tt.deps {
					if id := fmt.Sprint(dp.ID); id == tt.fails || want[id] != "" {
						wantAsked = append(wantAsked, id)
					}
				}
			}
			if !reflect.DeepEqual(asked, wantAsked) {
				t.Errorf("offers asked for %v, want %v", asked, wantAsked)
			}
		})
	}
}
