package app_test

import (
	"regexp"
	"testing"
)

// What will ship: a production deploy of a stack on GitHub shows, in its
// confirmation, what is live as a link to its commit and the comparison
// with what will ship; the card then links the commit it deployed and
// what changed since. No GitHub token is involved: they are links.
func TestE2EConfirmationAndCardLinkWhatWillShip(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	_, confirm := h.run("U0ANA", "C0GENERAL", "deploy shop:production@v2.1")
	compare := regexp.MustCompile(`\*What will ship\*\n<https://github\.com/acme/shop/compare/[0-9a-f]{40}\.\.\.v2\.1\|[0-9a-f]{7}…v2\.1>`)
	live := regexp.MustCompile(`\*Live now\*\n<https://github\.com/acme/shop/commit/[0-9a-f]{40}\|[0-9a-f]{7}>`)
	for _, re := range []*regexp.Regexp{compare, live} {
		if !re.MatchString(text(confirm)) {
			t.Errorf("confirmation lacks %s:\n%s", re, text(confirm))
		}
	}
	h.click("U0ANA", confirm, "deploy_confirm")
	card := h.card("C0GENERAL", "shop")
	final := h.waitCard("C0GENERAL", card.TS, "Deployed")
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`\*Git hash\*\n<https://github\.com/acme/shop/commit/[0-9a-f]{40}\|[0-9a-f]{7}>`),
		regexp.MustCompile(`\*Changes\*\n<https://github\.com/acme/shop/compare/[0-9a-f]{40}\.\.\.[0-9a-f]{40}\|[0-9a-f]{7}…[0-9a-f]{7}>`),
	} {
		if !re.MatchString(text(final)) {
			t.Errorf("final card lacks %s:\n%s", re, text(final))
		}
	}
}
