package sandbox

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/c66bot/c66bot/bot/bottest"
)

// RenderOptions say how Render shows a message. The zero value renders
// plain text 100 columns wide, with IDs where names would go.
type RenderOptions struct {
	// Viewer is the Slack user reading: ephemeral messages for them are
	// marked "[only you]", those for someone else "[only @name]".
	Viewer string
	// UserName and ChannelName turn IDs into names ("ana", "general");
	// nil, or "" from them, shows the ID.
	UserName    func(id string) string
	ChannelName func(id string) string
	// Ref names a channel message (channel + ts) for a person, e.g. "msg 2",
	// so an edit can be matched to what it edits; nil shows the ts.
	Ref func(channel, ts string) string
	// Color uses ANSI bold, dim, italic and underline; without it mrkdwn
	// emphasis is dropped and context lines are put in parentheses.
	Color bool
	// Width wraps long lines; <= 0 means 100.
	Width int
}

// Button is an interactive element of a rendered message.
type Button struct {
	// Number is what the person types to press it (1-based within the
	// message); 0 for link buttons, which open URL instead.
	Number   int
	Label    string
	ActionID string
	BlockID  string
	Value    string
	URL      string
}

// Rendered is a message as the sandbox prints it.
type Rendered struct {
	// Text is the header line and the indented body, each line ending in
	// a newline.
	Text string
	// Buttons are the numbered action buttons, in number order.
	Buttons []Button
	// Links are the link buttons (URL set).
	Links []Button
}

const (
	defaultWidth = 100
	bodyIndent   = "  "
	threadIndent = "    "
	maxRule      = 40
)

// ANSI styles. Each is closed by its own reset so nesting stays readable.
const (
	ansiBold      = "\x1b[1m"
	ansiDim       = "\x1b[2m"
	ansiItalic    = "\x1b[3m"
	ansiUnderline = "\x1b[4m"
	ansiStrike    = "\x1b[9m"
	ansiNoBoldDim = "\x1b[22m"
	ansiNoItalic  = "\x1b[23m"
	ansiNoUnder   = "\x1b[24m"
	ansiNoStrike  = "\x1b[29m"
)

// Render turns a message the bot made Slack show into terminal text: a
// header line saying who sees it ("[only you]", "[#general] msg 1",
// "(edited)"), then the blocks, indented. It is a pure function of m and o.
func Render(m bottest.Message, o RenderOptions) Rendered {
	if o.Width <= 0 {
		o.Width = defaultWidth
	}
	r := &renderer{o: o, indent: len(bodyIndent)}
	indent := bodyIndent
	head := r.header(m)
	if m.ThreadTS != "" && m.ThreadTS != m.TS && !isEphemeral(m) {
		head = bodyIndent + "↳ " + head
		indent = threadIndent
		r.indent = len(threadIndent)
	}
	var b strings.Builder
	b.WriteString(head)
	b.WriteByte('\n')
	if m.DeleteOriginal {
		b.WriteString(indent + r.dim("(message removed)") + "\n")
		return Rendered{Text: b.String()}
	}
	var lines []string
	blocks, ok := parseBlocks(m.Blocks)
	if ok && len(blocks) > 0 {
		lines = r.blocks(blocks)
	} else {
		lines = r.wrap(r.mrkdwn(m.Text, false))
	}
	for _, l := range lines {
		if l == "" {
			b.WriteByte('\n')
			continue
		}
		b.WriteString(indent + l + "\n")
	}
	return Rendered{Text: b.String(), Buttons: r.buttons, Links: r.links}
}

type renderer struct {
	o       RenderOptions
	indent  int // columns before each body line
	buttons []Button
	links   []Button
}

// isEphemeral reports whether only one person sees m.
func isEphemeral(m bottest.Message) bool {
	switch m.Kind {
	case bottest.KindEphemeral:
		return true
	case bottest.KindResponseURL, bottest.KindAck:
		return m.ResponseType != "in_channel"
	}
	return false
}

// header says who sees the message and which message it is.
func (r *renderer) header(m bottest.Message) string {
	var h string
	switch {
	case isEphemeral(m):
		if m.User == "" || m.User == r.o.Viewer {
			h = "[only you]"
		} else {
			h = "[only @" + r.userName(m.User) + "]"
		}
		if m.ReplaceOriginal || m.DeleteOriginal {
			h += " (edited)"
		}
	default:
		h = "[" + r.where(m.Channel) + "]"
		ref := ""
		if m.TS != "" {
			ref = r.ref(m.Channel, m.TS)
		}
		if m.ThreadTS != "" && m.ThreadTS != m.TS {
			h += " reply in the thread of " + r.ref(m.Channel, m.ThreadTS)
		} else if ref != "" {
			h += " " + ref
		}
		if m.Kind == bottest.KindUpdate || m.ReplaceOriginal || m.DeleteOriginal {
			h += " (edited)"
		}
	}
	return r.bold(h)
}

// where is "#general", or "DM with @ana" for a direct message.
func (r *renderer) where(channel string) string {
	name := ""
	if r.o.ChannelName != nil {
		name = r.o.ChannelName(channel)
	}
	switch {
	case strings.HasPrefix(name, "@"):
		return "DM with " + name
	case name != "":
		return "#" + name
	case strings.HasPrefix(channel, "D"):
		return "DM " + channel
	}
	return "#" + channel
}

func (r *renderer) ref(channel, ts string) string {
	if r.o.Ref != nil {
		if s := r.o.Ref(channel, ts); s != "" {
			return s
		}
	}
	return "ts " + ts
}

func (r *renderer) userName(id string) string {
	if r.o.UserName != nil {
		if n := r.o.UserName(id); n != "" {
			return n
		}
	}
	return id
}

func (r *renderer) channelName(id string) string {
	if r.o.ChannelName != nil {
		if n := r.o.ChannelName(id); n != "" {
			return strings.TrimPrefix(n, "#")
		}
	}
	return id
}

// --- blocks ------------------------------------------------------------------

// block is the part of a Block Kit block the renderer reads.
type block struct {
	Type      string          `json:"type"`
	BlockID   string          `json:"block_id"`
	Text      *textObject     `json:"text"`
	Fields    []textObject    `json:"fields"`
	Accessory json.RawMessage `json:"accessory"`
	Elements  json.RawMessage `json:"elements"`
	AltText   string          `json:"alt_text"`
	Title     *textObject     `json:"title"`
}

type textObject struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// contextElement is a text object or an image: its "text" is a string.
type contextElement struct {
	Type    string          `json:"type"`
	Text    json.RawMessage `json:"text"`
	AltText string          `json:"alt_text"`
}

type element struct {
	Type        string      `json:"type"`
	Text        *textObject `json:"text"`
	ActionID    string      `json:"action_id"`
	Value       string      `json:"value"`
	URL         string      `json:"url"`
	AltText     string      `json:"alt_text"`
	Placeholder *textObject `json:"placeholder"`
}

// parseBlocks splits a blocks array; each block is decoded on its own, so
// one the renderer cannot read does not hide the others.
func parseBlocks(raw json.RawMessage) ([]json.RawMessage, bool) {
	if len(raw) == 0 {
		return nil, false
	}
	var bs []json.RawMessage
	if err := json.Unmarshal(raw, &bs); err != nil {
		return nil, false
	}
	return bs, true
}

func (r *renderer) blocks(bs []json.RawMessage) []string {
	var out []string
	for _, raw := range bs {
		var b block
		if err := json.Unmarshal(raw, &b); err != nil {
			out = append(out, r.rawBlock(raw)...)
			continue
		}
		out = append(out, r.block(b, raw)...)
	}
	return out
}

// rawBlock shows what text a block has when it does not have the shape
// the renderer expects (a "markdown" block's text is a plain string).
func (r *renderer) rawBlock(raw json.RawMessage) []string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return []string{r.dim("[unreadable block]")}
	}
	m, _ := v.(map[string]any)
	typ, _ := m["type"].(string)
	if t, ok := m["text"].(string); ok && typ == "markdown" {
		return r.wrap(r.mrkdwn(t, false))
	}
	if t := strings.TrimSpace(collectText(v)); t != "" {
		return r.wrap(t)
	}
	return []string{r.dim("[" + typ + " block]")}
}

func (r *renderer) block(b block, raw json.RawMessage) []string {
	switch b.Type {
	case "header":
		if b.Text == nil {
			return nil
		}
		t := r.text(*b.Text, false)
		if r.o.Color {
			return []string{ansiBold + ansiUnderline + t + ansiNoUnder + ansiNoBoldDim}
		}
		return []string{t, strings.Repeat("─", min(visibleLen(t), r.o.Width-r.indent))}
	case "section":
		var out []string
		if b.Text != nil {
			out = append(out, r.wrap(r.text(*b.Text, false))...)
		}
		for _, f := range b.Fields {
			out = append(out, r.field(f)...)
		}
		if len(b.Accessory) > 0 {
			var el element
			if json.Unmarshal(b.Accessory, &el) == nil {
				if s := r.element(el, b.BlockID); s != "" {
					out = append(out, s)
				}
			}
		}
		return out
	case "context":
		var els []contextElement
		_ = json.Unmarshal(b.Elements, &els)
		var parts []string
		for _, el := range els {
			if el.Type == "image" {
				parts = append(parts, "[image: "+el.AltText+"]")
				continue
			}
			var t string
			if json.Unmarshal(el.Text, &t) == nil {
				parts = append(parts, r.text(textObject{Type: el.Type, Text: t}, true))
			}
		}
		if len(parts) == 0 {
			return nil
		}
		line := strings.Join(parts, "  ")
		if !r.o.Color {
			line = "(" + line + ")"
		}
		return r.dimLines(r.wrap(line))
	case "actions":
		var raws []json.RawMessage
		_ = json.Unmarshal(b.Elements, &raws)
		var parts []string
		for _, raw := range raws {
			var el element
			if json.Unmarshal(raw, &el) != nil {
				continue
			}
			if s := r.element(el, b.BlockID); s != "" {
				parts = append(parts, s)
			}
		}
		if len(parts) == 0 {
			return nil
		}
		return []string{strings.Join(parts, "  ")}
	case "divider":
		return []string{r.dim(strings.Repeat("─", min(maxRule, r.o.Width-r.indent)))}
	case "image":
		alt := b.AltText
		if b.Title != nil && b.Title.Text != "" {
			alt = b.Title.Text
		}
		return []string{"[image: " + alt + "]"}
	}
	return r.rawBlock(raw)
}

// field is a section field: "*Label*\nvalue" becomes "Label: value".
func (r *renderer) field(f textObject) []string {
	label, value, ok := strings.Cut(f.Text, "\n")
	if !ok {
		return r.wrap(r.text(f, false))
	}
	l := r.text(textObject{Type: f.Type, Text: label}, false)
	v := r.text(textObject{Type: f.Type, Text: value}, false)
	lines := strings.Split(v, "\n")
	out := r.wrap(l + ": " + lines[0])
	for _, more := range lines[1:] {
		out = append(out, r.wrap("  "+more)...)
	}
	return out
}

// element renders one interactive element, numbering action buttons.
func (r *renderer) element(el element, blockID string) string {
	label := ""
	if el.Text != nil {
		label = r.text(*el.Text, false)
	}
	switch el.Type {
	case "button":
		b := Button{Label: label, ActionID: el.ActionID, BlockID: blockID, Value: el.Value, URL: el.URL}
		if el.URL != "" {
			r.links = append(r.links, b)
			return "[" + label + " ↗ " + el.URL + "]"
		}
		b.Number = len(r.buttons) + 1
		r.buttons = append(r.buttons, b)
		return r.bold(fmt.Sprintf("[%d]", b.Number)) + " " + label
	case "image":
		return "[image: " + el.AltText + "]"
	}
	ph := ""
	if el.Placeholder != nil {
		ph = ": " + el.Placeholder.Text
	}
	return r.dim("[" + el.Type + ph + " — not supported here]")
}

// collectText gathers every "text" string of a rich_text tree, in order.
func collectText(v any) string {
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			if s, ok := t["text"].(string); ok {
				b.WriteString(s)
			}
			if els, ok := t["elements"]; ok {
				walk(els)
			}
		case []any:
			for _, e := range t {
				walk(e)
			}
		}
	}
	walk(v)
	return b.String()
}

// text renders a text object; inContext drops bold (the line is dim).
func (r *renderer) text(t textObject, inContext bool) string {
	if t.Type == "plain_text" {
		return replaceEmoji(t.Text)
	}
	return r.mrkdwn(t.Text, inContext)
}

// --- styles and wrapping -----------------------------------------------------

func (r *renderer) bold(s string) string {
	if !r.o.Color {
		return s
	}
	return ansiBold + s + ansiNoBoldDim
}

func (r *renderer) dim(s string) string {
	if !r.o.Color {
		return s
	}
	return ansiDim + s + ansiNoBoldDim
}

func (r *renderer) dimLines(lines []string) []string {
	for i, l := range lines {
		lines[i] = r.dim(l)
	}
	return lines
}

var ansiRE = regexp.MustCompile("\x1b\\[[0-9;]*m")

// visibleLen is how many columns a terminal gives s: ANSI codes take
// none, emoji two. It knows the emoji this bot uses rather than all of
// Unicode's width tables; an unknown wide character only makes a line
// wrap a column late.
func visibleLen(s string) int {
	n := 0
	prev := rune(0)
	for _, r := range ansiRE.ReplaceAllString(s, "") {
		switch {
		case r == 0xFE0F: // emoji presentation: the character before is wide
			if prev != 0 && !wide(prev) {
				n++
			}
		case r == 0x200D || unicode.Is(unicode.Mn, r):
		case wide(r):
			n += 2
		default:
			n++
		}
		prev = r
	}
	return n
}

// wide reports whether r is shown two columns wide: pictographs, and the
// older symbols that have emoji presentation by default (✅ ❌ ⏳ ⌛ ⛔ …).
func wide(r rune) bool {
	switch {
	case r >= 0x1F000 && r <= 0x1FAFF:
		return true
	case r >= 0x23E9 && r <= 0x23EC, r == 0x23F0, r == 0x23F3, r == 0x231A, r == 0x231B:
		return true
	case r == 0x2705, r == 0x270A, r == 0x270B, r == 0x2728, r == 0x274C, r == 0x274E, r >= 0x2753 && r <= 0x2755, r == 0x2757:
		return true
	case r == 0x26AA, r == 0x26AB, r == 0x26D4, r == 0x26A1, r == 0x2B50, r == 0x2B55, r == 0x2614, r == 0x2615:
		return true
	}
	return false
}

// wrap splits text into lines and wraps each at the width left after the
// body's indent, at spaces; a word longer than a line (a URL) is kept
// whole. Continuation lines keep the line's own leading spaces.
func (r *renderer) wrap(text string) []string {
	width := r.o.Width - r.indent
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if width <= 10 || visibleLen(line) <= width {
			out = append(out, line)
			continue
		}
		lead := line[:len(line)-len(strings.TrimLeft(line, " "))]
		words := strings.Split(strings.TrimLeft(line, " "), " ")
		cur, n := lead, len(lead)
		for _, w := range words {
			wl := visibleLen(w)
			if n > len(lead) && n+1+wl > width {
				out = append(out, cur)
				cur, n = lead+"  ", len(lead)+2
			}
			if n > len(lead) && !strings.HasSuffix(cur, " ") {
				cur += " "
				n++
			}
			cur += w
			n += wl
		}
		out = append(out, cur)
	}
	return out
}

// --- mrkdwn ------------------------------------------------------------------

// placeholder runes stand for already-rendered <…> tokens while emphasis
// and emoji are processed, so a URL's underscores are never read as
// italics. They come from a Private Use Area Slack text never contains.
const placeholderBase = 0xF0000

var entityUnescaper = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

// mrkdwn renders Slack mrkdwn as terminal text: mentions by name, links as
// "label (url)", dates by their fallback, emoji shortcodes as emoji,
// emphasis as ANSI (or dropped), entities unescaped. Code spans keep their
// backticks and are left alone inside.
func (r *renderer) mrkdwn(s string, inContext bool) string {
	var out strings.Builder
	for s != "" {
		i := strings.IndexByte(s, '`')
		if i < 0 {
			out.WriteString(r.prose(s, inContext))
			break
		}
		out.WriteString(r.prose(s[:i], inContext))
		s = s[i:]
		fence := "`"
		if strings.HasPrefix(s, "```") {
			fence = "```"
		}
		j := strings.Index(s[len(fence):], fence)
		if j < 0 {
			out.WriteString(r.prose(s, inContext))
			break
		}
		code := s[:len(fence)+j+len(fence)]
		out.WriteString(entityUnescaper.Replace(code))
		s = s[len(code):]
	}
	return out.String()
}

// prose is mrkdwn outside code spans.
func (r *renderer) prose(s string, inContext bool) string {
	var tokens []string
	var b strings.Builder
	for s != "" {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(s)
			break
		}
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		b.WriteRune(rune(placeholderBase + len(tokens)))
		tokens = append(tokens, r.token(s[i+1:i+j]))
		s = s[i+j+1:]
	}
	t := replaceEmoji(b.String())
	if inContext {
		t = emphasis(t, '*', "", "")
	} else {
		t = emphasis(t, '*', r.style(ansiBold), r.style(ansiNoBoldDim))
	}
	t = emphasis(t, '_', r.style(ansiItalic), r.style(ansiNoItalic))
	t = emphasis(t, '~', r.style(ansiStrike), r.style(ansiNoStrike))
	t = entityUnescaper.Replace(t)
	return expandTokens(t, tokens)
}

func (r *renderer) style(code string) string {
	if !r.o.Color {
		return ""
	}
	return code
}

func expandTokens(s string, tokens []string) string {
	if len(tokens) == 0 {
		return s
	}
	var b strings.Builder
	for _, c := range s {
		if n := int(c) - placeholderBase; n >= 0 && n < len(tokens) {
			b.WriteString(tokens[n])
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// token renders the inside of <…>: a mention, a channel, a special
// mention, a date, or a link.
func (r *renderer) token(t string) string {
	body, label, hasLabel := strings.Cut(t, "|")
	label = entityUnescaper.Replace(label)
	switch {
	case strings.HasPrefix(body, "@"):
		if hasLabel && label != "" {
			return "@" + strings.TrimPrefix(label, "@")
		}
		return "@" + r.userName(body[1:])
	case strings.HasPrefix(body, "#"):
		if hasLabel && label != "" {
			return "#" + label
		}
		return "#" + r.channelName(body[1:])
	case strings.HasPrefix(body, "!date^"):
		if hasLabel {
			return label
		}
		return body
	case strings.HasPrefix(body, "!subteam^"):
		if hasLabel && label != "" {
			return label
		}
		return "@" + strings.TrimPrefix(body, "!subteam^")
	case strings.HasPrefix(body, "!"):
		if hasLabel && label != "" {
			return label
		}
		return "@" + body[1:]
	}
	url := entityUnescaper.Replace(body)
	if !hasLabel || label == "" || label == url {
		return url
	}
	return label + " (" + url + ")"
}

// emphasis replaces marker-delimited spans (*bold*, _italic_, ~strike~)
// the way Slack finds them: the opening marker starts a word, the closing
// one ends a word, both on one line. Anything else is left as typed, so
// snake_case and 2*3*4 survive.
func emphasis(s string, marker byte, open, close string) string {
	if strings.IndexByte(s, marker) < 0 {
		return s
	}
	var b strings.Builder
	i := 0
	for i < len(s) {
		if s[i] != marker || !opens(s, i) {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := closing(s, i, marker)
		if j < 0 {
			b.WriteByte(s[i])
			i++
			continue
		}
		b.WriteString(open)
		b.WriteString(s[i+1 : j])
		b.WriteString(close)
		i = j + 1
	}
	return b.String()
}

// opens reports whether the marker at i can open a span: at the start or
// after a non-word character, and followed by a non-space.
func opens(s string, i int) bool {
	if i+1 >= len(s) || s[i+1] == ' ' || s[i+1] == '\n' || s[i+1] == s[i] {
		return false
	}
	if i == 0 {
		return true
	}
	prev, _ := utf8.DecodeLastRuneInString(s[:i])
	return !isWord(prev)
}

// closing finds the marker that closes the span opened at i, on the same
// line, or -1.
func closing(s string, i int, marker byte) int {
	for j := i + 2; j < len(s); j++ {
		switch s[j] {
		case '\n':
			return -1
		case marker:
			if s[j-1] == ' ' {
				continue
			}
			if j+1 < len(s) {
				next, _ := utf8.DecodeRuneInString(s[j+1:])
				if isWord(next) {
					continue
				}
			}
			return j
		}
	}
	return -1
}

func isWord(c rune) bool { return unicode.IsLetter(c) || unicode.IsDigit(c) }

var shortcodeRE = regexp.MustCompile(`:([a-z0-9_+'-]+):`)

// replaceEmoji turns the shortcodes the bot uses into emoji; unknown ones
// stay as typed (":name:"), which is also how Slack shows an unknown one.
func replaceEmoji(s string) string {
	if strings.IndexByte(s, ':') < 0 {
		return s
	}
	return shortcodeRE.ReplaceAllStringFunc(s, func(code string) string {
		if e, ok := emojiFor(code[1 : len(code)-1]); ok {
			return e
		}
		return code
	})
}

// emojiFor maps the shortcodes the bot's messages use (and a few common
// ones) to their characters.
func emojiFor(name string) (string, bool) {
	switch name {
	case "white_check_mark":
		return "✅", true
	case "heavy_check_mark":
		return "✔️", true
	case "x":
		return "❌", true
	case "rocket":
		return "🚀", true
	case "hourglass_flowing_sand":
		return "⏳", true
	case "hourglass":
		return "⌛", true
	case "warning":
		return "⚠️", true
	case "lock":
		return "🔒", true
	case "unlock":
		return "🔓", true
	case "large_green_circle":
		return "🟢", true
	case "large_yellow_circle":
		return "🟡", true
	case "red_circle":
		return "🔴", true
	case "white_circle":
		return "⚪", true
	case "black_square_for_stop":
		return "⏹", true
	case "double_vertical_bar":
		return "⏸", true
	case "bell":
		return "🔔", true
	case "no_bell":
		return "🔕", true
	case "mag":
		return "🔍", true
	case "no_entry":
		return "⛔", true
	case "no_entry_sign":
		return "🚫", true
	case "octagonal_sign":
		return "🛑", true
	case "wave":
		return "👋", true
	case "raised_hand":
		return "✋", true
	case "link":
		return "🔗", true
	case "information_source":
		return "ℹ️", true
	case "grey_question":
		return "❔", true
	case "question":
		return "❓", true
	case "twisted_rightwards_arrows":
		return "🔀", true
	case "leftwards_arrow_with_hook":
		return "↩️", true
	case "zzz":
		return "💤", true
	case "traffic_light":
		return "🚥", true
	case "scroll":
		return "📜", true
	case "ice_cube":
		return "🧊", true
	case "hammer":
		return "🔨", true
	case "desktop_computer":
		return "🖥️", true
	case "construction":
		return "🚧", true
	case "cloud":
		return "☁️", true
	case "bust_in_silhouette":
		return "👤", true
	case "tada":
		return "🎉", true
	case "eyes":
		return "👀", true
	}
	return "", false
}
