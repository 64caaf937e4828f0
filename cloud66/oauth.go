package cloud66

import (
	"slices"
	"strings"

	"golang.org/x/oauth2"
)

// OAuthSettings describes a Cloud 66 OAuth application.
type OAuthSettings struct {
	BaseURL      string // Cloud 66 site; DefaultBaseURL when empty
	ClientID     string
	ClientSecret string
	RedirectURL  string // OOBRedirectURL when empty
	Scopes       []string
}

// OAuthConfig returns the oauth2 configuration for the authorization-code
// flow against Cloud 66.
func OAuthConfig(s OAuthSettings) *oauth2.Config {
	base := strings.TrimRight(strings.TrimSpace(s.BaseURL), "/")
	if base == "" {
		base = DefaultBaseURL
	}
	redirect := s.RedirectURL
	if redirect == "" {
		redirect = OOBRedirectURL
	}
	return &oauth2.Config{
		ClientID:     s.ClientID,
		ClientSecret: s.ClientSecret,
		RedirectURL:  redirect,
		Scopes:       slices.Clone(s.Scopes),
		Endpoint: oauth2.Endpoint{
			AuthURL:  base + "/oauth/authorize",
			TokenURL: base + "/oauth/token",
			// Set explicitly: auto-detect retries a failed exchange with the
			// other credential style, which would send the one-time
			// authorization code a second time. Form parameters are what
			// Cloud 66's documented clients use.
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
}

// GrantedScopes returns the scopes the token was actually granted, from the
// token response's "scope" field (space or comma separated), or requested
// when the server did not say.
func GrantedScopes(tok *oauth2.Token, requested []string) []string {
	if tok != nil {
		if s, ok := tok.Extra("scope").(string); ok {
			scopes := strings.FieldsFunc(s, func(r rune) bool {
				return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '+'
			})
			if len(scopes) > 0 {
				return scopes
			}
		}
	}
	return slices.Clone(requested)
}
