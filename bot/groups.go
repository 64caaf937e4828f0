package bot

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// groupTTL is how long a user group's members are trusted; a person added
// to a group may deploy within this long, one removed may for as long.
const groupTTL = 5 * time.Minute

// GroupResolver answers "which of the policy's user groups is this person
// in?" from usergroups.users.list, cached, so a deploy costs no Slack call
// most of the time. Only groups the policy names are asked about.
type GroupResolver struct {
	api    *slack.Client
	groups []string
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]groupMembers
}

type groupMembers struct {
	users []string
	at    time.Time
}

// NewGroupResolver resolves the policy's user groups through api.
func NewGroupResolver(api *slack.Client, groups []string, now func() time.Time) *GroupResolver {
	return &GroupResolver{api: api, groups: groups, now: now, cache: map[string]groupMembers{}}
}

// GroupsOf returns the ids of the policy's groups that user belongs to. A
// group Slack won't list is treated as empty (fail closed: no one gains
// rights through it) and retried after the TTL, so it never errs; the
// error is there for deploy.Config.Groups.
func (g *GroupResolver) GroupsOf(ctx context.Context, user string) ([]string, error) {
	var in []string
	for _, id := range g.groups {
		if slices.Contains(g.members(ctx, id), user) {
			in = append(in, id)
		}
	}
	return in, nil
}

func (g *GroupResolver) members(ctx context.Context, id string) []string {
	g.mu.Lock()
	c, ok := g.cache[id]
	g.mu.Unlock()
	if ok && g.now().Sub(c.at) < groupTTL {
		return c.users
	}
	users, err := g.api.GetUserGroupMembersContext(ctx, id)
	if err != nil {
		users = nil
	}
	g.mu.Lock()
	g.cache[id] = groupMembers{users: users, at: g.now()}
	g.mu.Unlock()
	return users
}
