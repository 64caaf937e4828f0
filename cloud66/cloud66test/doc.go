// Package cloud66test is a faithful, self-contained fake of Cloud 66: an
// OAuth 2 authorization server shaped like Doorkeeper (the Rails gem Cloud 66
// evidently uses), the parts of API v3 a chat-ops bot needs (stacks, servers,
// deployments, async actions, ping), simulated deployments that progress on an
// injectable Clock, and fault injection (throttling, 5xx, latency, raw
// bodies).
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
//   - Read endpoints accept any valid token; POST and DELETE on deployments
//     need the "redeploy" scope.
//   - A deployment that is cancelled gets outcome {3, "cancelled"}: Cloud 66
//     documents no code for that.
//   - Codes are burned the first time they are presented at /oauth/token,
//     even if that exchange fails (stricter than Doorkeeper; see oauth.go).
//   - No refresh tokens, no expires_in: Cloud 66 tokens do not expire.
//   - Routes must end in ".json"; unknown routes answer 404 not_found.
package cloud66test
