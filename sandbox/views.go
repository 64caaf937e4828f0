package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/c66bot/c66bot/bot/bottest"
)

// The console's views: a person's App Home (`:home`) and the modal the bot
// opens for them (the deploy form), printed like messages and driven with
// `:pick`, `:set`, `:submit` and `:close`.

// views watches the fake Slack's views for the console: per person, the
// Homes they asked for (and their republishing) and their modals.
type views struct {
	c   *console
	ctx context.Context
	wg  *sync.WaitGroup

	mu sync.Mutex
	// viewer is the console's current person (console.user, which only
	// the console's goroutine may read).
	viewer string
	// homeWatched are the people whose Home is printed when published;
	// homeAsked those whose next Home is the answer to a `:home`.
	homeWatched map[string]bool
	homeAsked   map[string]bool
	homePrinted map[string]chan struct{} // closed at each print, then replaced
	// formWatched are the people whose modals are watched; forms their
	// open form, if any.
	formWatched map[string]bool
	forms       map[string]*form
	formPrinted map[string]chan struct{}
}

// form is a person's open modal as the console holds it: the view last
// printed and what they have chosen and typed in it.
type form struct {
	view    bottest.View
	inputs  []input
	values  map[string]string // block id → value
	offered []option          // the stack options the last :pick showed
}

// input is an input block of a modal, by what the console needs.
type input struct {
	Type           string      `json:"type"`
	BlockID        string      `json:"block_id"`
	Optional       bool        `json:"optional"`
	DispatchAction bool        `json:"dispatch_action"`
	Label          textObject  `json:"label"`
	Hint           *textObject `json:"hint"`
	Element        struct {
		Type          string      `json:"type"`
		Placeholder   *textObject `json:"placeholder"`
		Options       []option    `json:"options"`
		InitialOption *option     `json:"initial_option"`
	} `json:"element"`
}

type option struct {
	Text  textObject `json:"text"`
	Value string     `json:"value"`
}

func newViews(c *console, ctx context.Context, wg *sync.WaitGroup) *views {
	return &views{c: c, ctx: ctx, wg: wg,
		homeWatched: map[string]bool{}, homeAsked: map[string]bool{}, homePrinted: map[string]chan struct{}{},
		formWatched: map[string]bool{}, forms: map[string]*form{}, formPrinted: map[string]chan struct{}{}}
}

// printed is the channel closed at the next print for user in m.
func printed(m map[string]chan struct{}, user string) chan struct{} {
	ch := m[user]
	if ch == nil {
		ch = make(chan struct{})
		m[user] = ch
	}
	return ch
}

func signal(m map[string]chan struct{}, user string) {
	close(printed(m, user))
	m[user] = make(chan struct{})
}

// waitPrinted waits for ch up to replyWait and reports whether it came.
func (v *views) waitPrinted(ch <-chan struct{}) bool {
	t := time.NewTimer(replyWait)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
	case <-v.ctx.Done():
	}
	return false
}

// --- App Home ----------------------------------------------------------------

// home is `:home`: user opens the bot's Home tab; its view is printed when
// the bot publishes it, and again whenever the bot republishes it.
func (v *views) home(user string) {
	v.mu.Lock()
	if !v.homeWatched[user] {
		v.homeWatched[user] = true
		last := 0
		if hv, ok := v.c.sb.Slack.HomeView(user); ok {
			last = hv.Seq
		}
		v.wg.Go(func() { v.watchHome(user, last) })
	}
	v.homeAsked[user] = true
	ch := printed(v.homePrinted, user)
	v.mu.Unlock()
	if _, err := v.c.sb.Slack.SendAppHomeOpened(v.ctx, user); err != nil {
		v.c.say("Could not open the Home: %v", err)
		return
	}
	if !v.waitPrinted(ch) && v.ctx.Err() == nil {
		v.c.say("(the bot published no Home after %s; it will show here when it does)", replyWait)
	}
}

// watchHome prints each view published on user's Home after Seq last.
func (v *views) watchHome(user string, last int) {
	for {
		hv, err := v.c.sb.Slack.WaitHomeView(v.ctx, user, func(h bottest.HomeView) bool { return h.Seq > last })
		if err != nil {
			return
		}
		last = hv.Seq
		v.mu.Lock()
		head := "[home of @" + v.c.name(user) + "]"
		if !v.homeAsked[user] {
			head += " (updated)"
		}
		delete(v.homeAsked, user)
		o := v.c.sb.renderOptions(v.viewer, nil)
		v.mu.Unlock()
		v.c.scr.print(renderView(head, hv.Blocks, nil, o))
		v.mu.Lock()
		signal(v.homePrinted, user)
		v.mu.Unlock()
	}
}

// --- modals ------------------------------------------------------------------

// setViewer makes user the person at the console and watches their
// modals, from now on and once per person.
func (v *views) setViewer(user string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.viewer = user
	if v.formWatched[user] {
		return
	}
	v.formWatched[user] = true
	v.wg.Go(func() { v.runForms(user) })
}

// runForms prints user's modal each time one opens or the bot updates it.
func (v *views) runForms(user string) {
	type version struct {
		id      string
		updates int
	}
	seen := map[version]bool{}
	for _, ov := range v.c.sb.Slack.OpenViews(user) {
		seen[version{ov.ID, ov.Updates}] = true
	}
	for {
		ov, err := v.c.sb.Slack.WaitView(v.ctx, user, func(ov bottest.View) bool {
			return !ov.Closed && !seen[version{ov.ID, ov.Updates}]
		})
		if err != nil {
			return
		}
		seen[version{ov.ID, ov.Updates}] = true
		v.mu.Lock()
		f := v.forms[user]
		updated := f != nil && f.view.ID == ov.ID
		if !updated {
			f = &form{values: map[string]string{}}
			v.forms[user] = f
		}
		f.view, f.inputs, f.offered = ov, parseInputs(ov.Blocks), nil
		for _, in := range f.inputs {
			if in.Element.InitialOption != nil {
				f.values[in.BlockID] = in.Element.InitialOption.Value
			}
		}
		text := v.renderForm(f, updated)
		v.mu.Unlock()
		v.c.scr.print(text)
		v.mu.Lock()
		signal(v.formPrinted, user)
		v.mu.Unlock()
	}
}

// nextForm is the channel closed when user's next form is printed; the
// console takes it before sending what may open or update one.
func (v *views) nextForm(user string) <-chan struct{} {
	v.mu.Lock()
	defer v.mu.Unlock()
	return printed(v.formPrinted, user)
}

func parseInputs(blocks json.RawMessage) []input {
	var all []input
	_ = json.Unmarshal(blocks, &all)
	var out []input
	for _, b := range all {
		if b.Type == "input" {
			out = append(out, b)
		}
	}
	return out
}

// renderForm prints a form: its title, then its blocks, each input
// numbered with its value or what it takes. v.mu must be held.
func (v *views) renderForm(f *form, updated bool) string {
	head := "[form] " + orDefault(f.view.Title, "Form")
	if updated {
		head += " (updated)"
	}
	head += " — :pick, :set, :submit or :close"
	return renderView(head, f.view.Blocks, func(n int, in input) string { return v.inputLine(f, n, in) }, v.c.sb.renderOptions(v.viewer, nil))
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// inputLine is one input of a form: "2. Ref (optional): v2.1".
func (v *views) inputLine(f *form, n int, in input) string {
	line := fmt.Sprintf("%d. %s", n, in.Label.Text)
	if in.Optional {
		line += " (optional)"
	}
	line += ": "
	val := f.values[in.BlockID]
	switch {
	case val != "":
		line += v.valueLabel(in, val)
	case in.Element.Type == "external_select":
		line += "— (:pick <text>)"
	case in.Element.Type == "static_select":
		var opts []string
		for _, o := range in.Element.Options {
			opts = append(opts, o.Value)
		}
		line += "— (:set " + in.BlockID + "=" + strings.Join(opts, "|") + ")"
	default:
		ph := ""
		if in.Element.Placeholder != nil {
			ph = in.Element.Placeholder.Text
		}
		line += "— (:set " + in.BlockID + "=‹" + orDefault(ph, "text") + "›)"
	}
	if in.Hint != nil && in.Hint.Text != "" && val == "" {
		line += "\n   " + in.Hint.Text
	}
	return line
}

// valueLabel shows a chosen value: a stack's uid as name:environment.
func (v *views) valueLabel(in input, val string) string {
	if in.Element.Type == "external_select" {
		return v.c.stackLabel(val)
	}
	return val
}

// stackLabel names a stack uid for people.
func (c *console) stackLabel(uid string) string {
	for _, st := range c.sb.Cloud66.Stacks() {
		if st.UID == uid {
			return st.Name + ":" + st.Environment
		}
	}
	return uid
}

// renderView prints a view's blocks under head like a message's; input
// blocks are numbered in order and shown by inputLine.
func renderView(head string, blocks json.RawMessage, inputLine func(n int, in input) string, o RenderOptions) string {
	if o.Width <= 0 {
		o.Width = defaultWidth
	}
	r := &renderer{o: o, indent: len(bodyIndent)}
	raws, _ := parseBlocks(blocks)
	var b strings.Builder
	b.WriteString(r.bold(head) + "\n")
	n := 0
	for _, raw := range raws {
		var lines []string
		if ins := parseInputs(json.RawMessage("[" + string(raw) + "]")); len(ins) == 1 && inputLine != nil {
			n++
			lines = strings.Split(inputLine(n, ins[0]), "\n")
		} else {
			lines = r.blocks([]json.RawMessage{raw})
		}
		for _, l := range lines {
			if l == "" {
				b.WriteByte('\n')
				continue
			}
			b.WriteString(bodyIndent + l + "\n")
		}
	}
	return b.String()
}

// openForm is the current person's open form, or nil (said).
func (v *views) openForm() (string, *form) {
	user := v.c.user
	v.mu.Lock()
	defer v.mu.Unlock()
	f := v.forms[user]
	if f == nil {
		v.c.say("No form is open for @%s; %s deploy with no stack opens one.", v.c.name(user), Command)
		return user, nil
	}
	return user, f
}

// pick is `:pick <text>` and `:pick <n>`: types text into the form's
// stack select and lists what the bot offers, or chooses the nth offered
// (or the only one), which makes the bot redraw the form.
func (v *views) pick(arg string) {
	user, f := v.openForm()
	if f == nil {
		return
	}
	if arg == "" {
		v.c.say("Say what to search for: :pick shop, then :pick 1 to choose the first.")
		return
	}
	v.mu.Lock()
	viewID, offered := f.view.ID, slices.Clone(f.offered)
	in, ok := f.selectInput()
	v.mu.Unlock()
	if !ok {
		v.c.say("This form has no stack to pick.")
		return
	}
	if n, err := strconv.Atoi(arg); err == nil {
		if n < 1 || n > len(offered) {
			v.c.say("Pick one of the %d stacks the last :pick offered (:pick <text> searches).", len(offered))
			return
		}
		v.choose(user, f, in, offered[n-1])
		return
	}
	values, err := v.c.sb.Slack.Suggest(v.ctx, user, viewID, in.BlockID, arg)
	if err != nil {
		v.c.say("Could not search: %v", err)
		return
	}
	var opts []option
	for _, val := range values {
		opts = append(opts, option{Value: val, Text: textObject{Text: v.c.stackLabel(val)}})
	}
	switch len(opts) {
	case 0:
		v.c.say("No stack of yours matches %q.", arg)
		return
	case 1:
		v.choose(user, f, in, opts[0])
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[form] stacks matching %q:\n", arg)
	for i, o := range opts {
		fmt.Fprintf(&b, "%s[%d] %s\n", bodyIndent, i+1, o.Text.Text)
	}
	b.WriteString(bodyIndent + "(:pick <n> chooses one)\n")
	v.mu.Lock()
	f.offered = opts
	v.mu.Unlock()
	v.c.scr.print(b.String())
}

// selectInput is the form's external select. v.mu must be held.
func (f *form) selectInput() (input, bool) {
	for _, in := range f.inputs {
		if in.Element.Type == "external_select" {
			return in, true
		}
	}
	return input{}, false
}

// choose selects o in the form's stack select and waits for the redraw.
func (v *views) choose(user string, f *form, in input, o option) {
	v.mu.Lock()
	viewID := f.view.ID
	values := map[string]string{}
	for k, val := range f.values {
		if k != in.BlockID {
			values[k] = val
		}
	}
	f.values[in.BlockID] = o.Value
	ch := printed(v.formPrinted, user)
	v.mu.Unlock()
	v.c.say("(@%s picked %s)", v.c.name(user), o.Text.Text)
	if !in.DispatchAction {
		return // nothing to redraw: the choice is only in the state
	}
	if _, err := v.c.sb.Slack.ChooseInView(v.ctx, user, viewID, in.BlockID, o.Value, values); err != nil {
		v.c.say("Could not choose: %v", err)
		return
	}
	if !v.waitPrinted(ch) && v.ctx.Err() == nil {
		v.c.say("(the form was not redrawn after %s)", replyWait)
	}
}

// set is `:set <field>=<value>`: field is an input's block id, label or
// number; an empty value clears it.
func (v *views) set(arg string) {
	_, f := v.openForm()
	if f == nil {
		return
	}
	name, val, ok := strings.Cut(arg, "=")
	if !ok {
		v.c.say("Say :set <field>=<value>, e.g. :set ref=v2.1.")
		return
	}
	name, val = strings.TrimSpace(name), strings.TrimSpace(val)
	v.mu.Lock()
	defer v.mu.Unlock()
	var in *input
	var fields []string
	for i := range f.inputs {
		c := &f.inputs[i]
		fields = append(fields, c.BlockID)
		if strings.EqualFold(c.BlockID, name) || strings.EqualFold(c.Label.Text, name) || strconv.Itoa(i+1) == name {
			in = c
		}
	}
	switch {
	case in == nil:
		v.c.say("The form has no field %q; it has %s.", name, strings.Join(fields, ", "))
		return
	case in.Element.Type == "external_select":
		v.c.say("Choose the %s with :pick <text>.", strings.ToLower(in.Label.Text))
		return
	case in.Element.Type == "static_select" && val != "":
		var opts []string
		found := ""
		for _, o := range in.Element.Options {
			opts = append(opts, o.Value)
			if strings.EqualFold(o.Value, val) || strings.EqualFold(o.Text.Text, val) {
				found = o.Value
			}
		}
		if found == "" {
			v.c.say("%s is one of %s.", in.Label.Text, strings.Join(opts, ", "))
			return
		}
		val = found
	}
	if val == "" {
		delete(f.values, in.BlockID)
		v.c.say("(%s cleared)", in.Label.Text)
	} else {
		f.values[in.BlockID] = val
		v.c.say("(%s: %s)", in.Label.Text, v.valueLabel(*in, val))
	}
}

// submit is `:submit`: the form's state goes to the bot, which answers
// with errors on fields (printed; the form stays open) or by closing it,
// after which its reply shows as messages do.
func (v *views) submit() {
	user, f := v.openForm()
	if f == nil {
		return
	}
	v.mu.Lock()
	viewID, values, inputs := f.view.ID, cloneValues(f.values), f.inputs
	v.mu.Unlock()
	sub, err := v.c.sb.Slack.SubmitView(v.ctx, user, viewID, values)
	switch {
	case errors.Is(err, bottest.ErrRequiredEmpty):
		v.c.say("Fill in the required fields first (%s).", strings.TrimPrefix(err.Error(), bottest.ErrRequiredEmpty.Error()+": "))
		return
	case err != nil:
		v.c.say("Could not submit: %v", err)
		return
	}
	if sub.ResponseAction == "errors" {
		var b strings.Builder
		b.WriteString("[form] not sent; fix these and :submit again:\n")
		for _, in := range inputs {
			if msg, ok := sub.Errors[in.BlockID]; ok {
				fmt.Fprintf(&b, "%s%s: %s\n", bodyIndent, in.Label.Text, msg)
			}
		}
		v.c.scr.print(b.String())
		return
	}
	v.forget(user, viewID)
	v.c.say("(form closed)")
}

// close is `:close`: the person closes the form. The bot asked for no
// view_closed, so Slack tells it nothing.
func (v *views) close() {
	user, f := v.openForm()
	if f == nil {
		return
	}
	v.forget(user, f.view.ID)
	v.c.say("(form closed)")
}

func (v *views) forget(user, viewID string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if f := v.forms[user]; f != nil && f.view.ID == viewID {
		delete(v.forms, user)
	}
}

func cloneValues(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// viewCommand runs the console commands of views.
func (c *console) viewCommand(cmd, arg string) {
	switch cmd {
	case ":home":
		c.views.home(c.user)
	case ":pick":
		c.views.pick(arg)
	case ":set":
		c.views.set(arg)
	case ":submit":
		c.views.submit()
	case ":close":
		c.views.close()
	}
}

// waitAnswer waits up to replyWait for a command's answer: its reply
// printed, or a form (a command that opens a modal answers with no
// message).
func waitAnswer(ctx context.Context, w *waiter, form <-chan struct{}) bool {
	t := time.NewTimer(replyWait)
	defer t.Stop()
	select {
	case <-w.done:
		return true
	case <-form:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}
