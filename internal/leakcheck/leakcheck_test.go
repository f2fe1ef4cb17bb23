package leakcheck_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/symbridge/symbridge/internal/leakcheck"
)

func TestFind(t *testing.T) {
	const token = "session-token-0123456789-abcdef"
	for _, tc := range []struct {
		name     string
		haystack string
		secrets  []string
		want     []string
	}{
		{"clean", "read datafeed v2 abc_f: HTTP 500", []string{token}, nil},
		{"whole token", "bad token " + token + " here", []string{token}, []string{token}},
		{"12-byte piece", "cut: " + token[5:17] + "...", []string{token}, []string{token[5:17]}},
		{"11-byte piece is below the window", "cut: " + token[5:16] + "...", []string{token}, nil},
		{"two pieces", token[:12] + " and " + token[len(token)-13:], []string{token}, []string{token[:12], token[len(token)-13:]}},
		{"overlapping windows merge", token[3:20], []string{token}, []string{token[3:20]}},
		{"several secrets", "a=" + token + " b=km-token-secret-42", []string{token, "km-token-secret-42"}, []string{token, "km-token-secret-42"}},
		{"short secret whole", "password is hunter2!", []string{"hunter2"}, []string{"hunter2"}},
		{"too short a secret is ignored", "a b c", []string{"b", ""}, nil},
		{"empty haystack", "", []string{token}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := leakcheck.Find(tc.haystack, tc.secrets...); !slices.Equal(got, tc.want) {
				t.Errorf("Find() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPEMBody(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	block := &pem.Block{Type: "EC PRIVATE KEY", Headers: map[string]string{"Comment": "test"}, Bytes: der}
	data := pem.EncodeToMemory(block)
	body := leakcheck.PEMBody(data)
	if strings.Contains(body, "-----") || strings.Contains(body, "Comment") || strings.ContainsAny(body, "\r\n") {
		t.Fatalf("PEMBody kept framing: %q", body)
	}
	// The header line alone is public: it must not count as a leak.
	if got := leakcheck.Find("-----BEGIN EC PRIVATE KEY-----", body); got != nil {
		t.Errorf("the PEM header was reported: %q", got)
	}
	// Any line of the key, or the key printed whole, is a leak.
	line := ""
	for l := range strings.Lines(string(data)) {
		if len(l) == 65 { // a full 64-character base64 line
			line = l
			break
		}
	}
	if line == "" {
		t.Fatalf("no base64 line in %s", data)
	}
	for _, h := range []string{string(data), fmt.Sprintf("%q", data), "x" + line[20:40] + "y"} {
		if got := leakcheck.Find(h, body); len(got) == 0 {
			t.Errorf("no leak found in %q", h)
		}
	}
}
