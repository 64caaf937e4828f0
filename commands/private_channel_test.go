package commands

import (
	"testing"

	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/storage"
)

// A change whose message the bot could not post in the channel (a private
// channel it is not in) gets one answer, for every verb: where the result
// will come and how to let the bot in, never a promise to keep the channel
// posted or to follow a message that is not there.
func TestNoChannelMessageReplyForEveryVerb(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		text, started string
		verb          string
	}{
		{"deploy shop:staging", "Deployment started.", "deploy"},
		{"rollback shop:staging", "Rollback started.", "rollback"},
		{"restart shop:staging", "Restart started.", "restart"},
		{"maintenance shop:staging on", "Maintenance mode change started.", "maintenance"},
		{"reboot shop:staging group=web", "Reboot started.", "reboot"},
	} {
		t.Run(tt.verb, func(t *testing.T) {
			t.Parallel()
			d := &fakeDeployer{result: deploy.Result{Watch: &storage.Watch{Verb: tt.verb, Channel: "G0PRIVATE"}}}
			r, _ := opsRouter(t, d)
			reply := send(t, r, tt.text)
			hasAll(t, replyText(t, reply),
				[]string{":rocket: " + tt.started, "I couldn't post in <#G0PRIVATE>, so I'll send you the result here when it finishes (or in a DM if it runs long).",
					"`/invite @c66bot` lets me keep a message there up to date next time."},
				[]string{"keep this channel posted", "follow it in the channel message", "Follow it in the channel message"})
			if reply.InChannel {
				t.Error("the reply went to the channel")
			}
		})
	}
}
