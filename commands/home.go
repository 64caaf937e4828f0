package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/deploy"
	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/slackapp"
	"github.com/c66bot/c66bot/storage"
)

// HomeData is what the App Home tab shows one person.
type HomeData struct {
	Linked   bool
	Account  string
	LinkedAt time.Time
	// LoginURL is the Log in button's link when not linked ("" without one).
	LoginURL  string
	OutOfBand bool
	// Running are the person's unfinished watches; Locks the locks they hold.
	Running []storage.Watch
	Locks   []storage.Lock
	// Deploys are the last deployments of the stacks the person subscribed
	// channels to, read with their own token.
	Deploys []HomeDeploy
	// Approvals are the open requests the person may approve.
	Approvals []deploy.PendingApproval
}

// HomeDeploy is the newest deployment of one subscribed stack; Last is nil
// when it has none yet.
type HomeDeploy struct {
	StackName, Environment string
	Last                   *cloud66.Deployment
}

// ActionHomeLogin is the Home's Log in button (a link button: the press
// needs nothing but its ack).
const ActionHomeLogin = "home_login"

// RenderHome is the Home tab of d, as of now.
func RenderHome(d HomeData, slash string, now time.Time) slack.HomeTabViewRequest {
	if slash == "" {
		slash = slackapp.DefaultCommand
	}
	blocks := []slack.Block{bk.Header("c66bot")}
	if !d.Linked {
		blocks = append(blocks, bk.Section(":link: You haven't linked your Cloud 66 account yet. I act in Cloud 66 as you, with only the permissions you have there."))
		if d.LoginURL != "" {
			blocks = append(blocks, slack.NewActionBlock("home_login", bk.LinkButton(ActionHomeLogin, "Log in", d.LoginURL, true)))
			steps := "The link works once, for you only, for 10 minutes; open this tab again for a fresh one."
			if d.OutOfBand {
				steps = "Cloud 66 will show you a code; paste it as `" + slash + " login <code>`. " + steps
			}
			blocks = append(blocks, bk.Context(steps))
		} else {
			blocks = append(blocks, bk.Context("Run `"+slash+" login` in any channel to link it."))
		}
		return slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}}
	}
	who := ":white_check_mark: Linked to Cloud 66"
	if d.Account != "" {
		who += " account *" + bk.Esc(d.Account) + "*"
	}
	if !d.LinkedAt.IsZero() {
		who += " since " + bk.Date(d.LinkedAt, "{date_short_pretty}")
	}
	blocks = append(blocks, bk.Section(who+"."), slack.NewDividerBlock())

	blocks = append(blocks, bk.Section("*Your running actions*"))
	if len(d.Running) == 0 {
		blocks = append(blocks, bk.Context("Nothing running. Start one with `"+slash+" deploy <stack>`."))
	}
	for _, w := range d.Running {
		line := fmt.Sprintf(":rocket: %s of *%s* · %s, %s", deploy.Noun(w), bk.Esc(w.StackName), bk.Esc(w.Environment), bk.Esc(string(w.State)))
		if !w.RequestedAt.IsZero() {
			line += ", started " + bk.Ago(now, w.RequestedAt)
		}
		if link := deploy.MessageLink(w.Channel, w.MessageTS); link != "" {
			line += " (" + bk.Link(link, "its message") + ")"
		} else if w.Channel != "" {
			line += " in <#" + bk.Esc(w.Channel) + ">"
		}
		blocks = append(blocks, bk.Section(line))
	}

	blocks = append(blocks, bk.Section("*Your locks*"))
	if len(d.Locks) == 0 {
		blocks = append(blocks, bk.Context("You hold no locks."))
	}
	for _, l := range d.Locks {
		blocks = append(blocks, bk.Section(fmt.Sprintf(":lock: *%s* · %s, since %s%s", bk.Esc(l.StackName), bk.Esc(l.Environment),
			bk.Ago(now, l.Since), reasonSuffix(l.Reason))))
	}

	blocks = append(blocks, bk.Section("*Waiting for your approval*"))
	if len(d.Approvals) == 0 {
		blocks = append(blocks, bk.Context("No requests wait for you."))
	}
	for _, a := range d.Approvals {
		line := fmt.Sprintf(":raised_hand: <@%s> asks to %s *%s* · %s (%d of %d approvals), expires %s", bk.Esc(a.Requester.User), bk.Esc(a.Noun),
			bk.Esc(a.StackName), bk.Esc(a.Environment), a.Approved, a.Needed, bk.Date(a.ExpiresAt, "{time}"))
		if link := deploy.MessageLink(a.Channel, a.MessageTS); link != "" {
			line += " (" + bk.Link(link, "the request") + ")"
		} else if a.Channel != "" {
			line += " in <#" + bk.Esc(a.Channel) + ">"
		}
		blocks = append(blocks, bk.Section(line))
	}

	blocks = append(blocks, bk.Section("*Last deploys of your subscriptions*"))
	if len(d.Deploys) == 0 {
		blocks = append(blocks, bk.Context("No subscriptions of yours. `"+slash+" subscribe <stack>` in a channel adds one."))
	}
	for _, dep := range d.Deploys {
		name := fmt.Sprintf("*%s* · %s", bk.Esc(dep.StackName), bk.Esc(dep.Environment))
		if dep.Last == nil {
			blocks = append(blocks, bk.Section(name+": no deployments yet"))
			continue
		}
		blocks = append(blocks, bk.Section(name+": "+deploymentLine(*dep.Last, now)))
	}
	return slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}}
}

// homeShownStacks bounds the subscribed stacks read for one Home: each is
// one Cloud 66 request with the person's token.
const homeShownStacks = 5

// homeLinker is what the Home needs of the account service.
type homeLinker interface {
	Link(ctx context.Context, id storage.Identity) (storage.Link, error)
	BeginLogin(ctx context.Context, r accounts.LoginRequest) (accounts.LoginStart, error)
}

// HomeWatches lists the unfinished watches; *storage.WatchStore satisfies it.
type HomeWatches interface {
	Active(ctx context.Context) ([]storage.Watch, error)
}

// HomeLocks lists a workspace's locks; *storage.LockStore satisfies it.
type HomeLocks interface {
	List(ctx context.Context, team string) ([]storage.Lock, error)
}

// HomeSubscriptions lists every subscription; *storage.SubscriptionStore satisfies it.
type HomeSubscriptions interface {
	All(ctx context.Context) ([]storage.Subscription, error)
}

// HomeApprovals lists the open approval requests id may approve;
// (*deploy.Service).PendingApprovals is one.
type HomeApprovals func(ctx context.Context, id storage.Identity) ([]deploy.PendingApproval, error)

// HomeDeps is what NewHome needs.
type HomeDeps struct {
	Accounts      homeLinker
	Watches       HomeWatches
	Locks         HomeLocks
	Subscriptions HomeSubscriptions
	Cloud66For    func(ctx context.Context, id storage.Identity) (Cloud66, error)
	// Approvals may be nil (no approvals shown); called at render time.
	Approvals HomeApprovals
	// LoginURL is as in Deps; called at render time, so it may be set late.
	LoginURL func(accounts.LoginStart) string
	Command  string
	Now      func() time.Time
	Logger   *slog.Logger
}

// Home gathers and renders a person's App Home.
type Home struct {
	d   HomeDeps
	res *resolver // for which stacks the person's Cloud 66 account sees
}

// NewHome builds the Home renderer.
func NewHome(d HomeDeps) *Home {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return &Home{d: d, res: &resolver{clientFor: d.Cloud66For, cache: &stackCache{}, now: d.Now}}
}

// View is id's Home tab now. Only what is the person's own is read: their
// watches, their locks, and the stacks they subscribed, read with their own
// token, so no stack their Cloud 66 account cannot see is named.
func (h *Home) View(ctx context.Context, id storage.Identity) (slack.HomeTabViewRequest, error) {
	now := h.d.Now()
	link, err := h.d.Accounts.Link(ctx, id)
	switch {
	case errors.Is(err, accounts.ErrNotLinked), errors.Is(err, storage.ErrNotFound):
		return RenderHome(h.loginData(ctx, id), h.d.Command, now), nil
	case err != nil:
		return slack.HomeTabViewRequest{}, fmt.Errorf("home: read link: %w", err)
	}
	d := HomeData{Linked: true, Account: link.Account, LinkedAt: link.LinkedAt}
	watches, err := h.d.Watches.Active(ctx)
	if err != nil {
		return slack.HomeTabViewRequest{}, fmt.Errorf("home: running actions: %w", err)
	}
	for _, w := range watches {
		if w.Owner == id {
			d.Running = append(d.Running, w)
		}
	}
	locks, err := h.d.Locks.List(ctx, id.Team)
	if err != nil {
		return slack.HomeTabViewRequest{}, fmt.Errorf("home: locks: %w", err)
	}
	for _, l := range locks {
		if l.Owner == id {
			d.Locks = append(d.Locks, l)
		}
	}
	d.Deploys = h.deploys(ctx, id)
	if d.Approvals, err = h.approvals(ctx, id); err != nil {
		return slack.HomeTabViewRequest{}, err
	}
	return RenderHome(d, h.d.Command, now), nil
}

func (h *Home) loginData(ctx context.Context, id storage.Identity) HomeData {
	start, err := h.d.Accounts.BeginLogin(ctx, accounts.LoginRequest{Identity: id})
	if err != nil {
		h.d.Logger.WarnContext(ctx, "home: cannot start a login", "error", err.Error())
		return HomeData{}
	}
	url := start.AuthorizeURL
	if h.d.LoginURL != nil && !start.OutOfBand {
		url = h.d.LoginURL(start)
	}
	return HomeData{LoginURL: url, OutOfBand: start.OutOfBand}
}

// deploys reads the newest deployment of each stack id subscribed a
// channel to (not "all"), with id's own token, on the stacks their Cloud 66
// account sees now.
func (h *Home) deploys(ctx context.Context, id storage.Identity) []HomeDeploy {
	subs, err := h.d.Subscriptions.All(ctx)
	if err != nil {
		h.d.Logger.WarnContext(ctx, "home: cannot list subscriptions", "error", err.Error())
		return nil
	}
	seen := map[string]bool{}
	var stacks []storage.Lock
	for _, s := range subs {
		if s.Subscriber != id || s.StackUID == "" || seen[s.StackUID] {
			continue
		}
		seen[s.StackUID] = true
		stacks = append(stacks, storage.Lock{StackUID: s.StackUID, StackName: s.StackName, Environment: s.Environment})
	}
	stacks, api := h.visible(ctx, id, stacks)
	var out []HomeDeploy
	for _, st := range stacks {
		if len(out) >= homeShownStacks {
			break
		}
		deps, _, err := api.ListDeploymentsPage(ctx, st.StackUID, 1)
		if err != nil {
			continue
		}
		hd := HomeDeploy{StackName: st.StackName, Environment: st.Environment}
		if len(deps) > 0 {
			hd.Last = &deps[0]
		}
		out = append(out, hd)
	}
	return out
}

// visible keeps the stacks (as locks: visibleLocks is the one check of
// "which of these stacks does this person see") that id's Cloud 66 account
// sees, named as it names them now, with the client that asked.
func (h *Home) visible(ctx context.Context, id storage.Identity, stacks []storage.Lock) ([]storage.Lock, Cloud66) {
	if len(stacks) == 0 {
		return nil, nil
	}
	api, err := h.res.client(ctx, id)
	if err != nil {
		return nil, nil
	}
	stacks, err = h.res.visibleLocks(ctx, api, id, stacks)
	if err != nil {
		h.d.Logger.WarnContext(ctx, "home: cannot list the person's stacks", "error", err.Error())
		return nil, nil
	}
	return stacks, api
}

// approvals are the requests id may approve, on stacks their Cloud 66
// account sees: the policy may let someone approve a stack whose name
// their own account would not show them.
func (h *Home) approvals(ctx context.Context, id storage.Identity) ([]deploy.PendingApproval, error) {
	if h.d.Approvals == nil {
		return nil, nil
	}
	pending, err := h.d.Approvals(ctx, id)
	if err != nil || len(pending) == 0 {
		if err != nil {
			err = fmt.Errorf("home: approvals: %w", err)
		}
		return nil, err
	}
	as := make([]storage.Lock, len(pending))
	for i, p := range pending {
		as[i] = storage.Lock{StackUID: p.StackUID, StackName: p.StackName, Environment: p.Environment}
	}
	visible, _ := h.visible(ctx, id, as)
	seen := map[string]bool{}
	for _, l := range visible {
		seen[l.StackUID] = true
	}
	var out []deploy.PendingApproval
	for _, p := range pending {
		if seen[p.StackUID] {
			out = append(out, p)
		}
	}
	return out, nil
}
