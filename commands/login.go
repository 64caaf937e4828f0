package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/accounts"
	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"
)

// loginLinker is what login needs of the account service.
type loginLinker interface {
	BeginLogin(ctx context.Context, r accounts.LoginRequest) (accounts.LoginStart, error)
	CompleteOutOfBand(ctx context.Context, id storage.Identity, code string) (accounts.Linked, error)
	Link(ctx context.Context, id storage.Identity) (storage.Link, error)
	OutOfBand() bool
}

func loginCommand(l loginLinker, slash string, loginURL func(accounts.LoginStart) string) *Command {
	return &Command{
		Name:    "login",
		Args:    "[code]",
		Summary: "Link your own Cloud 66 account.",
		Description: "Starts linking your Cloud 66 account through Cloud 66's own sign-in page. " +
			"Everything I do in Cloud 66 for you I do with your token, so Cloud 66's permissions and audit trail stay true. " +
			"When this bot has no public URL, Cloud 66 shows you a code: paste it back as `login <code>`.",
		Examples: []string{"login"},
		MinArgs:  0, MaxArgs: 1,
		Change: "link your Cloud 66 account",
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			return runLogin(ctx, c, l, slash, loginURL)
		},
	}
}

func runLogin(ctx context.Context, c *Call, l loginLinker, slash string, loginURL func(accounts.LoginStart) string) (chat.Message, error) {
	if len(c.Args) == 1 {
		if !l.OutOfBand() {
			return chat.Message{}, &UsageError{Problem: "This bot links accounts through your browser, so there is no code to paste. Run `" + slash + " login` and click the button."}
		}
		linked, err := l.CompleteOutOfBand(ctx, c.Request.Identity(), c.Args[0])
		switch {
		case errors.Is(err, accounts.ErrCodeTooLong):
			return ephemeral(fmt.Sprintf(":x: That is too long to be a Cloud 66 code (those are far shorter than %d characters), so I sent it nowhere. Copy the code Cloud 66 showed you and paste it as `%s login <code>`.", accounts.MaxCodeLength, slash)), nil
		case errors.Is(err, accounts.ErrNoPendingLogin):
			return ephemeral(":hourglass: I have no login waiting for a code from you (they last 10 minutes). Run `" + slash + " login` to get a fresh link."), nil
		case errors.Is(err, accounts.ErrCodeRejected):
			return ephemeral(":x: Cloud 66 didn't accept that code: it may be mistyped, used already or expired. Run `" + slash + " login` to start again."), nil
		case err != nil:
			return chat.Message{}, err
		}
		return LinkedReply(linked), nil
	}
	start, err := l.BeginLogin(ctx, accountsLoginRequest(c.Request))
	if err != nil {
		return chat.Message{}, err
	}
	why := ":link: Link your Cloud 66 account. I will act in Cloud 66 as you, with only the permissions you have there."
	if link, err := l.Link(ctx, c.Request.Identity()); err == nil {
		why = fmt.Sprintf(":link: You're linked already (since %s). Logging in again replaces that link.", bk.Date(link.LinkedAt, "{date_short}"))
	}
	return loginReply(slash, loginURL, why, start), nil
}

// loginReply is the ephemeral message with the button that starts linking:
// to loginURL's page (the bot's own start page), or when it is nil or the
// flow is out of band, to Cloud 66's authorize URL.
func loginReply(slash string, loginURL func(accounts.LoginStart) string, why string, start accounts.LoginStart) chat.Message {
	url := start.AuthorizeURL
	if loginURL != nil && !start.OutOfBand {
		url = loginURL(start)
	}
	steps := "The link works once, for you only, for 10 minutes."
	if start.OutOfBand {
		steps = "Cloud 66 will show you a code; paste it back here as `" + slash + " login <code>`. The link works once, for you only, for 10 minutes."
	}
	blocks := []slack.Block{
		bk.Section(why),
		slack.NewActionBlock("login", bk.LinkButton("login_open", "Link Cloud 66 account", url, true)),
		bk.Context(steps),
	}
	return chat.Message{Text: bk.Fallback(why), Blocks: blocks}
}

// LinkedReply confirms a new link, naming the Cloud 66 account, so a link
// that went to the wrong account is noticed at once.
func LinkedReply(l accounts.Linked) chat.Message {
	msg := ":white_check_mark: Linked to Cloud 66"
	if l.Account != "" {
		msg += " account *" + bk.Esc(l.Account) + "*"
	}
	if l.Stacks >= 0 {
		msg += fmt.Sprintf(" (%d stacks visible)", l.Stacks)
	}
	msg += "."
	ctxLine := "Scopes: " + scopesText(l.Scopes) + ". Not you? Run `logout`."
	return chat.Message{Text: bk.Fallback(msg), Blocks: []slack.Block{bk.Section(msg), bk.Context(ctxLine)}}
}

func scopesText(scopes []string) string {
	if len(scopes) == 0 {
		return "_none reported_"
	}
	var out []string
	for _, s := range scopes {
		out = append(out, bk.Code(s))
	}
	return strings.Join(out, ", ")
}

type unlinker interface {
	Unlink(ctx context.Context, id storage.Identity) (bool, error)
}

// logoutCommand forgets the token, and the stack names cached with it.
func logoutCommand(u unlinker, stacks *stackCache) *Command {
	return &Command{
		Name:        "logout",
		Summary:     "Forget your Cloud 66 token.",
		Description: "Deletes the Cloud 66 token I keep for you. To revoke it in Cloud 66 too, remove c66bot under Account → Authorized Applications.",
		Examples:    []string{"logout"},
		MinArgs:     0, MaxArgs: 0,
		Change: "forget your Cloud 66 token",
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			existed, err := u.Unlink(ctx, c.Request.Identity())
			if err != nil {
				return chat.Message{}, err
			}
			// A next login may be another Cloud 66 account, seeing other stacks.
			stacks.forget(c.Request.Identity(), "")
			if !existed {
				return ephemeral("You weren't linked, so there was nothing to forget."), nil
			}
			return ephemeral(":wave: Done: I no longer hold a Cloud 66 token for you. To revoke it in Cloud 66 as well, remove c66bot under *Account → Authorized Applications*."), nil
		},
	}
}

type linkReader interface {
	Link(ctx context.Context, id storage.Identity) (storage.Link, error)
}

func whoamiCommand(l linkReader, clientFor clientFor) *Command {
	return &Command{
		Name:        "whoami",
		Summary:     "Which Cloud 66 account I act as for you.",
		Description: "Shows whether you are linked, since when, with which scopes, and how many stacks your token sees.",
		Examples:    []string{"whoami"},
		MinArgs:     0, MaxArgs: 0,
		Run: func(ctx context.Context, c *Call) (chat.Message, error) { return runWhoami(ctx, c, l, clientFor) },
	}
}

func runWhoami(ctx context.Context, c *Call, links linkReader, clientFor clientFor) (chat.Message, error) {
	l, err := links.Link(ctx, c.Request.Identity())
	if err != nil {
		return chat.Message{}, err
	}
	api, err := clientFor(ctx, c.Request.Identity())
	if err != nil {
		return chat.Message{}, err
	}
	stacks, err := api.ListStacks(ctx)
	if err != nil {
		return chat.Message{}, err
	}
	acct := accounts.AccountNames(stacks)
	if acct == "" {
		acct = l.Account
	}
	msg := fmt.Sprintf(":bust_in_silhouette: You are <@%s>, linked to Cloud 66", bk.Esc(c.Request.UserID))
	if acct != "" {
		msg += " account *" + bk.Esc(acct) + "*"
	}
	msg += fmt.Sprintf(" since %s.", bk.Date(l.LinkedAt, "{date_short_pretty} {time}"))
	blocks := []slack.Block{
		bk.Section(msg),
		bk.Fields("*Scopes*\n"+scopesText(l.Scopes), fmt.Sprintf("*Stacks visible*\n%d", len(stacks))),
	}
	return chat.Message{Text: bk.Fallback(msg), Blocks: blocks}, nil
}
