package bottest

import (
	"context"
	"encoding/json"
	"net/http"
)

// HomeView is a view the bot published on a person's App Home.
type HomeView struct {
	User   string
	Type   string
	Blocks json.RawMessage // compact JSON array
	Seq    int             // order among every Web API call, from 1
}

type publishRequest struct {
	UserID string `json:"user_id"`
	View   struct {
		Type   string          `json:"type"`
		Blocks json.RawMessage `json:"blocks"`
	} `json:"view"`
}

// apiViewsPublish checks a views.publish: a user id and a view of type
// "home" with valid blocks. Accepted views are read back from the calls
// recorded (HomeViews), so the fake keeps no other state for them.
func (s *Server) apiViewsPublish(req *apiRequest) apiResult {
	var p publishRequest
	if req.json == nil || json.Unmarshal(req.json, &p) != nil {
		return errResult("invalid_arguments")
	}
	if !looksLikeUserID(p.UserID) {
		return errResult("invalid_user")
	}
	if p.View.Type != "home" {
		return errResult("invalid_arguments")
	}
	if _, code, msgs := parseBlocks(p.View.Blocks); code != "" {
		return errResultMsgs(code, msgs)
	}
	return okResult(map[string]any{"view": map[string]any{"id": "V" + randHex(5), "type": "home", "blocks": p.View.Blocks}})
}

// homeViewsLocked are the accepted views.publish calls, in order.
func (s *Server) homeViewsLocked() []HomeView {
	var out []HomeView
	for i, c := range s.calls {
		if c.Method != "views.publish" || c.Status != http.StatusOK || c.SlackError != "" {
			continue
		}
		var p publishRequest
		if json.Unmarshal(c.JSON, &p) != nil {
			continue
		}
		blocks, _, _ := parseBlocks(p.View.Blocks)
		out = append(out, HomeView{User: p.UserID, Type: p.View.Type, Blocks: blocks, Seq: i + 1})
	}
	return out
}

// HomeViews returns every view published on user's Home, oldest first.
func (s *Server) HomeViews(user string) []HomeView {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []HomeView
	for _, v := range s.homeViewsLocked() {
		if v.User == user {
			out = append(out, v)
		}
	}
	return out
}

// HomeView returns the last view published on user's Home.
func (s *Server) HomeView(user string) (HomeView, bool) {
	vs := s.HomeViews(user)
	if len(vs) == 0 {
		return HomeView{}, false
	}
	return vs[len(vs)-1], true
}

// WaitHomeView waits until the last view published on user's Home
// satisfies match, and returns it.
func (s *Server) WaitHomeView(ctx context.Context, user string, match func(HomeView) bool) (HomeView, error) {
	var found HomeView
	err := s.waitFor(ctx, func() bool {
		var last *HomeView
		for _, v := range s.homeViewsLocked() {
			if v.User == user {
				last = &v
			}
		}
		if last != nil && (match == nil || match(*last)) {
			found = *last
			return true
		}
		return false
	})
	return found, err
}

// SendAppHomeOpened delivers an events_api envelope as Slack does when user
// opens the bot's Home tab, and returns its envelope id.
func (s *Server) SendAppHomeOpened(ctx context.Context, user string) (string, error) {
	s.mu.Lock()
	team, app := s.TeamID, s.AppID
	dm, _ := s.openDMLocked([]string{user})
	ts := s.nextTSLocked()
	s.mu.Unlock()
	now := s.cfg.now()
	payload := map[string]any{
		"token":      "fakeVerificationToken",
		"team_id":    team,
		"api_app_id": app,
		"type":       "event_callback",
		"event_id":   "Ev" + randHex(5),
		"event_time": now.Unix(),
		"event": map[string]any{
			"type":     "app_home_opened",
			"user":     user,
			"channel":  dm,
			"tab":      "home",
			"event_ts": ts,
		},
	}
	return s.SendEnvelope(ctx, "events_api", payload, false)
}
