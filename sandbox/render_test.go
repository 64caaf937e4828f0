package sandbox

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/c66bot/c66bot/bot/bottest"
)

// testOptions show the fake workspace by name, as the sandbox does.
func testOptions() RenderOptions {
	users := map[string]string{"U0ANA": "ana", "U0BEN": "ben"}
	chans := map[string]string{"C0GENERAL": "general", "C0PRIVBOT": "ops", "D0ANA": "@ana"}
	refs := map[string]string{"C0GENERAL/1700000000.000100": "msg 1"}
	return RenderOptions{
		Viewer:      "U0ANA",
		UserName:    func(id string) string { return users[id] },
		ChannelName: func(id string) string { return chans[id] },
		Ref:         func(channel, ts string) string { return refs[channel+"/"+ts] },
	}
}

func blocks(t *testing.T, bs ...map[string]any) json.RawMessage {
	t.Helper()
	raw, err := json.Marshal(bs)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func section(text string) map[string]any {
	return map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": text}}
}

func fields(fs ...string) map[string]any {
	var objs []map[string]any
	for _, f := range fs {
		objs = append(objs, map[string]any{"type": "mrkdwn", "text": f})
	}
	return map[string]any{"type": "section", "fields": objs}
}

func context_(text string) map[string]any {
	return map[string]any{"type": "context", "elements": []map[string]any{{"type": "mrkdwn", "text": text}}}
}

func button(actionID, value, label, url string) map[string]any {
	b := map[string]any{"type": "button", "action_id": actionID, "text": map[string]any{"type": "plain_text", "text": label, "emoji": true}}
	if value != "" {
		b["value"] = value
	}
	if url != "" {
		b["url"] = url
	}
	return b
}

func actions(blockID string, els ...map[string]any) map[string]any {
	return map[string]any{"type": "actions", "block_id": blockID, "elements": els}
}

func TestRender(t *testing.T) {
	t.Parallel()
	const ts = "1700000000.000100"
	tests := []struct {
		name    string
		msg     bottest.Message
		want    string
		buttons []string // "n label action value"
		links   []string
	}{
		{
			name: "confirmation: ephemeral, fields, numbered buttons, date",
			msg: bottest.Message{Kind: bottest.KindResponseURL, Channel: "C0GENERAL", User: "U0ANA", ResponseType: "ephemeral", Blocks: blocks(t,
				section(":warning: Deploy *shop* · production? This stack needs your confirmation."),
				fields("*Ref to ship*\n`v2.1`", "*Live now*\n`0b367cb` (`main`)"),
				actions("deploy_confirm", button("deploy_confirm", "in1", "Deploy production", ""), button("intent_abort", "in1", "Cancel", "")),
				context_("Only you can confirm. This expires <!date^1763921100^{time}|2025-11-23 18:05 UTC>."),
			)},
			want: `[only you]
  ⚠️ Deploy shop · production? This stack needs your confirmation.
  Ref to ship: ` + "`v2.1`" + `
  Live now: ` + "`0b367cb` (`main`)" + `
  [1] Deploy production  [2] Cancel
  (Only you can confirm. This expires 2025-11-23 18:05 UTC.)
`,
			buttons: []string{"1 Deploy production deploy_confirm in1 deploy_confirm", "2 Cancel intent_abort in1 deploy_confirm"},
		},
		{
			name: "someone else's ephemeral, replaced",
			msg:  bottest.Message{Kind: bottest.KindResponseURL, Channel: "C0GENERAL", User: "U0BEN", ReplaceOriginal: true, Text: ":white_check_mark: Linked to Cloud 66 account *Acme* (5 stacks visible)."},
			want: "[only @ben] (edited)\n  ✅ Linked to Cloud 66 account Acme (5 stacks visible).\n",
		},
		{
			name: "chat.postEphemeral",
			msg:  bottest.Message{Kind: bottest.KindEphemeral, Channel: "C0GENERAL", User: "U0ANA", TS: ts, Text: "psst"},
			want: "[only you]\n  psst\n",
		},
		{
			name: "channel post with mentions, link and header",
			msg: bottest.Message{Kind: bottest.KindPost, Channel: "C0GENERAL", TS: ts, Blocks: blocks(t,
				map[string]any{"type": "header", "text": map[string]any{"type": "plain_text", "text": "Stacks (2) :rocket:"}},
				section("<@U0ANA> asked <@U0ZED> and <@U0BEN|benny> in <#C0PRIVBOT> and <#C0NEW|new-one>; <!here> <!subteam^S0OPS|@ops> <!channel>"),
				map[string]any{"type": "divider"},
				context_("Cloud 66 action 7 · <http://c66.test/stacks/a_b_c?x=1&amp;y=2|Open in Cloud 66> · <https://bare.example/a_b>"),
			)},
			want: `[#general] msg 1
  Stacks (2) 🚀
  ─────────────
  @ana asked @U0ZED and @benny in #ops and #new-one; @here @ops @channel
  ────────────────────────────────────────
  (Cloud 66 action 7 · Open in Cloud 66 (http://c66.test/stacks/a_b_c?x=1&y=2) ·
    https://bare.example/a_b)
`,
		},
		{
			name: "edit of a channel message",
			msg:  bottest.Message{Kind: bottest.KindUpdate, Channel: "C0GENERAL", TS: ts, Text: "✅ shop · production deployed v2.1", Blocks: blocks(t, section("✅ *Deployed* — *shop* · production"), fields("*Requested by*\n<@U0ANA>", "*Ref*\n_branch default_"))},
			want: "[#general] msg 1 (edited)\n  ✅ Deployed — shop · production\n  Requested by: @ana\n  Ref: branch default\n",
		},
		{
			name: "thread reply",
			msg:  bottest.Message{Kind: bottest.KindPost, Channel: "C0GENERAL", TS: "1700000000.000200", ThreadTS: ts, Blocks: blocks(t, section("<@U0ANA> Cloud 66: Build failed &lt;!channel&gt;"))},
			want: "  ↳ [#general] reply in the thread of msg 1\n    @ana Cloud 66: Build failed <!channel>\n",
		},
		{
			name: "in-channel response_url reply",
			msg:  bottest.Message{Kind: bottest.KindResponseURL, Channel: "C0GENERAL", User: "U0ANA", ResponseType: "in_channel", TS: "1700000000.000300", Text: ":lock: <@U0ANA> locked *shop* · staging: release freeze"},
			want: "[#general] ts 1700000000.000300\n  🔒 @ana locked shop · staging: release freeze\n",
		},
		{
			name: "DM",
			msg:  bottest.Message{Kind: bottest.KindPost, Channel: "D0ANA", TS: "1700000000.000400", Text: ":unlock: <@U0BEN> removed your lock"},
			want: "[DM with @ana] ts 1700000000.000400\n  🔓 @ben removed your lock\n",
		},
		{
			name: "emoji, escaping, emphasis and code",
			msg: bottest.Message{Kind: bottest.KindResponseURL, Channel: "C0GENERAL", User: "U0ANA", Text: ":white_check_mark: :x: :rocket: :hourglass_flowing_sand: :large_green_circle: :large_yellow_circle: :red_circle: :black_square_for_stop: :bell: :no_bell: :lock: :unlock: :made_up: at 12:30:45\n" +
				"*bold* _italic_ ~struck~ snake_case_name 2*3*4 a * b\n" +
				"`code *not bold* :x: &lt;tag&gt;` &amp; &lt;b&gt; ```block _x_```"},
			want: "[only you]\n  ✅ ❌ 🚀 ⏳ 🟢 🟡 🔴 ⏹ 🔔 🔕 🔒 🔓 :made_up: at 12:30:45\n" +
				"  bold italic struck snake_case_name 2*3*4 a * b\n" +
				"  `code *not bold* :x: <tag>` & <b> ```block _x_```\n",
		},
		{
			name:  "link button and accessory button",
			msg:   bottest.Message{Kind: bottest.KindResponseURL, Channel: "C0GENERAL", User: "U0ANA", Blocks: blocks(t, map[string]any{"type": "section", "block_id": "b1", "text": map[string]any{"type": "mrkdwn", "text": ":link: Link your account."}, "accessory": button("more", "v", "More", "")}, actions("login", button("login_open", "", "Link Cloud 66 account", "http://127.0.0.1:1/oauth/start?state=s")))},
			want:  "[only you]\n  🔗 Link your account.\n  [1] More\n  [Link Cloud 66 account ↗ http://127.0.0.1:1/oauth/start?state=s]\n",
			links: []string{"Link Cloud 66 account http://127.0.0.1:1/oauth/start?state=s"},
			buttons: []string{
				"1 More more v b1",
			},
		},
		{
			name: "deleted",
			msg:  bottest.Message{Kind: bottest.KindResponseURL, Channel: "C0GENERAL", User: "U0ANA", DeleteOriginal: true},
			want: "[only you] (edited)\n  (message removed)\n",
		},
		{
			name: "unknown blocks are named, not dropped",
			msg: bottest.Message{Kind: bottest.KindResponseURL, Channel: "C0GENERAL", User: "U0ANA", Blocks: blocks(t,
				map[string]any{"type": "video"},
				map[string]any{"type": "image", "alt_text": "a graph"},
				map[string]any{"type": "markdown", "text": "*md* block"},
				map[string]any{"type": "rich_text", "elements": []any{map[string]any{"type": "rich_text_section", "elements": []any{map[string]any{"type": "text", "text": "rich "}, map[string]any{"type": "text", "text": "text"}}}}},
			)},
			want: "[only you]\n  [video block]\n  [image: a graph]\n  md block\n  rich text\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Render(tc.msg, testOptions())
			if got.Text != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got.Text, tc.want)
			}
			if strings.Contains(got.Text, "\x1b") {
				t.Error("ANSI codes without Color")
			}
			var bs []string
			for _, b := range got.Buttons {
				bs = append(bs, strings.Join([]string{strconv.Itoa(b.Number), b.Label, b.ActionID, b.Value, b.BlockID}, " "))
			}
			if strings.Join(bs, "|") != strings.Join(tc.buttons, "|") {
				t.Errorf("buttons = %q, want %q", bs, tc.buttons)
			}
			var ls []string
			for _, l := range got.Links {
				ls = append(ls, l.Label+" "+l.URL)
			}
			if strings.Join(ls, "|") != strings.Join(tc.links, "|") {
				t.Errorf("links = %q, want %q", ls, tc.links)
			}
		})
	}
}

func TestRenderColor(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.Color = true
	m := bottest.Message{Kind: bottest.KindPost, Channel: "C0GENERAL", TS: "1700000000.000100", Blocks: blocks(t,
		map[string]any{"type": "header", "text": map[string]any{"type": "plain_text", "text": "Stacks (36)"}},
		section("*shop* · _staging_"),
		context_("*not bold* here"),
	)}
	got := Render(m, o).Text
	for _, want := range []string{
		ansiBold + "[#general] msg 1" + ansiNoBoldDim,
		ansiBold + ansiUnderline + "Stacks (36)",
		ansiBold + "shop" + ansiNoBoldDim + " · " + ansiItalic + "staging" + ansiNoItalic,
		ansiDim + "not bold here" + ansiNoBoldDim,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("lacks %q:\n%q", want, got)
		}
	}
	if strings.Contains(got, "─") {
		t.Error("a header is underlined by ANSI, not ruled, in colour")
	}
}

func TestRenderWraps(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.Width = 30
	m := bottest.Message{Kind: bottest.KindResponseURL, User: "U0ANA", Text: "one two three four five six seven eight nine ten <https://example.com/a/very/long/path/indeed|x>"}
	got := Render(m, o).Text
	want := "[only you]\n  one two three four five six\n    seven eight nine ten x\n    (https://example.com/a/very/long/path/indeed)\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
