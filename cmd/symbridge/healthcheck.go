package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// cmdHealthcheck exits 0 when URL answers 200. Container images built FROM
// scratch have no shell or curl, so the compose health checks call this.
func cmdHealthcheck(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return usagef("usage: symbridge healthcheck URL")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
	if err != nil {
		return usageError{err}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d: %s", args[0], resp.StatusCode, body)
	}
	fmt.Fprintf(stdout, "%s", body)
	return nil
}
