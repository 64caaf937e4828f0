package deploy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/storage"
)

// A production deploy of a stack on GitHub: the confirmation knows what is
// live, and the card links the commit it deployed and the comparison
// between the two, through the intent and the stored watch.
func TestCardLinksWhatShippedSinceTheLiveHash(t *testing.T) {
	e := newEnv(t)
	stack := e.stack("shop", "production")
	stack.Git = "git@github.com:acme/shop.git"
	res, err := e.svc.Deploy(t.Context(), origin(ana, "C1", "r1"), stack, deploy.Params{})
	if err != nil || res.Confirm == nil {
		t.Fatalf("Deploy = %+v, %v; want a confirmation", res, err)
	}
	live := res.Confirm.LiveHash
	if live == "" {
		t.Fatal("the confirmation does not know what is live")
	}
	w, err := e.svc.Confirm(t.Context(), res.Confirm.IntentID, ana)
	if err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(3*time.Minute + time.Second)
	got := e.waitState(w.ID, storage.WatchSucceeded)
	card := e.waitCard(w.MessageTS, "✅",
		"*Git hash*\\n<https://github.com/acme/shop/commit/"+got.GitHash+"|"+got.GitHash[:7]+">",
		"*Changes*\\n<https://github.com/acme/shop/compare/"+live+"..."+got.GitHash+"|"+live[:7]+"…"+got.GitHash[:7]+">")
	if strings.Contains(card.Text(), "`"+got.GitHash+"`") {
		t.Errorf("the card still spells the whole hash out:\n%s", card.Text())
	}
}

// A stack on a git server gitweb does not know gets no links at all.
func TestCardOfAnUnknownGitHostHasNoLinks(t *testing.T) {
	e := newEnv(t)
	stack := e.stack("shop", "staging")
	stack.Git = "git@git.internal.example:acme/shop.git"
	res, err := e.svc.Deploy(t.Context(), origin(ana, "C1", "r1"), stack, deploy.Params{})
	if err != nil || res.Watch == nil {
		t.Fatalf("Deploy = %+v, %v", res, err)
	}
	e.Clock.Advance(3*time.Minute + time.Second)
	got := e.waitState(res.Watch.ID, storage.WatchSucceeded)
	card := e.waitCard(res.Watch.MessageTS, "✅", "*Git hash*\\n`"+got.GitHash[:7]+"`")
	if strings.Contains(card.Text(), "git.internal.example") || strings.Contains(card.Text(), "*Changes*") {
		t.Errorf("card links an unknown host:\n%s", card.Text())
	}
}

// An approval request for a stack on GitHub shows approvers what is live
// and links the comparison with what will ship (the stack's branch here).
func TestApprovalRequestLinksWhatWillShip(t *testing.T) {
	e := newEnv(t, withPolicy(`
rules:
  - name: shop-production
    stacks: shop
    environments: [production]
    deployers: [UANA, UBEN]
    approvals: 1
`))
	stack := e.stack("shop", "production")
	stack.Git, stack.GitBranch = "https://github.com/acme/shop.git", "main"
	res, err := e.svc.Deploy(t.Context(), origin(ana, "C1", "r1"), stack, deploy.Params{})
	if err != nil || res.Approval == nil {
		t.Fatalf("Deploy = %+v, %v; want an approval request", res, err)
	}
	post := e.approvalPost().Text()
	for _, want := range []string{"asks to deploy `main` (the stack's branch) to", "*Live now*\\n<https://github.com/acme/shop/commit/", "*What will ship*\\n<https://github.com/acme/shop/compare/", "...main|"} {
		if !strings.Contains(post, want) {
			t.Errorf("approval request lacks %s:\n%s", want, post)
		}
	}
}
