package commands

import (
	"strings"
	"time"

	"github.com/slack-go/slack"

	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"
)

// ephemeral is a reply of one section that only the person sees: an
// error, a note, the answer to a button.
func ephemeral(s string) chat.Message {
	return chat.Message{Text: bk.Fallback(s), Blocks: []slack.Block{bk.Section(s)}}
}

// listSections packs lines into as few sections as fit, leaving room for
// the blocks around them; lines that don't fit are counted in a last line.
func listSections(lines []string, budget int, more func(n int) string) []slack.Block {
	p := sectionPacker{budget: budget}
	for i, l := range lines {
		if !p.addString(l) {
			p.blocks = append(p.blocks, bk.Context(more(len(lines)-i)))
			return p.blocks
		}
	}
	p.flush()
	return p.blocks
}

// sectionPacker packs lines into sections of at most bk.MaxSectionText
// bytes, budget blocks in all, keeping the last one for the count of the
// lines that did not fit.
type sectionPacker struct {
	budget int
	blocks []slack.Block
	cur    strings.Builder
}

// add appends a line, or reports false when there is no room left for it
// (the caller then appends the count of what is left).
func (p *sectionPacker) add(l []byte) bool {
	if !p.room(len(l)) {
		return false
	}
	p.cur.Write(l)
	return true
}

// addString is add for a string.
func (p *sectionPacker) addString(l string) bool {
	if !p.room(len(l)) {
		return false
	}
	p.cur.WriteString(l)
	return true
}

// room starts a new section when a line of n bytes does not fit the
// current one, and then reports whether the budget allows it.
func (p *sectionPacker) room(n int) bool {
	if p.cur.Len()+n+1 > bk.MaxSectionText {
		p.flush()
	}
	if len(p.blocks) >= p.budget-1 && p.cur.Len() == 0 {
		return false
	}
	if p.cur.Len() > 0 {
		p.cur.WriteByte('\n')
	} else {
		p.cur.Grow(bk.MaxSectionText)
	}
	return true
}

// flush ends the current section.
func (p *sectionPacker) flush() {
	if p.cur.Len() > 0 {
		p.blocks = append(p.blocks, bk.Section(p.cur.String()))
		p.cur = strings.Builder{}
	}
}

// lockHolder is who holds a lock, since when and why: "<@U1> 2 h ago:
// release freeze", as `locks` and `stack` show it.
func lockHolder(l storage.Lock, now time.Time) string {
	return "<@" + bk.Esc(l.Owner.User) + "> " + bk.Ago(now, l.Since) + lockUntil(l) + reasonSuffix(l.Reason)
}
