// Package cloud66 is a client for the Cloud 66 v3 API
// (https://app.cloud66.com/api/3), covering what a chat-ops bot needs:
// stacks, servers, deployments, stack actions (restart, maintenance mode),
// reboots, async actions, ping and the OAuth 2 setup.
//
// # Usage
//
// One Client is built per Cloud 66 token. Per-user clients are cheap and can
// share one *http.Client:
//
//	hc := &http.Client{Timeout: 30 * time.Second}
//	c, err := cloud66.NewClient(cloud66.WithHTTPClient(hc), cloud66.WithToken(tok))
//	stacks, err := c.ListStacks(ctx)
//
// Every method takes a context first. List methods follow Cloud 66's
// pagination (30 items a page) to the end; ListDeploymentsPage fetches a
// single page.
//
// # Errors
//
// Every non-2xx answer is an *ErrorResponse that matches ErrUnauthorized,
// ErrForbidden, ErrNotFound, ErrConflict or ErrThrottled with errors.Is; a
// 403 that says the token lacks a scope also matches ErrInsufficientScope,
// and ErrorResponse.InsufficientScope names the scope.
// Arguments are validated before any request and reported as *ArgError;
// Stack.CheckRedeploy refuses redeploy options the stack's kind does not
// take, as Cloud 66's CLI does, with a *DeployOptionError.
// Error strings carry the endpoint template (like "/stacks/{uid}"), never a
// token, id or query string, so they are safe to log and to show in chat.
//
// # Ids
//
// Stack and server uids in answers are checked with ValidUID as they are
// decoded, because they end up in request paths, dashboard links and
// cards: GetStack and GetServer fail with an *InvalidIDError, and list
// methods drop the item (see WithInvalidIDHook) so one bad stack cannot
// hide the others. Uids given as arguments are path-escaped into each
// request.
//
// # Rate limits and retries
//
// Cloud 66 allows 3,000 requests per user per hour and answers 503
// "throttled" beyond that; ErrorResponse.RetryAt says when to try again.
// GET requests are retried on 5xx, 408, timeouts and connection errors with
// jittered exponential backoff (WithRetry); throttling and 4xx are not
// retried, and POST/DELETE never are, since repeating a redeploy is worse
// than reporting a failure. WithRequestHook sees every attempt, for metrics.
//
// # OAuth
//
// OAuthConfig returns a golang.org/x/oauth2 configuration for Cloud 66's
// authorization-code flow; GrantedScopes reads back what the user granted.
// Tokens are documented as not expiring; a 401 means the user must link
// again.
//
// The package never logs and holds no package-level mutable state.
package cloud66
