package config_test

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strconv"
	"strings"
	"testing"

	"github.com/symbridge/symbridge/internal/config"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func derOf(t *testing.T, p []byte) []byte {
	t.Helper()
	block, _ := pem.Decode(p)
	if block == nil {
		return nil
	}
	return block.Bytes
}

func x509VerifyOptions(c *config.Config) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: c.TrustStore, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
}

func TestTrustStoreFormats(t *testing.T) {
	f := getFixtures(t)
	for _, tc := range []struct {
		name string
		kv   map[string]string
	}{
		{"PEM path", map[string]string{"ssl.trustStore.path": writeFile(t, "ca.pem", f.caPEM, 0o644)}},
		{"PEM content", map[string]string{"ssl.trustStore.content": strconv.Quote(string(f.caPEM))}},
		{"PKCS#12 path", map[string]string{"ssl.trustStore.path": writeFile(t, "ca.p12", f.trustP12, 0o644), "ssl.trustStore.password": storePassword}},
		{"PKCS#12 base64 content", map[string]string{"ssl.trustStore.content": b64(f.trustP12), "ssl.trustStore.password": storePassword}},
		{"JKS path", map[string]string{"ssl.trustStore.path": writeFile(t, "ca.jks", f.trustJKS, 0o644), "ssl.trustStore.password": storePassword}},
		{"JKS without password", map[string]string{"ssl.trustStore.path": writeFile(t, "ca.jks", f.trustJKS, 0o644)}},
		{"flat keys", map[string]string{"ssl.trustStorePath": writeFile(t, "ca.jks", f.trustJKS, 0o644), "ssl.trustStorePassword": storePassword}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, yamlDoc(tc.kv), nil, nil)
			if c.TrustStore == nil {
				t.Fatalf("no trust store; Validate: %v", c.Validate())
			}
			if _, err := f.leaf.Verify(x509VerifyOptions(c)); err != nil {
				t.Errorf("a certificate signed by the configured CA does not verify: %v", err)
			}
			if _, err := f.otherLeaf.Verify(x509VerifyOptions(c)); err == nil {
				t.Errorf("a certificate of an unknown CA verifies")
			}
		})
	}
}

func TestTrustStoreErrors(t *testing.T) {
	f := getFixtures(t)
	jceks := []byte{0xCE, 0xCE, 0xCE, 0xCE, 0, 0, 0, 2}
	for _, tc := range []struct {
		name string
		kv   map[string]string
		want string
	}{
		{"missing file", map[string]string{"ssl.trustStore.path": "/nonexistent/ts.jks"}, "ssl.trustStore.path: open /nonexistent/ts.jks"},
		{"JCEKS", map[string]string{"ssl.trustStore.path": writeFile(t, "x.jceks", jceks, 0o644)}, "ssl.trustStore.path: JCEKS trust stores are not supported"},
		{"empty JKS", map[string]string{"ssl.trustStore.path": writeFile(t, "e.jks", f.trustJKSNoAlias, 0o644), "ssl.trustStore.password": storePassword}, "no trusted certificate entry"},
		{"garbage", map[string]string{"ssl.trustStore.path": writeFile(t, "g.bin", []byte("garbage"), 0o644)}, "ssl.trustStore.path: not a PEM bundle, JKS or PKCS#12 trust store"},
		{"PEM without certificates", map[string]string{"ssl.trustStore.content": strconv.Quote("-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n")}, "ssl.trustStore.content: the PEM bundle holds no CERTIFICATE block"},
		{"path and content", map[string]string{"ssl.trustStore.content": strconv.Quote(string(f.caPEM)), "ssl.trustStorePath": "/x"}, "ssl.trustStore.content, ssl.trustStorePath: set only one of them"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, yamlDoc(tc.kv), nil, nil)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v\nwant %q", err, tc.want)
			}
		})
	}
}

func TestCertificate(t *testing.T) {
	f := getFixtures(t)
	t.Run("PKCS#12 keeps the chain", func(t *testing.T) {
		c := mustLoad(t, yamlDoc(map[string]string{
			"bot.certificate.path":     writeFile(t, "bot.p12", f.certP12, 0o600),
			"bot.certificate.password": certPassword,
		}), nil, nil)
		if c.Certificate == nil {
			t.Fatalf("no certificate: %v", c.Validate())
		}
		if len(c.Certificate.Certificate) != 2 || !c.Certificate.Leaf.Equal(f.leaf) {
			t.Errorf("chain of %d, leaf %v", len(c.Certificate.Certificate), c.Certificate.Leaf.Subject)
		}
		if _, ok := c.Certificate.PrivateKey.(*ecdsa.PrivateKey); !ok {
			t.Errorf("private key %T", c.Certificate.PrivateKey)
		}
		if len(c.Warnings) != 0 {
			t.Errorf("warnings %q", c.Warnings)
		}
	})
	t.Run("world-readable certificate file", func(t *testing.T) {
		c := mustLoad(t, yamlDoc(map[string]string{
			"bot.certificatePath":     writeFile(t, "bot.p12", f.certP12, 0o604),
			"bot.certificatePassword": certPassword,
		}), nil, nil)
		if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "bot.certificatePath:") {
			t.Errorf("warnings %q", c.Warnings)
		}
	})
	t.Run("not a certificate", func(t *testing.T) {
		c := mustLoad(t, yamlDoc(map[string]string{"bot.certificate.path": writeFile(t, "bad.p12", []byte("nope"), 0o600)}), nil, nil)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "bot.certificate.path: cannot read the PKCS#12 certificate") {
			t.Errorf("Validate = %v", err)
		}
	})
	t.Run("PEM without key", func(t *testing.T) {
		c := mustLoad(t, yamlDoc(map[string]string{"bot.certificate.content": strconv.Quote(string(f.caPEM))}), nil, nil)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "bot.certificate.content: cannot read the PEM certificate and key") {
			t.Errorf("Validate = %v", err)
		}
	})
}
