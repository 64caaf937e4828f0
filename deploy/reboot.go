package deploy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/c66bot/c66bot/cloud66"
)

// RebootTarget is what a reboot names: one server (by name or uid), or a
// group of servers and how to go through them.
type RebootTarget struct {
	Server   string
	Group    string
	Strategy string
}

// Reboot reboots one server of stack, or a group of its servers, as o's
// person: a Change with VerbReboot under the same policy, lock, audit and
// card as a deploy. The servers affected are read first, so the
// confirmation and the card name them; an unknown server is refused with
// the names there are (*OptionError), before anything is sent.
func (s *Service) Reboot(ctx context.Context, o Origin, stack cloud66.Stack, t RebootTarget) (Result, error) {
	c := Change{Verb: VerbReboot, Group: strings.ToLower(t.Group), RebootStrategy: strings.ToLower(t.Strategy)}
	c66, err := s.cfg.Cloud66For(ctx, o.Identity)
	if err != nil {
		return Result{}, fmt.Errorf("deploy: %w", err)
	}
	servers, err := c66.ListServers(ctx, stack.UID)
	if err != nil {
		return Result{}, fmt.Errorf("deploy: read servers of %s: %w", stack.UID, err)
	}
	if t.Server != "" {
		srv := findServer(servers, t.Server)
		if srv == nil {
			names := make([]string, len(servers))
			for i, sv := range servers {
				names[i] = quoteCode(sv.Name)
			}
			return Result{}, &OptionError{Problem: fmt.Sprintf("there is no server %s on %s; its servers are %s", quoteCode(t.Server), stackRef(stack.Name, stack.Environment, stack.UID), strings.Join(names, ", "))}
		}
		c.Server, c.ServerName, c.Servers = srv.UID, srv.Name, []string{srv.Name}
		c.Group = ""
	} else {
		for _, sv := range servers {
			if inRebootGroup(sv, c.Group) {
				c.Servers = append(c.Servers, sv.Name)
			}
		}
	}
	return s.Change(ctx, o, stack, c)
}

// findServer finds a server by name (case-insensitive) or uid.
func findServer(servers []cloud66.Server, nameOrUID string) *cloud66.Server {
	for i := range servers {
		if strings.EqualFold(servers[i].Name, nameOrUID) || servers[i].UID == nameOrUID {
			return &servers[i]
		}
	}
	return nil
}

// dbRoles are the server roles Cloud 66's "db" group takes in.
var dbRoles = []string{"db", "mysql", "postgresql", "redis", "mongodb", "elasticsearch"}

// inRebootGroup reports whether a reboot of group takes in server. It is
// our reading of Cloud 66's groups from the servers' roles, to name the
// servers affected; Cloud 66 itself decides which it reboots.
func inRebootGroup(server cloud66.Server, group string) bool {
	switch group {
	case "all":
		return true
	case "db":
		return slices.ContainsFunc(server.Roles, func(r string) bool { return slices.Contains(dbRoles, strings.ToLower(r)) })
	}
	return slices.ContainsFunc(server.Roles, func(r string) bool { return strings.EqualFold(r, group) })
}
