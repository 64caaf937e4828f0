// Package cloud66test is a faithful, self-contained fake of Cloud 66: an
// OAuth 2 authorization server shaped like Doorkeeper (the Rails gem Cloud 66
// evidently uses), the parts of API v3 a chat-ops bot needs (stacks, servers,
// deployments, stack actions, reboots, async actions, ping), simulated
// deployments and actions that progress on an injectable Clock, and fault
// injection (throttling, 5xx, latency, raw bodies, one refused command).
//
// It is used by tests and by the sandbox mode of the shipped binary, so it does
// not import package testing; Start accepts the small TB interface instead.
//
//	srv := cloud66test.Start(t, cloud66test.WithClock(cloud66test.NewClock(t0)))
//	tok := srv.IssueToken("ana@example.com")
//	// point the client at srv.URL+"/api/3" and srv.URL+"/oauth/..."
//
// The fake deliberately does not share types with the real client package: it
// defines its own JSON shapes (following the Cloud 66 reference) so that a
// client bug cannot be masked by a shared struct.
//
// Behaviour the reference leaves open is decided here as follows (each choice
// is repeated next to its code):
//
//   - Every success body is wrapped in the {"response": ...} envelope, the
//     ping endpoints included (the official Go client unwraps "response" for
//     every call, ping included).
//   - Lists are paginated 30 per page with ?page= (1-based); a page past the
//     end is an empty list. Top-level "count" and pagination "count" are both
//     the total number of items.
//   - GET /stacks.json applies the undocumented filter_name and
//     filter_environment as exact, case-insensitive matches (an empty value
//     filters nothing); the other filter_* parameters are ignored.
//   - Read endpoints accept any valid token; POST and DELETE on deployments,
//     stack actions and both reboots need the "redeploy" scope (the docs name
//     a "reboot" scope for reboots that their scope list lacks). Without it
//     the answer is Doorkeeper's: 403 {"error": "insufficient_scope"} with a
//     WWW-Authenticate challenge naming the scope.
//   - A deployment that is cancelled gets outcome {3, "canceled by user"}:
//     Cloud 66 documents no code or word for that, and a client must not
//     depend on one.
//   - A redeploy of a busy stack answers queued: true with an
//     async_action_id, as Cloud 66's docs show; that action has started_at
//     null until the running deployment ends and it starts.
//   - Redeploy options are checked against the stack as Cloud 66's CLI does
//     (services only on Docker stacks, git_ref not on them, rolling only on
//     Rails/Rack, fast only with backend kubernetes), and service names
//     against the stack's services; a refusal is a 400 with details.
//   - Deployments of Docker stacks list their services as Cloud 66's Service
//     model shapes them ({name, image_name, image_tag}); Cloud 66 documents
//     no such field, so clients must cope with it absent.
//   - Stack actions (restart, service_restart, maintenance_mode) and reboots
//     start at once, run for WithActionDuration (default: the deploy
//     duration) and succeed unless SetActionOutcome says otherwise; a
//     maintenance switch takes effect when it succeeds. Their action names
//     are restart, service_restart, maintenance_mode, server_reboot and
//     stack_reboot. A server is in a reboot group when its roles name it.
//   - Codes are burned the first time they are presented at /oauth/token,
//     even if that exchange fails (stricter than Doorkeeper; see oauth.go).
//   - No refresh tokens, no expires_in: Cloud 66 tokens do not expire.
//   - Routes must end in ".json"; unknown routes answer 404 not_found.
package cloud66test
