// Package app is the composition root (placeholder while it grows).
package app
