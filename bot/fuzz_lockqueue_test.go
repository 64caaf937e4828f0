package bot

import (
	"context"
	"time"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/commands"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/storage"
)

// The lock queue's methods of the fuzz's Deployer: a press of a wait
// button is recorded under its action id, with its value and presser.

func (d *fuzzDeployer) LockFor(context.Context, deploy.Origin, cloud66.Stack, string, time.Duration) (deploy.LockResult, error) {
	d.record("LockFor", "", storage.Identity{})
	return deploy.LockResult{}, errFuzzRefused
}

func (d *fuzzDeployer) WaitForLock(_ context.Context, id string, by storage.Identity, kind storage.WaitKind) (storage.Lock, error) {
	action := commands.ActionLockNotify
	if kind == storage.WaitDeploy {
		action = commands.ActionLockQueue
	}
	d.record(action, id, by)
	return storage.Lock{StackName: id, Environment: id, Owner: storage.Identity{Team: by.Team, User: id}}, nil
}
