package deploy_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/c66bot/c66bot/deploy"
)

// A reboot names the servers it affects before anything is sent: an
// unknown server is refused with the names there are, a group's servers
// are in the confirmation, and an unknown group or strategy is refused.
func TestRebootNamesTheServersAffected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	staging, production := e.fullStack("shop", "staging"), e.fullStack("shop", "production")

	_, err := e.svc.Reboot(ctx, origin(ana, "C1", "r1"), staging, deploy.RebootTarget{Server: "Hydra"})
	oe, ok := errors.AsType[*deploy.OptionError](err)
	if !ok || oe.Problem != "there is no server `Hydra` on shop:staging; its servers are `Falcon`, `Badger`" {
		t.Fatalf("reboot of an unknown server: %v, want an *OptionError listing the servers", err)
	}
	for _, tc := range []struct {
		target  deploy.RebootTarget
		problem string
	}{
		{deploy.RebootTarget{Group: "cache"}, `unknown server group "cache": want one of all, web, haproxy, db, mysql, postgresql, redis, mongodb, elasticsearch, sidekiq`},
		{deploy.RebootTarget{Group: "web", Strategy: "rolling"}, `unknown reboot strategy "rolling": want serial or parallel`},
	} {
		_, err := e.svc.Reboot(ctx, origin(ana, "C1", "r2"), staging, tc.target)
		if oe, ok := errors.AsType[*deploy.OptionError](err); !ok || oe.Problem != tc.problem {
			t.Errorf("Reboot(%+v): %v, want an *OptionError %q", tc.target, err, tc.problem)
		}
	}
	e.noChanges("refused reboots")
	if len(e.Slack.Calls("")) != 0 {
		t.Errorf("refused reboots reached Slack: %+v", e.Slack.Calls(""))
	}

	// Production: the confirmation names the servers of the group.
	for _, tc := range []struct {
		group string
		want  []string
	}{
		{"web", []string{"Lion", "Otter"}},
		{"db", []string{"Tiger", "Falcon"}},
		{"all", []string{"Lion", "Tiger", "Otter", "Falcon"}},
		{"redis", []string{"Falcon"}},
	} {
		res, err := e.svc.Reboot(ctx, origin(ana, "C1", "r-"+tc.group), production, deploy.RebootTarget{Group: tc.group})
		if err != nil || res.Confirm == nil {
			t.Fatalf("reboot of group %s = %+v, %v; want a confirmation", tc.group, res, err)
		}
		c := res.Confirm.Change
		if c.Verb != deploy.VerbReboot || c.Group != tc.group || !slices.Equal(c.Servers, tc.want) || c.Server != "" {
			t.Errorf("confirmation of a reboot of %s = %+v, want the servers %v", tc.group, c, tc.want)
		}
	}
	// One server, by its uid as well as its name.
	uid := e.serverUID(production.UID, "Tiger")
	res, err := e.svc.Reboot(ctx, origin(ana, "C1", "r3"), production, deploy.RebootTarget{Server: uid})
	if err != nil || res.Confirm == nil {
		t.Fatalf("reboot by uid = %+v, %v", res, err)
	}
	if c := res.Confirm.Change; c.Server != uid || c.ServerName != "Tiger" || !slices.Equal(c.Servers, []string{"Tiger"}) || c.Group != "" {
		t.Errorf("confirmation of a server reboot = %+v", c)
	}
	e.noChanges("reboots waiting for confirmation")
}
