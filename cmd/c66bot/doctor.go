package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/admin"
	"github.com/c66bot/c66bot/app"
	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/policy"
	"github.com/c66bot/c66bot/slackapp"
	"github.com/c66bot/c66bot/storage"
	"github.com/c66bot/c66bot/storage/postgres"
)

// doctorTimeout bounds each network check, so a black-holed address fails
// the check instead of hanging the command.
const doctorTimeout = 10 * time.Second

// doctor checks everything serve needs and says, in plain words, what is
// wrong and how to fix it: the settings (all of them, not just the first
// problem), the Slack tokens (with the real apps.connections.open and
// auth.test calls), Cloud 66, the OAuth application, the policy file, the
// database and its key, and the listen address. It changes nothing: the
// database is opened read-only, or asked about through the running bot.
// Exit status 0 means every check passed (warnings allowed), 1 that one
// failed.
func doctor(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	v, err := parseSettings("doctor", args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "c66bot doctor: %v\n", err)
		return 2
	}
	d := &doctorRun{
		v:    v,
		out:  newCheckPrinter(stdout, getenv),
		http: &http.Client{Timeout: doctorTimeout},
	}
	d.settings()
	d.slackAppToken(ctx)
	d.slackBotToken(ctx)
	d.slackSignIn(ctx)
	d.cloud66(ctx)
	d.oauthApp()
	d.policy()
	d.database(ctx)
	d.listen()

	if d.out.failed > 0 {
		fmt.Fprintf(stderr, "c66bot doctor: %d of %d checks failed; fix them and run c66bot doctor again.\n", d.out.failed, d.out.total)
		return 1
	}
	fmt.Fprintf(stderr, "c66bot doctor: all %d checks passed.\n", d.out.total)
	return 0
}

// doctorRun carries what one doctor run has learnt so far: later checks
// skip what an earlier one already reported as broken, so one mistake is
// not reported four times.
type doctorRun struct {
	v    app.Settings
	out  *checkPrinter
	http *http.Client

	bad      map[string]bool // settings already reported as missing or invalid
	keys     [][]byte        // the sealing keys, when they could be read
	keySrc   string          // where keys came from, for messages
	dbLocked bool            // the running bot holds the database
}

// outcome is a check's verdict.
type outcome int

const (
	passed outcome = iota
	warned         // works, but worth fixing; does not fail the run
	failed
	skipped // could not run because of a problem reported above
)

// checkPrinter writes one line per check, and an indented fix under each
// warning or failure. Lines are printed as checks finish, so a slow network
// check shows where it is.
type checkPrinter struct {
	w             io.Writer
	fancy         bool
	total, failed int
}

// newCheckPrinter uses ✓/✗ and colour on a terminal, and plain "ok"/"FAIL"
// when the output is piped or NO_COLOR (https://no-color.org) is set, so
// logs and scripts get greppable ASCII.
func newCheckPrinter(w io.Writer, getenv func(string) string) *checkPrinter {
	fancy := false
	if f, ok := w.(*os.File); ok && getenv("NO_COLOR") == "" && getenv("TERM") != "dumb" {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			fancy = true
		}
	}
	return &checkPrinter{w: w, fancy: fancy}
}

func (p *checkPrinter) report(o outcome, name, detail, fix string) {
	p.total++
	if o == failed {
		p.failed++
	}
	mark := [...]string{"ok  ", "warn", "FAIL", "skip"}[o]
	if p.fancy {
		mark = [...]string{"\x1b[32m✓\x1b[0m", "\x1b[33m!\x1b[0m", "\x1b[31m✗\x1b[0m", "\x1b[2m-\x1b[0m"}[o]
	}
	fmt.Fprintf(p.w, "%s %s: %s\n", mark, name, detail)
	if fix != "" && (o == failed || o == warned) {
		indent := "     "
		if p.fancy {
			indent = "  "
		}
		fmt.Fprintf(p.w, "%sfix: %s\n", indent, fix)
	}
}

func (d *doctorRun) pass(name, detail string)      { d.out.report(passed, name, detail, "") }
func (d *doctorRun) warn(name, detail, fix string) { d.out.report(warned, name, detail, fix) }
func (d *doctorRun) fail(name, detail, fix string) { d.out.report(failed, name, detail, fix) }
func (d *doctorRun) skip(name, detail string)      { d.out.report(skipped, name, detail, "") }

// settings reports every missing or malformed setting, each on its own
// line, where serve stops at the first.
func (d *doctorRun) settings() {
	d.bad = map[string]bool{}
	v := d.v
	// Collected first and printed in the order of the settings table, so
	// the lines read like `c66bot serve -h`.
	type problemLine struct{ detail, fix string }
	problems := map[string][]problemLine{}
	problem := func(env, detail, fix string) {
		d.bad[env] = true
		problems[env] = append(problems[env], problemLine{detail, fix})
	}
	// The same checks serve makes (app.Settings.Problems), all of them.
	for _, p := range v.Problems() {
		problem(p.Env, p.Detail, p.Fix)
	}
	keys, src, err := operatorKeys(d.v)
	switch {
	case err == nil:
		d.keys, d.keySrc = keys, src
	case v.Get("C66BOT_SECRET_KEY") != "", v.Get("C66BOT_DATABASE_URL") != "":
		// A key that does not parse, or none with PostgreSQL, is among the
		// problems above.
	case fileExists(src):
		// The key file exists but cannot be used (mode, content).
		problem("C66BOT_SECRET_KEY", err.Error(), "fix the key file, or set C66BOT_SECRET_KEY to the key it held")
	default:
		d.keySrc = src
	}

	for _, st := range app.Table() {
		for _, p := range problems[st.Env] {
			d.fail("setting "+st.Env, p.detail, p.fix)
		}
	}
	if len(d.bad) == 0 {
		d.pass("settings", "every required setting is set and well-formed")
	}
	switch {
	case d.keys != nil && d.keySrc == "C66BOT_SECRET_KEY":
		ids := make([]string, len(d.keys))
		for i, k := range d.keys {
			ids[i] = storage.KeyID(k)
		}
		detail := fmt.Sprintf("C66BOT_SECRET_KEY holds 1 key (id %s)", ids[0])
		if len(ids) > 1 {
			detail = fmt.Sprintf("C66BOT_SECRET_KEY holds %d keys; the first (id %s) seals, all open (ids %s)", len(ids), ids[0], strings.Join(ids[1:], ", "))
		}
		d.pass("sealing key", detail)
	case d.keys != nil:
		d.pass("sealing key", fmt.Sprintf("C66BOT_SECRET_KEY is unset; the key file %s holds key id %s (back it up with the database)", d.keySrc, storage.KeyID(d.keys[0])))
	case !d.bad["C66BOT_SECRET_KEY"]:
		d.pass("sealing key", fmt.Sprintf("none yet: serve will generate %s on first start; back it up with the database, or set C66BOT_SECRET_KEY", d.keySrc))
	}
}

// slackAuthFailure reports whether a Slack error code means the token
// itself is bad, as opposed to Slack or the network having trouble.
func slackAuthFailure(code string) bool {
	switch code {
	case "invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive":
		return true
	}
	return false
}

// slackTransportFix explains an error that is not Slack's verdict on the
// token: a 5xx, a rate limit or the network.
func (d *doctorRun) slackTransportFix(err error) (detail, fix string) {
	var sce slack.StatusCodeError
	var rle *slack.RateLimitedError
	switch {
	case errors.As(err, &sce) && sce.Code >= 500:
		return fmt.Sprintf("Slack answered HTTP %d", sce.Code), "Slack is having trouble; try again in a few minutes (https://slack-status.com)"
	case errors.As(err, &sce):
		return fmt.Sprintf("Slack answered HTTP %d", sce.Code), "check SLACK_API_URL (normally https://slack.com/api/) and any proxy in between"
	case errors.As(err, &rle):
		return "Slack rate-limited the call", fmt.Sprintf("try again in %s", rle.RetryAfter)
	}
	return "cannot reach Slack at " + d.v.Get("SLACK_API_URL") + ": " + err.Error(),
		"check the network, DNS, any proxy (HTTPS_PROXY) and SLACK_API_URL"
}

func (d *doctorRun) slackClient() *slack.Client {
	return slack.New(d.v.Get("SLACK_BOT_TOKEN"),
		slack.OptionAppLevelToken(d.v.Get("SLACK_APP_TOKEN")),
		slack.OptionAPIURL(apiURLWithSlash(d.v.Get("SLACK_API_URL"))),
		slack.OptionHTTPClient(d.http),
	)
}

func apiURLWithSlash(u string) string {
	if !strings.HasSuffix(u, "/") {
		u += "/"
	}
	return u
}

// slackAppToken makes the call Socket Mode starts with. Opening a
// connection URL has no side effect unless something connects to it, so
// this is safe while the bot runs.
func (d *doctorRun) slackAppToken(ctx context.Context) {
	const name = "Slack app token"
	if d.bad["SLACK_APP_TOKEN"] || d.bad["SLACK_API_URL"] {
		d.skip(name, "see the settings above")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	_, _, err := d.slackClient().StartSocketModeContext(ctx)
	if err == nil {
		d.pass(name, "apps.connections.open ok: Socket Mode can connect")
		return
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		detail := "apps.connections.open answered " + se.Err
		switch {
		case slackAuthFailure(se.Err):
			d.fail(name, detail, "the app-level token is wrong or revoked: Basic Information → App-Level Tokens, scope connections:write; put the xapp-… token in SLACK_APP_TOKEN")
		case se.Err == "not_allowed_token_type":
			d.fail(name, detail, "SLACK_APP_TOKEN holds another kind of token: "+app.HelpFor("SLACK_APP_TOKEN"))
		case se.Err == "missing_scope":
			d.fail(name, detail, "the app-level token lacks connections:write: generate a new one with that scope under Basic Information → App-Level Tokens")
		default:
			d.fail(name, detail, "see https://api.slack.com/methods/apps.connections.open for what "+se.Err+" means; Socket Mode must be on (Settings → Socket Mode)")
		}
		return
	}
	detail, fix := d.slackTransportFix(err)
	d.fail(name, "apps.connections.open: "+detail, fix)
}

// slackBotToken runs auth.test, which says whose token it is, and checks
// the granted scopes when Slack lists them.
func (d *doctorRun) slackBotToken(ctx context.Context) {
	const name = "Slack bot token"
	if d.bad["SLACK_BOT_TOKEN"] || d.bad["SLACK_API_URL"] {
		d.skip(name, "see the settings above")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	res, err := d.slackClient().AuthTestContext(ctx)
	if err != nil {
		var se slack.SlackErrorResponse
		if errors.As(err, &se) {
			fix := "see https://api.slack.com/methods/auth.test for what " + se.Err + " means"
			if slackAuthFailure(se.Err) {
				fix = "the bot token is wrong or revoked: reinstall the app and copy the Bot User OAuth Token (Install App, xoxb-…) into SLACK_BOT_TOKEN"
			}
			d.fail(name, "auth.test answered "+se.Err, fix)
			return
		}
		detail, fix := d.slackTransportFix(err)
		d.fail(name, "auth.test: "+detail, fix)
		return
	}
	if res.BotID == "" {
		d.fail(name, fmt.Sprintf("auth.test says this token is the person @%s, not a bot", res.User), "use "+app.HelpFor("SLACK_BOT_TOKEN"))
		return
	}
	detail := fmt.Sprintf("auth.test ok: team %q (%s), bot @%s (%s)", res.Team, res.TeamID, res.User, res.UserID)
	// Slack lists the token's scopes in a header; only complain when it
	// does, since proxies and older APIs may drop it.
	if granted := res.Header.Get("X-OAuth-Scopes"); granted != "" {
		have := strings.Split(strings.ReplaceAll(granted, " ", ""), ",")
		var missing []string
		for _, s := range slackapp.BotScopes() {
			if !slices.Contains(have, s) {
				missing = append(missing, s)
			}
		}
		if len(missing) > 0 {
			d.warn(name, detail+"; missing scopes: "+strings.Join(missing, ", "),
				"add them under OAuth & Permissions → Scopes (or update the app from `c66bot manifest`), then reinstall the app; commands that need them fail until then")
			return
		}
	}
	d.pass(name, detail)
}

// slackSignIn checks Sign in with Slack's settings where there is a public
// URL: it sends openid.connect.token a made-up code, which Slack answers
// invalid_code, unless it refuses the app's credentials first.
func (d *doctorRun) slackSignIn(ctx context.Context) {
	const name = "Sign in with Slack"
	pub := strings.TrimRight(d.v.Get("C66BOT_PUBLIC_URL"), "/")
	switch {
	case pub == "":
		d.pass(name, "not used: no C66BOT_PUBLIC_URL, so people paste the Cloud 66 code in Slack, which proves who they are")
		return
	case d.bad["SLACK_CLIENT_ID"] || d.bad["SLACK_CLIENT_SECRET"] || d.bad["SLACK_API_URL"] || d.bad["C66BOT_PUBLIC_URL"]:
		d.skip(name, "see the settings above")
		return
	}
	redirect := pub + slackapp.SignInCallbackPath
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	_, err := slack.GetOpenIDConnectTokenContext(ctx, d.http, d.v.Get("SLACK_CLIENT_ID"), d.v.Get("SLACK_CLIENT_SECRET"),
		"c66bot-doctor-made-up-code", redirect, slack.OAuthOptionAPIURL(apiURLWithSlash(d.v.Get("SLACK_API_URL"))))
	var se slack.SlackErrorResponse
	switch {
	case errors.As(err, &se) && (se.Err == "invalid_code" || se.Err == "invalid_grant"):
		d.pass(name, "Slack did not refuse SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (openid.connect.token answered "+se.Err+" to a made-up code); "+
			"the app's redirect URLs must include "+redirect)
	case errors.As(err, &se) && se.Err == "invalid_client_id":
		d.fail(name, "openid.connect.token answered invalid_client_id", "SLACK_CLIENT_ID is not your Slack app's: copy "+app.HelpFor("SLACK_CLIENT_ID"))
	case errors.As(err, &se) && se.Err == "bad_client_secret":
		d.fail(name, "openid.connect.token answered bad_client_secret", "SLACK_CLIENT_SECRET is wrong or was regenerated: copy "+app.HelpFor("SLACK_CLIENT_SECRET"))
	case errors.As(err, &se) && se.Err == "bad_redirect_uri":
		d.fail(name, "openid.connect.token answered bad_redirect_uri", "add "+redirect+" under OAuth & Permissions → Redirect URLs (or update the app from `c66bot manifest`)")
	case errors.As(err, &se):
		d.warn(name, "openid.connect.token answered "+se.Err+" to a made-up code", "see https://docs.slack.dev/reference/methods/openid.connect.token for what "+se.Err+" means")
	case err == nil:
		d.warn(name, "openid.connect.token accepted a made-up code", "check SLACK_API_URL: it should be Slack's (https://slack.com/api/)")
	default:
		detail, fix := d.slackTransportFix(err)
		d.fail(name, "openid.connect.token: "+detail, fix)
	}
}

// cloud66 checks that Cloud 66 answers the unauthenticated ping.
func (d *doctorRun) cloud66(ctx context.Context) {
	const name = "Cloud 66"
	base := d.v.Get("CLOUD66_URL")
	if d.bad["CLOUD66_URL"] {
		d.skip(name, "see the settings above")
		return
	}
	// One retry rides out a blip without making a real outage slow to
	// report.
	c, err := cloud66.NewClient(cloud66.WithBaseURL(base), cloud66.WithHTTPClient(d.http),
		cloud66.WithRetry(1, 200*time.Millisecond), cloud66.WithUserAgent("c66bot/"+version+" doctor"))
	if err != nil {
		d.fail(name, err.Error(), "set CLOUD66_URL to https://app.cloud66.com, or unset it")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	err = c.Ping(ctx)
	if err == nil {
		d.pass(name, base+" answers (GET /api/3/ping.json)")
		return
	}
	var er *cloud66.ErrorResponse
	switch {
	case errors.As(err, &er) && er.StatusCode >= 500:
		d.fail(name, fmt.Sprintf("%s answered %d to GET /api/3/ping.json", base, er.StatusCode),
			"Cloud 66 (or a proxy in front of it) is having trouble; try again later (https://status.cloud66.com); if it persists, check CLOUD66_URL")
	case errors.As(err, &er):
		d.fail(name, fmt.Sprintf("%s answered %d to GET /api/3/ping.json", base, er.StatusCode),
			"CLOUD66_URL does not point at Cloud 66: set it to https://app.cloud66.com, or unset it")
	default:
		d.fail(name, "cannot reach "+base+": "+err.Error(), "check the network, DNS, any proxy (HTTPS_PROXY) and CLOUD66_URL")
	}
}

// oauthApp checks what can be checked of the Cloud 66 OAuth application
// without a person signing in: that it is configured, and which callback
// URL must be registered with it.
func (d *doctorRun) oauthApp() {
	const name = "Cloud 66 OAuth app"
	if d.bad["CLOUD66_CLIENT_ID"] || d.bad["CLOUD66_CLIENT_SECRET"] || d.bad["C66BOT_PUBLIC_URL"] {
		d.skip(name, "see the settings above")
		return
	}
	pub := strings.TrimRight(d.v.Get("C66BOT_PUBLIC_URL"), "/")
	if pub == "" {
		d.pass(name, "client id set; no C66BOT_PUBLIC_URL, so people log in out-of-band (they paste a code): register the callback "+cloud66.OOBRedirectURL)
		return
	}
	callback := pub + "/oauth/callback"
	u, _ := url.Parse(pub) // validated in settings
	if u.Scheme == "http" && !app.IsLoopback(u.Hostname()) {
		d.warn(name, "C66BOT_PUBLIC_URL is plain http: login codes and cookies would cross the network unencrypted",
			"put the bot behind HTTPS and set C66BOT_PUBLIC_URL to the https:// address; then register the callback "+strings.Replace(callback, "http://", "https://", 1))
		return
	}
	d.pass(name, "client id set; register the callback "+callback+" with the application")
}

func (d *doctorRun) policy() {
	const name = "policy"
	path := d.v.Get("C66BOT_POLICY")
	if path == "" {
		d.pass(name, "no C66BOT_POLICY: the built-in default (every linked person may deploy; production needs a confirmation)")
		return
	}
	pol, err := policy.Load(path)
	if err != nil {
		// Policy errors read "<file>:<line>: <problem>" already.
		d.fail(name, err.Error(), "correct the policy file at the line named (or unset C66BOT_POLICY for the built-in default); the bot will not start until it parses")
		return
	}
	d.pass(name, fmt.Sprintf("%s parses: %d rules, %d freeze windows", path, len(pol.Rules), len(pol.Freezes)))
}

// database checks the file without writing to it: read-only when the bot is
// stopped, through the running bot's admin socket otherwise; or
// PostgreSQL, when C66BOT_DATABASE_URL is set.
func (d *doctorRun) database(ctx context.Context) {
	const name = "database"
	if d.v.Get("C66BOT_DATABASE_URL") != "" {
		d.postgres(ctx)
		return
	}
	path := d.v.Get("C66BOT_DB")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		d.newDatabase(path)
		return
	}
	file, build, err := storage.FileSchema(path, time.Second)
	switch {
	case errors.Is(err, storage.ErrLocked):
		d.dbLocked = true
		d.runningBot(ctx, path)
		return
	case err != nil:
		d.fail(name, err.Error(), "the file is not a c66bot database or is damaged: restore it from a backup (c66bot backup makes them), or point C66BOT_DB at the right file")
		return
	case file > build:
		d.fail(name, fmt.Sprintf("%s has schema v%d, newer than this c66bot (v%d)", path, file, build),
			"run the c66bot version that wrote it (upgrade this one), or restore a backup made for this version")
		return
	case file < build:
		d.warn(name, fmt.Sprintf("%s has schema v%d; this c66bot (v%d) migrates it at start, which older versions then cannot read", path, file, build),
			"take a copy first: c66bot backup FILE; the key check runs once it is migrated")
		return
	}

	keys := d.keys
	if keys == nil {
		// No key to try: a random one still counts the sealed values, none
		// of which it opens.
		keys = [][]byte{throwawayKey()}
	}
	s, err := storage.Open(storage.Options{Path: path, Keys: keys, ReadOnly: true, Timeout: time.Second})
	if err != nil {
		d.fail(name, err.Error(), "check the file's owner and mode: the bot's user must read and write it")
		return
	}
	defer s.Close()
	links, err := s.Links().Count(ctx)
	if err != nil {
		d.fail(name, err.Error(), "the file is damaged: restore it from a backup")
		return
	}
	d.pass(name, fmt.Sprintf("%s opens (read-only): schema v%d, %s", path, file, plural(links, "linked person", "linked people")))
	if d.bad["C66BOT_SECRET_KEY"] {
		d.skip("stored tokens", "no usable key to try; see the settings above")
		return
	}
	rep, err := s.CheckKeys(ctx)
	if err != nil {
		d.fail("stored tokens", err.Error(), "the file is damaged: restore it from a backup")
		return
	}
	d.keyReport(rep, d.keys == nil, false)
}

// pgDoctorTimeout bounds doctor's PostgreSQL connection, shorter than the
// operator commands' own: a check should fail fast.
const pgDoctorTimeout = 5 * time.Second

// postgres checks C66BOT_DATABASE_URL without changing anything (the
// schema is not migrated): the URL, the connection, the schema version
// against this build's, and whether the keys open the stored tokens.
// There is no admin socket: every replica and command opens PostgreSQL
// itself.
func (d *doctorRun) postgres(ctx context.Context) {
	const name = "database"
	raw := d.v.Get("C66BOT_DATABASE_URL")
	if d.bad["C66BOT_DATABASE_URL"] {
		d.skip(name, "see the settings above")
		return
	}
	if _, err := url.Parse(raw); err != nil {
		// url.Error holds the whole URL, password and all: only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		d.fail("database URL", "C66BOT_DATABASE_URL does not parse as a URL: "+withoutPassword(err.Error(), raw),
			"set it to "+app.HelpFor("C66BOT_DATABASE_URL")+", with any special character of the password %-escaped")
		return
	}
	shown := redactURL(raw)
	if host, plain := plainToRemote(raw); plain {
		d.warn("database URL", shown+": sslmode=disable to "+host+", which is not this machine: the password and every token would cross the network unencrypted",
			"use sslmode=require (or verify-full with the server's CA in sslrootcert), and turn ssl on in the server")
	} else {
		d.pass("database URL", shown+" (PostgreSQL; C66BOT_DB is not used)")
	}

	keys := d.keys
	if keys == nil {
		keys = [][]byte{throwawayKey()}
	}
	t := pgTargetOf(raw)
	// explainPostgres says what to check; there is no separate fix.
	broken := func(check string, err error) { d.fail(check, explainPostgres(err, raw, "C66BOT_DATABASE_URL"), "") }
	pctx, cancel := context.WithTimeout(ctx, pgDoctorTimeout)
	defer cancel()
	db, closeDB, err := openPostgres(pctx, raw, "doctor", false, keys, true)
	var se *postgres.SchemaError
	switch {
	case errors.As(err, &se) && se.Database > se.Build:
		d.fail(name, fmt.Sprintf("PostgreSQL at %s answers, but the database %s has schema v%d, newer than this c66bot (v%d): this build is older than the database", t.addr, t.db, se.Database, se.Build),
			"run the c66bot version the replicas run (upgrade this one)")
		return
	case errors.As(err, &se):
		what := fmt.Sprintf("schema v%d", se.Database)
		if se.Database == 0 {
			what = "no c66bot tables yet"
		}
		d.warn(name, fmt.Sprintf("PostgreSQL at %s answers; the database %s has %s, this c66bot v%d: it will be migrated on start", t.addr, t.db, what, se.Build),
			"nothing to do: serve migrates it when it starts (replicas of an older version cannot read it then); the key check runs once it is migrated")
		return
	case err != nil:
		broken(name, err)
		return
	}
	defer closeDB()
	err = db.whole.Ping(pctx)
	var (
		version uint64
		links   int
	)
	if err == nil {
		version, err = db.whole.SchemaVersion(pctx)
	}
	if err == nil {
		links, err = db.links.Count(pctx)
	}
	if err != nil {
		broken(name, err)
		return
	}
	d.pass(name, fmt.Sprintf("PostgreSQL at %s answers: the database %s has schema v%d (this c66bot's), %s", t.addr, t.db, version, plural(links, "linked person", "linked people")))
	if d.bad["C66BOT_SECRET_KEY"] {
		d.skip("stored tokens", "no usable key to try; see the settings above")
		return
	}
	rep, err := db.whole.CheckKeys(pctx)
	if err != nil {
		broken("stored tokens", err)
		return
	}
	d.keyReport(rep, false, false)
}

// newDatabase checks that serve will be able to create the file.
func (d *doctorRun) newDatabase(path string) {
	const name = "database"
	dir := filepath.Dir(path)
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		d.fail(name, fmt.Sprintf("%s does not exist, nor does its directory %s", path, dir),
			"create the directory for the bot's user (mkdir -p "+dir+"; systemd's StateDirectory= does it), or point C66BOT_DB elsewhere")
		return
	}
	// The only sure test of "can the bot create a file here" is creating
	// one; it is removed at once.
	f, err := os.CreateTemp(dir, ".c66bot-doctor-*")
	if err != nil {
		d.fail(name, fmt.Sprintf("%s does not exist and %s is not writable: %v", path, dir, err),
			"give the bot's user write access to "+dir+", or point C66BOT_DB at a writable place")
		return
	}
	f.Close()
	os.Remove(f.Name())
	d.pass(name, path+" does not exist yet; serve creates it (mode 0600) on first start")
}

// runningBot asks the bot that holds the database about it.
func (d *doctorRun) runningBot(ctx context.Context, path string) {
	const name = "database"
	c := newAdminClient(path + ".sock")
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	var st admin.AdminStatus
	if err := c.call(ctx, http.MethodGet, "/status", nil, &st); err != nil {
		d.warn(name, fmt.Sprintf("%s is locked: the bot is running (fine) — doctor read-only checks skipped (its admin socket did not answer: %v)", path, err),
			"run c66bot doctor as the bot's user, beside the same C66BOT_DB, to have the running bot answer; or stop the bot for a full check")
		return
	}
	d.pass(name, fmt.Sprintf("%s is in use by the running bot (fine); it reports schema v%d, %s", path, st.SchemaVersion, plural(st.Links, "linked person", "linked people")))
	if !st.Ready {
		d.fail("running bot", "not ready: "+st.NotReady, "see the bot's log; the Slack checks above usually say why")
	} else {
		d.pass("running bot", "ready (Slack connected, database answering)")
	}
	d.keyReport(st.Keys, false, true)
}

// keyReport turns a KeyReport into the "stored tokens" line.
func (d *doctorRun) keyReport(rep storage.KeyReport, noKey, running bool) {
	const name = "stored tokens"
	src := d.keySrc
	if running {
		src = "the running bot's C66BOT_SECRET_KEY"
	}
	ids := ""
	if len(rep.UnknownKeyIDs) > 0 {
		ids = " (the others were sealed with key id " + strings.Join(rep.UnknownKeyIDs, ", ") + ")"
	}
	total := plural(rep.Total(), "sealed value", "sealed values")
	switch {
	case rep.Total() == 0:
		d.pass(name, "none stored yet")
	case noKey:
		d.fail(name, fmt.Sprintf("the database holds %s but there is no key: C66BOT_SECRET_KEY is unset and %s does not exist", total, src),
			"restore the key (C66BOT_SECRET_KEY, or the key file beside the database); serve refuses to start without it ("+lostForGood+")")
	case rep.Unopenable > 0:
		d.fail(name, fmt.Sprintf("sealed values that open with %s: %d of %d%s", src, rep.Total()-rep.Unopenable, rep.Total(), ids),
			keyName(src)+" does not open the stored tokens: restore the key, or every person must log in again"+refusal(rep))
	case rep.Older > 0:
		d.warn(name, fmt.Sprintf("all %s open, but %d are still sealed with an older key", total, rep.Older),
			"finish the rotation: c66bot rekey, then drop the old key from C66BOT_SECRET_KEY and restart")
	case rep.Total() == 1:
		d.pass(name, "the 1 sealed value opens with the first key")
	default:
		d.pass(name, fmt.Sprintf("all %s open with the first key", total))
	}
}

// refusal adds to the fix when serve will not start at all: when no sealed
// value opens.
func refusal(rep storage.KeyReport) string {
	if rep.Unopenable < rep.Total() {
		return ""
	}
	return "; serve refuses to start while none opens (" + lostForGood + ")"
}

// keyName is how the fix sentence names the key source: the setting
// itself, or the key file standing in for it.
func keyName(src string) string {
	if strings.Contains(src, "C66BOT_SECRET_KEY") {
		return "C66BOT_SECRET_KEY"
	}
	return "the key file " + src
}

// listen checks the HTTP address can be bound, by binding it for a moment.
func (d *doctorRun) listen() {
	const name = "listen address"
	addr := d.v.Get("C66BOT_LISTEN")
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
		d.pass(name, addr+" is free")
		return
	}
	switch {
	case errors.Is(err, syscall.EADDRINUSE) && d.dbLocked:
		d.pass(name, addr+" is in use, presumably by the running bot")
	case errors.Is(err, syscall.EADDRINUSE) && d.v.Get("C66BOT_DATABASE_URL") != "":
		// Replicas share no lock doctor could see.
		d.warn(name, addr+" is in use: by a replica running on this machine, or by another program",
			"if no c66bot runs here, stop that program, or set C66BOT_LISTEN to a free address such as :8081")
	case errors.Is(err, syscall.EADDRINUSE):
		d.fail(name, addr+" is already in use by another program",
			"stop that program, or set C66BOT_LISTEN to a free address such as :8081")
	case errors.Is(err, syscall.EACCES):
		d.fail(name, "binding "+addr+" needs privileges",
			"use a port above 1023 behind a reverse proxy, or grant CAP_NET_BIND_SERVICE (systemd: AmbientCapabilities=CAP_NET_BIND_SERVICE)")
	default:
		d.fail(name, "cannot listen on "+addr+": "+err.Error(), "set C66BOT_LISTEN to host:port, e.g. :8080 or 127.0.0.1:8080")
	}
}

// plural writes n with the singular or plural noun.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
