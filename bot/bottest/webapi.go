package bottest

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// apiRequest is a parsed Web API request.
type apiRequest struct {
	httpMethod string
	form       url.Values
	json       json.RawMessage
	token      string
	bearer     bool
	// basicUser and basicPass are HTTP Basic credentials (an app's client
	// id and secret, for openid.connect.token).
	basicUser, basicPass string
}

// apiResult is the answer to a Web API request.
type apiResult struct {
	status     int
	body       map[string]any // nil with a 5xx: a plain text body is sent
	retryAfter int            // seconds, for 429
}

func (r apiResult) slackError() string {
	if r.body == nil {
		return ""
	}
	e, _ := r.body["error"].(string)
	return e
}

func okResult(fields map[string]any) apiResult {
	body := map[string]any{"ok": true}
	for k, v := range fields {
		body[k] = v
	}
	return apiResult{status: http.StatusOK, body: body}
}

func errResult(slackErr string) apiResult {
	return apiResult{status: http.StatusOK, body: map[string]any{"ok": false, "error": slackErr}}
}

func errResultMsgs(slackErr string, msgs []string) apiResult {
	r := errResult(slackErr)
	if len(msgs) > 0 {
		r.body["response_metadata"] = map[string]any{"messages": msgs}
	}
	return r
}

func rateLimited(retryAfter time.Duration) apiResult {
	secs := max(int(math.Ceil(retryAfter.Seconds())), 1)
	return apiResult{
		status:     http.StatusTooManyRequests,
		body:       map[string]any{"ok": false, "error": "ratelimited"},
		retryAfter: secs,
	}
}

type tokenPolicy int

const (
	botToken          tokenPolicy = iota // xoxb only; xapp → not_allowed_token_type
	botOrAppToken                        // either token
	appTokenInHeader                     // xapp as Bearer only (apps.connections.open)
	clientCredentials                    // no token: the app's client id and secret (openid.connect.token)
	userToken                            // a person's token (openid.connect.userInfo); the method checks it
)

type apiMethod struct {
	handle func(*Server, *apiRequest) apiResult
	tokens tokenPolicy
}

var apiMethods = map[string]apiMethod{
	"apps.connections.open": {(*Server).apiConnectionsOpen, appTokenInHeader},
	"auth.test":             {(*Server).apiAuthTest, botOrAppToken},
	"chat.postMessage":      {(*Server).apiPostMessage, botToken},
	"chat.update":           {(*Server).apiUpdate, botToken},
	"chat.postEphemeral":    {(*Server).apiPostEphemeral, botToken},
	"conversations.open":    {(*Server).apiConversationsOpen, botToken},
	"users.info":            {(*Server).apiUsersInfo, botToken},
	"usergroups.users.list": {(*Server).apiUserGroupUsers, botToken},
	"chat.getPermalink":     {(*Server).apiGetPermalink, botToken},
	"views.publish":         {(*Server).apiViewsPublish, botToken},
	"views.open":            {(*Server).apiViewsOpen, botToken},
	"views.update":          {(*Server).apiViewsUpdate, botToken},
	// Sign in with Slack (openid.go).
	"openid.connect.token":    {(*Server).apiOpenIDToken, clientCredentials},
	"openid.connect.userInfo": {(*Server).apiOpenIDUserInfo, userToken},
}

func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	req, parseErr := parseAPIRequest(w, r)

	s.mu.Lock()
	var res apiResult
	if parseErr != "" {
		res = errResult(parseErr)
	} else {
		res = s.dispatchLocked(method, req)
	}
	s.recordCallLocked(APICall{
		Method:     method,
		Form:       req.form,
		JSON:       req.json,
		Token:      req.token,
		Status:     res.status,
		SlackError: res.slackError(),
	})
	s.mu.Unlock()

	writeAPIResult(w, res)
}

func writeAPIResult(w http.ResponseWriter, res apiResult) {
	if res.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(res.retryAfter))
	}
	if res.body == nil {
		// Like Slack, 5xx answers are not JSON.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(res.status)
		_, _ = io.WriteString(w, "<html><body>Internal Server Error</body></html>")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(res.status)
	_ = json.NewEncoder(w).Encode(res.body)
}

// parseAPIRequest reads form-encoded, multipart or JSON bodies plus the query
// string, and finds the token (Bearer header first, then the token field).
func parseAPIRequest(w http.ResponseWriter, r *http.Request) (*apiRequest, string) {
	req := &apiRequest{httpMethod: r.Method, form: url.Values{}}
	if auth := r.Header.Get("Authorization"); auth != "" {
		if tok, ok := strings.CutPrefix(auth, "Bearer "); ok {
			req.token = strings.TrimSpace(tok)
			req.bearer = true
		}
		req.basicUser, req.basicPass, _ = r.BasicAuth()
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBodySize)
	ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ctype {
	case "application/json":
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return req, "invalid_form_data"
		}
		for k, vs := range r.URL.Query() {
			req.form[k] = vs
		}
		if len(bytes.TrimSpace(body)) > 0 {
			req.json = body
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(body, &fields); err != nil {
				return req, "invalid_json"
			}
			for k, v := range fields {
				var str string
				if json.Unmarshal(v, &str) == nil {
					req.form.Set(k, str)
				} else {
					req.form.Set(k, string(v))
				}
			}
		}
	case "multipart/form-data":
		if err := r.ParseMultipartForm(maxRequestBodySize); err != nil {
			return req, "invalid_form_data"
		}
		req.form = r.Form
	default:
		if err := r.ParseForm(); err != nil {
			return req, "invalid_form_data"
		}
		req.form = r.Form
	}
	if !req.bearer {
		req.token = req.form.Get("token")
	}
	return req, ""
}

func (s *Server) dispatchLocked(method string, req *apiRequest) apiResult {
	m, ok := apiMethods[method]
	if !ok {
		return errResult("unknown_method")
	}
	if e := s.checkTokenLocked(m.tokens, req); e != "" {
		return errResult(e)
	}
	if inj := s.rateNext[method]; inj != nil {
		inj.times--
		if inj.times <= 0 {
			delete(s.rateNext, method)
		}
		return rateLimited(inj.retryAfter)
	}
	if inj := s.failNext[method]; inj != nil {
		inj.times--
		if inj.times <= 0 {
			delete(s.failNext, method)
		}
		if inj.status != 0 {
			return apiResult{status: inj.status}
		}
		return errResult(inj.slackErr)
	}
	return m.handle(s, req)
}

func (s *Server) checkTokenLocked(p tokenPolicy, req *apiRequest) string {
	if p == clientCredentials {
		return ""
	}
	if req.token == "" {
		return "not_authed"
	}
	switch p {
	case appTokenInHeader:
		switch {
		case !req.bearer:
			// Slack ignores an app token sent as a form field.
			return "invalid_auth"
		case req.token == s.AppToken:
			return ""
		case req.token == s.BotToken:
			return "not_allowed_token_type"
		}
	case botOrAppToken:
		if req.token == s.BotToken || req.token == s.AppToken {
			return ""
		}
	case userToken:
		return ""
	default:
		switch req.token {
		case s.BotToken:
			return ""
		case s.AppToken:
			return "not_allowed_token_type"
		}
	}
	return "invalid_auth"
}

// --- apps.connections.open / auth.test -------------------------------------

func (s *Server) apiConnectionsOpen(req *apiRequest) apiResult {
	if req.httpMethod != http.MethodPost {
		return apiResult{status: http.StatusMethodNotAllowed, body: map[string]any{"ok": false, "error": "method_not_allowed"}}
	}
	if s.failOpen.times > 0 {
		s.failOpen.times--
		if s.failOpen.slackErr == "" {
			return apiResult{status: http.StatusInternalServerError}
		}
		return errResult(s.failOpen.slackErr)
	}
	if s.closed {
		return apiResult{status: http.StatusServiceUnavailable}
	}
	ticket := randHex(32)
	s.tickets[ticket] = true
	s.opened++
	s.notifyLocked()
	u := "ws://" + s.host() + "/link/?ticket=" + ticket + "&app_id=" + url.QueryEscape(s.AppID)
	return okResult(map[string]any{"url": u})
}

func (s *Server) apiAuthTest(req *apiRequest) apiResult {
	f := map[string]any{
		"url":                   "https://" + TeamDomain + ".slack.com/",
		"team":                  "Fake Team",
		"team_id":               s.TeamID,
		"is_enterprise_install": false,
	}
	if req.token == s.AppToken {
		f["app_id"] = s.AppID
		f["app_name"] = "c66bot"
	} else {
		f["user"] = s.users[s.BotUserID].Name
		f["user_id"] = s.BotUserID
		f["bot_id"] = DefaultBotID
	}
	return okResult(f)
}

// --- chat.* ----------------------------------------------------------------

// postableLocked applies Slack's membership rules for posting into a conversation.
func (s *Server) postableLocked(id string) (*chanState, string) {
	ch := s.channels[id]
	if ch == nil || (ch.Private && !ch.BotMember) {
		return nil, "channel_not_found"
	}
	if ch.Archived {
		return nil, "is_archived"
	}
	if !ch.BotMember && !s.chatWritePublic {
		return nil, "not_in_channel"
	}
	return ch, ""
}

// content is the text/blocks part of a chat.* call.
type content struct {
	text        string
	textSet     bool
	blocks      json.RawMessage
	blocksSet   bool
	attachments bool
}

func (c content) empty() bool { return c.text == "" && c.blocks == nil && !c.attachments }

// parseContent reads text, blocks (a JSON array as a string field) and
// attachments from a form. A non-empty *apiResult is an error answer.
func parseContent(form url.Values) (content, *apiResult) {
	var c content
	if v, ok := form["text"]; ok && len(v) > 0 {
		c.text, c.textSet = v[0], true
	}
	if utf8Len(c.text) > maxTextLen {
		r := errResult("msg_too_long")
		return c, &r
	}
	if v, ok := form["blocks"]; ok && len(v) > 0 {
		blocks, code, msgs := parseBlocks([]byte(v[0]))
		if code != "" {
			r := errResultMsgs(code, msgs)
			return c, &r
		}
		c.blocks, c.blocksSet = blocks, true
	}
	if v := strings.TrimSpace(form.Get("attachments")); v != "" && v != "[]" && v != "null" {
		c.attachments = true
	}
	return c, nil
}

// parseBlocks checks a JSON array of blocks and returns it compacted (nil when
// empty), or an error code with Slack-style messages.
func parseBlocks(raw []byte) (json.RawMessage, string, []string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, "", nil
	}
	var arr []json.RawMessage
	if err := json.Unmarshal(raw, &arr); err != nil {
		return nil, "invalid_blocks_format", []string{"[ERROR] blocks must be a JSON array"}
	}
	if len(arr) == 0 {
		return nil, "", nil
	}
	if msgs := validateBlocks(arr); len(msgs) > 0 {
		return nil, "invalid_blocks", msgs
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, "invalid_blocks_format", []string{"[ERROR] blocks must be a JSON array"}
	}
	return json.RawMessage(buf.Bytes()), "", nil
}

func (s *Server) messageJSON(m Message) map[string]any {
	out := map[string]any{
		"type":   "message",
		"text":   m.Text,
		"user":   s.BotUserID,
		"bot_id": DefaultBotID,
		"app_id": s.AppID,
		"team":   s.TeamID,
		"ts":     m.TS,
	}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	if m.Blocks != nil {
		out["blocks"] = m.Blocks
	}
	return out
}

func (s *Server) apiPostMessage(req *apiRequest) apiResult {
	chID := req.form.Get("channel")
	if looksLikeUserID(chID) {
		// Posting to a user ID lands in the app's DM with that user.
		if _, ok := s.userLocked(chID); !ok {
			return errResult("channel_not_found")
		}
		chID, _ = s.openDMLocked([]string{chID})
	}
	ch, e := s.postableLocked(chID)
	if e != "" {
		return errResult(e)
	}
	if ok, wait := s.takePostTokenLocked(ch.ID); !ok {
		return rateLimited(wait)
	}
	c, bad := parseContent(req.form)
	if bad != nil {
		return *bad
	}
	if c.empty() {
		return errResult("no_text")
	}
	m := s.recordMessageLocked(Message{
		Kind:     KindPost,
		Channel:  ch.ID,
		TS:       s.nextTSLocked(),
		ThreadTS: req.form.Get("thread_ts"),
		Text:     c.text,
		Blocks:   c.blocks,
	})
	s.current[msgKey(m.Channel, m.TS)] = m
	return okResult(map[string]any{"channel": m.Channel, "ts": m.TS, "message": s.messageJSON(m)})
}

func (s *Server) apiUpdate(req *apiRequest) apiResult {
	chID, ts := req.form.Get("channel"), req.form.Get("ts")
	ch := s.channels[chID]
	if ch == nil || (ch.Private && !ch.BotMember) {
		return errResult("channel_not_found")
	}
	if ch.Archived {
		return errResult("is_archived")
	}
	cur, ok := s.current[msgKey(chID, ts)]
	if !ok || ts == "" {
		return errResult("message_not_found")
	}
	c, bad := parseContent(req.form)
	if bad != nil {
		return *bad
	}
	if !c.textSet && !c.blocksSet && !c.attachments {
		return errResult("no_text")
	}
	if c.textSet {
		cur.Text = c.text
	}
	if c.blocksSet {
		cur.Blocks = c.blocks
	}
	if cur.Text == "" && cur.Blocks == nil && !c.attachments {
		return errResult("no_text")
	}
	rec := s.recordMessageLocked(Message{
		Kind:     KindUpdate,
		Channel:  chID,
		TS:       ts,
		ThreadTS: cur.ThreadTS,
		Text:     cur.Text,
		Blocks:   cur.Blocks,
	})
	cur.At, cur.Seq = rec.At, rec.Seq
	s.current[msgKey(chID, ts)] = cur
	return okResult(map[string]any{"channel": chID, "ts": ts, "text": cur.Text, "message": s.messageJSON(cur)})
}

func (s *Server) apiPostEphemeral(req *apiRequest) apiResult {
	user := req.form.Get("user")
	if _, ok := s.userLocked(user); !ok {
		return errResult("user_not_found")
	}
	ch, e := s.postableLocked(req.form.Get("channel"))
	if e != "" {
		return errResult(e)
	}
	c, bad := parseContent(req.form)
	if bad != nil {
		return *bad
	}
	if c.empty() {
		return errResult("no_text")
	}
	m := s.recordMessageLocked(Message{
		Kind:     KindEphemeral,
		Channel:  ch.ID,
		User:     user,
		TS:       s.nextTSLocked(),
		ThreadTS: req.form.Get("thread_ts"),
		Text:     c.text,
		Blocks:   c.blocks,
	})
	return okResult(map[string]any{"message_ts": m.TS})
}

// apiGetPermalink answers chat.getPermalink for a message Slack has
// (posted, not ephemeral). Like Slack, a thread reply's link carries
// thread_ts and cid.
func (s *Server) apiGetPermalink(req *apiRequest) apiResult {
	chID, ts := req.form.Get("channel"), req.form.Get("message_ts")
	ch := s.channels[chID]
	if ch == nil || (ch.Private && !ch.BotMember) {
		return errResult("channel_not_found")
	}
	m, ok := s.current[msgKey(chID, ts)]
	if !ok || ts == "" {
		return errResult("message_not_found")
	}
	link := "https://fake.slack.com/archives/" + chID + "/p" + strings.ReplaceAll(m.TS, ".", "")
	if m.ThreadTS != "" && m.ThreadTS != m.TS {
		link += "?thread_ts=" + url.QueryEscape(m.ThreadTS) + "&cid=" + url.QueryEscape(chID)
	}
	return okResult(map[string]any{"channel": chID, "permalink": link})
}

// takePostTokenLocked implements the per-channel chat.postMessage bucket.
func (s *Server) takePostTokenLocked(channel string) (bool, time.Duration) {
	rate := s.cfg.postRate
	if rate <= 0 {
		return true, 0
	}
	burst := float64(s.cfg.postBurst)
	now := s.cfg.now()
	b := s.buckets[channel]
	if b == nil {
		b = &bucket{tokens: burst, last: now}
		s.buckets[channel] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(burst, b.tokens+el*rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / rate * float64(time.Second))
}

// --- conversations.open / users.info ----------------------------------------

func (s *Server) apiConversationsOpen(req *apiRequest) apiResult {
	if id := req.form.Get("channel"); id != "" {
		ch := s.channels[id]
		if ch == nil || !ch.BotMember {
			return errResult("channel_not_found")
		}
		return okResult(map[string]any{"no_op": true, "already_open": true, "channel": s.conversationJSON(ch)})
	}
	var users []string
	for u := range strings.SplitSeq(req.form.Get("users"), ",") {
		if u = strings.TrimSpace(u); u != "" && !slices.Contains(users, u) {
			users = append(users, u)
		}
	}
	switch {
	case len(users) == 0:
		return errResult("users_list_not_supplied")
	case len(users) > 8:
		return errResult("too_many_users")
	}
	for _, u := range users {
		if _, ok := s.userLocked(u); !ok {
			return errResult("user_not_found")
		}
		if u == s.BotUserID && len(users) == 1 {
			return errResult("cannot_dm_bot")
		}
	}
	id, existed := s.openDMLocked(users)
	return okResult(map[string]any{"no_op": existed, "already_open": existed, "channel": s.conversationJSON(s.channels[id])})
}

func (s *Server) conversationJSON(ch *chanState) map[string]any {
	out := map[string]any{
		"id":          ch.ID,
		"created":     1700000000,
		"is_open":     true,
		"is_im":       ch.im,
		"is_private":  ch.Private,
		"is_archived": ch.Archived,
		"is_member":   ch.BotMember,
	}
	if ch.im {
		out["user"] = ch.user
	} else {
		out["name"] = ch.Name
		out["is_channel"] = !ch.Private
		out["is_group"] = ch.Private
		out["is_mpim"] = strings.HasPrefix(ch.Name, "mpdm-")
	}
	return out
}

// openDMLocked returns the DM (one user) or group DM (several) with users,
// creating it when needed; the bot is a member.
func (s *Server) openDMLocked(users []string) (string, bool) {
	sorted := slices.Sorted(slices.Values(users))
	key := strings.Join(sorted, ",")
	if id, ok := s.dms[key]; ok {
		return id, true
	}
	var base string
	c := Channel{Private: true, BotMember: true}
	if len(users) == 1 {
		base = "D" + users[0][1:]
	} else {
		base = "G0MPDM" + strconv.Itoa(len(s.dms)+1)
		names := make([]string, 0, len(sorted)+1)
		for _, u := range sorted {
			names = append(names, strings.ToLower(u))
		}
		c.Name = "mpdm-" + strings.Join(names, "--") + "-1"
	}
	id := base
	for n := 2; s.channels[id] != nil; n++ {
		id = base + strconv.Itoa(n)
	}
	c.ID = id
	st := &chanState{Channel: c, im: len(users) == 1}
	if st.im {
		st.user = users[0]
	}
	s.channels[id] = st
	s.dms[key] = id
	return id, false
}

func (s *Server) apiUsersInfo(req *apiRequest) apiResult {
	u, ok := s.userLocked(req.form.Get("user"))
	if !ok {
		return errResult("user_not_found")
	}
	tz := u.TZ
	if tz == "" {
		tz = "Etc/UTC"
	}
	return okResult(map[string]any{"user": map[string]any{
		"id":        u.ID,
		"team_id":   s.TeamID,
		"name":      u.Name,
		"real_name": u.RealName,
		"deleted":   u.Deleted,
		"tz":        tz,
		"tz_label":  tz,
		"tz_offset": u.TZOffset,
		"is_bot":    u.IsBot,
		"profile": map[string]any{
			"real_name":    u.RealName,
			"display_name": u.Name,
			"email":        u.Email,
			"team":         s.TeamID,
		},
	}})
}

// apiUserGroupUsers answers usergroups.users.list with a group's members.
func (s *Server) apiUserGroupUsers(req *apiRequest) apiResult {
	members, ok := s.userGroups[req.form.Get("usergroup")]
	if !ok {
		return errResult("no_such_subteam")
	}
	return okResult(map[string]any{"users": append([]string{}, members...)})
}

// userLocked finds a user, synthesising one for any plausible user ID.
func (s *Server) userLocked(id string) (User, bool) {
	if u, ok := s.users[id]; ok {
		return u, true
	}
	if !looksLikeUserID(id) {
		return User{}, false
	}
	name := strings.ToLower(id)
	return User{ID: id, Name: name, RealName: "User " + id, Email: name + "@example.com", TZ: "Etc/UTC"}, true
}

func looksLikeUserID(id string) bool {
	if len(id) < 2 || (id[0] != 'U' && id[0] != 'W') {
		return false
	}
	for _, r := range id[1:] {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}
