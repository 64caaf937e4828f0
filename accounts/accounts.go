// Package accounts links a Slack person to their own Cloud 66 account and
// hands out Cloud 66 clients that act with that person's token only.
//
// It exists as its own package because two callers share the same flow: the
// HTTP callback in package bot (redirect flow) and the `login <code>` command
// in package commands (out-of-band flow). Both end in Complete*, which
// exchanges the code with the PKCE verifier and seals the token into storage.
package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/storage"
)

// Errors callers map to replies.
var (
	// ErrNotLinked: the person has no Cloud 66 link (never linked, logged
	// out, or the link was dropped after Cloud 66 refused the token).
	ErrNotLinked = errors.New("accounts: not linked")
	// ErrCodeRejected: Cloud 66 refused the authorization code (used,
	// expired, or issued for another flow).
	ErrCodeRejected = errors.New("accounts: authorization code rejected")
	// ErrNoPendingLogin: `login <code>` without a recent `login`.
	ErrNoPendingLogin = errors.New("accounts: no pending login")
)

// LinkStore is where people's Cloud 66 links live; *storage.LinkStore
// satisfies it. Save and Delete write the audit entries they are given in
// the same transaction, and fail with storage.ErrNotAudited, changing
// nothing, when they cannot.
type LinkStore interface {
	Save(ctx context.Context, l storage.Link, audit ...storage.AuditEntry) error
	Get(ctx context.Context, id storage.Identity) (storage.Link, error)
	Delete(ctx context.Context, id storage.Identity, audit ...storage.AuditEntry) (bool, error)
	// SetEmail sets the e-mail of an existing link in one transaction, or
	// fails with storage.ErrNotFound.
	SetEmail(ctx context.Context, id storage.Identity, email string) error
}

// LoginStore is where pending logins (the OAuth states) live;
// *storage.LoginStore satisfies it.
type LoginStore interface {
	Create(ctx context.Context, p storage.PendingLogin) (string, error)
	Peek(ctx context.Context, state string) (storage.PendingLogin, error)
	Consume(ctx context.Context, state string) (storage.PendingLogin, error)
	ConsumeFor(ctx context.Context, id storage.Identity) (storage.PendingLogin, error)
}

// Stores are where accounts keeps links and pending logins.
type Stores struct {
	Links  LinkStore
	Logins LoginStore
}

// Config wires a Service.
type Config struct {
	Stores
	// OAuth is the Cloud 66 OAuth configuration; its RedirectURL decides the
	// flow: the bot's callback, or cloud66.OOBRedirectURL for copy and paste.
	OAuth *oauth2.Config
	// Cloud66URL is the Cloud 66 base URL (API at /api/3).
	Cloud66URL string
	// HTTPClient carries every call to Cloud 66 (token exchange and API).
	HTTPClient *http.Client
	// ClientOptions are added to every Cloud 66 client (user agent, hooks).
	ClientOptions []cloud66.Option
	Now           func() time.Time
}

// Service links accounts and resolves people to Cloud 66 clients.
type Service struct {
	cfg    Config
	people people
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, people: newPeople()}
}

// OutOfBand reports whether logins use the copy-and-paste flow.
func (s *Service) OutOfBand() bool {
	return s.cfg.OAuth.RedirectURL == "" || s.cfg.OAuth.RedirectURL == cloud66.OOBRedirectURL
}

// LoginRequest is who starts a login and where to tell them it worked.
type LoginRequest struct {
	Identity    storage.Identity
	Channel     string
	ResponseURL string
}

// LoginStart is what the person needs to continue in their browser.
type LoginStart struct {
	// State is the single-use login state; the bot's start page takes it.
	State string
	// AuthorizeURL is the Cloud 66 consent page, PKCE challenge included.
	AuthorizeURL string
	OutOfBand    bool
	ExpiresAt    time.Time
}

// BeginLogin stores a fresh single-use state and PKCE verifier for the person
// and returns where their browser goes next.
func (s *Service) BeginLogin(ctx context.Context, r LoginRequest) (LoginStart, error) {
	if !r.Identity.Valid() {
		return LoginStart{}, fmt.Errorf("accounts: begin login: invalid identity")
	}
	verifier := oauth2.GenerateVerifier()
	now := s.cfg.Now()
	p := storage.PendingLogin{
		Identity:    r.Identity,
		Channel:     r.Channel,
		ResponseURL: r.ResponseURL,
		Verifier:    verifier,
		RedirectURL: s.redirectURL(),
		CreatedAt:   now,
		ExpiresAt:   now.Add(storage.StateTTL),
	}
	state, err := s.cfg.Logins.Create(ctx, p)
	if err != nil {
		return LoginStart{}, fmt.Errorf("accounts: begin login: %w", err)
	}
	return LoginStart{
		State:        state,
		AuthorizeURL: s.cfg.OAuth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)),
		OutOfBand:    s.OutOfBand(),
		ExpiresAt:    p.ExpiresAt,
	}, nil
}

// Pending looks up a login that has not completed yet, without consuming
// it, and rebuilds its Cloud 66 authorize URL (the bot's start page sends
// the browser there after the person confirms who they are).
func (s *Service) Pending(ctx context.Context, state string) (storage.PendingLogin, string, error) {
	p, err := s.cfg.Logins.Peek(ctx, state)
	if err != nil {
		return storage.PendingLogin{}, "", fmt.Errorf("accounts: pending login: %w", err)
	}
	cfg := *s.cfg.OAuth
	cfg.RedirectURL = p.RedirectURL
	return p, cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(p.Verifier)), nil
}

func (s *Service) redirectURL() string {
	if s.OutOfBand() {
		return cloud66.OOBRedirectURL
	}
	return s.cfg.OAuth.RedirectURL
}

// Linked describes a link just made, for the confirmation in Slack.
type Linked struct {
	Identity    storage.Identity
	Channel     string
	ResponseURL string
	Scopes      []string
	// Account names the Cloud 66 account(s) the token sees.
	Account string
	// Stacks is how many stacks the token sees; -1 when Cloud 66 could not
	// be asked right after linking.
	Stacks int
}

// CompleteCallback finishes the redirect flow: the state is consumed first,
// so a replayed, expired or forged state never reaches the token endpoint.
func (s *Service) CompleteCallback(ctx context.Context, state, code string) (Linked, error) {
	p, err := s.cfg.Logins.Consume(ctx, state)
	if err != nil {
		return Linked{}, fmt.Errorf("accounts: callback: %w", err)
	}
	return s.complete(ctx, p, code)
}

// CompleteOutOfBand finishes the copy-and-paste flow for the person who
// started it: the pasted code is exchanged with that person's verifier.
func (s *Service) CompleteOutOfBand(ctx context.Context, id storage.Identity, code string) (Linked, error) {
	if len(strings.TrimSpace(code)) > MaxCodeLength {
		return Linked{}, ErrCodeTooLong
	}
	p, err := s.cfg.Logins.ConsumeFor(ctx, id)
	if err != nil {
		if errors.Is(err, storage.ErrStateInvalid) || errors.Is(err, storage.ErrNotFound) {
			return Linked{}, ErrNoPendingLogin
		}
		return Linked{}, fmt.Errorf("accounts: out-of-band login: %w", err)
	}
	return s.complete(ctx, p, code)
}

func (s *Service) complete(ctx context.Context, p storage.PendingLogin, code string) (Linked, error) {
	code = strings.TrimSpace(code)
	if code == "" {
		return Linked{}, ErrCodeRejected
	}
	cfg := *s.cfg.OAuth
	cfg.RedirectURL = p.RedirectURL
	xctx := context.WithValue(ctx, oauth2.HTTPClient, s.cfg.HTTPClient)
	tok, err := cfg.Exchange(xctx, code, oauth2.VerifierOption(p.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && (re.ErrorCode == "invalid_grant" || re.Response != nil && re.Response.StatusCode == http.StatusBadRequest) {
			return Linked{}, ErrCodeRejected
		}
		// Never wrap the raw error text: RetrieveError carries the response
		// body, which may echo the code.
		return Linked{}, fmt.Errorf("accounts: token exchange failed: %s", exchangeFailure(err))
	}
	link := storage.Link{
		Identity:     p.Identity,
		AccessToken:  tok.AccessToken,
		RefreshToken: tok.RefreshToken,
		TokenType:    tok.TokenType,
		Expiry:       tok.Expiry,
		Scopes:       cloud66.GrantedScopes(tok, s.cfg.OAuth.Scopes),
		LinkedAt:     s.cfg.Now(),
	}
	linked := Linked{Identity: p.Identity, Channel: p.Channel, ResponseURL: p.ResponseURL, Scopes: link.Scopes, Stacks: -1}
	// Ask Cloud 66 what the token sees, so the person is told which account
	// got linked. A failure here does not undo the link.
	if c, err := s.clientFor(tok.AccessToken); err == nil {
		if stacks, err := c.ListStacks(ctx); err == nil {
			linked.Stacks = len(stacks)
			linked.Account = AccountNames(stacks)
		}
	}
	link.Account = linked.Account
	// Cloud 66 has no "who am I" endpoint, so the e-mail is learnt later
	// (see NoteEmail); a relink keeps the one already known.
	if old, err := s.cfg.Links.Get(ctx, p.Identity); err == nil {
		link.Email = old.Email
	}
	// Audited with the link, and never with the token: who, which account,
	// which scopes, through which flow.
	e := auditEntry(p.Identity, "login", "linked")
	e.Channel = p.Channel
	e.Args = map[string]string{"scopes": strings.Join(link.Scopes, " "), "flow": "redirect"}
	if p.RedirectURL == cloud66.OOBRedirectURL {
		e.Args["flow"] = "out-of-band"
	}
	if link.Account != "" {
		e.Args["account"] = link.Account
	}
	if err := s.cfg.Links.Save(ctx, link, e); err != nil {
		return Linked{}, fmt.Errorf("accounts: save link: %w", err)
	}
	s.people.set(link.Identity, link.Email)
	return linked, nil
}

// auditEntry is the audit entry of a change to id's link.
func auditEntry(id storage.Identity, action, result string) storage.AuditEntry {
	return storage.AuditEntry{Team: id.Team, User: id.User, Action: action, Result: result}
}

func exchangeFailure(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.Response != nil {
			return fmt.Sprintf("Cloud 66 answered %d %s", re.Response.StatusCode, re.ErrorCode)
		}
		return "Cloud 66 answered " + re.ErrorCode
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err.Error()
	}
	return "Cloud 66 could not be reached"
}

// AccountNames lists the distinct Cloud 66 account names of stacks.
func AccountNames(stacks []cloud66.Stack) string {
	var names []string
	for _, st := range stacks {
		if st.AccountName != "" && !slices.Contains(names, st.AccountName) {
			names = append(names, st.AccountName)
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// Link returns the person's link, or ErrNotLinked.
func (s *Service) Link(ctx context.Context, id storage.Identity) (storage.Link, error) {
	l, err := s.cfg.Links.Get(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Link{}, ErrNotLinked
	}
	if err != nil {
		return storage.Link{}, fmt.Errorf("accounts: get link: %w", err)
	}
	// Every use of a link indexes its e-mail, so the index fills again
	// after a restart as people use the bot.
	s.people.set(l.Identity, l.Email)
	return l, nil
}

// Unlink forgets the person's token at their request (logout). Cloud 66
// documents no revocation endpoint, so the token is revoked by the person
// under Authorized Apps. Audited as "logout" with the deletion.
func (s *Service) Unlink(ctx context.Context, id storage.Identity) (bool, error) {
	existed, err := s.cfg.Links.Delete(ctx, id, auditEntry(id, "logout", "unlinked"))
	if err != nil {
		return false, fmt.Errorf("accounts: unlink: %w", err)
	}
	s.people.forget(id)
	return existed, nil
}

// DropLink forgets a token the bot found useless, such as one Cloud 66
// answered 401 for; why says so in the audit entry ("unlink", with the
// deletion).
func (s *Service) DropLink(ctx context.Context, id storage.Identity, why string) (bool, error) {
	e := auditEntry(id, "unlink", "dropped")
	e.Detail = why
	existed, err := s.cfg.Links.Delete(ctx, id, e)
	if err != nil {
		return false, fmt.Errorf("accounts: drop link: %w", err)
	}
	s.people.forget(id)
	return existed, nil
}

// Client returns a Cloud 66 client acting with the person's own token.
func (s *Service) Client(ctx context.Context, id storage.Identity) (*cloud66.Client, error) {
	l, err := s.Link(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.clientFor(l.AccessToken)
}

func (s *Service) clientFor(token string) (*cloud66.Client, error) {
	opts := append([]cloud66.Option{
		cloud66.WithHTTPClient(s.cfg.HTTPClient),
		cloud66.WithBaseURL(s.cfg.Cloud66URL),
		cloud66.WithToken(token),
	}, s.cfg.ClientOptions...)
	return cloud66.NewClient(opts...)
}
