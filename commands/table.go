package commands

import (
	"fmt"
	"strings"

	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/chat"
)

// table is the command table: the commands in help order, found by name or
// alias, and the interactions their messages carry, found by action id.
// Both panic on a duplicate when built, so a clash is caught by any test.
type table struct {
	// slash is the slash command, e.g. "/c66".
	slash        string
	commands     []*Command
	byName       map[string]*Command
	interactions map[interactionKey]*Interaction
}

// interactionKey finds an Interaction: what Slack sent, and the id it
// carries (a button and a modal may share an id without clashing).
type interactionKey struct {
	kind InteractionKind
	id   string
}

func newTable(slash string) *table {
	return &table{slash: slash, byName: map[string]*Command{}, interactions: map[interactionKey]*Interaction{}}
}

// add registers c under its name and aliases, and the interactions it
// renders under their action ids.
func (t *table) add(c *Command) {
	t.commands = append(t.commands, c)
	for _, n := range append([]string{c.Name}, c.Aliases...) {
		if _, dup := t.byName[n]; dup {
			panic("commands: duplicate command name " + n)
		}
		t.byName[n] = c
	}
	for _, in := range c.Interactions {
		k := interactionKey{in.Kind, in.ActionID}
		if _, dup := t.interactions[k]; dup {
			panic("commands: duplicate action id " + in.ActionID)
		}
		t.interactions[k] = in
	}
}

// lookup finds a command by name or alias (case-insensitive).
func (t *table) lookup(name string) (*Command, bool) {
	c, ok := t.byName[strings.ToLower(name)]
	return c, ok
}

// interaction finds what handles the button with this action id.
func (t *table) interaction(actionID string) (*Interaction, bool) {
	return t.interactionOf(KindButton, actionID)
}

// interactionOf finds what handles this kind of interaction with this id.
func (t *table) interactionOf(kind InteractionKind, id string) (*Interaction, bool) {
	in, ok := t.interactions[interactionKey{kind, id}]
	return in, ok
}

// usage is the one-line usage of a command, e.g. "/c66 servers <stack>".
func usage(slash string, c *Command) string {
	u := slash + " " + c.Name
	if c.Args != "" {
		u += " " + c.Args
	}
	return u
}

// usageError answers with what was wrong and how the command is used; c
// is nil for words that named no command.
func usageError(slash, problem string, c *Command) chat.Message {
	var b strings.Builder
	if problem != "" {
		b.WriteString(problem)
		b.WriteString(" ")
	}
	if c == nil {
		b.WriteString("Try `" + slash + " help`.")
		return ephemeral(strings.TrimSpace(b.String()))
	}
	b.WriteString("Usage: `" + usage(slash, c) + "`")
	if ex := examples(slash, c); len(ex) > 0 {
		b.WriteString(", for example `" + ex[0] + "`")
	}
	b.WriteString(". More: `" + slash + " help " + c.Name + "`.")
	return ephemeral(b.String())
}

// unknown answers a word that is no command with the nearest ones.
func (t *table) unknown(word string) chat.Message {
	var names []string
	for _, c := range t.commands {
		names = append(names, c.Name)
		names = append(names, c.Aliases...)
	}
	msg := fmt.Sprintf("I don't know the command `%s`.", bk.Esc(bk.Truncate(word, 40)))
	if s := suggest(strings.ToLower(word), names, 3); len(s) > 0 {
		msg += " Did you mean `" + t.slash + " " + s[0] + "`?"
	}
	var usages []string
	for _, c := range t.commands {
		usages = append(usages, c.Name)
	}
	msg += "\nCommands: " + strings.Join(usages, ", ") + ". `" + t.slash + " help` explains each."
	return ephemeral(msg)
}
