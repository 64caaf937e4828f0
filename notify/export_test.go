package notify

// OnReconcile makes s call f after every pass that reconciles the pollers
// with the subscriptions, with the uids of the stacks it left polled,
// sorted. Call it before Run.
func OnReconcile(s *Service, f func(polled []string)) { s.reconciled = f }

// OnPollerDone makes s call f with a stack's uid once the goroutine of its
// poller has returned: nothing that poller does can happen after. Call it
// before Run.
func OnPollerDone(s *Service, f func(uid string)) { s.pollerDone = f }
