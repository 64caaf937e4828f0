package cloud66

import (
	"context"
	"net/http"
)

// Ping checks that Cloud 66 is reachable. It sends no token, since the
// endpoint needs none and a liveness probe should not spread credentials.
// The body's shape is undocumented, so a 2xx status is the whole answer.
//
// GET /ping.json
func (c *Client) Ping(ctx context.Context) error {
	return c.ping(ctx, "/ping", "ping.json", false)
}

// PingAuth checks that the client's token is accepted; an invalid token
// yields an error matching ErrUnauthorized.
//
// GET /ping/auth.json
func (c *Client) PingAuth(ctx context.Context) error {
	return c.ping(ctx, "/ping/auth", "ping/auth.json", true)
}

func (c *Client) ping(ctx context.Context, endpoint, path string, auth bool) error {
	req, err := c.newRequest(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return err
	}
	if !auth {
		req.Header.Del("Authorization")
	}
	b, err := c.do(req, endpoint)
	if err != nil {
		return err
	}
	c.bodies.put(b)
	return nil
}
