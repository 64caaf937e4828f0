package app_test

import (
	"net/http"
	"strings"
	"testing"
)

// A reply or a post Slack refuses for its form (invalid_blocks,
// msg_too_long) arrives as plain text with a note, never dropped.
func TestE2ERefusedRepliesArriveAsPlainText(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})

	h.slack.FailNext("response_url", "invalid_blocks", 1)
	_, reply := h.run("U0ANA", "C0GENERAL", "help")
	if reply.Blocks != nil || !strings.Contains(reply.Text, "could not be shown in full") || !strings.Contains(reply.Text, "stacks") {
		t.Errorf("help after a refused reply = %q (blocks %s)", reply.Text, reply.Blocks)
	}

	h.login("U0ANA")
	h.subscribe("U0ANA", "C0GENERAL", "shop:production")
	token := h.apiToken("ci", "notify")
	h.slack.FailNext("chat.postMessage", "msg_too_long", 1)
	resp, b := post(t, h.public+"/api/v1/notify", token, []byte(`{"stack":"shop:production","event":"deploy.succeeded","text":"from CI"}`))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("notify: %d %s", resp.StatusCode, b)
	}
	posts := h.waitPosts("C0GENERAL", 1)
	if len(posts) != 1 || posts[0].Blocks != nil || !strings.Contains(posts[0].Text, "from CI") || !strings.Contains(posts[0].Text, "could not be shown in full") {
		t.Errorf("notice after a refused post = %+v", posts)
	}
}
