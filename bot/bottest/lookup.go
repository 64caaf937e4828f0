package bottest

import (
	"slices"
	"strings"
)

// Lookups for clients that show the fake workspace to a person (the sandbox
// console renders <@U…> and <#C…> by name). They read the same tables the
// Web API answers from, so a name shown is the name users.info would give.

// ChannelInfo is a conversation as a client lists it: a channel, or a DM
// (IM set, User the person the bot talks to).
type ChannelInfo struct {
	Channel
	IM   bool
	User string
}

// LookupUser returns the user users.info would answer for id: an added
// user, or one synthesised for any plausible user ID (U… or W…).
func (s *Server) LookupUser(id string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.userLocked(id)
}

// LookupChannel returns a conversation of the fake workspace, DMs opened by
// the bot included.
func (s *Server) LookupChannel(id string) (ChannelInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[id]
	if ch == nil {
		return ChannelInfo{}, false
	}
	return ChannelInfo{Channel: ch.Channel, IM: ch.im, User: ch.user}, true
}

// Channels lists the conversations of the fake workspace, DMs included,
// ordered by ID.
func (s *Server) Channels() []ChannelInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ChannelInfo, 0, len(s.channels))
	for _, ch := range s.channels {
		out = append(out, ChannelInfo{Channel: ch.Channel, IM: ch.im, User: ch.user})
	}
	slices.SortFunc(out, func(a, b ChannelInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}
