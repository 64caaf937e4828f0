package deploy

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/storage"
)

// paramDeployment keeps the id of the deployment a cancel intent stops, so
// Confirm cancels the deployment the person saw, not whatever runs later.
// Its ref and hash are kept too, so that a reply can name it the way the
// prompt did even when Cloud 66 cannot be read back.
const (
	paramDeployment = "deployment_id"
	paramCancelRef  = "deployment_ref"
	paramCancelHash = "deployment_hash"
)

// FinishedError: the deployment a cancel was confirmed for had already
// ended when Cloud 66 was asked (it refused with 409). Nothing was changed.
type FinishedError struct {
	// Stack is the stack of the cancel intent.
	Stack cloud66.Stack
	// Deployment is the deployment as Cloud 66 lists it now; when it could
	// not be read back, only its ID, GitRef and GitHash (from the
	// confirmation) are set and IsDeploying is false: it is no longer
	// running, how it ended is not known.
	Deployment cloud66.Deployment
	// Running is another deployment running on the stack by now, which was
	// left alone; RunningOwner the Slack user who started it through the
	// bot, if one did.
	Running      *cloud66.Deployment
	RunningOwner string
}

func (e *FinishedError) Error() string {
	return fmt.Sprintf("deploy: deployment %d of %s is no longer running", e.Deployment.ID, e.Stack.UID)
}

// RequestCancel finds the stack's running deployment (the is_deploying one
// on the first page of the list) and returns a confirmation for stopping
// it; ErrNothingRunning when none runs. Audited.
func (s *Service) RequestCancel(ctx context.Context, o Origin, stack cloud66.Stack) (*Confirmation, error) {
	e := auditEntry(o, "cancel", stack.UID, stack.Name, stack.Environment)
	refuse := func(err error) (*Confirmation, error) {
		s.auditRefusal(ctx, e, err)
		return nil, err
	}
	c66, err := s.cfg.Cloud66For(ctx, o.Identity)
	if err != nil {
		return refuse(fmt.Errorf("deploy: %w", err))
	}
	deps, _, err := c66.ListDeploymentsPage(ctx, stack.UID, 1)
	if err != nil {
		return refuse(fmt.Errorf("deploy: read deployments of %s: %w", stack.UID, err))
	}
	var running *cloud66.Deployment
	for i := range deps {
		if deps[i].IsDeploying {
			running = &deps[i]
			break
		}
	}
	if running == nil {
		return refuse(ErrNothingRunning)
	}
	owner := ""
	if w, ok := s.followedDeployment(ctx, o, stack.UID, running.ID); ok {
		owner = w.Owner.User
	}
	in, err := s.cfg.Intents.Create(ctx, storage.Intent{
		Kind: kindCancel, Requester: o.Identity, Channel: o.Channel, ResponseURL: o.ResponseURL,
		StackUID: stack.UID, StackName: stack.Name, Environment: stack.Environment,
		Params: map[string]string{
			paramDeployment: strconv.FormatInt(running.ID, 10),
			paramCancelRef:  running.GitRef, paramCancelHash: running.GitHash,
		},
	})
	if err != nil {
		return refuse(fmt.Errorf("deploy: store confirmation: %w", err))
	}
	e.Args = map[string]string{paramDeployment: strconv.FormatInt(running.ID, 10)}
	e.Result = "pending confirmation"
	s.audit(ctx, e)
	return &Confirmation{IntentID: in.ID, Kind: kindCancel, Stack: stack, Running: running, RunningOwner: owner, ExpiresAt: in.ExpiresAt}, nil
}

// followedDeployment returns the bot's watch of the deployment id running
// on the stack, if the bot follows it. Only a watch in the deploying state
// can be it: a queued or starting one waits behind the running deployment,
// which is then someone else's; a watch that knows its deployment must
// know this one.
func (s *Service) followedDeployment(ctx context.Context, o Origin, stackUID string, id int64) (storage.Watch, bool) {
	w, err := s.cfg.Watches.ActiveForStack(ctx, stackUID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return storage.Watch{}, false
	case err != nil:
		s.logger(o).WarnContext(ctx, "read watch for cancel", "stack_uid", stackUID, "error", err.Error())
		return storage.Watch{}, false
	}
	if w.State != storage.WatchDeploying || w.DeploymentID != 0 && w.DeploymentID != id {
		return storage.Watch{}, false
	}
	return w, true
}

// ConfirmCancel stops the deployment of a cancel intent, for its requester
// only (ErrNotYours otherwise). When the bot follows that deployment the
// watch records who cancelled it and its thread says so; the watcher then
// shows ⏹ Cancelled. It returns the deployment as Cloud 66 lists it after
// the cancel. Audited before Cloud 66 is asked ("cancel requested"; the
// deployment's own end is its "deploy.finished"), and refused when that
// cannot be written; a refusal by Cloud 66 is a second entry.
func (s *Service) ConfirmCancel(ctx context.Context, intentID string, by storage.Identity) (cloud66.Deployment, error) {
	in, err := s.consume(ctx, intentID, kindCancel, by)
	o := intentOrigin(in, by)
	e := auditEntry(o, "cancel.confirm", in.StackUID, in.StackName, in.Environment)
	e.Args = map[string]string{paramDeployment: in.Params[paramDeployment]}
	fail := func(err error) (cloud66.Deployment, error) {
		s.auditRefusal(ctx, e, err)
		return cloud66.Deployment{}, err
	}
	if err != nil {
		return fail(err)
	}
	id, err := strconv.ParseInt(in.Params[paramDeployment], 10, 64)
	if err != nil || id <= 0 {
		return fail(fmt.Errorf("deploy: cancel intent without a deployment id: %w", ErrIntentGone))
	}
	c66, err := s.cfg.Cloud66For(ctx, by)
	if err != nil {
		return fail(fmt.Errorf("deploy: %w", err))
	}
	// The bot's own watch of the deployment, if it follows it.
	w, own := s.followedDeployment(ctx, o, in.StackUID, id)
	if own {
		e.Cloud66ActionID = w.ActionID
	}
	requested := e
	requested.Result, requested.At = "cancel requested", s.now()
	if _, err := s.cfg.Audit.Append(ctx, requested); err != nil {
		return fail(fmt.Errorf("deploy: cancel deployment %d of %s: %w", id, in.StackUID, err))
	}
	if _, err := c66.CancelDeployment(ctx, in.StackUID, id); err != nil {
		if errors.Is(err, cloud66.ErrConflict) {
			// The deployment ended between the prompt and the press
			// (Cloud 66 answers 409 "Deployment is not running"); say how,
			// unless Cloud 66 still lists it running, when the 409 meant
			// something else. The id is pinned, so another deployment that
			// started meanwhile is never cancelled by this button.
			if fe := s.finishedSince(ctx, o, c66, in, id); fe != nil {
				return fail(fe)
			}
		}
		return fail(fmt.Errorf("deploy: cancel deployment %d of %s: %w", id, in.StackUID, err))
	}

	// Mark the watch, so its end reads as cancelled and by whom.
	if own {
		if w2, err := s.updateWatch(ctx, w.ID, func(x *storage.Watch) { x.CancelRequestedBy = by.User }); err == nil {
			w = w2
			if w.Done() {
				// The watcher saw the end first; show who cancelled.
				s.render(ctx, w)
			}
		}
		s.threadNote(ctx, w, "⏹ "+mention(by.User)+" asked Cloud 66 to cancel this deployment.", false)
	}

	dep := cloud66.Deployment{ID: id}
	// Read it back so the caller can show Cloud 66's view; the cancel has
	// happened either way.
	if deps, _, err := c66.ListDeploymentsPage(ctx, in.StackUID, 1); err == nil {
		for _, d := range deps {
			if d.ID == id {
				dep = d
				break
			}
		}
	}
	return dep, nil
}

// finishedSince reads the deployment id of a cancel intent back from
// Cloud 66 after a refused cancel, and returns how it ended; nil when
// Cloud 66 still lists it running. When it cannot be read (the list fails,
// or it is no longer on the first page) it is reported as no longer
// running, which is what the refusal said.
func (s *Service) finishedSince(ctx context.Context, o Origin, c66 Cloud66, in storage.Intent, id int64) *FinishedError {
	fe := &FinishedError{
		Stack:      cloud66.Stack{UID: in.StackUID, Name: in.StackName, Environment: in.Environment},
		Deployment: cloud66.Deployment{ID: id, GitRef: in.Params[paramCancelRef], GitHash: in.Params[paramCancelHash]},
	}
	deps, _, err := c66.ListDeploymentsPage(ctx, in.StackUID, 1)
	if err != nil {
		s.logger(o).WarnContext(ctx, "read deployments after a refused cancel", "stack_uid", in.StackUID, "error", err.Error())
		return fe
	}
	for i, d := range deps {
		switch {
		case d.ID == id && d.IsDeploying:
			return nil
		case d.ID == id:
			fe.Deployment = d
		case d.IsDeploying && fe.Running == nil:
			fe.Running = &deps[i]
		}
	}
	if fe.Running != nil {
		if w, ok := s.followedDeployment(ctx, o, in.StackUID, fe.Running.ID); ok {
			fe.RunningOwner = w.Owner.User
		}
	}
	return fe
}
