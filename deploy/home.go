package deploy

import "github.com/c66bot/c66bot/storage"

// HomeToucher hears that something a person's App Home shows changed: a
// watch of theirs started, moved or finished, a lock of theirs was taken or
// removed. The bot republishes their Home, debounced.
type HomeToucher interface {
	Touch(id storage.Identity)
}

// touchHome tells Config.Home, when set, that id's Home changed.
func (s *Service) touchHome(id storage.Identity) {
	if s.cfg.Home != nil && id.Valid() {
		s.cfg.Home.Touch(id)
	}
}

// MessageLink is the link to a card or request the bot posted in channel at
// ts ("" without a ts): the form BusyError's "its message" uses.
func MessageLink(channel, ts string) string { return messageLink(channel, ts) }
