package sandbox

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
)

// replyWait bounds how long the console waits for the answer to a command
// before showing the prompt again; a late answer is still printed.
const replyWait = 15 * time.Second

// console is one person's terminal session.
type console struct {
	sb      *Sandbox
	scr     *screen
	feed    *feed
	user    string
	channel string
	views   *views // the App Home and modals (views.go)
}

// Console runs the sandbox's prompt on in until `:quit`, the end of in, or
// ctx being done. Each line is `/c66 …` typed as the current person in the
// current channel, a number pressing that button of the latest message
// with buttons, or a console command (`:user`, `:channel`, `:help`,
// `:quit`). Everything the bot shows, in any channel and for anyone,
// is printed as it happens.
func (s *Sandbox) Console(ctx context.Context, in io.Reader) error {
	scr := &screen{w: s.opts.Out, terminal: s.opts.Terminal}
	c := &console{sb: s, scr: scr, user: DefaultUser, channel: DefaultChannel}
	c.feed = newFeed(s, scr, c.user, true)

	fctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// Where the feed starts is read here, not in its goroutine, which may
	// start after the first command's answer was recorded.
	from := lastSeq(s.Slack)
	wg.Go(func() { c.feed.run(fctx, from) })
	c.views = newViews(c, fctx, &wg)
	c.views.setViewer(c.user)
	// The feed must be gone before Console returns: after that, nothing
	// may write to Out.
	defer wg.Wait()
	defer stop()

	lines := make(chan string)
	go readLines(fctx, in, lines)

	scr.print(c.banner())
	for {
		scr.showPrompt(c.prompt())
		var line string
		var ok bool
		select {
		case <-ctx.Done():
			scr.leave()
			return nil
		case <-s.Stopped():
			scr.leave()
			if ctx.Err() != nil || s.Err() == nil {
				return nil // stopped because ctx is done
			}
			return fmt.Errorf("the bot stopped: %w", s.Err())
		case line, ok = <-lines:
		}
		if !ok {
			scr.leave() // end of input (Ctrl-D)
			return nil
		}
		line = cleanLine(line)
		scr.entered(line, s.opts.EchoInput)
		if quit := c.do(ctx, strings.TrimSpace(line)); quit {
			return nil
		}
	}
}

// readLines sends in's lines to out and closes it at the end of in. It
// stops early when ctx is done, though a read already blocked on a terminal
// only returns with the next line (the process is exiting by then).
func readLines(ctx context.Context, in io.Reader, out chan<- string) {
	defer close(out)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		select {
		case out <- sc.Text():
		case <-ctx.Done():
			return
		}
	}
}

func (c *console) prompt() string {
	p := c.name(c.user) + " in " + c.where(c.channel) + "> "
	if c.sb.opts.Color {
		return ansiBold + p + ansiNoBoldDim
	}
	return p
}

func (c *console) name(user string) string {
	if n := c.sb.UserName(user); n != "" {
		return n
	}
	return user
}

func (c *console) where(channel string) string {
	n := c.sb.ChannelName(channel)
	switch {
	case n == "":
		return channel
	case strings.HasPrefix(n, "@"):
		return "DM " + n
	}
	return "#" + n
}

// say prints a line of the sandbox's own (not the bot's).
func (c *console) say(format string, args ...any) {
	c.scr.print(c.feed.note(fmt.Sprintf(format, args...)))
}

func (c *console) banner() string {
	var b strings.Builder
	b.WriteString("c66bot sandbox: the real bot, against a fake Slack and a fake Cloud 66, in this process.\n")
	b.WriteString("No accounts, no network; nothing is kept when you leave.\n\n")
	b.WriteString("Try:\n")
	production := "production asks first: type 1 to press [1]"
	if c.demoPolicy() {
		production = "needs another's approval: :user ben, then 1 presses Approve"
	}
	for _, l := range [][2]string{
		{"/c66 help", "what the bot can do"},
		{"/c66 login", "link Cloud 66 (the browser part happens by itself)"},
		{"/c66 stacks", ""},
		{"/c66 deploy shop:staging", "watch its message go ⏳ → 🚀 → ✅"},
		{"/c66 deploy shop:production@v2.1", production},
		{"/c66 restart shop:staging", "also maintenance, reboot: each one message, followed to the end"},
		{"/c66 deploy legacy-crm", "a stack whose deploys fail: then /c66 rollback legacy-crm"},
		{"/c66 subscribe shop:staging", "then :dashboard-deploy shop:staging: a deploy the bot did not start"},
	} {
		if l[1] == "" {
			fmt.Fprintf(&b, "  %s\n", l[0])
		} else {
			fmt.Fprintf(&b, "  %-36s %s\n", l[0], l[1])
		}
	}
	b.WriteString("\n")
	b.WriteString(c.policyNote())
	b.WriteString("\n")
	b.WriteString(c.help())
	return b.String()
}

// demoPolicy reports whether the bot runs with the built-in demo policy.
func (c *console) demoPolicy() bool {
	p := c.sb.opts.Policy
	return p != nil && p.Source == demoPolicySource
}

// policyNote says which policy the bot runs with and, for the demo policy,
// what to try with it.
func (c *console) policyNote() string {
	p := c.sb.opts.Policy
	switch {
	case p == nil:
		return "Policy: none (as without C66BOT_POLICY): production asks for a confirmation.\n"
	case !c.demoPolicy():
		return "Policy: " + p.Source + ".\n"
	}
	var b strings.Builder
	b.WriteString("Policy: " + demoPolicySource + " (--policy FILE for yours, --policy none for none):\n")
	for _, l := range []string{
		"deploy shop:production needs an approval from the other person (:user ben, then press Approve);",
		"payments:staging is always frozen (ana, an admin, may override it);",
		"everything else is allowed, production confirmed.",
	} {
		b.WriteString(hanging("  "+l, c.width(), 2))
	}
	return b.String()
}

func (c *console) help() string {
	var people, chans []string
	for _, p := range People() {
		people = append(people, fmt.Sprintf("%s %s (sees %s)", p.SlackID, p.Name, p.Sees))
	}
	for _, ch := range c.sb.Slack.Channels() {
		if !ch.IM {
			chans = append(chans, ch.ID+" #"+ch.Name)
		}
	}
	var b strings.Builder
	b.WriteString("Console commands:\n")
	for _, l := range [][2]string{
		{"/c66 <command>", "type a command (\"/c66\" may be left out)"},
		{"<number>", "press that button of the latest message with buttons"},
		{":user U0BEN", "type as someone else: " + strings.Join(people, ", ")},
		{":channel C0PRIVBOT", "type in another channel: " + strings.Join(chans, ", ")},
		{":dashboard-deploy", "shop:staging [ben]: Cloud 66 starts a deployment as if " + dashboardOwner + " (or ben) pressed Deploy on its dashboard; the bot did not start it, so only channels subscribed to the stack hear of it"},
		{":home", "open your App Home tab (the bot's page for you); it prints again when the bot changes it"},
		{":pick shop", "in a form (" + Command + " deploy with no stack opens one): search its stack picker; :pick 1 chooses"},
		{":set ref=v2.1", "fill in a field of the form (ref, services, profile, strategy); :set ref= clears it"},
		{":submit, :close", "send the form, or close it"},
		{":help", "this list"},
		{":quit", "leave (or Ctrl-D)"},
	} {
		b.WriteString(hanging(fmt.Sprintf("  %-20s %s", l[0], l[1]), c.width(), 23))
	}
	return b.String()
}

func (c *console) width() int {
	if c.sb.opts.Width > 0 {
		return c.sb.opts.Width
	}
	return defaultWidth
}

// hanging wraps line at width, indenting continuation lines by indent
// columns so they line up under the description.
func hanging(line string, width, indent int) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Split(line, " ") {
		switch {
		case i == 0:
		case n+1+visibleLen(w) > width && n > indent:
			b.WriteString("\n" + strings.Repeat(" ", indent))
			n = indent
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += visibleLen(w)
	}
	return b.String() + "\n"
}

// do runs one line and reports whether to quit.
func (c *console) do(ctx context.Context, line string) bool {
	switch {
	case line == "":
		return false
	case strings.HasPrefix(line, ":"):
		return c.consoleCommand(line)
	case isNumber(line):
		n, _ := strconv.Atoi(line)
		c.press(ctx, n)
		return false
	case strings.HasPrefix(line, "/"):
		cmd, rest, _ := strings.Cut(line, " ")
		if cmd != Command {
			c.say("Only %s is installed in this workspace; try %s help.", Command, Command)
			return false
		}
		c.command(ctx, strings.TrimSpace(rest))
		return false
	}
	c.command(ctx, line)
	return false
}

func isNumber(s string) bool {
	if s == "" || len(s) > 3 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func (c *console) consoleCommand(line string) bool {
	f := strings.Fields(line)
	arg := ""
	if len(f) > 1 {
		arg = f[1]
	}
	switch f[0] {
	case ":quit", ":q", ":exit":
		return true
	case ":help", ":h", ":?":
		c.scr.print(c.help())
	case ":user", ":u":
		if arg == "" {
			c.say("You are %s (%s, Cloud 66 %s). Switch with :user U0BEN.", c.name(c.user), c.user, c.sb.Email(c.user))
			return false
		}
		id, note, err := c.sb.resolveUser(arg)
		if err != nil {
			c.say("%v", err)
			return false
		}
		c.user = id
		c.feed.setViewer(id)
		c.views.setViewer(id)
		c.say("Now typing as @%s (%s, Cloud 66 %s).%s", c.name(id), id, c.sb.Email(id), note)
	case ":channel", ":c":
		if arg == "" {
			c.say("You are in %s (%s). Switch with :channel C0PRIVBOT.", c.where(c.channel), c.channel)
			return false
		}
		id, note, err := c.sb.resolveChannel(arg)
		if err != nil {
			c.say("%v", err)
			return false
		}
		c.channel = id
		c.say("Now in %s (%s).%s", c.where(id), id, note)
	case ":dashboard-deploy", ":dashboard":
		c.dashboardDeploy(f[1:])
	case ":home", ":pick", ":set", ":submit", ":close":
		c.viewCommand(f[0], strings.TrimSpace(strings.TrimPrefix(line, f[0])))
	default:
		c.scr.print(c.feed.note("Unknown console command "+f[0]+".") + "\n" + c.help())
	}
	return false
}

// command sends `/c66 text` and waits for its answer to be printed.
func (c *console) command(ctx context.Context, text string) {
	form := c.views.nextForm(c.user) // a form may be the answer
	w, err := c.feed.send(func() (string, error) { return c.sb.Send(ctx, c.user, c.channel, text) }, false)
	if err != nil {
		c.say("Could not send the command: %v", err)
		return
	}
	if !waitAnswer(ctx, w, form) && ctx.Err() == nil {
		c.say("(no answer after %s; it will show here when it comes)", replyWait)
	}
}

// press clicks button n of the latest message with buttons, as the
// current person, in that message's channel.
func (c *console) press(ctx context.Context, n int) {
	p := c.feed.pressable()
	switch {
	case p == nil:
		c.say("No message with buttons to press yet.")
		return
	case n < 1 || n > len(p.buttons):
		c.say("The latest message with buttons has buttons 1 to %d.", len(p.buttons))
		return
	}
	b := p.buttons[n-1]
	c.say("(@%s pressed “%s”)", c.name(c.user), b.Label)
	w, err := c.feed.send(func() (string, error) { return c.sb.Press(ctx, c.user, p.msg, b) }, true)
	if err != nil {
		c.say("Could not press: %v", err)
		return
	}
	if !wait(ctx, w, replyWait) && ctx.Err() == nil {
		c.say("(no answer after %s; it will show here when it comes)", replyWait)
	}
}

// resolveUser accepts a user ID ("U0BEN") or a person's name ("ben",
// "@ben"). An unknown but well-formed ID is allowed: that person's Cloud 66
// account sees no stacks, which note says.
func (s *Sandbox) resolveUser(arg string) (id, note string, err error) {
	name := strings.TrimPrefix(arg, "@")
	for _, p := range People() {
		if strings.EqualFold(p.SlackID, name) || strings.EqualFold(p.Name, name) {
			return p.SlackID, "", nil
		}
	}
	id = strings.ToUpper(name)
	if !looksLikeID(id, "UW") {
		return "", "", fmt.Errorf("%q is neither a person here nor a Slack user ID (U…); try :user U0BEN", arg)
	}
	return id, " They are not one of the sandbox's people, so their Cloud 66 account sees no stacks.", nil
}

// resolveChannel accepts a channel ID ("C0PRIVBOT") or name ("ops",
// "#ops"). An unknown but well-formed ID is allowed: commands work there
// (replies go through response_url) but the bot cannot post in it.
func (s *Sandbox) resolveChannel(arg string) (id, note string, err error) {
	name := strings.TrimPrefix(arg, "#")
	var known []string
	for _, ch := range s.Slack.Channels() {
		if strings.EqualFold(ch.ID, name) || (!ch.IM && strings.EqualFold(ch.Name, name)) {
			return ch.ID, channelNote(ch), nil
		}
		if !ch.IM {
			known = append(known, ch.ID+" (#"+ch.Name+")")
		}
	}
	id = strings.ToUpper(name)
	if !looksLikeID(id, "CGD") {
		return "", "", fmt.Errorf("no channel %q; the channels are %s", arg, strings.Join(known, ", "))
	}
	return id, " It is not a channel of this workspace: the bot answers you, but cannot post there.", nil
}

func channelNote(ch bottest.ChannelInfo) string {
	switch {
	case ch.Private && !ch.BotMember:
		return " It is private and the bot is not in it: deployment messages reach only you."
	case !ch.BotMember:
		return " The bot is not in it, but may post in public channels."
	}
	return ""
}

// looksLikeID reports whether s is a Slack ID starting with one of first.
func looksLikeID(s, first string) bool {
	if len(s) < 2 || !strings.ContainsRune(first, rune(s[0])) {
		return false
	}
	for _, r := range s[1:] {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// dashboardOwner is who deploys from the Cloud 66 dashboard by default: a
// member of the Cloud 66 account who is not in Slack.
const dashboardOwner = "carol@example.com"

// dashboardDeploy plays someone pressing Deploy on the Cloud 66 dashboard
// for stack args[0], as args[1] (a person or an e-mail) if given.
func (c *console) dashboardDeploy(args []string) {
	if len(args) == 0 || len(args) > 2 {
		c.say("Say which stack, and who if not %s: :dashboard-deploy shop:staging [ben].", dashboardOwner)
		return
	}
	st, err := c.sb.resolveStack(args[0])
	if err != nil {
		c.say("%v", err)
		return
	}
	who := dashboardOwner
	if len(args) == 2 {
		who = args[1]
		if !strings.Contains(who, "@") {
			id, _, err := c.sb.resolveUser(who)
			if err != nil {
				c.say("%v", err)
				return
			}
			who = c.sb.Email(id)
		}
	}
	if !c.sb.Cloud66.DashboardDeploy(st.UID, who) {
		c.say("Cloud 66 has no stack %s:%s.", st.Name, st.Environment)
		return
	}
	// The bot learns of it by polling the stack's deployments (every few
	// seconds here), as it does until Cloud 66 calls a webhook.
	c.say("(Cloud 66 dashboard) %s deploys %s:%s; channels subscribed to it hear of it soon.", who, st.Name, st.Environment)
}

// resolveStack finds a stack of the fake Cloud 66 by "name:environment",
// or by name alone when only one environment has it.
func (s *Sandbox) resolveStack(arg string) (cloud66test.StackInfo, error) {
	name, env, withEnv := strings.Cut(arg, ":")
	var found []cloud66test.StackInfo
	var envs []string
	for _, st := range s.Cloud66.Stacks() {
		if !strings.EqualFold(st.Name, name) {
			continue
		}
		envs = append(envs, st.Name+":"+st.Environment)
		if !withEnv || strings.EqualFold(st.Environment, env) {
			found = append(found, st)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		return cloud66test.StackInfo{}, fmt.Errorf("%s is in more than one environment: say which, %s", name, strings.Join(envs, " or "))
	case len(envs) > 0:
		return cloud66test.StackInfo{}, fmt.Errorf("no stack %s; there are %s", arg, strings.Join(envs, ", "))
	}
	return cloud66test.StackInfo{}, fmt.Errorf("Cloud 66 has no stack named %q; /c66 stacks lists them", name)
}
