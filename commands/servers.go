package commands

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/cloud66"
	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/chat"
)

func serversCommand(res *resolver, slash string) *Command {
	return &Command{
		Name:        "servers",
		Args:        "<stack>",
		Summary:     "A stack's servers with roles and health.",
		Description: "Lists the servers of one stack: name, health, roles, address and region.",
		Examples:    []string{"servers shop:production", "servers api:staging"},
		MinArgs:     1, MaxArgs: 1,
		Run: func(ctx context.Context, c *Call) (chat.Message, error) { return runServers(ctx, c, res, slash) },
	}
}

func runServers(ctx context.Context, c *Call, res *resolver, slash string) (chat.Message, error) {
	_, st, servers, err := stackServers(ctx, c, res)
	if err != nil {
		return chat.Message{}, err
	}
	title := fmt.Sprintf("Servers of %s (%d)", stackRefText(st), len(servers))
	if len(servers) == 0 {
		return chat.Message{Text: bk.Esc(title), Blocks: []slack.Block{bk.Section(fmt.Sprintf(":desktop_computer: %s has no servers.", bk.StackLabel(st)))}}, nil
	}
	slices.SortStableFunc(servers, func(a, b cloud66.Server) int { return strings.Compare(a.Name, b.Name) })
	lines := make([]string, 0, len(servers))
	for _, s := range servers {
		lines = append(lines, fmt.Sprintf("%s *%s* — %s · %s · %s", bk.HealthEmoji(s.Health), bk.Esc(s.Name), s.Health, rolesText(s.Roles), orDash(bk.Esc(strings.TrimSpace(s.Address+" "+regionText(s))))))
	}
	blocks := []slack.Block{bk.Header(title)}
	blocks = append(blocks, listSections(lines, bk.MaxBlocks-2, func(n int) string { return fmt.Sprintf("…and %d more servers.", n) })...)
	blocks = append(blocks, bk.Context(fmt.Sprintf("`%s server %s <server>` for one server", slash, bk.Esc(stackRefText(st)))))
	return chat.Message{Text: bk.Esc(title), Blocks: blocks}, nil
}

func serverCommand(res *resolver) *Command {
	return &Command{
		Name:        "server",
		Args:        "<stack> <server>",
		Summary:     "One server: health, roles, addresses.",
		Description: "Shows one server of a stack, by name (case-insensitive), uid, IP address or host name.",
		Examples:    []string{"server shop:production lion"},
		MinArgs:     2, MaxArgs: 2,
		Run: func(ctx context.Context, c *Call) (chat.Message, error) { return runServer(ctx, c, res) },
	}
}

func runServer(ctx context.Context, c *Call, res *resolver) (chat.Message, error) {
	api, st, servers, err := stackServers(ctx, c, res)
	if err != nil {
		return chat.Message{}, err
	}
	want := c.Args[1]
	found := findServer(servers, want)
	if found == nil {
		names := make([]string, len(servers))
		for i, s := range servers {
			names[i] = s.Name
		}
		return chat.Message{}, &NotFoundError{Kind: "server", Arg: want, Within: stackRefText(st), Suggestions: suggest(strings.ToLower(want), names, 3)}
	}
	s, err := api.GetServer(ctx, st.UID, found.UID)
	if err != nil {
		return chat.Message{}, err
	}
	fields := []string{
		"*Health*\n" + bk.HealthText(s.Health),
		"*Roles*\n" + rolesText(s.Roles),
		"*Address*\n" + orDash(bk.Esc(s.Address)),
		"*DNS*\n" + orDash(bk.Esc(s.DNSRecord)),
		"*Public IPv4*\n" + orDash(bk.Esc(s.ExtIPv4)),
		"*Private IPv4*\n" + orDash(bk.Esc(s.IntIPv4)),
		"*Region*\n" + orDash(bk.Esc(s.Region)),
		"*Zone*\n" + orDash(bk.Esc(zoneText(*s))),
		"*OS*\n" + orDash(bk.Esc(strings.TrimSpace(s.Distro+" "+s.DistroVersion))),
	}
	if s.ServerType != "" {
		fields = append(fields, "*Type*\n"+bk.Esc(s.ServerType))
	}
	title := fmt.Sprintf("%s · %s", s.Name, stackRefText(st))
	blocks := []slack.Block{
		bk.Header(title),
		bk.Fields(fields...),
		bk.Context(fmt.Sprintf("uid `%s` · stack %s", bk.Esc(s.UID), bk.StackLabel(st))),
	}
	return chat.Message{Text: bk.Esc(fmt.Sprintf("%s: %s", title, s.Health)), Blocks: blocks}, nil
}

// findServer is the server want names: by uid or name first, then by an
// address people copy from a dashboard or a shell prompt (public or
// private IP, address, host name); nil when none does.
func findServer(servers []cloud66.Server, want string) *cloud66.Server {
	for i, s := range servers {
		if s.UID == want || strings.EqualFold(s.Name, want) {
			return &servers[i]
		}
	}
	for i, s := range servers {
		for _, a := range []string{s.Address, s.ExtIPv4, s.IntIPv4, s.DNSRecord} {
			if a != "" && strings.EqualFold(a, want) {
				return &servers[i]
			}
		}
	}
	return nil
}

// zoneText is the server's availability zone, when it says more than its
// region (DigitalOcean reports the region again).
func zoneText(s cloud66.Server) string {
	if s.AvailabilityZone == s.Region {
		return ""
	}
	return s.AvailabilityZone
}

// stackServers resolves the call's first word to a stack and lists its
// servers, with the caller's own client.
func stackServers(ctx context.Context, c *Call, res *resolver) (Cloud66, cloud66.Stack, []cloud66.Server, error) {
	id := c.Request.Identity()
	api, st, err := res.stackArg(ctx, id, c.Args[0])
	if err != nil {
		return nil, cloud66.Stack{}, nil, err
	}
	servers, err := api.ListServers(ctx, st.UID)
	if err != nil {
		return nil, cloud66.Stack{}, nil, res.stackGone(id, st, err)
	}
	return api, st, servers, nil
}

func rolesText(roles []string) string {
	if len(roles) == 0 {
		return "no roles"
	}
	return bk.Esc(strings.Join(roles, ", "))
}

func regionText(s cloud66.Server) string {
	if s.AvailabilityZone != "" && s.AvailabilityZone != s.Region {
		return strings.TrimSpace(s.Region + " " + s.AvailabilityZone)
	}
	return s.Region
}
