package app_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/c66bot/c66bot/cloud66/cloud66test"
)

var placeholder = regexp.MustCompile(`^[a-z]+$`)

// slackTokens are the <…> of mrkdwn, as Slack finds them.
func slackTokens(s string) []string {
	var out []string
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			return out
		}
		out = append(out, s[i+1:i+j])
		s = s[i+j+1:]
	}
}

// A Cloud 66 that sends a stack whose uid is a mention and a fake "Open in
// Cloud 66" link, and a stack whose name, branch, server, deployer and
// failure message carry mentions, links and new lines: no reply, card,
// edit or thread note carries a live mention or a link to anywhere but the
// Cloud 66 dashboard and Slack, no name starts a new line of a card, and
// the thread keeps the lines of Cloud 66's message.
func TestE2ECloud66DataCannotForgeLinksOrLines(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	const hostileUID = "x|<!channel> <https://evil.example|Open in Cloud 66>"
	h.c66.AddStack(cloud66test.StackSpec{UID: hostileUID, Name: "evil", Environment: "production"})
	wiki := h.c66.AddStack(cloud66test.StackSpec{
		Name:        "wiki\n:white_check_mark: *Deployed* <!channel>",
		Environment: "staging",
		Branch:      "main\n<!here>",
		Servers:     []string{"Lion\n<https://evil.example|Open in Cloud 66>"},
		DeployedBy:  "<@U0BOSS>\n*Approved*",
	})
	h.c66.SetDeployOutcome(wiki.UID, false, "tests broke\n<!channel> <https://evil.example|Open in Cloud 66>")

	// The stack with the hostile uid is left out of every list, and said
	// to be, in the log.
	_, list := h.run("U0ANA", "C0GENERAL", "stacks")
	mustContain(t, text(list), "wiki :white_check_mark: *Deployed* &lt;!channel&gt;")
	if strings.Contains(text(list), "evil") {
		t.Errorf("the stack with a hostile uid is listed:\n%s", text(list))
	}
	_, missing := h.run("U0ANA", "C0GENERAL", "stack evil")
	mustContain(t, text(missing), "can't find a stack called `evil`")
	mustContain(t, h.logs.String(), "ignored an item of a Cloud 66 answer", "stack uid in the answer is not a Cloud 66 id")

	for _, cmd := range []string{"stack " + wiki.UID, "servers " + wiki.UID, "deployments " + wiki.UID} {
		h.run("U0ANA", "C0GENERAL", cmd)
	}
	h.run("U0ANA", "C0GENERAL", "deploy "+wiki.UID)
	card := h.card("C0GENERAL", "wiki")
	h.waitCard("C0GENERAL", card.TS, "Deployment failed")
	thread := h.waitThread("C0GENERAL", card.TS, "tests broke\n&lt;!channel&gt;")
	mustContain(t, thread, "tests broke\n&lt;!channel&gt; &lt;https://evil.example|Open in Cloud 66&gt;")

	dashboard := h.c66.URL + "/stacks/"
	checked := 0
	for _, m := range h.slack.Messages() {
		for _, s := range mrkdwnTexts(m) {
			checked++
			for _, tok := range slackTokens(s) {
				target, _, _ := strings.Cut(tok, "|")
				switch {
				case tok == "@U0ANA", strings.HasPrefix(tok, "#C0"), strings.HasPrefix(tok, "!date^"):
				case placeholder.MatchString(tok):
					// The bot's own usage words in code, such as
					// `/c66 stack <name>`: no host, no mention.
				case strings.HasPrefix(target, dashboard+wiki.UID), strings.HasPrefix(target, "https://slack.com/archives/"):
				default:
					t.Errorf("a %s message carries <%s>:\n%.500s", m.Kind, tok, s)
				}
			}
			// Only Cloud 66's message, in the thread, keeps its lines.
			if m.ThreadTS != "" && strings.Contains(s, "Cloud 66: tests broke\n") {
				continue
			}
			for _, forged := range []string{"\n:white_check_mark: *Deployed*", "\n&lt;!here&gt;", "\n*Approved*", "\n&lt;https://evil", "\n&lt;!channel&gt;"} {
				if strings.Contains(s, forged) {
					t.Errorf("a %s message has a line started by Cloud 66 data (%q):\n%.500s", m.Kind, forged, s)
				}
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d texts were checked; the scenario did not run", checked)
	}
}
