package accounts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/c66bot/c66bot/storage"
)

// people maps the Cloud 66 e-mails of linked people to their Slack
// identities, per workspace, so that "triggered by ana@example.com" can be
// shown as @ana. It lives in memory, one entry per linked person whose
// e-mail is known (bounded by the links), and is kept current by every
// read, save and delete of a link that goes through the Service; after a
// restart it fills again as people use the bot. The stored links are sealed
// one by one, so searching them per rendered line would open every link.
type people struct {
	mu      sync.Mutex
	byID    map[storage.Identity]emailKey
	byEmail map[emailKey][]storage.Identity
}

// emailKey is an e-mail within one workspace (Identity.Team), so a person
// of another workspace with the same address is never matched.
type emailKey struct{ team, email string }

func newPeople() people {
	return people{byID: map[storage.Identity]emailKey{}, byEmail: map[emailKey][]storage.Identity{}}
}

// normalEmail is the form e-mails are compared in: trimmed, lower case.
func normalEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// set records that id's Cloud 66 e-mail is email ("" for unknown).
func (p *people) set(id storage.Identity, email string) {
	k := emailKey{team: id.Team, email: normalEmail(email)}
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.byID[id]; ok {
		if old == k {
			return
		}
		p.removeLocked(id, old)
	}
	if k.email == "" {
		return
	}
	p.byID[id] = k
	p.byEmail[k] = append(p.byEmail[k], id)
}

func (p *people) forget(id storage.Identity) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.byID[id]; ok {
		p.removeLocked(id, old)
	}
}

func (p *people) removeLocked(id storage.Identity, k emailKey) {
	delete(p.byID, id)
	ids := slices.DeleteFunc(p.byEmail[k], func(x storage.Identity) bool { return x == id })
	if len(ids) == 0 {
		delete(p.byEmail, k)
		return
	}
	p.byEmail[k] = ids
}

func (p *people) known(id storage.Identity, email string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	k, ok := p.byID[id]
	return ok && k.email == normalEmail(email)
}

// PersonByEmail returns the Slack person of workspace team who linked the
// Cloud 66 account with email (case and surrounding spaces ignored). Two
// people of one workspace sharing an e-mail match neither: a mention would
// name someone who may not have done it.
func (s *Service) PersonByEmail(_ context.Context, team, email string) (storage.Identity, bool) {
	k := emailKey{team: team, email: normalEmail(email)}
	if k.team == "" || k.email == "" {
		return storage.Identity{}, false
	}
	s.people.mu.Lock()
	defer s.people.mu.Unlock()
	ids := s.people.byEmail[k]
	if len(ids) != 1 {
		return storage.Identity{}, false
	}
	return ids[0], true
}

// NoteEmail records email as id's Cloud 66 e-mail on their link. Callers
// pass it only from an answer to a call made with id's own token that names
// its user (Cloud 66 has no "who am I" endpoint). Nothing is written when
// it is already known, and a person without a link gets none.
func (s *Service) NoteEmail(ctx context.Context, id storage.Identity, email string) error {
	email = strings.TrimSpace(email)
	if email == "" || !strings.Contains(email, "@") || s.people.known(id, email) {
		return nil
	}
	err := s.cfg.Links.SetEmail(ctx, id, email)
	if errors.Is(err, storage.ErrNotFound) {
		return ErrNotLinked
	}
	if err != nil {
		return fmt.Errorf("accounts: note e-mail: %w", err)
	}
	s.people.set(id, email)
	return nil
}
