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
const paramDeployment = "deployment_id"

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
	in, err := s.cfg.Intents.Create(ctx, storage.Intent{
		Kind: kindCancel, Requester: o.Identity, Channel: o.Channel, ResponseURL: o.ResponseURL,
		StackUID: stack.UID, StackName: stack.Name, Environment: stack.Environment,
		Params: map[string]string{paramDeployment: strconv.FormatInt(running.ID, 10)},
	})
	if err != nil {
		return refuse(fmt.Errorf("deploy: store confirmation: %w", err))
	}
	e.Args = map[string]string{paramDeployment: strconv.FormatInt(running.ID, 10)}
	e.Result = "pending confirmation"
	s.audit(ctx, e)
	return &Confirmation{IntentID: in.ID, Kind: kindCancel, Stack: stack, Running: running, ExpiresAt: in.ExpiresAt}, nil
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
	// The bot's own watch of the deployment, unless it is queued: then the
	// running deployment is someone else's, and the bot's starts next.
	w, err := s.cfg.Watches.ActiveForStack(ctx, in.StackUID)
	own := err == nil && w.State != storage.WatchQueued
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		s.logger(o).WarnContext(ctx, "read watch for cancel", "stack_uid", in.StackUID, "error", err.Error())
	case own:
		e.Cloud66ActionID = w.ActionID
	}
	requested := e
	requested.Result, requested.At = "cancel requested", s.now()
	if _, err := s.cfg.Audit.Append(ctx, requested); err != nil {
		return fail(fmt.Errorf("deploy: cancel deployment %d of %s: %w", id, in.StackUID, err))
	}
	if _, err := c66.CancelDeployment(ctx, in.StackUID, id); err != nil {
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
