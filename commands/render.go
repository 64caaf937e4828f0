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
	var (
		blocks []slack.Block
		cur    strings.Builder
	)
	flush := func() {
		if cur.Len() > 0 {
			blocks = append(blocks, bk.Section(cur.String()))
			cur.Reset()
		}
	}
	for i, l := range lines {
		if cur.Len()+len(l)+1 > bk.MaxSectionText {
			flush()
		}
		if len(blocks) >= budget-1 && cur.Len() == 0 {
			blocks = append(blocks, bk.Context(more(len(lines)-i)))
			return blocks
		}
		if cur.Len() > 0 {
			cur.WriteByte('\n')
		}
		cur.WriteString(l)
	}
	flush()
	return blocks
}

// lockHolder is who holds a lock, since when and why: "<@U1> 2 h ago:
// release freeze", as `locks` and `stack` show it.
func lockHolder(l storage.Lock, now time.Time) string {
	return "<@" + bk.Esc(l.Owner.User) + "> " + bk.Ago(now, l.Since) + lockUntil(l) + reasonSuffix(l.Reason)
}
